import { inspect } from 'node:util'
import { systemClock, wallTime } from '../clock.js'
import type { AccessToken } from '../token/access-token.js'
import { isValidScopeToken, normalizeScopes } from '../token/scopes.js'
import {
  issuedAssertionReader,
  type ClientAssertionProvider,
  type IssuedAssertionReader,
} from './client-assertion.js'
import type { ClientAuth } from './auth.js'
import type { DpopKey } from './dpop.js'
import { TokenEndpoint, type EndpointOptions } from './endpoint.js'
import { cacheKey, clientSegment, named, positional } from './cache-key.js'
import { fingerprint } from './fingerprint.js'
import {
  loadSigningKey,
  signAssertion,
  type PrivateKeyInput,
  type SigningAlgorithm,
  type SigningKey,
} from './signing.js'
import type { FetchTokenOptions, TokenSource } from './types.js'

const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** Options of {@link jwtBearer}. */
export interface JwtBearerOptions extends EndpointOptions {
  /** The `iss` of the assertion: who issued it, e.g. a service account's email. */
  readonly issuer: string
  /** The `sub`: whom the token is for; not empty. Default: none (service-account style). */
  readonly subject?: string
  /** The signing key of the assertion: JWK, PEM string or `KeyObject`. */
  readonly key: PrivateKeyInput
  /** The `kid` header; not empty. Default: none. */
  readonly kid?: string
  /** RS256, PS256 or ES256. Default from the key. */
  readonly alg?: SigningAlgorithm
  /** The assertion's `aud`; not empty. Default: the token endpoint URL, exactly as configured. */
  readonly assertionAudience?: string
  /** More claims for the assertion (e.g. `target_audience`). */
  readonly claims?: Readonly<Record<string, unknown>>
  /**
   * Where the scopes go: as the `scope` form parameter (RFC 7521 §4.1, the default) or as a
   * `scope` claim inside the assertion (as Google service accounts expect).
   */
  readonly scopeIn?: 'body' | 'assertion'
  /** Lifetime of each assertion. Default 60 s; at most 1 hour. */
  readonly assertionLifetimeMs?: number
  /** The client's `client_id`, for servers that want the client identified too. */
  readonly clientId?: string
  /** How the client authenticates, for servers that want that too; needs `clientId`. Default: none. */
  readonly auth?: ClientAuth
}

/**
 * Options of {@link jwtBearer} when the assertion is issued by someone else (RFC 7523 §2.1): a
 * provider called for every token request, or a file read for every token request.
 */
export interface JwtBearerAssertionOptions extends EndpointOptions {
  /** The assertion: a function (named by `assertionId`) or `{ file: path }`. */
  readonly assertion:
    | ClientAssertionProvider
    | {
        /** A file holding the assertion (a projected service-account token), read for every request. */
        readonly file: string
      }
  /** A name for a provider function, used in the cache key and in messages. Required with a function. */
  readonly assertionId?: string
  /** The client's `client_id`, for servers that want the client identified too. */
  readonly clientId?: string
  /** How the client authenticates, for servers that want that too; needs `clientId`. Default: none. */
  readonly auth?: ClientAuth
}

/** The JWT-bearer grant with an assertion from elsewhere, read and checked for every request. */

/** The RFC 7523 §2.1 grant with `assertion` (a secret of the request), however it was obtained. */
function grantWith(
  endpoint: TokenEndpoint,
  assertion: string,
  options: { readonly auth?: ClientAuth | undefined; readonly clientId?: string | undefined },
  fetchOptions: FetchTokenOptions | undefined,
  requestedScopes?: readonly string[],
): Promise<AccessToken> {
  return endpoint.request(
    [
      ['grant_type', JWT_BEARER_GRANT],
      ['assertion', assertion],
    ],
    options.auth,
    options.clientId,
    fetchOptions,
    [assertion],
    requestedScopes,
  )
}

class ExternalJwtBearerSource implements TokenSource {
  readonly key: string
  readonly #endpoint: TokenEndpoint
  readonly #options: JwtBearerAssertionOptions
  readonly #origin: IssuedAssertionReader

  constructor(options: JwtBearerAssertionOptions) {
    this.#endpoint = new TokenEndpoint(options, 'jwtBearer')
    for (const signedOnly of ['key', 'issuer', 'subject', 'claims', 'kid', 'alg', 'scopeIn']) {
      if ((options as unknown as Record<string, unknown>)[signedOnly] !== undefined) {
        throw new TypeError(`jwtBearer: ${signedOnly} is for assertions jwtBearer signs; not with assertion`)
      }
    }
    if (options.auth !== undefined && options.clientId === undefined) {
      throw new TypeError('jwtBearer: auth needs a clientId')
    }
    this.#origin = issuedAssertionReader(options.assertion, options.assertionId, 'jwtBearer')
    this.#options = options
    this.key = cacheKey('jwt-bearer', this.#endpoint.keyUrl, [
      named('assertion', this.#origin.fingerprint),
      ...this.#endpoint.keySegments,
      clientSegment(options.clientId, options.auth),
    ])
  }

  /** The DPoP key the tokens are bound to, when `dpop` was given. */
  get dpop(): DpopKey | undefined {
    return this.#endpoint.dpop
  }

