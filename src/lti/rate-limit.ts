/**
 * The pacing of bulk service calls (see `docs/LTI.md`, "Rate limits"): pure functions of the
 * answers seen so far, so that tests can table-drive them.
 *
 * Two controls, both fed by each answer:
 *
 * - **Concurrency** (AIMD, as TCP congestion control): the number of calls in progress may grow
 *   by one per answer while it is below the ceiling the caller gave (slow start), then by one per
 *   round of answers once it has been cut; it is cut by a quarter when the platform's
 *   remaining budget runs low and halved on a throttled answer (429, Canvas's rate-limit 403) or
 *   a 503. At most one cut per round of answers, so a burst of throttled answers to requests
 *   that were already in flight halves it once, not to nothing.
 * - **Pacing** from the budget: when the platform sends `X-Rate-Limit-Remaining` and
 *   `X-Request-Cost` (Canvas), the refill rate of its bucket is estimated from how the remaining
 *   budget moves between answers. While the budget is low, requests are spaced by cost ÷ refill
 *   (the rate the platform can sustain), and when it would not cover the requests in flight and
 *   the next one, no request starts until the refill should have made up the difference. A
 *   `Retry-After` holds every new request until it has passed.
 *
 * Without rate-limit headers only the concurrency control acts (on throttled answers and 503s).
 *
 * @internal
 */

/** What one answer said, as the pacing needs it. @internal */
export interface PacingAnswer {
  /** When the answer arrived, on the service clock. */
  readonly at: number
  readonly status: number
  /** `X-Rate-Limit-Remaining`. */
  readonly remaining: number | undefined
  /** `X-Request-Cost`. */
  readonly cost: number | undefined
  /** 429, or Canvas's rate-limit 403. */
  readonly throttled: boolean
  readonly retryAfterMs: number | undefined
  /** Calls in progress when the answer arrived (itself included). */
  readonly inFlight: number
}

/** The pacing state; immutable. @internal */
export interface PacingState {
  /** The ceiling the caller gave. */
  readonly maxConcurrency: number
  /** Calls that may be in progress now (fractional between whole steps). */
  readonly concurrency: number
  /** False until the first cut: growth is by one per answer until then. */
  readonly cut: boolean
  /** Answers since the last cut (a cut needs a round of answers since the previous one). */
  readonly answersSinceCut: number
  /** Estimated refill of the platform's budget, in units per ms. */
  readonly refillPerMs: number | undefined
  /** The start of the window the refill is estimated over. */
  readonly window:
    | { readonly at: number; readonly remaining: number; readonly spent: number; readonly inFlight: number }
    | undefined
  /** The typical `X-Request-Cost` of an answer. */
  readonly typicalCost: number | undefined
  /**
   * The remaining budget below which the platform throttles, as learnt from throttled answers
   * (Canvas throttles while budget remains: a request in progress holds a pre-flight penalty).
   */
  readonly floor: number
  /** The largest remaining budget seen: the bucket's size, as far as is known. */
  readonly ceiling: number
  /** Space between two request starts while the budget is low; 0 otherwise. */
  readonly spacingMs: number
  /** No request starts before this instant. */
  readonly notBefore: number
  /** When the last request started. */
  readonly lastStartAt: number | undefined
}

/** Shortest window the refill is estimated over. */
const REFILL_WINDOW_MS = 50
/** Weight of a new refill sample. */
const REFILL_WEIGHT = 0.3
/** Requests are spaced while the headroom is below this many times the cost of the calls in progress and the next. */
const LOW_BUDGET_FACTOR = 2
/** The cut when the budget runs low (gentler than the halving on a throttled answer). */
const LOW_BUDGET_CUT = 0.75
/** First concurrency of a run (slow start from here). */
const INITIAL_CONCURRENCY = 2

/** The state a bulk run starts in. @internal */
export function initialPacing(maxConcurrency: number): PacingState {
  return {
    maxConcurrency,
    concurrency: Math.min(maxConcurrency, INITIAL_CONCURRENCY),
    cut: false,
    answersSinceCut: 0,
    refillPerMs: undefined,
    window: undefined,
    typicalCost: undefined,
    floor: 0,
    ceiling: 0,
    spacingMs: 0,
    notBefore: 0,
    lastStartAt: undefined,
  }
}

