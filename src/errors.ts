/**
 * Every failure tokenkeeper reports is a {@link TokenkeeperError} with a string `code` from a
 * closed union, so callers can branch on `error.code` without parsing messages. Messages say
 * what failed and where (method and endpoint host); they never contain a token, a secret, a
 * private key or a signed assertion.
 */

import type {
  LtiErrorCode,
  LtiServiceError,
  ScopeMismatchError,
  UnsafeServiceUrlError,
} from './lti/errors.js'
import type { RedisStoreError, RedisStoreErrorCode } from './stores/redis/errors.js'

const BRAND = Symbol.for('tokenkeeper.error')

/**
 * The codes of the core package (`tokenkeeper`). The subpaths add their own unions
 * ({@link LtiErrorCode}, {@link RedisStoreErrorCode}); {@link TokenkeeperErrorCode} is all of them.
 *
 * @example
 * ```ts
 * import type { CoreErrorCode } from 'tokenkeeper'
 * const transient: CoreErrorCode[] = ['TIMEOUT', 'SERVER_ERROR', 'RATE_LIMITED']
 * ```
 */
export type CoreErrorCode =
  // The token endpoint answered with an RFC 6749 §5.2 error response.
  | 'OAUTH_ERROR'
  // The token endpoint answered, but not with a usable token response.
  | 'INVALID_JSON'
  | 'HTML_RESPONSE'
  | 'RESPONSE_NOT_OBJECT'
  | 'MISSING_ACCESS_TOKEN'
  | 'INVALID_ACCESS_TOKEN'
  | 'INVALID_EXPIRES_IN'
  | 'INVALID_REFRESH_IN'
  | 'INVALID_SCOPE_FIELD'
  | 'UNSUPPORTED_TOKEN_TYPE'
  | 'SCOPE_NOT_GRANTED'
  | 'DPOP_NOT_BOUND'
  | 'DPOP_KEY_MISSING'
  | 'MTLS_TRANSPORT_REQUIRED'
  | 'RESPONSE_TOO_LARGE'
  // HTTP-level failures.
  | 'RATE_LIMITED'
  | 'SERVER_ERROR'
  | 'UNEXPECTED_STATUS'
  | 'REDIRECT_REJECTED'
  // Transport failures.
  | 'TIMEOUT'
  | 'CONNECTION_REFUSED'
  | 'CONNECTION_RESET'
  | 'NETWORK_ERROR'
  // A client assertion issued by someone else (a file the platform writes, a provider function).
  | 'ASSERTION_UNAVAILABLE'
  | 'ASSERTION_EXPIRED'
  // Issuer discovery (RFC 8414, OpenID Connect Discovery 1.0).
  | 'DISCOVERY_NOT_FOUND'
  | 'DISCOVERY_ISSUER_MISMATCH'
  | 'INVALID_DISCOVERY_DOCUMENT'
  | 'AUTH_METHOD_NOT_SUPPORTED'
  // Token exchange (RFC 8693): the token to exchange, and what the answer says it issued.
  | 'SUBJECT_TOKEN_UNAVAILABLE'
  | 'SUBJECT_TOKEN_EXPIRED'
  | 'ACTOR_TOKEN_UNAVAILABLE'
  | 'ACTOR_TOKEN_EXPIRED'
  | 'INVALID_ISSUED_TOKEN_TYPE'
  // Configuration and lifecycle.
  | 'INSECURE_TOKEN_URL'
  | 'SOURCE_FAILED'
  | 'EXPIRED_ON_ARRIVAL'
  | 'MANAGER_CLOSED'
  | 'CLOCK_FAILED'
  // Using a token against a resource.
  | 'INSUFFICIENT_SCOPE'

