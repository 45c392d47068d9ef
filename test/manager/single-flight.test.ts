import { describe, expect, it } from 'vitest'
import {
  isTokenkeeperError,
  memoryStore,
  TokenManager,
  type AccessToken,
  type TokenStore,
} from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import {
  closeAfterTest,
  flush,
  heldSource,
  makeToken,
  manager,
  settle,
  tokenValue,
  transientError,
} from './helpers.js'

const HOUR = 3_600_000

describe('single-flight per key', () => {
  it('1,000 concurrent callers cause exactly one fetch and all get the same token', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    const waiting = Array.from({ length: 500 }, () => tokens.get(held.source))
    await flush()
    // More callers join after the request has started.
    for (let i = 0; i < 500; i++) waiting.push(tokens.get(held.source))
    await flush()
    expect(held.fetches).toHaveLength(1)
    expect(tokens.stats()).toMatchObject({ fetches: 1, misses: 1_000, joined: 999, inFlight: 1 })
    const token = held.last().succeed(HOUR)
    const results = await Promise.all(waiting)
    expect(results).toHaveLength(1_000)
    for (const result of results) expect(result).toBe(token)
    expect(held.fetches).toHaveLength(1)
    expect(tokens.stats()).toMatchObject({ fetches: 1, inFlight: 0, entries: 1 })
    // And the next caller is served from memory.
    await expect(tokens.get(held.source)).resolves.toBe(token)
    expect(held.fetches).toHaveLength(1)
  })

  it('delivers a failure to every waiter and does not cache it as a token', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    const waiting = Array.from({ length: 100 }, () => settle(tokens.get(held.source)))
    await flush()
    const error = transientError()
    held.last().fail(error)
    await flush()
    for (const waiter of waiting) expect(waiter.result()).toEqual({ status: 'rejected', reason: error })
    expect(tokens.peek(held.source)).toBeUndefined()
    expect(tokens.stats()).toMatchObject({ fetches: 1, failures: 1 })

    // Within the backoff window: the same error at once, no request.
    await expect(tokens.get(held.source)).rejects.toBe(error)
    expect(held.fetches).toHaveLength(1)

    // After the backoff (250 ms × (0.1 + 0.9 × 0.5) = 138 ms): one new request.
    clock.advance(138)
    const later = tokens.get(held.source)
    const alsoLater = tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(2)
    const token = held.last().succeed(HOUR)
    await expect(later).resolves.toBe(token)
    await expect(alsoLater).resolves.toBe(token)
  })

  it('different keys never share a token or a flight', async () => {
    const { tokens } = manager()
    const a = heldSource('a')
    const b = heldSource('b')
    const fromA = Array.from({ length: 20 }, () => settle(tokens.get(a.source)))
    const fromB = Array.from({ length: 20 }, () => settle(tokens.get(b.source)))
    await flush()
    expect(a.fetches).toHaveLength(1)
    expect(b.fetches).toHaveLength(1)
    const tokenA = a.last().succeed(HOUR)
    await flush()
    for (const waiter of fromA) expect(waiter.result()).toEqual({ status: 'fulfilled', value: tokenA })
    // b's callers are still waiting on b's own request.
    for (const waiter of fromB) expect(waiter.result()).toEqual({ status: 'pending' })
    const tokenB = b.last().succeed(HOUR)
    await flush()
    for (const waiter of fromB) expect(waiter.result()).toEqual({ status: 'fulfilled', value: tokenB })
    expect(tokenA.value).not.toBe(tokenB.value)
    expect((await tokens.get(a.source)).value).toBe(tokenA.value)
    expect((await tokens.get(b.source)).value).toBe(tokenB.value)
  })

  it('a failure on one key does not touch another key', async () => {
    const { tokens } = manager()
    const a = heldSource('a')
    const b = heldSource('b')
    const fromA = settle(tokens.get(a.source))
    const fromB = settle(tokens.get(b.source))
    await flush()
    a.last().fail(transientError())
    await flush()
    expect(fromA.result().status).toBe('rejected')
    expect(fromB.result().status).toBe('pending')
    const tokenB = b.last().succeed(HOUR)
    await flush()
    expect(fromB.result()).toEqual({ status: 'fulfilled', value: tokenB })
  })
})