  async fetchToken(options?: FetchTokenOptions): Promise<AccessToken> {
    const o = this.#options
    const clock = options?.clock ?? o.clock ?? systemClock
    const assertion = await this.#origin.read({
      tokenUrl: this.#endpoint.tokenUrl,
      clientId: o.clientId ?? '',
      now: wallTime(clock),
    })
    return grantWith(this.#endpoint, assertion, o, options)
  }

  toJSON(): Record<string, string> {
    return { kind: 'jwtBearer', from: this.#origin.where, key: this.key }
  }

  [inspect.custom](): string {
    return `TokenSource ${inspect(this.toJSON())}`
  }
}

class JwtBearerSource implements TokenSource {
  readonly key: string
  readonly #endpoint: TokenEndpoint
  readonly #options: JwtBearerOptions
  readonly #signing: SigningKey
  /** Scopes for the assertion's `scope` claim (`scopeIn: 'assertion'`), normalised. */
  readonly #assertionScopes: readonly string[]

  constructor(options: JwtBearerOptions) {
    const scopeInAssertion = options.scopeIn === 'assertion'
    this.#assertionScopes = scopeInAssertion ? normalizeScopes(options.scopes ?? []) : []
    if (this.#assertionScopes.some((scope) => !isValidScopeToken(scope))) {
      throw new TypeError('jwtBearer: scope contains characters RFC 6749 §3.3 forbids')
    }
    this.#endpoint = new TokenEndpoint(scopeInAssertion ? { ...options, scopes: [] } : options, 'jwtBearer')
    if (typeof options.issuer !== 'string' || options.issuer.length === 0) {
      throw new TypeError('jwtBearer: issuer must be a non-empty string')
    }
    // Sent empty (`sub: ""`, `kid: ""`, `aud: ""`), each would yet share the key of none.
    for (const name of ['subject', 'kid', 'assertionAudience'] as const) {
      const value: unknown = options[name]
      if (value !== undefined && (typeof value !== 'string' || value === '')) {
        throw new TypeError(`jwtBearer: ${name} must be a non-empty string when given`)
      }
    }
    const lifetime = options.assertionLifetimeMs ?? 60_000
    if (!Number.isFinite(lifetime) || lifetime < 1000 || lifetime > 3_600_000) {
      throw new TypeError('jwtBearer: assertionLifetimeMs must be between 1000 and 3600000')
    }
    if (options.auth !== undefined && options.clientId === undefined) {
      throw new TypeError('jwtBearer: auth needs a clientId')
    }
    this.#signing = loadSigningKey(options.key, options.alg, 'jwtBearer')
    this.#options = options
    const { kid, assertionAudience } = options
    this.key = cacheKey('jwt-bearer', this.#endpoint.keyUrl, [
      positional(options.issuer),
      positional(options.subject ?? ''),
      positional(
        fingerprint(
          'jwt-bearer-key',
          this.#signing.thumbprint,
          this.#signing.alg,
          kid ?? '',
          assertionAudience ?? '',
        ),
      ),
      ...this.#endpoint.keySegments,
      named('ascope', scopeInAssertion ? this.#assertionScopes : undefined),
      named(
        'c',
        options.claims === undefined ? undefined : fingerprint('claims', JSON.stringify(options.claims)),
      ),
      clientSegment(options.clientId, options.auth),
    ])
  }

  /** The DPoP key the tokens are bound to, when `dpop` was given. */
  get dpop(): DpopKey | undefined {
    return this.#endpoint.dpop
  }

  async fetchToken(options?: FetchTokenOptions): Promise<AccessToken> {
    const o = this.#options
    const clock = options?.clock ?? o.clock ?? systemClock
    const extra: Record<string, unknown> = { ...o.claims }
    if (this.#assertionScopes.length > 0) extra['scope'] = this.#assertionScopes.join(' ')
    const assertion = await signAssertion(this.#signing, o.kid, {
      iss: o.issuer,
      sub: o.subject,
      aud: o.assertionAudience ?? this.#endpoint.tokenUrl,
      lifetimeMs: o.assertionLifetimeMs ?? 60_000,
      now: wallTime(clock),
      extra,
    })
    const scopes = this.#assertionScopes.length > 0 ? this.#assertionScopes : this.#endpoint.scopes
    return grantWith(this.#endpoint, assertion, o, options, scopes)
  }

  toJSON(): Record<string, string> {
    return { kind: 'jwtBearer', key: this.key }
  }

  [inspect.custom](): string {
    return `TokenSource ${inspect(this.toJSON())}`
  }
}

/**
 * The JWT-bearer authorization grant (RFC 7523 §2.1): a signed assertion is exchanged for an
 * access token, as service accounts of cloud APIs do. A fresh assertion is signed per request.
 *
 * @example
 * ```ts
 * import { jwtBearer } from 'tokenkeeper'
 * const source = jwtBearer({
 *   tokenUrl: 'https://oauth2.example.com/token',
 *   issuer: 'robot@project.example.com',
 *   key: process.env.SERVICE_ACCOUNT_KEY_PEM!,
 *   scopes: ['https://api.example.com/auth/read'],
 *   scopeIn: 'assertion',
 * })
 * // Or with an assertion someone else issues, read for every request (RFC 7523 §2.1):
 * const federated = jwtBearer({
 *   tokenUrl: 'https://oauth2.example.com/token',
 *   assertion: { file: '/var/run/secrets/tokens/oidc-token' },
 * })
 * ```
 */
export function jwtBearer(options: JwtBearerOptions | JwtBearerAssertionOptions): TokenSource {
  if (
    typeof options === 'object' &&
    options !== null &&
    'assertion' in options &&
    options.assertion !== undefined
  ) {
    return new ExternalJwtBearerSource(options)
  }
  return new JwtBearerSource(options as JwtBearerOptions)
}