/**
 * Every code a {@link TokenkeeperError} can carry, from every subpath: the core codes, the LTI
 * services' codes (`tokenkeeper/lti`) and the Redis store's codes (`tokenkeeper/redis`).
 *
 * @example
 * ```ts
 * import type { TokenkeeperErrorCode } from 'tokenkeeper'
 * const paging: TokenkeeperErrorCode[] = ['OAUTH_ERROR', 'UNKNOWN_KEY_ID', 'SCOPE_MISMATCH']
 * ```
 */
export type TokenkeeperErrorCode = CoreErrorCode | LtiErrorCode | RedisStoreErrorCode

/** Options shared by every tokenkeeper error constructor. */
export interface TokenkeeperErrorOptions {
  /** The underlying error, if any. Never an object that holds a secret. */
  readonly cause?: unknown
  /** Whether trying again later can succeed. */
  readonly retryable?: boolean
  /** How long the server asked us to wait (`Retry-After`), in milliseconds. */
  readonly retryAfterMs?: number
  /** The HTTP status of the response that caused this error, if there was one. */
  readonly status?: number
}

/**
 * The base class of every error tokenkeeper throws on purpose.
 *
 * @example
 * ```ts
 * import { isTokenkeeperError } from 'tokenkeeper'
 * try {
 *   await source.fetchToken()
 * } catch (error) {
 *   if (isTokenkeeperError(error) && error.retryable) scheduleRetry()
 * }
 * ```
 */
export class TokenkeeperError<C extends TokenkeeperErrorCode = TokenkeeperErrorCode> extends Error {
  /** What went wrong, as a stable string. */
  readonly code: C
  /** Whether trying again later can succeed (network errors, timeouts, 5xx, 429). */
  readonly retryable: boolean
  /** The delay the server asked for with `Retry-After`, in milliseconds, when it gave one. */
  readonly retryAfterMs: number | undefined
  /** The HTTP status that caused the error, when there was a response. */
  readonly status: number | undefined

  constructor(code: C, message: string, options: TokenkeeperErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TokenkeeperError'
    this.code = code
    this.retryable = options.retryable ?? false
    this.retryAfterMs = options.retryAfterMs
    this.status = options.status
    Object.defineProperty(this, BRAND, { value: true, enumerable: false })
  }
}

/** The fields of an RFC 6749 §5.2 error response. */
export interface OAuthErrorFields {
  /** The error code, e.g. `invalid_client`, `invalid_grant`, `invalid_scope`. */
  readonly error: string
  /** A human-readable description, when the server sent one. */
  readonly error_description?: string | undefined
  /** A link to a page about the error, when the server sent one. */
  readonly error_uri?: string | undefined
}

/** What is kept of the HTTP response behind an error: never its body. */
export interface ErrorResponseInfo {
  /** The HTTP status code, e.g. `400`. */
  readonly status: number
  /**
   * A few headers by lower-case name (`content-type`, `retry-after`, `date`, `www-authenticate`,
   * `location`, when present), each scrubbed of the request's secrets.
   */
  readonly headers: Readonly<Record<string, string>>
}

/**
 * The token endpoint refused the request with an RFC 6749 §5.2 error response
 * (`invalid_client`, `invalid_grant`, `invalid_scope`, ...).
 *
 * `retryable` is true only for `temporarily_unavailable`, `server_error` and 429/5xx statuses.
 *
 * @example
 * ```ts
 * import { OAuthError } from 'tokenkeeper'
 * if (error instanceof OAuthError && error.error === 'invalid_client') rotateCredentials()
 * ```
 */
export class OAuthError extends TokenkeeperError<'OAUTH_ERROR'> {
  /** The RFC 6749 error code, e.g. `invalid_client`. */
  readonly error: string
  /** The server's human-readable description, if it sent one. */
  readonly error_description: string | undefined
  /** The server's link to more information, if it sent one. */
  readonly error_uri: string | undefined
  /** True when the description suggests the assertion was rejected for its time claims. */
  readonly clockSkewSuspected: boolean
  /** The status and headers of the response (non-enumerable; the body is never kept). */
  declare readonly response: ErrorResponseInfo

