import { performance } from 'node:perf_hooks'

/**
 * Time and timers, injectable so that every timing decision in tokenkeeper can be tested
 * without sleeping. All instants are epoch milliseconds; all durations are milliseconds.
 *
 * `now()` is what every decision of the library is measured on (windows, expiry, backoff,
 * deadlines). It must never go back: the system clock makes it so even when the wall clock
 * steps back. `wallNow()` is the calendar time, for the few values that another machine reads
 * (a JWT's `iat`/`exp`, an AGS score timestamp, an HTTP-date `Retry-After`).
 *
 * @example
 * ```ts
 * import { systemClock } from 'tokenkeeper'
 * const now: number = systemClock.now()
 * ```
 */
export interface Clock {
  /**
   * The current instant, in epoch milliseconds, for the library's own decisions. Must not
   * decrease between calls.
   */
  now(): number
  /**
   * The wall-clock time in epoch milliseconds, for values other machines read. Optional: a
   * clock without it uses `now()` (test clocks).
   */
  wallNow?(): number
  /**
   * Runs `callback` once after `delayMs`, and not sooner, whatever the delay: the manager
   * asks for delays of days and more (a long-lived token's renewal, a long `timeoutMs`),
   * beyond what `setTimeout` takes as it is (see {@link MAX_TIMEOUT_MS}). The timer must never
   * keep the process alive (the system clock `unref()`s it). Returns a handle whose `cancel()`
   * stops it.
   */
  setTimer(callback: () => void, delayMs: number): Timer
}

/** A scheduled callback that can be cancelled. Cancelling twice is harmless. */
export interface Timer {
  /** Stops the timer if it has not fired yet; calling it again, or after it fired, does nothing. */
  cancel(): void
}

/** The calendar time of `clock`: its `wallNow()` when it has one, else its `now()`. */
export function wallTime(clock: Clock): number {
  return clock.wallNow === undefined ? clock.now() : clock.wallNow()
}

/** How often (monotonic ms) the system clock looks at the wall clock; reading it costs as much as the rest of `now()`. */
const WALL_CHECK_MS = 10

/**
 * The instants of the system clock, from two time sources: the wall clock, read once as an
 * anchor, and the monotonic clock, which measures the time since. The result never goes back:
 * a wall clock stepped back (NTP correcting a clock that ran ahead, an operator, a VM restored
 * from a snapshot) is ignored, so a token's windows, a backoff or a refusal memory last their
 * real length. A wall clock that moves ahead of the monotonic one (the machine was suspended,
 * which the monotonic clock does not count, or NTP stepped forward) moves the anchor with it,
 * so a token is never thought younger than it is; at worst it is renewed early. The wall clock
 * is looked at once per `wallCheckMs` of monotonic time, so a resumed machine is noticed within
 * that long.
 *
 * @internal exported for tests, which drive it with fake time sources.
 */
export function monotonicEpoch(
  wall: () => number,
  monotonic: () => number,
  wallCheckMs: number = WALL_CHECK_MS,
): () => number {
  let checkedAt = monotonic()
  let anchor = wall() - checkedAt
  let last = -Infinity
  return () => {
    const elapsed = monotonic()
    if (elapsed - checkedAt >= wallCheckMs || elapsed < checkedAt) {
      checkedAt = elapsed
      const wallNow = wall()
      if (wallNow > anchor + elapsed) anchor = wallNow - elapsed
    }
    // Whole milliseconds, like `Date.now()`; never decreasing, even if a source did.
    const now = Math.floor(anchor + elapsed)
    if (now > last) last = now
    return last
  }
}

/**
 * The longest delay `setTimeout` takes as it is (2^31 - 1 ms, about 24.8 days): Node runs a
 * timer with a longer delay, or an infinite one, after 1 ms instead.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1

/**
 * Runs `callback` once after `delayMs` on `setTimeout`, unref'd, whatever the delay: a delay
 * longer than {@link MAX_TIMEOUT_MS} is waited out in steps of at most that long (a 30-day
 * token's renewal timer must not fire after 1 ms, renew, and fire again), an infinite one
 * never fires, and one that is not a number or negative fires at once.
 *
 * @internal the system clock's `setTimer`, exported for tests.
 */
export function longTimer(callback: () => void, delayMs: number): Timer {
  let handle: ReturnType<typeof setTimeout> | undefined
  const arm = (remainingMs: number): void => {
    const stepMs = Math.min(remainingMs, MAX_TIMEOUT_MS)
    handle = setTimeout(stepMs < remainingMs ? () => arm(remainingMs - stepMs) : callback, stepMs)
    handle.unref()
  }
  arm(delayMs > 0 ? delayMs : 0)
  return { cancel: () => clearTimeout(handle) }
}

/**
 * The real clock: instants that never go back (the wall clock anchored once and measured with
 * `performance.now()`, see {@link Clock.now}), `Date.now()` as `wallNow()`, and unref'd
 * `setTimeout` for any delay (see {@link longTimer}).
 */
export const systemClock: Clock = Object.freeze({
  now: monotonicEpoch(
    () => Date.now(),
    () => performance.now(),
  ),
  wallNow: () => Date.now(),
  setTimer: longTimer,
})
