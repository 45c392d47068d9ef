import { getEventListeners } from 'node:events'
import { describe, expect, it } from 'vitest'
import { deadline } from '../../src/abort.js'
import { systemClock } from '../../src/clock.js'
import { createTestClock, type TestClock } from '../../src/testing/index.js'

/** The timer of `clock`, as the callers of `deadline` pass it. */
const timerOf =
  (clock: TestClock | typeof systemClock) =>
  (callback: () => void, ms: number): { cancel(): void } =>
    clock.setTimer(callback, ms)

describe('deadline (the time limit of one request)', () => {
  it('runs on the timer it is given: nothing until the clock reaches the limit, then a TimeoutError', () => {
    const clock = createTestClock()
    const limit = deadline(300, timerOf(clock))
    expect(clock.pendingTimers).toBe(1)
    expect(clock.nextTimerAt()).toBe(clock.now() + 300)
    clock.advance(299)
    expect(limit.signal.aborted).toBe(false)
    expect(limit.timedOut).toBe(false)
    clock.advance(1)
    expect(limit.signal.aborted).toBe(true)
    expect(limit.timedOut).toBe(true)
    expect((limit.signal.reason as DOMException).name).toBe('TimeoutError')
    expect((limit.signal.reason as DOMException).message).toBe('The operation timed out.')
    limit.dispose()
  })

  it('on the system clock, aborts with a TimeoutError once the real time is up', async () => {
    const limit = deadline(20, timerOf(systemClock))
    expect(limit.signal.aborted).toBe(false)
    await new Promise<void>((resolve) => limit.signal.addEventListener('abort', () => resolve()))
    expect(limit.timedOut).toBe(true)
    expect((limit.signal.reason as DOMException).name).toBe('TimeoutError')
    limit.dispose()
  })

  it('dispose() cancels its timer: a disposed deadline never fires', () => {
    const clock = createTestClock()
    const limit = deadline(300, timerOf(clock))
    limit.dispose()
    expect(clock.pendingTimers).toBe(0)
    clock.advance(1_000)
    expect(limit.signal.aborted).toBe(false)
    expect(limit.timedOut).toBe(false)
  })

  it('follows the outer signal with its reason, and that is not a timeout; its timer is cancelled', () => {
    const clock = createTestClock()
    const outer = new AbortController()
    const limit = deadline(60_000, timerOf(clock), outer.signal)
    const reason = new Error('manager closed')
    outer.abort(reason)
    expect(limit.signal.aborted).toBe(true)
    expect(limit.signal.reason).toBe(reason)
    expect(limit.timedOut).toBe(false)
    expect(clock.pendingTimers).toBe(0)
    limit.dispose()
  })

  it('starts aborted when the outer signal already is, and schedules nothing', () => {
    const clock = createTestClock()
    const outer = new AbortController()
    const reason = new Error('gone')
    outer.abort(reason)
    const limit = deadline(60_000, timerOf(clock), outer.signal)
    expect(limit.signal.aborted).toBe(true)
    expect(limit.signal.reason).toBe(reason)
    expect(limit.timedOut).toBe(false)
    expect(clock.pendingTimers).toBe(0)
    limit.dispose()
  })

  it('leaves no listener on a long-lived outer signal, and no timer, after many requests', () => {
    const clock = createTestClock()
    const outer = new AbortController()
    const limits = Array.from({ length: 1_000 }, () => deadline(60_000, timerOf(clock), outer.signal))
    expect(getEventListeners(outer.signal, 'abort')).toHaveLength(1)
    expect(clock.pendingTimers).toBe(1_000)
    for (const limit of limits) limit.dispose()
    expect(getEventListeners(outer.signal, 'abort')).toHaveLength(0)
    expect(clock.pendingTimers).toBe(0)
    expect(limits.every((limit) => !limit.signal.aborted)).toBe(true)
  })
})
