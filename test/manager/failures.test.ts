import { describe, expect, it } from 'vitest'
import type { TokenManager } from '../../src/index.js'
import { AccessToken, isTokenkeeperError, tokenSource } from '../../src/index.js'

import {
  flush,
  heldSource,
  manager,
  permanentError,
  recordEvents,
  settle,
  transientError,
} from './helpers.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

async function cached(tokens: TokenManager, held: ReturnType<typeof heldSource>, lifetimeMs = HOUR) {
  const got = tokens.get(held.source)
  await flush()
  const token = held.last().succeed(lifetimeMs)
  await got
  return token
}

describe('a transient failure while a valid token exists', () => {
  it('keeps serving the cached token without error, with stale events and the staleServed stat', async () => {
    const { tokens, clock, start } = manager()
    const events = recordEvents(tokens)
    const held = heldSource('api')
    const original = await cached(tokens, held)
    clock.set(start + 0.8 * HOUR)
    await expect(tokens.get(held.source)).resolves.toBe(original)
    await flush()
    held.last().fail(transientError())
    await flush()
    expect(events.refreshFailure).toHaveLength(1)
    expect(events.refreshFailure[0]).toMatchObject({
      key: held.source.key,
      mode: 'background',
      code: 'SERVER_ERROR',
      retryable: true,
      servingCached: true,
      retryAt: start + 0.8 * HOUR + 138,
    })
    expect(events.stale).toHaveLength(0)

    for (let i = 0; i < 5; i++) await expect(tokens.get(held.source)).resolves.toBe(original)
    expect(events.stale).toHaveLength(5)
    expect(events.stale[0]).toEqual({ key: held.source.key, expiresAt: original.expiresAt })
    expect(tokens.stats()).toMatchObject({ staleServed: 5, failures: 1, failFast: 0 })
  })

  it('a backoff never outlasts the cached token: at the mandatory window a caller gets a new attempt, not the old error', async () => {
    const { tokens, clock } = manager()
    const events = recordEvents(tokens)
    const held = heldSource('api')
    const original = await cached(tokens, held, 20_000)
    // Fail every background refresh while the token still serves; delays grow past the token.
    for (let step = 0; step < 400 && tokens.peek(held.source) !== undefined; step++) {
      await expect(tokens.get(held.source)).resolves.toBe(original)
      await flush()
      for (const pending of held.pending()) pending.fail(transientError())
      await flush()
      clock.advance(50)
    }
    expect(tokens.peek(held.source)).toBeUndefined()
    expect(events.refreshFailure.length).toBeGreaterThan(2)
    expect(events.refreshFailure.every((e) => e.retryAt <= original.expiresAt)).toBe(true)
    const before = held.fetches.length
    const got = settle(tokens.get(held.source))
    await flush()
    expect(got.result().status).toBe('pending')
    expect(held.fetches).toHaveLength(before + 1)
    const renewed = held.last().succeed(HOUR)
    await flush()
    expect(got.result()).toEqual({ status: 'fulfilled', value: renewed })
  })

  it('backs off: the next background attempt only from retryAt, with growing delays', async () => {
    const { tokens, clock, start } = manager()
    const held = heldSource('api')
    const original = await cached(tokens, held)
    const failedAt = start + 0.8 * HOUR
    clock.set(failedAt)
    await tokens.get(held.source)
    await flush()
    held.last().fail(transientError())
    await flush()

    clock.set(failedAt + 137)
    await expect(tokens.get(held.source)).resolves.toBe(original)
    await flush()
    expect(held.fetches).toHaveLength(2)

    clock.set(failedAt + 138)
    await expect(tokens.get(held.source)).resolves.toBe(original)
    await flush()
    expect(held.fetches).toHaveLength(3)
    held.last().fail(transientError())
    await flush()

    // Second failure in a row: 275 ms.
    clock.advance(274)
    await tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(3)
    clock.advance(1)
    await tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(4)

    // Recovery: the new token is served and the stale serving stops.
    const renewed = held.last().succeed(HOUR)
    await flush()
    const staleBefore = tokens.stats().staleServed
    await expect(tokens.get(held.source)).resolves.toBe(renewed)
    expect(tokens.stats().staleServed).toBe(staleBefore)
  })

  it('a refresh failing into the mandatory window leaves callers with the error, not the expired token', async () => {
    const { tokens, clock, start } = manager()
    const held = heldSource('api')
    await cached(tokens, held)
    clock.set(start + HOUR - MINUTE)
    const waiting = settle(tokens.get(held.source))
    await flush()
    const error = transientError()
    held.last().fail(error)
    await flush()
    expect(waiting.result()).toEqual({ status: 'rejected', reason: error })
  })
})

