import { describe, expect, it } from 'vitest'
import { tokenSource } from '../../src/index.js'

import { flush, heldSource, instantSource, manager, settle } from './helpers.js'

const SECOND = 1_000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE

describe('the three windows, at their ±1 ms boundaries', () => {
  const table: [name: string, lifetimeMs: number, refreshAfterMs: number, mustRefreshAfterMs: number][] = [
    ['2 s', 2 * SECOND, 1_600, 1_800],
    ['60 s', 60 * SECOND, 48_000, 54_000],
    ['5 min', 5 * MINUTE, 240_000, 270_000],
    ['24 h', 24 * HOUR, 69_120_000, 86_340_000],
  ]

  it.each(table)(
    '%s token: fresh from cache, advisory serves old + one refresh, mandatory waits',
    async (_name, lifetimeMs, refreshAfter, mustAfter) => {
      const { tokens, clock, start } = manager()
      const held = heldSource('api')

      const first = tokens.get(held.source)
      await flush()
      const original = held.last().succeed(lifetimeMs)
      await expect(first).resolves.toBe(original)

      // Fresh: a second get is served from memory, without a request.
      clock.set(start + refreshAfter - 1)
      await expect(tokens.get(held.source)).resolves.toBe(original)
      await flush()
      expect(held.fetches).toHaveLength(1)

      // Advisory: served at once, old token, even while the refresh is held; one refresh for many calls.
      clock.set(start + refreshAfter)
      const advisory = Array.from({ length: 100 }, () => tokens.get(held.source))
      await flush()
      for (const got of advisory) await expect(got).resolves.toBe(original)
      expect(held.fetches).toHaveLength(2)
      expect(held.last().settled).toBe(false)
      clock.set(start + mustAfter - 1)
      await expect(tokens.get(held.source)).resolves.toBe(original)
      expect(tokens.peek(held.source)).toBe(original)
      await flush()
      expect(held.fetches).toHaveLength(2)
      expect(tokens.stats()).toMatchObject({ backgroundRefreshes: 1, fetches: 2 })

      // Mandatory: never served; the caller waits on the refresh already in flight.
      clock.set(start + mustAfter)
      expect(tokens.peek(held.source)).toBeUndefined()
      const waiting = settle(tokens.get(held.source))
      await flush()
      expect(waiting.result()).toEqual({ status: 'pending' })
      expect(held.fetches).toHaveLength(2)
      const renewed = held.last().succeed(lifetimeMs)
      await flush()
      expect(waiting.result()).toEqual({ status: 'fulfilled', value: renewed })
      expect(renewed.value).not.toBe(original.value)
      await expect(tokens.get(held.source)).resolves.toBe(renewed)
      expect(held.fetches).toHaveLength(2)
    },
  )

  it('a token in its mandatory window with no refresh running makes callers wait on one new request', async () => {
    const { tokens, clock, start } = manager()
    const held = heldSource('api')
    const first = tokens.get(held.source)
    await flush()
    const original = held.last().succeed(HOUR)
    await first
    clock.set(start + HOUR - MINUTE)
    const waiting = Array.from({ length: 10 }, () => settle(tokens.get(held.source)))
    await flush()
    expect(held.fetches).toHaveLength(2)
    for (const waiter of waiting) expect(waiter.result()).toEqual({ status: 'pending' })
    const renewed = held.last().succeed(HOUR)
    await flush()
    for (const waiter of waiting) expect(waiter.result()).toEqual({ status: 'fulfilled', value: renewed })
    expect(renewed).not.toBe(original)
    expect(tokens.stats()).toMatchObject({ misses: 11, backgroundRefreshes: 0 })
  })

  it('after a background refresh the new token is served and the windows move to it', async () => {
    const { tokens, clock, start } = manager()
    const held = heldSource('api')
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(HOUR)
    await first
    clock.set(start + 0.8 * HOUR)
    await tokens.get(held.source)
    await flush()
    const renewed = held.last().succeed(HOUR)
    await flush()
    await expect(tokens.get(held.source)).resolves.toBe(renewed)
    // Fresh until 80 % of the new token's life.
    clock.set(renewed.issuedAt + 0.8 * HOUR - 1)
    await expect(tokens.get(held.source)).resolves.toBe(renewed)
    await flush()
    expect(held.fetches).toHaveLength(2)
    clock.advance(1)
    await tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(3)
  })
})

describe('server refresh_in', () => {
  it('moves the refresh point to refresh_in', async () => {
    const { tokens, clock, start } = manager()
    let calls = 0
    const source = tokenSource('refresh-in', () => {
      calls++
      return { access_token: `value-${calls}`, token_type: 'Bearer', expires_in: 3_600, refresh_in: 600 }
    })
    const first = await tokens.get(source)
    expect(first.refreshAt).toBe(start + 600_000)
    clock.set(start + 600_000 - 1)
    await expect(tokens.get(source)).resolves.toBe(first)
    await flush()
    expect(calls).toBe(1)
    clock.set(start + 600_000)
    await expect(tokens.get(source)).resolves.toBe(first)
    await flush()
    expect(calls).toBe(2)
    expect((await tokens.get(source)).value).toBe('value-2')
  })
})

describe('peek', () => {
  it('returns the usable cached token without any I/O, and undefined in the mandatory window', async () => {
    const { tokens, clock, start } = manager()
    const held = heldSource('api')
    expect(tokens.peek(held.source)).toBeUndefined()
    await flush()
    expect(held.fetches).toHaveLength(0)

    const first = tokens.get(held.source)
    await flush()
    expect(tokens.peek(held.source)).toBeUndefined()
    const token = held.last().succeed(HOUR)
    await first
    expect(tokens.peek(held.source)).toBe(token)
    clock.set(start + 0.8 * HOUR)
    expect(tokens.peek(held.source)).toBe(token)
    clock.set(start + HOUR - MINUTE - 1)
    expect(tokens.peek(held.source)).toBe(token)
    clock.set(start + HOUR - MINUTE)
    expect(tokens.peek(held.source)).toBeUndefined()
    await flush()
    // peek never starts a request, not even in the advisory or mandatory window.
    expect(held.fetches).toHaveLength(1)
    expect(tokens.stats().hits).toBe(0)
  })
})