describe('a caller AbortSignal', () => {
  it('rejects that caller with the signal reason; the others get the token; the fetch goes on', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    const controller = new AbortController()
    const others = Array.from({ length: 10 }, () => settle(tokens.get(held.source)))
    const aborted = settle(tokens.get(held.source, { signal: controller.signal }))
    await flush()
    expect(held.fetches).toHaveLength(1)
    const reason = new Error('caller gave up')
    controller.abort(reason)
    await flush()
    expect(aborted.result()).toEqual({ status: 'rejected', reason })
    expect(held.last().signal?.aborted).toBe(false)
    for (const other of others) expect(other.result()).toEqual({ status: 'pending' })
    const token = held.last().succeed(HOUR)
    await flush()
    for (const other of others) expect(other.result()).toEqual({ status: 'fulfilled', value: token })
  })

  it('the only caller aborting does not abort the fetch, whose token is then cached', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    const controller = new AbortController()
    const aborted = settle(tokens.get(held.source, { signal: controller.signal }))
    await flush()
    controller.abort()
    await flush()
    expect(aborted.result().status).toBe('rejected')
    const rejected = aborted.result() as { reason: unknown }
    expect(rejected.reason).toBe(controller.signal.reason)
    expect(held.last().signal?.aborted).toBe(false)
    const token = held.last().succeed(HOUR)
    await flush()
    await expect(tokens.get(held.source)).resolves.toBe(token)
    expect(held.fetches).toHaveLength(1)
  })

  it('an already aborted signal rejects at once without a request, even on a cached key', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    const reason = new Error('already gone')
    await expect(tokens.get(held.source, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    await flush()
    expect(held.fetches).toHaveLength(0)

    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(HOUR)
    await first
    await expect(tokens.get(held.source, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(held.fetches).toHaveLength(1)
  })
})

describe('write-if-newer and late results', () => {
  it('a refresh that returns a newer but earlier-expiring token adopts it (the server issues shorter tokens now)', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    const first = tokens.get(held.source)
    await flush()
    const longLived = held.last().succeed(HOUR)
    await first
    // Advisory window (refreshAt = 80 % of an hour with random 0.5): one background refresh.
    clock.advance(0.8 * HOUR)
    await expect(tokens.get(held.source)).resolves.toBe(longLived)
    await flush()
    expect(held.fetches).toHaveLength(2)
    // The answer expires 5 minutes before the cached token does, but it was issued later.
    const shorter = held.last().succeed(0.2 * HOUR - 5 * 60_000)
    await flush()
    expect(shorter.expiresAt).toBeLessThan(longLived.expiresAt)
    expect(tokens.peek(held.source)).toBe(shorter)
    // Its own windows apply: no new request until its refresh point, however often it is used.
    for (let call = 0; call < 50; call++) {
      clock.advance(1_000)
      await expect(tokens.get(held.source)).resolves.toBe(shorter)
    }
    await flush()
    expect(held.fetches).toHaveLength(2)
  })

  it('24 h tokens, then the server issues 1 h tokens: one request per renewal, not one per call', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(24 * HOUR)
    await first
    clock.advance(0.8 * 24 * HOUR)
    for (let tick = 0; tick < 600; tick++) {
      await tokens.get(held.source)
      await flush()
      for (const pending of held.pending()) pending.succeed(HOUR)
      clock.advance(100)
    }
    // One minute of calls every 100 ms: the renewal that brought the first 1 h token, nothing more.
    expect(held.fetches).toHaveLength(2)
  })

  it('a late answer (issued before the cached token, expiring earlier) does not replace it', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    const first = tokens.get(held.source)
    await flush()
    const cached = held.last().succeed(HOUR)
    await first
    clock.advance(0.8 * HOUR)
    await tokens.get(held.source)
    await flush()
    // The answer claims to have been issued before the cached token (an old answer arriving late).
    held.last().resolveWith(makeToken(tokenValue('late'), cached.issuedAt - 1_000, 0.5 * HOUR))
    await flush()
    expect(tokens.peek(held.source)).toBe(cached)
  })

  it('the same token re-sent with an ever smaller expires_in does not make every later call start a new request', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    const first = tokens.get(held.source)
    await flush()
    const original = held.last().succeed(HOUR)
    await first
    clock.advance(0.8 * HOUR)
    for (let call = 0; call < 10; call++) {
      expect((await tokens.get(held.source)).value).toBe(original.value)
      await flush()
      // The server answers with the same token, re-measured: it expires 1 s earlier.
      for (const pending of held.pending()) {
        pending.resolveWith(
          makeToken(original.value, pending.startedAt, original.expiresAt - pending.startedAt - 1_000),
        )
      }
      await flush()
    }
    expect(held.fetches.length).toBeLessThanOrEqual(2)
  })

  it('a late answer for a cleared key does not replace the newer token', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    const early = settle(tokens.get(held.source))
    await flush()
    const slow = held.last()
    await tokens.clear()
    const late = tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(2)
    const newer = held.last().succeed(HOUR)
    await expect(late).resolves.toBe(newer)
    slow.succeed(HOUR)
    await flush()
    expect(early.result().status).toBe('fulfilled')
    expect(tokens.peek(held.source)).toBe(newer)
    await expect(tokens.get(held.source)).resolves.toBe(newer)
  })

  it('two managers fetching at once through a shared store: the earlier-expiring token never overwrites the later one', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    // No lock, so both managers really fetch at the same time.
    const lockless: TokenStore = {
      get: (key) => shared.get(key),
      set: (key, record, options) => shared.set(key, record, options),
      delete: (key, options) => shared.delete(key, options),
      clear: () => shared.clear(),
    }
    const a = new TokenManager({ clock, random: () => 0.5, store: lockless })
    const b = new TokenManager({ clock, random: () => 0.5, store: lockless })
    closeAfterTest(a, b)
    const heldA = heldSource('api')
    const heldB = heldSource('api')
    const fromA = a.get(heldA.source)
    const fromB = b.get(heldB.source)
    await flush()
    expect(heldA.fetches).toHaveLength(1)
    expect(heldB.fetches).toHaveLength(1)
    const longer = heldA.last().succeed(2 * HOUR)
    await fromA
    heldB.last().succeed(HOUR)
    await fromB
    const record = await shared.get(heldA.source.key)
    expect(record?.expiresAt).toBe(longer.expiresAt)
    // A third manager reads the later-expiring token from the store.
    const c = new TokenManager({ clock, random: () => 0.5, store: lockless })
    closeAfterTest(c)
    const heldC = heldSource('api')
    await expect(c.get(heldC.source)).resolves.toMatchObject({ value: longer.value })
    expect(heldC.fetches).toHaveLength(0)
  })
})