describe('failures with no valid token', () => {
  it('waiting callers get the typed error; callers in the backoff window get the same error at once', async () => {
    const { tokens, clock } = manager()
    const events = recordEvents(tokens)
    const held = heldSource('api')
    const waiting = Array.from({ length: 5 }, () => settle(tokens.get(held.source)))
    await flush()
    const error = transientError()
    held.last().fail(error)
    await flush()
    for (const waiter of waiting) {
      const result = waiter.result()
      expect(result).toEqual({ status: 'rejected', reason: error })
      const reason = (result as { reason: unknown }).reason
      expect(isTokenkeeperError(reason) && reason.code).toBe('SERVER_ERROR')
    }
    expect(events.refreshFailure[0]).toMatchObject({ mode: 'foreground', servingCached: false })

    clock.advance(137)
    for (let i = 0; i < 20; i++) await expect(tokens.get(held.source)).rejects.toBe(error)
    expect(held.fetches).toHaveLength(1)
    expect(tokens.stats()).toMatchObject({ failFast: 20, fetches: 1 })

    // After the window: exactly one request, however many callers.
    clock.advance(1)
    const retrying = Array.from({ length: 20 }, () => tokens.get(held.source))
    await flush()
    expect(held.fetches).toHaveLength(2)
    const token = held.last().succeed(HOUR)
    for (const got of retrying) await expect(got).resolves.toBe(token)
  })

  it('honours Retry-After', async () => {
    const { tokens, clock } = manager()
    const events = recordEvents(tokens)
    const held = heldSource('api')
    const first = settle(tokens.get(held.source))
    await flush()
    const failedAt = clock.now()
    const error = transientError(30_000)
    held.last().fail(error)
    await flush()
    expect(first.result().status).toBe('rejected')
    expect(events.refreshFailure[0]?.retryAt).toBe(failedAt + 30_000)
    clock.set(failedAt + 29_999)
    await expect(tokens.get(held.source)).rejects.toBe(error)
    expect(held.fetches).toHaveLength(1)
    clock.set(failedAt + 30_000)
    const retry = tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(2)
    const token = held.last().succeed(HOUR)
    await expect(retry).resolves.toBe(token)
  })

  it('remembers a permanent error for at least permanentErrorBackoffMs, every time', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    for (let attempt = 1; attempt <= 3; attempt++) {
      const got = settle(tokens.get(held.source))
      await flush()
      expect(held.fetches).toHaveLength(attempt)
      const failedAt = clock.now()
      const error = permanentError()
      held.last().fail(error)
      await flush()
      expect(got.result()).toEqual({ status: 'rejected', reason: error })
      clock.set(failedAt + 4_999)
      await expect(tokens.get(held.source)).rejects.toBe(error)
      expect(held.fetches).toHaveLength(attempt)
      clock.set(failedAt + 5_000)
    }
    const recovered = tokens.get(held.source)
    await flush()
    const token = held.last().succeed(HOUR)
    await expect(recovered).resolves.toBe(token)
  })

  it('a custom permanentErrorBackoffMs is used', async () => {
    const { tokens, clock } = manager({ permanentErrorBackoffMs: 60_000 })
    const held = heldSource('api')
    const got = settle(tokens.get(held.source))
    await flush()
    const error = permanentError()
    held.last().fail(error)
    await flush()
    expect(got.result().status).toBe('rejected')
    clock.advance(59_999)
    await expect(tokens.get(held.source)).rejects.toBe(error)
    clock.advance(1)
    const again = settle(tokens.get(held.source))
    await flush()
    expect(held.fetches).toHaveLength(2)
    held.last().succeed(HOUR)
    await flush()
    expect(again.result().status).toBe('fulfilled')
  })

  it('after recovery the backoff starts again from the first step', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    // Fail twice (138 ms, then 275 ms), then succeed.
    for (const delay of [138, 275]) {
      const got = settle(tokens.get(held.source))
      await flush()
      held.last().fail(transientError())
      await flush()
      expect(got.result().status).toBe('rejected')
      clock.advance(delay)
    }
    const token = await cached(tokens, held, 2_000)
    expect(token.lifetimeMs).toBe(2_000)
    // Let the 2 s token reach its mandatory window (1.8 s), then fail once more: 138 ms again.
    clock.advance(1_800)
    const got = settle(tokens.get(held.source))
    await flush()
    held.last().fail(transientError())
    await flush()
    expect(got.result().status).toBe('rejected')
    clock.advance(138)
    const retry = settle(tokens.get(held.source))
    await flush()
    expect(held.fetches).toHaveLength(5)
    held.last().succeed(HOUR)
    await flush()
    expect(retry.result().status).toBe('fulfilled')
  })

  it('wraps a plain error thrown by a function source as a retryable SOURCE_FAILED with its cause', async () => {
    const { tokens } = manager()
    const cause = new Error('vault unreachable')
    const source = tokenSource('vault', () => {
      throw cause
    })
    const error: unknown = await tokens.get(source).catch((e: unknown) => e)
    expect(isTokenkeeperError(error) && error.code).toBe('SOURCE_FAILED')
    expect(isTokenkeeperError(error) && error.retryable).toBe(true)
    expect((error as Error).cause).toBe(cause)
  })
})

