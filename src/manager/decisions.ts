/**
 * The per-key state machine as pure functions: given what a key holds, the instant and the
 * policy, what happens next. The manager only acts on their answers (serves, starts or joins a
 * request, fails fast, schedules), so every rule of docs/LIFECYCLE.md can be table-tested here at
 * ±1 ms without a manager, a clock or a source.
 */
import {
  backoffDelayMs,
  computeWindows,
  type BackoffPolicy,
  type FailureFacts,
  type RefreshPolicy,
  type TokenTimes,
  type TokenWindows,
} from './policy.js'

/** What a key holds, as the decisions see it (an entry of the manager fits). */
export interface KeyState {
  /** Whether a token is cached (one that may be served up to `mustRefreshAt`). */
  readonly resolved: unknown
  readonly refreshAt: number
  readonly mustRefreshAt: number
  /** Whether a token request for the key is in flight (truthy while one is). */
  readonly flight: unknown
  /** The remembered failure: no new request before `retryAt`. */
  readonly failure: { readonly retryAt: number; readonly attempt: number } | undefined
}

/**
 * What a `get` does:
 * - `fresh`: serve the cached token;
 * - `advisory`: serve the cached token, nothing else (a renewal is in flight or backing off);
 * - `advisory-renew`: serve the cached token and start a background renewal;
 * - `join`: wait on the request in flight;
 * - `fail-fast`: reject with the remembered failure, without a request (backoff window);
 * - `fetch`: start a request and wait on it.
 */
export type GetAction = 'fresh' | 'advisory' | 'advisory-renew' | 'join' | 'fail-fast' | 'fetch'

/** The decision of a `get` at `now`. */
export function getAction(state: KeyState, now: number): GetAction {
  if (state.resolved !== undefined) {
    if (now < state.refreshAt) return 'fresh'
    if (now < state.mustRefreshAt) return renewalHeld(state, now) ? 'advisory' : 'advisory-renew'
  }
  if (state.flight !== undefined) return 'join'
  if (state.failure !== undefined && now < state.failure.retryAt) return 'fail-fast'
  return 'fetch'
}

/** Whether a renewal may not start now: one is in flight, or the backoff has not ended. */
function renewalHeld(state: KeyState, now: number): boolean {
  return state.flight !== undefined || (state.failure !== undefined && now < state.failure.retryAt)
}

/**
 * What a proactive timer does when it fires: `none` (the key is idle, has no token, or a request
 * is in flight), `later` (the refresh point or the end of the backoff has not come: fire again
 * at `at`; a clock's timer that fires early, as `setTimeout` does with a delay over 2^31 - 1 ms,
 * never renews a token before its refresh point), or `renew`.
 */
export type TimerAction =
  { readonly kind: 'none' } | { readonly kind: 'later'; readonly at: number } | { readonly kind: 'renew' }

const NONE: TimerAction = { kind: 'none' }
const RENEW: TimerAction = { kind: 'renew' }

/** The decision of a proactive timer at `now`, for a key last used at `lastUsedAt`. */
export function timerAction(state: KeyState, now: number, lastUsedAt: number, idleMs: number): TimerAction {
  if (state.resolved === undefined || now - lastUsedAt > idleMs || state.flight !== undefined) return NONE
  if (now < state.refreshAt) return { kind: 'later', at: state.refreshAt }
  if (state.failure !== undefined && now < state.failure.retryAt)
    return { kind: 'later', at: state.failure.retryAt }
  return RENEW
}

/** The remembered failure after a failed request. */
export interface FailureState {
  readonly retryAt: number
  readonly attempt: number
}

/**
 * The state after a failed request at `now`: the attempt count goes up, and the next request may
 * start after the backoff. While a cached token still serves (`now < mustRefreshAt`), a retryable
 * failure without `Retry-After` backs off no later than `mustRefreshAt`, so the first caller in
 * the mandatory window makes a new attempt instead of getting an old background failure.
 */
export function afterFailure(
  state: Pick<KeyState, 'failure' | 'mustRefreshAt'>,
  facts: Omit<FailureFacts, 'attempt'>,
  now: number,
  policy: BackoffPolicy,
  random: () => number,
): FailureState {
  const attempt = (state.failure?.attempt ?? 0) + 1
  let retryAt = now + backoffDelayMs({ attempt, ...facts }, policy, random)
  if (facts.retryable && facts.retryAfterMs === undefined && now < state.mustRefreshAt) {
    retryAt = Math.min(retryAt, state.mustRefreshAt)
  }
  return { retryAt, attempt }
}

/**
 * What a key does with a token that arrives at `now`:
 * - `adopt`: cache it with these windows;
 * - `keep`: a late answer (issued before the cached token, and expiring before it) while the
 *   cached token still serves: the cached token stays, and its refresh point moves to `refreshAt`
 *   (a short pause, never past `mustRefreshAt`), or every call would start another request.
 */
export type Arrival =
  | { readonly kind: 'adopt'; readonly windows: TokenWindows }
  | { readonly kind: 'keep'; readonly refreshAt: number }

/** The decision for a token that arrives at `now`, given the cached one (if any). */
export function onArrival(
  state: Pick<KeyState, 'refreshAt' | 'mustRefreshAt'> & { readonly token: TokenTimes | undefined },
  arrived: TokenTimes,
  now: number,
  policy: RefreshPolicy & BackoffPolicy,
  random: () => number,
): Arrival {
  const cached = state.token
  if (
    cached !== undefined &&
    cached.expiresAt > arrived.expiresAt &&
    cached.issuedAt > arrived.issuedAt &&
    now < state.mustRefreshAt
  ) {
    const pause = backoffDelayMs({ attempt: 1, retryable: true }, policy, random)
    return { kind: 'keep', refreshAt: Math.max(state.refreshAt, Math.min(state.mustRefreshAt, now + pause)) }
  }
  return { kind: 'adopt', windows: computeWindows(arrived, policy, random) }
}