describe('EXPIRED_ON_ARRIVAL', () => {
  it('rejects waiters with a typed, retryable error when the token expired while it was being fetched', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    const waiting = [settle(tokens.get(held.source)), settle(tokens.get(held.source))]
    await flush()
    clock.advance(5_000)
    held.last().succeed(5_000)
    await flush()
    for (const waiter of waiting) {
      const result = waiter.result()
      expect(result.status).toBe('rejected')
      const reason = (result as { reason: unknown }).reason
      expect(isTokenkeeperError(reason) && reason.code).toBe('EXPIRED_ON_ARRIVAL')
      expect(isTokenkeeperError(reason) && reason.retryable).toBe(true)
    }
    expect(tokens.peek(held.source)).toBeUndefined()
    expect(tokens.stats().failures).toBe(1)
  })

  it('accepts a token that arrives 1 ms before it expires', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    const waiting = tokens.get(held.source)
    await flush()
    clock.advance(4_999)
    const token = held.last().succeed(5_000)
    await expect(waiting).resolves.toBe(token)
  })
})

describe('bounded memory', () => {
  it('never evicts the entry being inserted when the others are in flight', async () => {
    const { tokens } = manager({ maxEntries: 1 })
    const a = heldSource('a')
    const b = heldSource('b')
    const fromA = tokens.get(a.source)
    await flush()
    const fromB = tokens.get(b.source)
    await flush()
    const tokenB = b.last().succeed(HOUR)
    await expect(fromB).resolves.toBe(tokenB)
    let again: AccessToken | undefined
    const second = tokens.get(b.source).then((token) => (again = token))
    await flush()
    a.last().succeed(HOUR)
    await fromA
    for (const pending of b.pending()) pending.succeed(HOUR)
    await second
    expect(b.fetches).toHaveLength(1)
    expect(again).toBe(tokenB)
  })

  it('keeps at most maxEntries keys', async () => {
    const { tokens } = manager({ maxEntries: 3 })
    for (const key of ['a', 'b', 'c', 'd', 'e']) {
      const held = heldSource(key)
      const got = tokens.get(held.source)
      await flush()
      held.last().succeed(HOUR)
      await got
    }
    expect(tokens.stats().entries).toBe(3)
  })
})

describe('fleet-wide single flight through a shared memoryStore', () => {
  function fleet(size: number) {
    const clock = createTestClock()
    const store = memoryStore({ clock })
    const members = Array.from({ length: size }, () => {
      const tokens = new TokenManager({ clock, random: () => 0.5, store })
      closeAfterTest(tokens)
      return { tokens, held: heldSource('api') }
    })
    return { clock, store, members }
  }

  it('a cold start over 5 managers makes exactly one fetch, and all get the same token', async () => {
    const { members } = fleet(5)
    const waiting = members.flatMap(({ tokens, held }) => [tokens.get(held.source), tokens.get(held.source)])
    await flush(10)
    const fetching = members.flatMap(({ held }) => held.pending())
    expect(fetching).toHaveLength(1)
    const token = fetching[0]!.succeed(HOUR)
    const results = await Promise.all(waiting)
    for (const result of results) expect(result.value).toBe(token.value)
    expect(members.reduce((sum, { held }) => sum + held.fetches.length, 0)).toBe(1)
    expect(members.reduce((sum, { tokens }) => sum + tokens.stats().storeHits, 0)).toBe(4)
  })

  it('in the advisory window a manager adopts the newer token another one already stored', async () => {
    const { clock, members } = fleet(2)
    const [a, b] = members as [(typeof members)[0], (typeof members)[0]]
    const first = a.tokens.get(a.held.source)
    await flush()
    const original = a.held.last().succeed(HOUR)
    await first
    await expect(b.tokens.get(b.held.source)).resolves.toMatchObject({ value: original.value })
    clock.advance(0.8 * HOUR)
    await a.tokens.get(a.held.source)
    await flush()
    const renewed = a.held.last().succeed(HOUR)
    await flush()
    expect(a.tokens.peek(a.held.source)).toBe(renewed)
    // b reaches its own advisory point: its background refresh reads the store, no fetch.
    await expect(b.tokens.get(b.held.source)).resolves.toMatchObject({ value: original.value })
    await flush()
    expect(b.held.fetches).toHaveLength(0)
    expect(b.tokens.peek(b.held.source)?.value).toBe(renewed.value)
  })
})
