/**
 * Delays longer than `setTimeout` takes. Node runs a timer whose delay exceeds 2^31 - 1 ms (about
 * 24.8 days), or is infinite, after 1 ms. A 30-day token's renewal point, a long `timeoutMs` or
 * `storeTimeoutMs` are such delays: on the system clock they must wait their full length, and a
 * clock whose timers do fire early must never make a token be renewed before its refresh point.
 * The system clock's timers run under vitest's fake timers, which clamp like Node.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { systemClock } from '../../src/clock.js'
import { memoryStore, TokenManager, tokenSource } from '../../src/index.js'
import { createTestClock, type TestClock } from '../../src/testing/index.js'
import { flush, instantSource } from './helpers.js'

const DAY = 86_400_000
/** The longest delay Node's setTimeout takes as it is. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

afterEach(() => {
  vi.useRealTimers()
})

/** A test clock whose timers behave like bare `setTimeout`: a delay over 2^31 - 1 ms fires after 1 ms. */
function clampingClock(): TestClock {
  const inner = createTestClock()
  const schedule = inner.setTimer.bind(inner)
  return Object.assign(inner, {
    setTimer: (callback: () => void, delayMs: number) =>
      schedule(callback, delayMs > MAX_TIMEOUT_MS || !Number.isFinite(delayMs) ? 1 : delayMs),
  })
}

describe('the system clock’s timers', () => {
  it.each([MAX_TIMEOUT_MS + 1, 30 * DAY, 1e9 * 1_000])(
    'a delay of %d ms fires then, not after 1 ms',
    (delayMs) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
      let fired = 0
      systemClock.setTimer(() => fired++, delayMs)
      vi.advanceTimersByTime(1_000)
      expect(fired).toBe(0)
      vi.advanceTimersByTime(delayMs - 1_001)
      expect(fired).toBe(0)
      vi.advanceTimersByTime(1)
      expect(fired).toBe(1)
      vi.advanceTimersByTime(10 * MAX_TIMEOUT_MS)
      expect(fired).toBe(1)
    },
  )

  it('cancel() stops a long timer in any of its steps', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    let fired = 0
    const timer = systemClock.setTimer(() => fired++, 3 * MAX_TIMEOUT_MS)
    vi.advanceTimersByTime(MAX_TIMEOUT_MS + 5)
    timer.cancel()
    timer.cancel()
    vi.advanceTimersByTime(5 * MAX_TIMEOUT_MS)
    expect(fired).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('an infinite delay never fires; NaN and a negative delay fire at once', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const fired: string[] = []
    const never = systemClock.setTimer(() => fired.push('infinite'), Infinity)
    systemClock.setTimer(() => fired.push('nan'), NaN)
    systemClock.setTimer(() => fired.push('negative'), -5)
    vi.advanceTimersByTime(0)
    expect(fired).toEqual(['nan', 'negative'])
    vi.advanceTimersByTime(4 * MAX_TIMEOUT_MS)
    expect(fired).toEqual(['nan', 'negative'])
    never.cancel()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a tokenSource with a timeoutMs of 30 days does not time out after 1 ms', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    let answer: (value: Record<string, unknown>) => void = () => undefined
    const source = tokenSource(
      'long-timeout',
      () => new Promise<Record<string, unknown>>((resolve) => (answer = resolve)),
      { timeoutMs: 30 * DAY },
    )
    const tokens = new TokenManager()
    const got = tokens.get(source)
    await flush()
    vi.advanceTimersByTime(1_000)
    answer({ access_token: 'late-but-in-time', expires_in: 3600 })
    await expect(got).resolves.toMatchObject({ value: 'late-but-in-time' })
    await tokens.close()
  })

  it('a storeTimeoutMs of 30 days does not fail every store call after 1 ms', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const inner = memoryStore()
    let reads = 0
    const store = {
      get: async (key: string) => {
        reads++
        return inner.get(key)
      },
      set: inner.set.bind(inner),
      delete: inner.delete.bind(inner),
      clear: inner.clear.bind(inner),
    }
    const tokens = new TokenManager({ store, storeTimeoutMs: 30 * DAY })
    const errors: string[] = []
    tokens.on('storeError', (event) => errors.push(event.operation))
    const { source } = instantSource('long-store-timeout', 60_000)
    const pending = tokens.get(source)
    vi.advanceTimersByTime(5)
    await pending
    expect(reads).toBe(1)
    expect(errors).toEqual([])
    await tokens.close()
  })
})

describe('a token that lives longer than setTimeout’s longest delay', () => {
  it.each([
    ['30 days', 30 * DAY],
    ['expires_in 1e9 s (ten years once parsed)', 1e12],
  ])(
    '%s, proactive, on a clock whose timers fire early: one request until its refresh point',
    async (_name, lifetimeMs) => {
      const clock = clampingClock()
      const tokens = new TokenManager({ clock, proactive: true, random: () => 0.9 })
      const { source, calls } = instantSource(`long-${lifetimeMs}`, lifetimeMs)
      await tokens.get(source)
      for (let i = 0; i < 50; i++) await clock.advanceAsync(1)
      expect(calls()).toBe(1)
      await tokens.close()
    },
  )

  it('a clock built on bare setTimeout is asked for no delay it would run early: no timer every 1 ms', async () => {
    const clock = clampingClock()
    const asked: number[] = []
    const schedule = clock.setTimer.bind(clock)
    clock.setTimer = (callback, delayMs) => {
      asked.push(delayMs)
      return schedule(callback, delayMs)
    }
    const tokens = new TokenManager({ clock, proactive: { idleMs: 60 * DAY }, random: () => 0.9 })
    const { source, calls } = instantSource('long-steps', 30 * DAY)
    await tokens.get(source)
    const afterGet = asked.length // the request's time limit, and the renewal timer's first step
    for (let i = 0; i < 50; i++) await clock.advanceAsync(1)
    expect(calls()).toBe(1)
    expect(asked).toHaveLength(afterGet)
    expect(asked.every((delayMs) => delayMs <= MAX_TIMEOUT_MS)).toBe(true)
    // The renewal still comes at its refresh point, 84 % of 30 days on (a key used within idleMs).
    await clock.advanceAsync(0.85 * 30 * DAY - 51)
    await flush()
    expect(calls()).toBe(2)
    await tokens.close()
  })

  it('expires_in 1e9 seconds from a raw response, proactive on the system clock: one request', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    let calls = 0
    const source = tokenSource('long-raw', () => {
      calls++
      return { access_token: `long-${calls}`, expires_in: 1e9 }
    })
    const tokens = new TokenManager({ proactive: true })
    await tokens.get(source)
    for (let i = 0; i < 50; i++) {
      vi.advanceTimersByTime(1)
      await flush(1)
    }
    expect(calls).toBe(1)
    await tokens.close()
  })
})