/** How many calls may be in progress now. @internal */
export function allowedConcurrency(state: PacingState): number {
  return Math.max(1, Math.min(state.maxConcurrency, Math.floor(state.concurrency)))
}

/** How long the next request must wait before it starts, at `now` (0: at once). @internal */
export function startDelayMs(state: PacingState, now: number): number {
  const spaced = state.lastStartAt === undefined ? 0 : state.lastStartAt + state.spacingMs
  return Math.max(0, state.notBefore - now, spaced - now)
}

/** The state after a request started at `at`. @internal */
export function started(state: PacingState, at: number): PacingState {
  return { ...state, lastStartAt: at }
}

function cutBy(state: PacingState, factor: number): PacingState {
  if (state.cut && state.answersSinceCut < allowedConcurrency(state)) return state
  return { ...state, concurrency: Math.max(1, state.concurrency * factor), cut: true, answersSinceCut: 0 }
}

function grow(state: PacingState): PacingState {
  const step = state.cut ? 1 / Math.max(1, state.concurrency) : 1
  return { ...state, concurrency: Math.min(state.maxConcurrency, state.concurrency + step) }
}

/** The refill estimate after an answer with both headers. */
function estimateRefill(
  state: PacingState,
  at: number,
  remaining: number,
  cost: number,
  inFlight: number,
): PacingState {
  const ceiling = Math.max(state.ceiling, remaining)
  const window = state.window
  // A full bucket hides its refill (remaining cannot rise above the ceiling): start again.
  const nearCeiling = remaining >= ceiling - cost
  if (window === undefined || nearCeiling) {
    return { ...state, ceiling, window: nearCeiling ? undefined : { at, remaining, spent: 0, inFlight } }
  }
  const spent = window.spent + cost
  // Platforms that hold a pre-flight penalty per request in progress (Canvas) move the remaining
  // budget with the number of requests in flight: compare only instants with as many in flight.
  if (at - window.at < REFILL_WINDOW_MS || inFlight !== window.inFlight) {
    return { ...state, ceiling, window: { ...window, spent } }
  }
  const sample = Math.max(0, (remaining - window.remaining + spent) / (at - window.at))
  const refillPerMs =
    state.refillPerMs === undefined
      ? sample
      : state.refillPerMs + REFILL_WEIGHT * (sample - state.refillPerMs)
  return { ...state, ceiling, refillPerMs, window: { at, remaining, spent: 0, inFlight } }
}

/** The state after an answer (any status). @internal */
export function answered(previous: PacingState, answer: PacingAnswer): PacingState {
  let state: PacingState = { ...previous, answersSinceCut: previous.answersSinceCut + 1 }
  const { at, remaining } = answer
  const congested = answer.throttled || answer.status === 503
  if (answer.retryAfterMs !== undefined && congested) {
    state = { ...state, notBefore: Math.max(state.notBefore, at + answer.retryAfterMs) }
  }
  if (answer.cost !== undefined && answer.cost > 0) {
    const typical = state.typicalCost
    state = {
      ...state,
      typicalCost: typical === undefined ? answer.cost : typical + REFILL_WEIGHT * (answer.cost - typical),
    }
  }
  const cost = state.typicalCost
  if (remaining === undefined || cost === undefined) {
    if (congested) return cutBy(state, 0.5)
    return answer.status >= 200 && answer.status < 300 ? grow(state) : state
  }
  if (answer.throttled) {
    // Throttled with budget left: the platform throttles above 0 (a pre-flight penalty). Keep above that.
    state = { ...state, floor: Math.max(state.floor, remaining + cost) }
  } else if (answer.cost !== undefined && answer.cost > 0) {
    state = estimateRefill(state, at, remaining, answer.cost, answer.inFlight)
  }
  const headroom = remaining - state.floor
  const needed = cost * (answer.inFlight + 1)
  const refill = state.refillPerMs
  if (refill !== undefined && refill > 0) {
    state = { ...state, spacingMs: headroom < needed * LOW_BUDGET_FACTOR ? cost / refill : 0 }
    if (headroom < needed) {
      state = { ...state, notBefore: Math.max(state.notBefore, at + (needed - headroom) / refill) }
    }
  }
  if (congested) return cutBy(state, 0.5)
  if (headroom < needed * LOW_BUDGET_FACTOR) return cutBy(state, LOW_BUDGET_CUT)
  return grow(state)
}
