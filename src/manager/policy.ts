/**
 * The refresh and backoff policy as pure functions of (token times, now, options, random).
 * Nothing here reads a clock, a timer or the network, so every rule is table-testable.
 *
 * A token's life (all instants epoch ms):
 *
 *   issuedAt ──── fresh ────▶ refreshAt ── advisory ──▶ mustRefreshAt ── mandatory ──▶ expiresAt
 *
 * - fresh: served from cache, nothing else happens;
 * - advisory: served from cache at once, one background refresh per key;
 * - mandatory: never served; callers wait for the one shared fetch.
 */

/** The policy knobs; every field has a default that works for lifetimes from 5 s to 24 h. */
export interface RefreshPolicy {
  /** Upper bound of the safety margin before expiry. Default 60 s. */
  readonly marginMs: number
  /** The margin never exceeds this fraction of the lifetime. Default 0.1. */
  readonly maxMarginRatio: number
  /** Earliest refresh point as a fraction of the lifetime. Default 0.75. */
  readonly refreshRatioMin: number
  /** Latest refresh point as a fraction of the lifetime. Default 0.85. */
  readonly refreshRatioMax: number
}

/** The backoff knobs. */
export interface BackoffPolicy {
  /** The first retry delay's upper bound. Default 250 ms. */
  readonly baseBackoffMs: number
  /** No retry delay exceeds this (before `Retry-After`). Default 10 s. */
  readonly maxBackoffMs: number
  /** The largest `Retry-After` honoured. Default 5 minutes. */
  readonly maxRetryAfterMs: number
  /** How long a permanent error (invalid_client, ...) is remembered. Default 5 s. */
  readonly permanentErrorBackoffMs: number
}

/**
 * The refresh policy a {@link TokenManager} uses unless told otherwise: a margin of at most 60 s
 * and at most 10 % of the lifetime before expiry, and a background renewal at a random point
 * between 75 % and 85 % of the lifetime. Frozen. A {@link TokenManagerOptions} field of the
 * same name replaces one of these values.
 *
 * @example
 * ```ts
 * // twice the default margin before expiry
 * const tokens = new TokenManager({ marginMs: 2 * DEFAULT_REFRESH_POLICY.marginMs })
 * ```
 */
export const DEFAULT_REFRESH_POLICY: RefreshPolicy = Object.freeze({
  marginMs: 60_000,
  maxMarginRatio: 0.1,
  refreshRatioMin: 0.75,
  refreshRatioMax: 0.85,
})

/**
 * The backoff a {@link TokenManager} uses after a failed token request unless told otherwise:
 * exponential from 250 ms up to 10 s with jitter, `Retry-After` honoured up to 5 minutes, and a
 * permanent error (`invalid_client`, ...) remembered for 5 s. Frozen. A
 * {@link TokenManagerOptions} field of the same name replaces one of these values.
 *
 * @example
 * ```ts
 * // back off three times as long at most
 * const tokens = new TokenManager({ maxBackoffMs: 3 * DEFAULT_BACKOFF_POLICY.maxBackoffMs })
 * ```
 */
export const DEFAULT_BACKOFF_POLICY: BackoffPolicy = Object.freeze({
  baseBackoffMs: 250,
  maxBackoffMs: 10_000,
  maxRetryAfterMs: 300_000,
  permanentErrorBackoffMs: 5_000,
})

/** The instants at which a stored token changes window. */
export interface TokenWindows {
  /** From here the token is in its advisory window: served, and renewed in the background (epoch ms). */
  readonly refreshAt: number
  /** From here the token is in its mandatory window: never served, callers wait for a new one (epoch ms). */
  readonly mustRefreshAt: number
}

/** Which window `now` falls in. */
export type TokenWindow = 'fresh' | 'advisory' | 'mandatory'

/** The token times the policy needs. */
export interface TokenTimes {
  /** When the token was obtained (epoch ms). */
  readonly issuedAt: number
  /** When the token expires (epoch ms). */
  readonly expiresAt: number
  /** The server's `refresh_in` point, if given. */
  readonly refreshAt?: number | undefined
}

/** The earliest a server's `refresh_in` may set the refresh point, as a fraction of the lifetime. */
export const MIN_REFRESH_IN_RATIO = 0.1

/**
 * Fixes a token's windows when it is stored. `random()` in [0, 1) spreads the refresh point over
 * [refreshRatioMin, refreshRatioMax] of the lifetime so that many processes do not refresh in the
 * same millisecond. The margin is `min(marginMs, maxMarginRatio × lifetime)`, so a 5-minute
 * margin never makes a 2-minute token uncacheable. A server `refresh_in` replaces the jittered
 * point. `refreshAt <= mustRefreshAt <= expiresAt` always holds.
 */
