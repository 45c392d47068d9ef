import { TokenkeeperError, type TokenkeeperErrorOptions } from '../errors.js'

/**
 * The codes the LTI Advantage services (`tokenkeeper/lti`) add to the core codes. They are part
 * of `TokenkeeperErrorCode`, so `isTokenkeeperError` and a check of `code` cover them.
 *
 * @example
 * ```ts
 * import type { LtiErrorCode } from 'tokenkeeper/lti'
 * const platformFaults: LtiErrorCode[] = ['SERVICE_REQUEST_FAILED', 'INVALID_SERVICE_RESPONSE']
 * ```
 */
export type LtiErrorCode =
  /** The service cannot do what it was built for with the scopes at hand ({@link ScopeMismatchError}). */
  | 'SCOPE_MISMATCH'
  /** An AGS or NRPS call was answered with a status that is not a success ({@link LtiServiceError}). */
  | 'SERVICE_REQUEST_FAILED'
  /** A URL the service was asked to send a token to is not allowed ({@link UnsafeServiceUrlError}). */
  | 'UNSAFE_SERVICE_URL'
  /** A 2xx answer from the platform is not the JSON the service expects (a plain `TokenkeeperError`). */
  | 'INVALID_SERVICE_RESPONSE'

/**
 * Why a {@link ScopeMismatchError} was raised.
 *
 * @example
 * ```ts
 * if (error instanceof ScopeMismatchError && error.reason === 'not-granted') askAdminToEnableScopes()
 * ```
 */
export type ScopeMismatchReason =
  /** The launch claim does not list a scope the service needs, so it is never requested. */
  | 'not-offered'
  /** The token endpoint granted fewer scopes than the service needs (SEC-10 §4.1 allows a subset). */
  | 'not-granted'
  /** The service was built without the use the call needs (see `uses`). */
  | 'not-built-for'

/**
 * A grade or roster service cannot do what it was built for with the scopes at hand. Raised
 * when the service is built (`fromClaim`) or its endpoint is swapped (`withEndpoint`), never
 * halfway through a batch. Not retryable: a new token with the same scopes would not help.
 *
 * @example
 * ```ts
 * import { GradeService, ScopeMismatchError } from 'tokenkeeper/lti'
 * try {
 *   await GradeService.fromClaim(tokens, registration, claim, { uses: ['scores', 'manageLineItems'] })
 * } catch (error) {
 *   if (error instanceof ScopeMismatchError) console.warn(error.reason, error.missingScopes)
 * }
 * ```
 */
export class ScopeMismatchError extends TokenkeeperError<'SCOPE_MISMATCH'> {
  /** Why: the claim did not offer a scope, the platform did not grant it, or the service was not built for the use. */
  readonly reason: ScopeMismatchReason
  /** The scopes that would be needed and are missing (for `readLineItems`, either read scope). */
  readonly missingScopes: readonly string[]
  /** What the launch claim offered (AGS), or `[]` when the claim lists no scopes (NRPS). */
  readonly offeredScopes: readonly string[]
  /** What the token was granted, when a token was obtained. */
  readonly grantedScopes: readonly string[]

  constructor(
    message: string,
    fields: {
      readonly reason: ScopeMismatchReason
      readonly missingScopes: readonly string[]
      readonly offeredScopes?: readonly string[]
      readonly grantedScopes?: readonly string[]
    },
  ) {
    super('SCOPE_MISMATCH', message, { retryable: false })
    this.name = 'ScopeMismatchError'
    this.reason = fields.reason
    this.missingScopes = Object.freeze([...fields.missingScopes])
    this.offeredScopes = Object.freeze([...(fields.offeredScopes ?? [])])
    this.grantedScopes = Object.freeze([...(fields.grantedScopes ?? [])])
  }
}

/**
 * An AGS or NRPS call was answered with a status that is not a success (after the one retry on
 * 401, and after the retries of `retry`). `retryable` for 408, 429, 5xx and Canvas's rate-limit
 * 403 (`throttled`), with `retryAfterMs` when the platform sent `Retry-After`. The message names the method, host and path; never a token or a body.
 *
 * @example
 * ```ts
 * import { LtiServiceError } from 'tokenkeeper/lti'
 * try {
 *   await grades.postScore(score)
 * } catch (error) {
 *   if (error instanceof LtiServiceError && error.status === 404) forgetLineItem()
 * }
 * ```
 */
export class LtiServiceError extends TokenkeeperError<'SERVICE_REQUEST_FAILED'> {
  /** `GET`, `POST`, `PUT` or `DELETE`. */
  readonly method: string
  /** The URL without its query string. */
  readonly endpoint: string
  /** A rate-limit answer: 429, or Canvas's `403 Forbidden (Rate Limit Exceeded)` (then `retryable`). */
  readonly throttled: boolean

  constructor(
    message: string,
    method: string,
    endpoint: string,
    options: TokenkeeperErrorOptions,
    throttled = false,
  ) {
    super('SERVICE_REQUEST_FAILED', message, options)
    this.name = 'LtiServiceError'
    this.method = method
    this.endpoint = endpoint
    this.throttled = throttled
  }
}

/**
 * A URL the service was asked to send a token to is not allowed: a paging `next` link, a line
 * item id or an endpoint on another host than the platform's service endpoint, or not https
 * (http only for loopback addresses). Nothing was sent to it.
 *
 * @example
 * ```ts
 * import { UnsafeServiceUrlError } from 'tokenkeeper/lti'
 * for await (const member of roster.members()) save(member) // may throw UnsafeServiceUrlError
 * ```
 */
export class UnsafeServiceUrlError extends TokenkeeperError<'UNSAFE_SERVICE_URL'> {
  /** The host the URL pointed at (`host:port`), for diagnosis. */
  readonly host: string

  constructor(message: string, host: string) {
    super('UNSAFE_SERVICE_URL', message, { retryable: false })
    this.name = 'UnsafeServiceUrlError'
    this.host = host
  }
}
