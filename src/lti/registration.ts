import type { Clock } from '../clock.js'
import type { FetchLike } from '../http/token-request.js'
import type { PrivateKeyInput } from '../sources/signing.js'

/**
 * A tool's registration with one LTI 1.3 platform: what the platform issued to the tool and
 * where its token endpoint is. One registration serves every course (context) and every
 * deployment-free call of the tool on that platform.
 *
 * ⚠️ `privateKey` is the tool's signing key. tokenkeeper never prints it, but this object is
 * yours: keep it out of your own logs.
 *
 * @example
 * ```ts
 * import type { LtiRegistration } from 'tokenkeeper/lti'
 * const registration: LtiRegistration = {
 *   issuer: 'https://canvas.instructure.com',
 *   clientId: '10000000000042',
 *   tokenUrl: 'https://canvas.example.edu/login/oauth2/token',
 *   privateKey: process.env.LTI_PRIVATE_KEY_PEM!,
 *   kid: 'tool-key-2026',
 * }
 * ```
 */
export interface LtiRegistration {
  /** The platform's issuer (the `iss` of its launches). Part of the cache key. */
  readonly issuer: string
  /** The tool's OAuth `client_id` on this platform: `iss` and `sub` of every client assertion. */
  readonly clientId: string
  /** The platform's token endpoint. https, or http to a loopback address (tests). */
  readonly tokenUrl: string | URL
  /**
   * The `aud` of the client assertion, when the platform names an authorization server other
   * than its token URL (Brightspace/D2L). Default: the token URL, exactly as given (platforms
   * compare it as an exact string; a trailing slash matters).
   */
  readonly audience?: string
  /**
   * The deployment id, sent as the `https://purl.imsglobal.org/spec/lti/claim/deployment_id`
   * claim of the assertion (LTI Core 1.3 §6.2.1) for platforms that scope tokens by deployment.
   * Part of the cache key when set.
   */
  readonly deploymentId?: string
  /** The tool's RSA private key (at least 2048 bits): PEM, JWK or `KeyObject`. Signs RS256 only. */
  readonly privateKey: PrivateKeyInput
  /** The `kid` of that key in the tool's JWKS. Required: platforms pick the key by it (SEC-10 §6.3). */
  readonly kid: string
}

/**
 * Options of the token requests a registration makes, for {@link ltiServiceSource} and the
 * services.
 *
 * @example
 * ```ts
 * import { ltiServiceSource, LtiScopes, type LtiSourceOptions } from 'tokenkeeper/lti'
 * const options: LtiSourceOptions = { assertionLifetimeMs: 60_000, timeoutMs: 5_000 }
 * const source = ltiServiceSource(registration, [LtiScopes.score], options)
 * ```
 */
export interface LtiSourceOptions {
  /** How long each client assertion is valid (`exp - iat`). Default 60 s; 1 s to 300 s. */
  readonly assertionLifetimeMs?: number
  /** A `fetch` for the token request (proxies, tracing). Redirects are never followed. */
  readonly fetch?: FetchLike
  /** Timeout of each token request, body included. Default 10 s. */
  readonly timeoutMs?: number
  /** Cap on the token response body. Default 256 KiB. */
  readonly maxResponseBytes?: number
  /** Lifetime assumed when the platform sends no `expires_in`. Default 1 hour. */
  readonly defaultLifetimeMs?: number
  /** Clock used when the caller passes none. Default: the system clock. */
  readonly clock?: Clock
}

function nonEmpty(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.trim().length === 0) {
    throw new TypeError(`tokenkeeper/lti: registration.${name} must be a non-empty string`)
  }
  return value
}

/** Checks the parts of a registration that are not checked by the key loader or URL check. @internal */
export function checkRegistration(registration: LtiRegistration): void {
  if (typeof registration !== 'object' || registration === null) {
    throw new TypeError('tokenkeeper/lti: a registration object is required')
  }
  nonEmpty(registration.issuer, 'issuer')
  nonEmpty(registration.clientId, 'clientId')
  nonEmpty(registration.kid, 'kid')
  if (registration.audience !== undefined) nonEmpty(registration.audience, 'audience')
  if (registration.deploymentId !== undefined) nonEmpty(registration.deploymentId, 'deploymentId')
  if (registration.privateKey === undefined || registration.privateKey === null) {
    throw new TypeError('tokenkeeper/lti: registration.privateKey is required')
  }
}