export function computeWindows(token: TokenTimes, policy: RefreshPolicy, random: () => number): TokenWindows {
  const lifetimeMs = Math.max(0, token.expiresAt - token.issuedAt)
  const marginMs = Math.min(policy.marginMs, policy.maxMarginRatio * lifetimeMs)
  const mustRefreshAt = Math.floor(token.expiresAt - marginMs)
  let refreshAt: number
  if (token.refreshAt !== undefined) {
    // Never sooner than a tenth of the lifetime: `refresh_in: 0` must not mean a request per call.
    refreshAt = Math.max(token.refreshAt, Math.floor(token.issuedAt + lifetimeMs * MIN_REFRESH_IN_RATIO))
  } else {
    const ratio =
      policy.refreshRatioMin + (policy.refreshRatioMax - policy.refreshRatioMin) * clampUnit(random())
    refreshAt = Math.floor(token.issuedAt + lifetimeMs * ratio)
  }
  return { refreshAt: Math.min(mustRefreshAt, Math.max(token.issuedAt, refreshAt)), mustRefreshAt }
}

/** The window `now` falls in: fresh before `refreshAt`, mandatory from `mustRefreshAt`. */
export function windowAt(windows: TokenWindows, now: number): TokenWindow {
  if (now < windows.refreshAt) return 'fresh'
  if (now < windows.mustRefreshAt) return 'advisory'
  return 'mandatory'
}

function clampUnit(value: number): number {
  return Number.isFinite(value) ? Math.min(Math.max(value, 0), 1) : 0
}

/** What the backoff needs to know about a failure. */
export interface FailureFacts {
  /** 1 for the first failure in a row, 2 for the second, ... */
  readonly attempt: number
  /** Whether the failure may pass by itself (network, timeout, 5xx, 429); `false` waits `permanentErrorBackoffMs`. */
  readonly retryable: boolean
  /** The server's `Retry-After`, in ms, when it sent one. */
  readonly retryAfterMs?: number | undefined
}

/**
 * How long to wait before the next token request after a failure: exponential backoff with
 * jitter over [10 %, 100 %] of `min(maxBackoffMs, baseBackoffMs × 2^(attempt-1))` (the floor keeps
 * a retry storm from being possible at a near-zero draw), never less than `Retry-After` (capped
 * at `maxRetryAfterMs`), and at least `permanentErrorBackoffMs` for errors a retry cannot fix.
 */
export function backoffDelayMs(failure: FailureFacts, policy: BackoffPolicy, random: () => number): number {
  const exponent = Math.min(Math.max(failure.attempt, 1) - 1, 30)
  const step = Math.min(policy.maxBackoffMs, policy.baseBackoffMs * 2 ** exponent)
  let delay = Math.round(step * (0.1 + 0.9 * clampUnit(random())))
  if (failure.retryAfterMs !== undefined) {
    const asked = Math.min(failure.retryAfterMs, policy.maxRetryAfterMs)
    // A server that says when to come back sets the schedule: a transient failure is retried
    // then (never sooner, and not later because of the exponential growth, so that recovery
    // follows the server's word), with the 10 % floor of the first step against `Retry-After: 0`.
    // A permanent error still waits at least the exponential backoff.
    delay = failure.retryable
      ? Math.max(asked, Math.round(policy.baseBackoffMs * 0.1))
      : Math.max(delay, asked)
  }
  if (!failure.retryable) delay = Math.max(delay, policy.permanentErrorBackoffMs)
  return delay
}

/** Checks policy options at construction; throws a `TypeError` naming the bad one. */
export function checkPolicy(policy: RefreshPolicy & BackoffPolicy): void {
  const nonNegative = [
    'marginMs',
    'baseBackoffMs',
    'maxBackoffMs',
    'maxRetryAfterMs',
    'permanentErrorBackoffMs',
  ] as const
  for (const name of nonNegative) {
    const value = policy[name]
    if (!Number.isFinite(value) || value < 0)
      throw new TypeError(`TokenManager: ${name} must be a non-negative number`)
  }
  if (!(policy.maxMarginRatio >= 0 && policy.maxMarginRatio <= 0.5)) {
    throw new TypeError('TokenManager: maxMarginRatio must be between 0 and 0.5')
  }
  if (!(
    policy.refreshRatioMin > 0 &&
    policy.refreshRatioMin <= policy.refreshRatioMax &&
    policy.refreshRatioMax < 1
  )) {
    throw new TypeError(
      'TokenManager: refresh ratios must satisfy 0 < refreshRatioMin <= refreshRatioMax < 1',
    )
  }
}