  constructor(
    fields: OAuthErrorFields,
    message: string,
    options: TokenkeeperErrorOptions & { response: ErrorResponseInfo; clockSkewSuspected?: boolean },
  ) {
    super('OAUTH_ERROR', message, options)
    this.name = 'OAuthError'
    this.error = fields.error
    this.error_description = fields.error_description
    this.error_uri = fields.error_uri
    this.clockSkewSuspected = options.clockSkewSuspected ?? false
    Object.defineProperty(this, 'response', { value: options.response, enumerable: false })
  }
}

/**
 * A resource server answered `403` with `WWW-Authenticate: Bearer error="insufficient_scope"`
 * (RFC 6750 §3.1): the token is valid but lacks a scope. Getting a new token with the same
 * scopes will not help, so it is not retried.
 */
export class InsufficientScopeError extends TokenkeeperError<'INSUFFICIENT_SCOPE'> {
  /** The scopes the resource said it needs, when it named them. */
  readonly requiredScopes: readonly string[]
  /** The scopes the token that was sent had been granted. */
  readonly grantedScopes: readonly string[]

  constructor(message: string, requiredScopes: readonly string[], grantedScopes: readonly string[]) {
    super('INSUFFICIENT_SCOPE', message, { status: 403 })
    this.name = 'InsufficientScopeError'
    this.requiredScopes = requiredScopes
    this.grantedScopes = grantedScopes
  }
}

/** The codes raised as a plain {@link TokenkeeperError}, without a subclass of their own. */
export type PlainErrorCode = Exclude<
  TokenkeeperErrorCode,
  | 'OAUTH_ERROR'
  | 'INSUFFICIENT_SCOPE'
  | 'SCOPE_MISMATCH'
  | 'SERVICE_REQUEST_FAILED'
  | 'UNSAFE_SERVICE_URL'
  | RedisStoreErrorCode
>

/**
 * Every error tokenkeeper throws, from every subpath, as a union discriminated by `code`:
 * checking `error.code` narrows to the class that carries it (`'OAUTH_ERROR'` to
 * {@link OAuthError}, `'UNKNOWN_KEY_ID'` to `RedisStoreError`, ...).
 *
 * @example
 * ```ts
 * import { isTokenkeeperError } from 'tokenkeeper'
 * if (isTokenkeeperError(error) && error.code === 'OAUTH_ERROR') console.error(error.error) // an OAuthError
 * ```
 */
export type AnyTokenkeeperError =
  | OAuthError
  | InsufficientScopeError
  | ScopeMismatchError
  | LtiServiceError
  | UnsafeServiceUrlError
  | RedisStoreError
  | TokenkeeperError<PlainErrorCode>

/**
 * True for any error thrown by tokenkeeper, from any subpath (`tokenkeeper/lti`,
 * `tokenkeeper/redis` too), including errors from a different copy of the package (it checks a
 * global symbol brand, not `instanceof`). The result is an {@link AnyTokenkeeperError}, so
 * checking `code` then narrows to the error's class.
 *
 * @example
 * ```ts
 * if (isTokenkeeperError(error)) console.error(error.code)
 * ```
 */
export function isTokenkeeperError(value: unknown): value is AnyTokenkeeperError {
  if (typeof value !== 'object' || value === null) return false
  try {
    return (value as Record<symbol, unknown>)[BRAND] === true
  } catch {
    // Anything may be thrown (a Proxy whose every read throws): whatever cannot be read is no tokenkeeper error.
    return false
  }
}

/**
 * True for an RFC 6749 §5.2 error response, optionally with a given `error` code, across
 * duplicate package copies.
 *
 * @example
 * ```ts
 * if (isOAuthError(error, 'invalid_client')) alertOnCall()
 * ```
 */
export function isOAuthError(value: unknown, error?: string): value is OAuthError {
  return (
    isTokenkeeperError(value) &&
    value.code === 'OAUTH_ERROR' &&
    (error === undefined || value.error === error)
  )
}