describe('proactive mode and failures', () => {
  it('retries a failed proactive refresh at retryAt without any call', async () => {
    const { tokens, clock, start } = manager({ proactive: true })
    const held = heldSource('api')
    const original = await cached(tokens, held, 5 * MINUTE)
    await clock.advanceAsync(4 * MINUTE)
    expect(held.fetches).toHaveLength(2)
    held.last().fail(transientError())
    await flush()
    expect(clock.nextTimerAt()).toBe(start + 4 * MINUTE + 138)
    await clock.advanceAsync(137)
    expect(held.fetches).toHaveLength(2)
    await clock.advanceAsync(1)
    expect(held.fetches).toHaveLength(3)
    const renewed = held.last().succeed(5 * MINUTE)
    await flush()
    expect(tokens.peek(held.source)).toBe(renewed)
    expect(renewed).not.toBe(original)
  })
})

describe('close()', () => {
  it('rejects waiting callers with MANAGER_CLOSED and rejects later misses', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    const waiting = settle(tokens.get(held.source))
    await flush()
    await tokens.close()
    await flush()
    const result = waiting.result()
    expect(result.status).toBe('rejected')
    const reason = (result as { reason: unknown }).reason
    expect(isTokenkeeperError(reason) && reason.code).toBe('MANAGER_CLOSED')
    expect(held.last().signal?.aborted).toBe(true)
    const after: unknown = await tokens.get(heldSource('other').source).catch((e: unknown) => e)
    expect(isTokenkeeperError(after) && after.code).toBe('MANAGER_CLOSED')
    await expect(tokens.close()).resolves.toBeUndefined()
  })

  it('settles waiting callers even when a function source ignores its signal', async () => {
    const { tokens } = manager()
    const held = heldSource('api', { ignoreAbort: true })
    const waiting = settle(tokens.get(held.source))
    await flush()
    const closing = settle(tokens.close())
    try {
      await flush(10)
      expect(closing.result().status).toBe('fulfilled')
      expect(waiting.result().status).toBe('rejected')
    } finally {
      held.last().succeed(HOUR) // let the held promise end so nothing lingers
      await flush()
    }
  })
})

