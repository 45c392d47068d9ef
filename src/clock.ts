/**
 * Time and timers, injectable so that every timing decision in tokenkeeper can be tested
 * without sleeping. All instants are epoch milliseconds; all durations are milliseconds.
 *
 * @example
 * ```ts
 * import { systemClock } from 'tokenkeeper'
 * const now: number = systemClock.now()
 * ```
 */
export interface Clock {
  /** The current instant, in epoch milliseconds. */
  now(): number
  /**
   * Runs `callback` once after `delayMs`. The timer must never keep the process alive
   * (the system clock `unref()`s it). Returns a handle whose `cancel()` stops it.
   */
  setTimer(callback: () => void, delayMs: number): Timer
}

/** A scheduled callback that can be cancelled. Cancelling twice is harmless. */
export interface Timer {
  cancel(): void
}

/** The real clock: `Date.now()` and unref'd `setTimeout`. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimer(callback: () => void, delayMs: number): Timer {
    const handle = setTimeout(callback, Math.max(0, delayMs))
    handle.unref()
    return { cancel: () => clearTimeout(handle) }
  },
})
