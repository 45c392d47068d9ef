import type { Clock, Timer } from '../clock.js'

/**
 * A {@link Clock} whose time moves only when a test moves it. Timers never fire by themselves:
 * `advance()` runs every timer that falls due, in due order (ties in scheduling order), and each
 * callback sees `now()` equal to its own due time. Timers scheduled by a callback also run within
 * the same `advance()` if they fall due before its end.
 *
 * @example
 * ```ts
 * import { createTestClock } from 'tokenkeeper/testing'
 * const clock = createTestClock()
 * let fired = 0
 * clock.setTimer(() => fired++, 1_000)
 * clock.advance(999) // fired === 0
 * clock.advance(1) // fired === 1
 * ```
 */
export interface TestClock extends Clock {
  /**
   * Moves time forward by `ms` and runs, synchronously, every timer that falls due on the way.
   * If callbacks throw, the remaining due timers still run and the first error is rethrown at the end.
   */
  advance(ms: number): void
  /**
   * Like {@link TestClock.advance}, but yields to the event loop (`setImmediate`) before and after
   * each timer, so promises and I/O started by a timer can settle before the next one runs.
   */
  advanceAsync(ms: number): Promise<void>
  /**
   * Sets the current instant. Moving forward behaves like `advance(at - now())`; moving backward
   * steps the clock back (as NTP may) and runs no timer. Pending timers keep the time they had
   * left, as Node's timers do (they run on the monotonic clock, which no step moves): a timer due
   * in 250 ms is still due 250 ms later, not an hour and 250 ms.
   */
  set(at: number): void
  /**
   * Runs pending timers in due order, moving time to each due time, until none is left.
   * Throws if more than `limit` timers run (a timer that keeps re-scheduling itself).
   */
  runAll(limit?: number): void
  /** How many timers are scheduled and not yet run or cancelled. */
  readonly pendingTimers: number
  /** The due time of the next pending timer, or `undefined` when none is pending. */
  nextTimerAt(): number | undefined
}

interface ScheduledTimer {
  /** When it runs; moved back with the clock when the clock is set back. */
  dueAt: number
  readonly sequence: number
  readonly callback: () => void
}

/**
 * Creates a deterministic {@link TestClock} starting at `startAt` (epoch ms; default
 * 2026-01-01T00:00:00Z). It uses no real timers, so it never keeps a process alive.
 *
 * @example
 * ```ts
 * import { createTestClock } from 'tokenkeeper/testing'
 * const clock = createTestClock(Date.UTC(2030, 0, 1))
 * const timer = clock.setTimer(() => {}, 5_000)
 * timer.cancel()
 * clock.pendingTimers // 0
 * ```
 */
export function createTestClock(startAt: number = Date.UTC(2026, 0, 1)): TestClock {
  if (!Number.isFinite(startAt)) throw new TypeError('createTestClock: startAt must be a finite number')
  let now = startAt
  let sequence = 0
  // Sorted by (dueAt, sequence): the first element is always the next timer to run.
  const timers: ScheduledTimer[] = []

  const insert = (timer: ScheduledTimer): void => {
    let low = 0
    let high = timers.length
    while (low < high) {
      const mid = (low + high) >>> 1
      const other = timers[mid]!
      if (other.dueAt < timer.dueAt || (other.dueAt === timer.dueAt && other.sequence < timer.sequence)) {
        low = mid + 1
      } else {
        high = mid
      }
    }
    timers.splice(low, 0, timer)
  }

  /** Removes and returns the next timer due at or before `until`. */
  const takeDue = (until: number): ScheduledTimer | undefined => {
    const next = timers[0]
    if (next === undefined || next.dueAt > until) return undefined
    timers.shift()
    return next
  }

  const checkDuration = (ms: number, method: string): void => {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new TypeError(`TestClock.${method}: ms must be a finite, non-negative number`)
    }
  }

  const advance = (ms: number): void => {
    checkDuration(ms, 'advance')
    const target = now + ms
    const errors: unknown[] = []
    for (let timer = takeDue(target); timer !== undefined; timer = takeDue(target)) {
      now = Math.max(now, timer.dueAt)
      try {
        timer.callback()
      } catch (error) {
        errors.push(error)
      }
    }
    now = target
    if (errors.length > 0) throw errors[0]
  }

  const yieldToEventLoop = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve))

  return {
    now: () => now,
    setTimer(callback: () => void, delayMs: number): Timer {
      const delay = Number.isFinite(delayMs) ? Math.max(0, delayMs) : 0
      const timer: ScheduledTimer = { dueAt: now + delay, sequence: sequence++, callback }
      insert(timer)
      return {
        cancel() {
          const index = timers.indexOf(timer)
          if (index !== -1) timers.splice(index, 1)
        },
      }
    },
    advance,
    async advanceAsync(ms: number): Promise<void> {
      checkDuration(ms, 'advanceAsync')
      const target = now + ms
      await yieldToEventLoop()
      for (let timer = takeDue(target); timer !== undefined; timer = takeDue(target)) {
        now = Math.max(now, timer.dueAt)
        timer.callback()
        await yieldToEventLoop()
      }
      now = Math.max(now, target)
      await yieldToEventLoop()
    },
    set(at: number): void {
      if (!Number.isFinite(at)) throw new TypeError('TestClock.set: at must be a finite number')
      if (at >= now) return advance(at - now)
      // Every pending timer moves back as much, so each keeps the time it had left (and its order).
      for (const timer of timers) timer.dueAt -= now - at
      now = at
    },
    runAll(limit = 10_000): void {
      let ran = 0
      for (let timer = takeDue(Infinity); timer !== undefined; timer = takeDue(Infinity)) {
        if (++ran > limit) {
          timers.unshift(timer)
          throw new Error(
            `TestClock.runAll: more than ${limit} timers ran; a timer keeps re-scheduling itself`,
          )
        }
        now = Math.max(now, timer.dueAt)
        timer.callback()
      }
    },
    get pendingTimers() {
      return timers.length
    },
    nextTimerAt: () => timers[0]?.dueAt,
  }
}