describe('plain-JavaScript sources', () => {
  const token = (value: string) =>
    new AccessToken({ value, type: 'Bearer', scopes: [], issuedAt: 0, expiresAt: Number.MAX_SAFE_INTEGER })

  it('two hand-written sources without a key do not share one token: each is a TypeError that says what to do', async () => {
    const { tokens } = manager()
    let fetched = 0
    const first = { fetchToken: () => Promise.resolve(token(`a-${++fetched}`)) }
    const second = { fetchToken: () => Promise.resolve(token(`b-${++fetched}`)) }
    for (const source of [first, second, { key: '', fetchToken: first.fetchToken }, { key: 42, ...first }]) {
      const error = await tokens.get(source as never).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toMatch(/needs a non-empty string `key`.*tokenSource\(key, fn\)/)
    }
    expect(fetched).toBe(0)
    expect(tokens.stats().entries).toBe(0)
    expect(() => tokens.fetch(first as never)).toThrow(TypeError)
    expect(() => tokens.authorizer(second as never)).toThrow(/no key/)
    await expect(tokens.invalidate(first as never)).rejects.toThrow(TypeError)
    expect(tokens.peek(first as never)).toBeUndefined()
  })

  it('a source that is not an object, or has no fetchToken, is a TypeError', async () => {
    const { tokens } = manager()
    for (const source of [
      undefined,
      null,
      'https://idp.example/token',
      { key: 'k' },
      { key: 'k', fetchToken: 'no' },
    ]) {
      await expect(tokens.get(source as never)).rejects.toThrow(TypeError)
    }
  })

  it('a source whose key, fetchToken or resolve cannot be read (a getter that throws): get and invalidate reject with a TypeError, peek is undefined', async () => {
    const { tokens } = manager()
    const unreadable = (member: string) =>
      Object.defineProperty({ key: 'k', fetchToken: () => Promise.resolve(token('x')) }, member, {
        get() {
          throw new Error(`reading ${member} SECRET`)
        },
      }) as never
    for (const member of ['key', 'fetchToken', 'resolve']) {
      const source = unreadable(member)
      let pending: Promise<unknown> | undefined
      expect(() => (pending = tokens.get(source))).not.toThrow()
      const error = await pending?.catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toMatch(/could not be read|no fetchToken/)
      expect((error as Error).message).not.toContain('SECRET')
      expect(() => tokens.peek(source)).not.toThrow()
      expect(tokens.peek(source)).toBeUndefined()
      await expect(tokens.invalidate(source)).rejects.toThrow(TypeError)
    }
  })

  it('a source whose whenKeyKnown throws instead of rejecting is fetched like one whose whenKeyKnown rejected', async () => {
    const { tokens } = manager()
    let fetched = 0
    const source = {
      key: 'throws-when-key-known',
      whenKeyKnown: (): Promise<void> => {
        throw new Error('not known')
      },
      fetchToken: () => Promise.resolve(token(`w-${++fetched}`)),
    }
    let pending: Promise<unknown> | undefined
    expect(() => (pending = tokens.get(source))).not.toThrow()
    await expect(pending).resolves.toMatchObject({ value: 'w-1' })
  })

  it('a source with a key is cached under it', async () => {
    const { tokens } = manager()
    let fetched = 0
    const source = { key: 'mine', fetchToken: () => Promise.resolve(token(`t-${++fetched}`)) }
    expect((await tokens.get(source)).value).toBe('t-1')
    expect((await tokens.get({ ...source })).value).toBe('t-1')
    expect(fetched).toBe(1)
  })
})
