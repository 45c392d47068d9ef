import { performance } from 'node:perf_hooks'
import { TokenkeeperError } from './errors.js'

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
   * beyond what `setTimeout` takes as it is (2^31 - 1 ms, about 24.8 days). The timer must never
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

/** The system clock's `now()`. */
const systemNow = monotonicEpoch(
  () => Date.now(),
  () => performance.now(),
)

/**
 * The real clock: instants that never go back (the wall clock anchored once and measured with
 * `performance.now()`, see {@link Clock.now}), `Date.now()` as `wallNow()`, and unref'd
 * `setTimeout` for any delay (longer ones in steps).
 */
export const systemClock: Clock = Object.freeze({
  now: systemNow,
  wallNow: () => Date.now(),
  setTimer: longTimer,
})

/**
 * A manager's view of its clock: {@link Clock.now} that never goes back and is always a finite
 * number, whatever the clock given does, plus `read()`, which says when the clock failed.
 *
 * @internal
 */
export interface SteadyClock extends Clock {
  /**
   * The instant, or `undefined` when the clock failed this time (its `now()` threw or answered
   * something that is not a finite number). A clock stepped back is read as standing still
   * at the instant it was stepped back from, and as going on from there: a token's windows, a
   * backoff and a refusal memory last their real length, as on the system clock.
   */
  read(): number | undefined
  /** The calendar time of the clock given (its `wallNow()`, else its own `now()`, unchanged). */
  wallNow(): number
}

/** `clock.now()` when it is a finite number; `undefined` when it throws or is anything else. */
function readingOf(clock: Clock): number | undefined {
  try {
    const at: unknown = clock.now()
    return typeof at === 'number' && Number.isFinite(at) ? at : undefined
  } catch {
    return undefined
  }
}

/** The system clock as a {@link SteadyClock}: it never goes back and never fails, so as it is. */
const steadySystemClock: SteadyClock = Object.freeze({
  read: systemNow,
  now: systemNow,
  wallNow: () => Date.now(),
  setTimer: longTimer,
})

/**
 * `clock` as a {@link SteadyClock}, checked: a `clock` without `now()` and `setTimer()`
 * functions, or whose `now()` does not answer a finite number now, is a `TypeError` naming
 * `where`. Later failures of its `now()` are `read()` answering `undefined`, while `now()` stays
 * at the last good instant. A step back (a clock built on `Date.now()`, a test clock's `set()`)
 * is absorbed: the time goes on from where it was, by as much as the clock moves from then on,
 * and `onStepBack` is told by how much the reading fell behind.
 *
 * @internal the manager's clock; exported for tests.
 */
export function steadyClock(
  clock: Clock | undefined,
  where: string,
  onStepBack: (stepMs: number) => void = () => undefined,
): SteadyClock {
  if (clock === undefined || clock === systemClock) return steadySystemClock
  const candidate = clock as Partial<Clock> | null
  if (
    (typeof candidate !== 'object' && typeof candidate !== 'function') ||
    candidate === null ||
    typeof candidate.now !== 'function' ||
    typeof candidate.setTimer !== 'function'
  ) {
    throw new TypeError(`${where}: clock must have now() and setTimer() functions`)
  }
  const first = readingOf(clock)
  if (first === undefined) {
    throw new TypeError(`${where}: clock.now() must answer a finite number of epoch milliseconds`)
  }
  let last = first
  let offset = 0
  const read = (): number | undefined => {
    const reading = readingOf(clock)
    if (reading === undefined) return undefined
    const at = reading + offset
    if (at < last) {
      // Stepped back: the time goes on from where it was. How long ago the step was, and so how
      // much time passed that this reading cannot show, no reading can tell: `onStepBack` lets
      // the manager stop trusting what it dated before.
      offset += last - at
      onStepBack(last - at)
      return last
    }
    last = at
    return at
  }
  return {
    read,
    now: () => read() ?? last,
    wallNow: () => wallTime(clock),
    setTimer: (callback, delayMs) => {
      // Long delays in steps the clock's timers surely take (a clock built on bare setTimeout
      // would run a longer one after 1 ms, every 1 ms), like the system clock's.
      let current: Timer | undefined
      const arm = (remainingMs: number): void => {
        const stepMs = Math.min(remainingMs, MAX_TIMEOUT_MS)
        let timer: unknown
        try {
          timer = clock.setTimer(stepMs < remainingMs ? () => arm(remainingMs - stepMs) : callback, stepMs)
        } catch (error) {
          throw timerFailed(where, error)
        }
        if (typeof (timer as Partial<Timer> | null | undefined)?.cancel !== 'function')
          throw timerFailed(where)
        current = timer as Timer
      }
      arm(delayMs > 0 ? delayMs : 0)
      return { cancel: () => current?.cancel() }
    },
  }
}

/** A clock's `setTimer` threw, or answered no timer to cancel: `CLOCK_FAILED`, with what it threw as `cause`. */
function timerFailed(where: string, cause?: unknown): TokenkeeperError {
  return new TokenkeeperError(
    'CLOCK_FAILED',
    `${where}: the clock's setTimer() ${cause === undefined ? 'answered no timer with a cancel() function' : 'threw'}`,
    { retryable: false, ...(cause === undefined ? {} : { cause }) },
  )
}
