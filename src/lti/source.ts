import { inspect } from 'node:util'
import type { ClientAuth, ClientAuthContext } from '../sources/auth.js'
import { TokenEndpoint } from '../sources/endpoint.js'
import { authPart, cacheKey, named, positional } from '../sources/cache-key.js'
import { fingerprint } from '../sources/fingerprint.js'
import { loadSigningKey, signAssertion, type SigningKey } from '../sources/signing.js'
import type { FetchTokenOptions, TokenSource } from '../sources/types.js'
import type { AccessToken } from '../token/access-token.js'
import { CLIENT_ASSERTION_TYPE, GRANT_TYPE, LtiClaims } from './constants.js'
import { checkRegistration, type LtiRegistration, type LtiSourceOptions } from './registration.js'

const WHAT = 'ltiServiceSource'
const DEFAULT_ASSERTION_LIFETIME_MS = 60_000
/** SEC-10: `exp` "typically five minutes after" `iat`; Canvas refuses an `iat` older than 5 minutes. */
const MAX_ASSERTION_LIFETIME_MS = 300_000

/**
 * The LTI client assertion (SEC-10 §4.1.1): adds exactly `client_assertion_type` and
 * `client_assertion` to the form, and nothing else (no `client_id`), signed RS256 with `kid`.
 */
class LtiClientAssertion implements ClientAuth {
  readonly method = 'private_key_jwt'
  readonly fingerprint: string
  readonly #signing: SigningKey
  readonly #kid: string
  readonly #audience: string | undefined
  readonly #deploymentId: string | undefined
  readonly #lifetimeMs: number

  constructor(registration: LtiRegistration, lifetimeMs: number) {
    this.#signing = loadSigningKey(registration.privateKey, 'RS256', WHAT)
    this.#kid = registration.kid
    this.#audience = registration.audience
    this.#deploymentId = registration.deploymentId
    this.#lifetimeMs = lifetimeMs
    this.fingerprint = fingerprint('lti-client-assertion', this.#signing.thumbprint, 'RS256', this.#kid)
  }

  async apply(context: ClientAuthContext): Promise<readonly string[]> {
    const assertion = await signAssertion(this.#signing, this.#kid, {
      iss: context.clientId,
      sub: context.clientId,
      aud: this.#audience ?? context.tokenUrl,
      lifetimeMs: this.#lifetimeMs,
      now: context.now,
      extra: this.#deploymentId === undefined ? undefined : { [LtiClaims.deploymentId]: this.#deploymentId },
    })
    context.body.set('client_assertion_type', CLIENT_ASSERTION_TYPE)
    context.body.set('client_assertion', assertion)
    return [assertion]
  }

  toJSON(): Record<string, string> {
    return { method: this.method, fingerprint: this.fingerprint, alg: 'RS256' }
  }

  [inspect.custom](): string {
    return `ClientAuth ${inspect(this.toJSON())}`
  }
}

class LtiServiceSource implements TokenSource {
  readonly key: string
  /** The scopes requested, sorted and de-duplicated. */
  readonly scopes: readonly string[]
  readonly #endpoint: TokenEndpoint
  readonly #clientId: string
  readonly #auth: LtiClientAssertion

  constructor(registration: LtiRegistration, scopes: readonly string[], options: LtiSourceOptions) {
    checkRegistration(registration)
    if (!Array.isArray(scopes)) throw new TypeError(`${WHAT}: scopes must be an array of scope URIs`)
    const lifetimeMs = options.assertionLifetimeMs ?? DEFAULT_ASSERTION_LIFETIME_MS
    if (!Number.isFinite(lifetimeMs) || lifetimeMs < 1000 || lifetimeMs > MAX_ASSERTION_LIFETIME_MS) {
      throw new TypeError(`${WHAT}: assertionLifetimeMs must be between 1000 and 300000`)
    }
    this.#endpoint = new TokenEndpoint(
      {
        tokenUrl: registration.tokenUrl,
        scopes,
        ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.maxResponseBytes === undefined ? {} : { maxResponseBytes: options.maxResponseBytes }),
        ...(options.defaultLifetimeMs === undefined ? {} : { defaultLifetimeMs: options.defaultLifetimeMs }),
        ...(options.clock === undefined ? {} : { clock: options.clock }),
      },
      WHAT,
    )
    // Moodle refuses a token request without a non-empty scope.
    if (this.#endpoint.scopes.length === 0) throw new TypeError(`${WHAT}: at least one scope is required`)
    this.scopes = this.#endpoint.scopes
    this.#clientId = registration.clientId
    this.#auth = new LtiClientAssertion(registration, lifetimeMs)
    const audience = registration.audience ?? this.#endpoint.tokenUrl
    const deployment = registration.deploymentId ?? ''
    this.key = cacheKey('lti', this.#endpoint.keyUrl, [
      named('iss', registration.issuer),
      positional(this.#clientId),
      named('aud', audience),
      named('dep', deployment),
      positional(authPart(this.#auth)),
      ...this.#endpoint.keySegments,
    ])
  }

  fetchToken(options?: FetchTokenOptions): Promise<AccessToken> {
    return this.#endpoint.request([['grant_type', GRANT_TYPE]], this.#auth, this.#clientId, options)
  }

  toJSON(): Record<string, string> {
    return { kind: 'ltiServiceSource', key: this.key }
  }

  [inspect.custom](): string {
    return `TokenSource ${inspect(this.toJSON())}`
  }
}

/**
 * A {@link TokenSource} for LTI 1.3 Advantage services: the client-credentials grant with a
 * signed JWT client assertion (SEC-10 §4.1.1, RFC 7523, LTI Core 1.3 §6.2).
 *
 * Each token request sends a form with exactly four fields, `grant_type=client_credentials`,
 * `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`,
 * `client_assertion` and `scope`, as `application/x-www-form-urlencoded`. The assertion is
 * signed RS256 with the registration's `kid`, with `iss` = `sub` = client id, one `aud` (the
 * token URL, or `registration.audience`), a fresh `jti` and `iat`, `exp` 60 s later by default,
 * and the deployment id claim when the registration has one. Assertions are never cached.
 *
 * The key is token URL + issuer + client id + audience + deployment + sorted scopes + a key
 * fingerprint: never a course, so one token serves every course of the registration. It holds
 * no secret. The key is checked (RSA, ≥ 2048 bits) now, so a bad key is a `TypeError` here.
 *
 * @example
 * ```ts
 * import { TokenManager } from 'tokenkeeper'
 * import { ltiServiceSource, LtiScopes } from 'tokenkeeper/lti'
 * const source = ltiServiceSource(registration, [LtiScopes.score, LtiScopes.lineItemReadOnly])
 * const token = await new TokenManager().get(source) // token.scopes: what the platform granted
 * ```
 */
export function ltiServiceSource(
  registration: LtiRegistration,
  scopes: readonly string[],
  options: LtiSourceOptions = {},
): TokenSource & {
  /** The scopes requested, sorted and de-duplicated. */
  readonly scopes: readonly string[]
} {
  return new LtiServiceSource(registration, scopes, options)
}