describe('proactive mode', () => {
  it('renews a recently used key by timer at its refresh point, without any call, until it goes idle', async () => {
    const { tokens, clock, start } = manager({ proactive: true })
    const counting = instantSource('api', 5 * MINUTE)
    const first = await tokens.get(counting.source)
    expect(clock.pendingTimers).toBe(1)
    expect(clock.nextTimerAt()).toBe(start + 4 * MINUTE)

    await clock.advanceAsync(4 * MINUTE - 1)
    expect(counting.calls()).toBe(1)
    await clock.advanceAsync(1)
    expect(counting.calls()).toBe(2)
    const second = tokens.peek(counting.source)
    expect(second).toBe(counting.tokens[1])
    expect(second).not.toBe(first)
    expect(tokens.stats().backgroundRefreshes).toBe(1)

    // Renewed at 8 and 12 minutes (last use at 0 is within the default 15 minutes)...
    await clock.advanceAsync(8 * MINUTE)
    expect(counting.calls()).toBe(4)
    // ... but not at 16 minutes: the key has been idle longer than 15 minutes.
    await clock.advanceAsync(5 * MINUTE)
    expect(counting.calls()).toBe(4)
    await clock.advanceAsync(HOUR)
    expect(counting.calls()).toBe(4)
    expect(tokens.stats().fetches).toBe(4)
  })

  it('a token that arrives already in its mandatory window is not renewed by timer, again and again', async () => {
    const { tokens, clock } = manager({ proactive: true })
    // A 1 ms token from an instant source: mandatory from the moment it arrives.
    const instant = instantSource('born-mandatory', 1)
    await tokens.get(instant.source)
    // Timers due now run, and what they start settles, twenty times over; no time passes.
    const turns = async (): Promise<void> => {
      for (let turn = 0; turn < 20; turn++) {
        clock.advance(0)
        await flush(2)
      }
    }
    await turns()
    expect(instant.calls()).toBe(1)
    expect(clock.pendingTimers).toBe(0)

    // A 2 s token whose request took 1.9 s: its refresh window was shorter than the request.
    const slow = heldSource('slower-than-its-window')
    const first = tokens.get(slow.source)
    await flush()
    await clock.advanceAsync(1_900)
    slow.last().succeed(2 * SECOND, { value: 'late' })
    await expect(first).resolves.toMatchObject({ value: 'late' })
    await turns()
    expect(slow.fetches).toHaveLength(1)
    // The next call asks for a new one, once for every caller waiting.
    const callers = [tokens.get(slow.source), tokens.get(slow.source)]
    await flush()
    expect(slow.fetches).toHaveLength(2)
    slow.last().succeed(MINUTE, { value: 'next' })
    for (const token of await Promise.all(callers)) expect(token.value).toBe('next')
  })

  it('does not renew a key unused for longer than idleMs', async () => {
    const { tokens, clock } = manager({ proactive: { idleMs: MINUTE } })
    const counting = instantSource('api', 5 * MINUTE)
    await tokens.get(counting.source)
    await clock.advanceAsync(10 * MINUTE)
    expect(counting.calls()).toBe(1)
    expect(tokens.peek(counting.source)).toBeUndefined()
  })

  it('a key used within idleMs is renewed; a call counts as use', async () => {
    const { tokens, clock } = manager({ proactive: { idleMs: MINUTE } })
    const counting = instantSource('api', 5 * MINUTE)
    await tokens.get(counting.source)
    await clock.advanceAsync(3 * MINUTE + 30 * SECOND)
    await tokens.get(counting.source) // a fresh hit at 3:30
    await clock.advanceAsync(30 * SECOND) // refresh point at 4:00, 30 s after the last use
    expect(counting.calls()).toBe(2)
  })

  it('without proactive mode, no timer is ever scheduled', async () => {
    const { tokens, clock } = manager()
    const counting = instantSource('api', 5 * MINUTE)
    await tokens.get(counting.source)
    expect(clock.pendingTimers).toBe(0)
    await clock.advanceAsync(HOUR)
    expect(counting.calls()).toBe(1)
  })

  it('close() cancels every timer', async () => {
    const { tokens, clock } = manager({ proactive: true })
    for (const key of ['a', 'b', 'c']) await tokens.get(instantSource(key, HOUR).source)
    expect(clock.pendingTimers).toBe(3)
    await tokens.close()
    expect(clock.pendingTimers).toBe(0)
    await clock.advanceAsync(2 * HOUR)
    expect(clock.pendingTimers).toBe(0)
  })

  it('invalidate cancels the key timer', async () => {
    const { tokens, clock } = manager({ proactive: true })
    const counting = instantSource('api', HOUR)
    await tokens.get(counting.source)
    expect(clock.pendingTimers).toBe(1)
    await tokens.invalidate(counting.source)
    expect(clock.pendingTimers).toBe(0)
  })

  it('a request in flight across clear() leaves no timer after close()', async () => {
    const { tokens, clock } = manager({ proactive: true })
    const held = heldSource('api')
    const got = tokens.get(held.source)
    await flush()
    await tokens.clear()
    held.last().succeed(HOUR)
    await got
    await tokens.close()
    expect(clock.pendingTimers).toBe(0)
  })
})
