/**
 * Lifecycle and caller misuse that must end in a typed error or the caller's own reason, never a
 * hang, an unhandled rejection or an extra request: close() twice or during every kind of wait,
 * abort reasons that are not errors, thousands of callers with signals of their own, a store that
 * answers after close(), and lifetimes of 0 ms, 1 ms and 1 s. Time is a test clock.
 */
import { describe, expect, it } from 'vitest'
import { TokenManager, TokenkeeperError, tokenSource, type TokenStore } from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import { flush, heldSource, manager, settle } from './helpers.js'

describe('close()', () => {
  it('twice, at once and again later: both resolve; get rejects with MANAGER_CLOSED, peek is undefined', async () => {
    const { tokens } = manager()
    const held = heldSource('close-twice')
    const waiting = tokens.get(held.source).catch((e: unknown) => e)
    await flush()
    await Promise.all([tokens.close(), tokens.close()])
    await expect(tokens.close()).resolves.toBeUndefined()
    await expect(waiting).resolves.toMatchObject({ code: 'MANAGER_CLOSED' })
    await expect(tokens.get(held.source)).rejects.toMatchObject({ code: 'MANAGER_CLOSED' })
    expect(tokens.peek(held.source)).toBeUndefined()
    expect(tokens.stats().entries).toBe(0)
  })

  it('during a proactive retry after a failure: no timer is left behind', async () => {
    const { tokens, clock } = manager({ proactive: true })
    let fail = false
    const source = tokenSource('close-in-backoff', () => {
      if (fail) throw new TokenkeeperError('SERVER_ERROR', 'down', { retryable: true })
      return { access_token: 'ok', expires_in: 60 }
    })
    await tokens.get(source)
    fail = true
    await clock.advanceAsync(48_000) // the timer renews at 80 %: it fails and sets a retry timer
    expect(clock.pendingTimers).toBe(1)
    await tokens.close()
    expect(clock.pendingTimers).toBe(0)
  })

  it('while a store read is out: the caller gets MANAGER_CLOSED, and the read’s late answer starts nothing', async () => {
    const clock = createTestClock()
    let answer: (value: undefined) => void = () => undefined
    const store: TokenStore = {
      get: () => new Promise((resolve) => (answer = resolve)),
      set: () => Promise.resolve(true),
      delete: () => Promise.resolve(true),
      clear: () => Promise.resolve(),
    }
    const tokens = new TokenManager({ clock, store })
    let calls = 0
    const source = tokenSource('late-store', () => ({ access_token: `t${++calls}`, expires_in: 60 }))
    const pending = settle(tokens.get(source))
    await flush()
    await tokens.close()
    answer(undefined)
    await flush()
    expect(pending.result()).toMatchObject({ status: 'rejected', reason: { code: 'MANAGER_CLOSED' } })
    expect(calls).toBe(0)
  })
})

describe('a caller’s AbortSignal', () => {
  it.each([
    ['a string', 'shutting down'],
    ['null', null],
    ['a number', 0],
    ['a plain object', { why: 'deadline' }],
  ])(
    'aborted with %s: that caller gets the reason as it is, the others the token, one request',
    async (_name, reason) => {
      const { tokens } = manager()
      const held = heldSource('abort-reasons')
      const controller = new AbortController()
      const leaving = tokens
        .get(held.source, { signal: controller.signal })
        .catch((e: unknown) => ({ caught: e }))
      const staying = tokens.get(held.source)
      await flush()
      controller.abort(reason)
      await expect(leaving).resolves.toEqual({ caught: reason })
      held.last().succeed(60_000, { value: 'kept' })
      await expect(staying).resolves.toMatchObject({ value: 'kept' })
      const already = new AbortController()
      already.abort(reason)
      await expect(
        tokens.get(held.source, { signal: already.signal }).catch((e: unknown) => ({ caught: e })),
      ).resolves.toEqual({
        caught: reason,
      })
      expect(held.fetches).toHaveLength(1)
    },
  )

  it('aborted without a reason: an AbortError DOMException', async () => {
    const { tokens } = manager()
    const held = heldSource('abort-no-reason')
    const controller = new AbortController()
    const leaving = tokens.get(held.source, { signal: controller.signal })
    await flush()
    controller.abort()
    await expect(leaving).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('5,000 callers with signals of their own, every other one aborting: one request, each gets its own answer', async () => {
    const { tokens } = manager()
    const held = heldSource('many-signals')
    const controllers = Array.from({ length: 5_000 }, () => new AbortController())
    const outcomes = controllers.map((controller) =>
      tokens.get(held.source, { signal: controller.signal }).then(
        (token) => token.value,
        (error: unknown) => error,
      ),
    )
    await flush()
    controllers.forEach((controller, index) => {
      if (index % 2 === 1) controller.abort(new Error(`caller ${index} left`))
    })
    held.last().succeed(60_000, { value: 'shared' })
    const results = await Promise.all(outcomes)
    expect(results.filter((result) => result === 'shared')).toHaveLength(2_500)
    expect(results.filter((result) => result instanceof Error)).toHaveLength(2_500)
    expect(held.fetches).toHaveLength(1)
  })
})

describe('lifetimes at the edge', () => {
  it('expires_in 0: EXPIRED_ON_ARRIVAL, retryable, then the backoff: no request per call', async () => {
    const { tokens } = manager()
    let calls = 0
    const source = tokenSource('zero-lifetime', () => ({ access_token: `z${++calls}`, expires_in: 0 }))
    for (let i = 0; i < 10; i++) {
      await expect(tokens.get(source)).rejects.toMatchObject({ code: 'EXPIRED_ON_ARRIVAL', retryable: true })
    }
    expect(calls).toBe(1)
  })

  it('expires_in 1: served from memory for its 0.8 s, renewed in the background, never past its 0.9 s', async () => {
    const { tokens, clock } = manager()
    let calls = 0
    const source = tokenSource('one-second', () => ({ access_token: `o${++calls}`, expires_in: 1 }))
    const first = await tokens.get(source)
    for (let i = 0; i < 10; i++) await expect(tokens.get(source)).resolves.toBe(first)
    clock.advance(800)
    await expect(tokens.get(source)).resolves.toBe(first) // advisory: served, one renewal started
    await flush()
    expect(calls).toBe(2)
    clock.advance(100)
    await expect(tokens.get(source)).resolves.toMatchObject({ value: 'o2' })
    expect(tokens.peek(source)?.value).toBe('o2')
  })
})
