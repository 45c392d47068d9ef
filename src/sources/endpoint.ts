import { systemClock, wallTime, type Clock } from '../clock.js'
import { isOAuthError, isTokenkeeperError, OAuthError, TokenkeeperError } from '../errors.js'
import { postTokenRequest, type FetchLike, type TokenHttpResult } from '../http/token-request.js'
import { checkTokenUrl, describeEndpoint } from '../http/url.js'
import { isHttpToken, type AccessToken } from '../token/access-token.js'
import { parseTokenResponse } from '../token/parse.js'
import { isValidScopeToken, normalizeScopes } from '../token/scopes.js'
import { SecretSet } from '../secrets.js'
import { heldSecrets, type ClientAuth } from './auth.js'
import { dpopKey, type DpopKey, type DpopKeyPair } from './dpop.js'
import { certificateOf } from './mtls.js'
import {
  checkIssuer,
  DiscoveryCache,
  processDiscoveryCache,
  resolveTokenEndpoint,
  type AuthorizationServerMetadata,
} from './discovery.js'
import { discoveryKeyPart, named, tokenUrlKeyPart, type KeySegment } from './cache-key.js'
import { fingerprint } from './fingerprint.js'
import type { FetchTokenOptions } from './types.js'

/** Options every token-endpoint source shares. */
export interface EndpointOptions {
  /** The token endpoint. Must be https, or http to a loopback address. */
  readonly tokenUrl: string | URL
  /** Scopes to request (RFC 6749 §3.3). Order and duplicates do not matter. */
  readonly scopes?: readonly string[]
  /** `audience` parameter, as Auth0, Okta and others use to name the API. */
  readonly audience?: string
  /** `resource` parameter(s) (RFC 8707). */
  readonly resource?: string | readonly string[]
  /**
   * Further form parameters. They are part of the cache key (hashed, in case they are
   * sensitive), and their values are kept out of every error like secrets.
   */
  readonly extraParams?: Readonly<Record<string, string>>
  /** Extra HTTP headers for the token request. Their values are kept out of every error like secrets. */
  readonly headers?: Readonly<Record<string, string>>
  /**
   * A `fetch` to use instead of the global one (proxies, tracing). Redirects are never followed.
   *
   * Warning: it must honour the `redirect: 'manual'` it is given. One that follows a redirect
   * anyway sends the request on, form-body credentials included, to wherever the endpoint points;
   * its answer is then refused (`REDIRECT_REJECTED`), but what was sent cannot be taken back.
   */
  readonly fetch?: FetchLike
  /**
   * Timeout of each token request, body included, on the clock of the call (the manager's).
   * Default 10 s.
   */
  readonly timeoutMs?: number
  /** Cap on the response body. Default 256 KiB. */
  readonly maxResponseBytes?: number
  /** Lifetime assumed when the response has no `expires_in`. Default 1 hour. */
  readonly defaultLifetimeMs?: number
  /** Fail when fewer scopes are granted than requested, instead of recording it. Default false. */
  readonly requireRequestedScopes?: boolean
  /** Token types accepted, case-insensitive. Default `['bearer']`. */
  readonly acceptedTokenTypes?: readonly string[]
  /** Clock used when the caller passes none. Default: the system clock. */
  readonly clock?: Clock
  /**
   * Binds the tokens to this key with DPoP (RFC 9449): every token request carries a fresh proof,
   * a `use_dpop_nonce` refusal is retried once with the server's nonce, and the fetch wrapper
   * signs a proof for every request that uses the token. The key's thumbprint is part of the
   * cache key. A `CryptoKeyPair`, a pair of `KeyObject`s (see `generateDpopKey()`) or a
   * `dpopKey(...)`. The private key never leaves this process: bound tokens are not written to a
   * shared store. `token_type` `DPoP` is then accepted besides `Bearer`.
   */
  readonly dpop?: DpopKeyPair | DpopKey
  /**
   * With `dpop`: a `Bearer` answer to a request with a proof fails with `DPOP_NOT_BOUND` instead
   * of being used as a bearer token (recorded in `token.binding.bound`). Default false.
   */
  readonly requireDpopBinding?: boolean
}

/**
 * {@link EndpointOptions} as a source hands them over: a source whose grant allows several
 * `audience` parameters (token exchange, RFC 8693 §2.1) passes an array.
 */
export type EndpointInput = Omit<EndpointOptions, 'audience'> & {
  readonly audience?: string | readonly string[] | undefined
}

const RESERVED_PARAMS = new Set([
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
  'grant_type',
  'scope',
  'audience',
  'resource',
  'client_id',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
  'assertion',
])

/**
 * A discovery failure as this source may show it: the cache's error is shared by every source of
 * the issuer and quotes what the server sent (its `issuer`, its methods, a host), so a server
 * that echoes this source's secret there gets a copy without it.
 */
function withoutSecrets(error: unknown, secrets: SecretSet): unknown {
  if (!isTokenkeeperError(error)) return error
  const message = secrets.scrub(error.message)
  if (message === error.message) return error
  return new TokenkeeperError(error.code, message, {
    retryable: error.retryable,
    ...(error.status === undefined ? {} : { status: error.status }),
    ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
  })
}

function positive(value: number | undefined, name: string, what: string): void {
  if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
    throw new TypeError(`${what}: ${name} must be a positive number of milliseconds`)
  }
}

/** Where a source's token endpoint is found instead of a `tokenUrl`: an issuer to discover. @internal */
export interface EndpointDiscovery {
  /** The issuer, checked with `checkIssuer`, exactly as given. */
  readonly issuer: string
  /** Default: the process-wide cache. */
  readonly cache?: DiscoveryCache | undefined
}

/**
 * The headers as the key names them: lower-case names, sorted. Names that differ only in case
 * are one header on the wire, its values joined by `, ` in the order given (as `fetch` sends
 * them), so they enter the key as that one header: `{ 'X-A': 'a', 'x-a': 'b' }` is
 * `x-a: a, b`, not `x-a: b, a`, and the same key as `{ 'x-a': 'a, b' }`. Headers without such
 * names keep the entries (and key bytes) they always had.
 */
function headerKeyEntries(headers: Readonly<Record<string, string>>): [string, string][] {
  const joined = new Map<string, string>()
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    const before = joined.get(lower)
    joined.set(lower, before === undefined ? value : `${before}, ${value}`)
  }
  return [...joined].sort()
}

/** The checked, normalised form of {@link EndpointOptions}, shared by the token sources. */
export class TokenEndpoint {
  readonly scopes: readonly string[]
  /** The configured token endpoint; `undefined` for an endpoint found by discovery. */
  readonly #fixed: { readonly url: URL; readonly tokenUrl: string; readonly keyUrl: string } | undefined
  readonly #discovery: { readonly issuer: string; readonly cache: DiscoveryCache } | undefined
  /** The last document the key segment was computed from, and that segment. */
  #keyedFrom: AuthorizationServerMetadata | undefined
  #discoveredKeyUrl = ''
  readonly #options: Omit<EndpointInput, 'tokenUrl'>
  readonly #params: readonly (readonly [string, string])[]
  /** Values that may be secret (extra parameters): kept out of every error. */
  readonly #paramSecrets: readonly string[]
  readonly #keySegments: readonly (KeySegment | undefined)[]
  /** The key tokens are bound to, when `dpop` is set. */
  readonly dpop: DpopKey | undefined

  constructor(
    options: Omit<EndpointInput, 'tokenUrl'> & { readonly tokenUrl?: string | URL | undefined },
    what: string,
    discovery?: EndpointDiscovery,
  ) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`${what}: options are required`)
    if (discovery === undefined) {
      const url = checkTokenUrl(options.tokenUrl as string | URL, `${what}: tokenUrl`)
      this.#fixed = { url, tokenUrl: String(options.tokenUrl), keyUrl: tokenUrlKeyPart(url) }
      this.#discovery = undefined
    } else {
      this.#fixed = undefined
      this.#discovery = { issuer: discovery.issuer, cache: discovery.cache ?? processDiscoveryCache }
    }
    if (options.scopes !== undefined && !Array.isArray(options.scopes)) {
      throw new TypeError(`${what}: scopes must be an array of strings`)
    }
    this.scopes = normalizeScopes(options.scopes ?? [])
    const badScope = this.scopes.find((scope) => !isValidScopeToken(scope))
    if (badScope !== undefined)
      throw new TypeError(`${what}: scope contains characters RFC 6749 §3.3 forbids`)
    if (
      options.acceptedTokenTypes !== undefined &&
      (!Array.isArray(options.acceptedTokenTypes) || !options.acceptedTokenTypes.every(isHttpToken))
    ) {
      throw new TypeError(`${what}: acceptedTokenTypes must be token type names such as 'bearer' or 'DPoP'`)
    }
    this.dpop = options.dpop === undefined ? undefined : dpopKey(options.dpop, what)
    if (options.requireDpopBinding !== undefined && this.dpop === undefined) {
      throw new TypeError(`${what}: requireDpopBinding needs a dpop key`)
    }
    positive(options.timeoutMs, 'timeoutMs', what)
    positive(options.maxResponseBytes, 'maxResponseBytes', what)
    positive(options.defaultLifetimeMs, 'defaultLifetimeMs', what)
    const params: [string, string][] = []
    // One string keeps its place and key segment; an array is sent as one parameter each, sorted.
    const audiences =
      options.audience === undefined
        ? []
        : typeof options.audience === 'string'
          ? [options.audience]
          : [...new Set(options.audience)].sort()
    for (const audience of audiences) params.push(['audience', audience])
    const resources = [...new Set(options.resource === undefined ? [] : [options.resource].flat())].sort()
    for (const resource of resources) params.push(['resource', resource])
    // Each value as it is sent (its String()): the key is made of these, not of the values as
    // given, whose JSON is one `null` for `null`, `undefined` and `NaN` and one `{}` for objects.
    const extras = Object.entries(options.extraParams ?? {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]): [string, string] => [name, String(value)])
    for (const [name, value] of extras) {
      if (RESERVED_PARAMS.has(name)) throw new TypeError(`${what}: extraParams must not set ${name}`)
      params.push([name, value])
    }
    this.#params = params
    this.#paramSecrets = extras.map(([, value]) => value)
    this.#options = options
    // Options that change which token is returned or accepted, and headers (which may carry
    // credentials), enter the key as one fingerprint, present only when any is set.
    const acceptance = [
      options.defaultLifetimeMs ?? '',
      options.requireRequestedScopes === true ? 'require-scopes' : '',
      [...(options.acceptedTokenTypes ?? [])]
        .map((t) => t.toLowerCase())
        .sort()
        .join(' '),
      JSON.stringify(headerKeyEntries(options.headers ?? {})),
    ]
    this.#keySegments = [
      named('scope', this.scopes),
      ...audiences.map((one) => named('aud', one)),
      named('res', resources.length === 0 ? undefined : resources),
      named('x', extras.length === 0 ? undefined : fingerprint('extra-params', JSON.stringify(extras))),
      named(
        'o',
        acceptance.join('') === '[]' ? undefined : fingerprint('endpoint-options', ...acceptance.map(String)),
      ),
      // The key's thumbprint: another key never shares a token (RFC 9449 binds it to the key).
      named(
        'dpop',
        this.dpop === undefined
          ? undefined
          : `${this.dpop.thumbprint}${options.requireDpopBinding === true ? ':required' : ''}`,
      ),
    ]
  }

  /** The configured token endpoint, parsed. Only for endpoints built with a `tokenUrl`. */
  get url(): URL {
    return this.#configured().url
  }

  /** The configured token URL, exactly as given. Only for endpoints built with a `tokenUrl`. */
  get tokenUrl(): string {
    return this.#configured().tokenUrl
  }

  #configured(): { readonly url: URL; readonly tokenUrl: string } {
    if (this.#fixed === undefined)
      throw new TypeError('this token endpoint is found by discovery; it has no fixed URL')
    return this.#fixed
  }

  /**
   * The token URL as the endpoint part of the key (`cacheKey` escapes it): origin and path, with
   * any query string (which may hold an API key) replaced by its fingerprint. For an endpoint
   * found by discovery, the discovered token endpoint's (so the key is the one a `tokenUrl`
   * source has), or, until the issuer's document is known, `discovery:<issuer>`.
   */
  get keyUrl(): string {
    if (this.#fixed !== undefined) return this.#fixed.keyUrl
    const { issuer, cache } = this.#discovery as { issuer: string; cache: DiscoveryCache }
    const document = cache.peek(issuer)
    if (document === undefined) return discoveryKeyPart(issuer)
    if (document !== this.#keyedFrom) {
      this.#keyedFrom = document
      this.#discoveredKeyUrl = tokenUrlKeyPart(document.tokenEndpoint)
    }
    return this.#discoveredKeyUrl
  }

  /** The issuer this endpoint is discovered from, if it is. */
  get issuer(): string | undefined {
    return this.#discovery?.issuer
  }

  /**
   * `undefined` when {@link keyUrl} is final (a configured URL, or a discovered document is
   * cached); else a promise that settles, never rejecting, once discovery has been tried.
   */
  whenKeyKnown(): Promise<void> | undefined {
    if (this.#discovery === undefined) return undefined
    const { issuer, cache } = this.#discovery
    if (cache.peek(issuer) !== undefined) return undefined
    const o = this.#options
    return cache
      .get(issuer, { fetch: o.fetch, timeoutMs: o.timeoutMs, maxResponseBytes: o.maxResponseBytes })
      .then(
        () => undefined,
        () => undefined, // fetchToken reports it, and the manager remembers it under the key
      )
  }

  /**
   * The key segments every endpoint source shares, for `cacheKey`: scopes, audience,
   * resource, extra parameters, the options that change the token, the DPoP key.
   */
  get keySegments(): readonly (KeySegment | undefined)[] {
    return this.#keySegments
  }

  /**
   * The token endpoint to send to: the configured one, or the one the issuer's discovery document
   * names (discovered once per issuer per process; its checks, `authMethod`'s included, apply).
   */
  async resolveUrl(
    auth: ClientAuth | undefined,
    signal: AbortSignal | undefined,
    secrets: readonly string[] = [],
  ): Promise<{ readonly url: URL; readonly tokenUrl: string }> {
    if (this.#fixed !== undefined) return this.#fixed
    const { issuer, cache } = this.#discovery as { issuer: string; cache: DiscoveryCache }
    try {
      return await resolveTokenEndpoint(issuer, {
        authMethod: auth?.method,
        cache,
        fetch: this.#options.fetch,
        timeoutMs: this.#options.timeoutMs,
        maxResponseBytes: this.#options.maxResponseBytes,
        signal,
      })
    } catch (error) {
      // A document may echo what this source holds: its error is a copy without those.
      const held = [
        ...secrets,
        ...this.#paramSecrets,
        ...heldSecrets(auth),
        ...Object.values(this.#options.headers ?? {}),
      ]
      throw withoutSecrets(error, new SecretSet(held))
    }
  }

  /**
   * Sends one token request with `grant` parameters and the given client authentication.
   * `requestedScopes`: what the grant asked for when not through the `scope` field (the
   * JWT-bearer assertion's `scope` claim), for an omitted response `scope` and
   * `requireRequestedScopes`.
   */
  async request(
    grant: readonly (readonly [string, string])[],
    auth: ClientAuth | undefined,
    clientId: string | undefined,
    options: FetchTokenOptions | undefined,
    secrets: readonly string[] = [],
    requestedScopes: readonly string[] = this.scopes,
  ): Promise<AccessToken> {
    const clock = options?.clock ?? this.#options.clock ?? systemClock
    // Secrets of the source the discovery document may echo (the request's own come later).
    const target = await this.resolveUrl(auth, options?.signal, [...secrets, ...this.#paramSecrets])
    const dpop = this.dpop
    const origin = target.url.origin
    let result: TokenHttpResult
    // The credentials a granted scope must not repeat (not parameter values, which may be words).
    const granted = [...secrets]
    // RFC 9449 §8: a `use_dpop_nonce` refusal that brings a new nonce is retried once with it.
    for (let attempt = 1; ; attempt++) {
      const sentNonce = dpop?.nonce(origin)
      try {
        result = await this.#send(target, grant, auth, clientId, options, clock, secrets, sentNonce, granted)
        break
      } catch (error) {
        if (dpop === undefined || !isOAuthError(error, 'use_dpop_nonce')) throw error
        if (attempt === 1 && dpop.nonce(origin) !== sentNonce) continue
        throw nonceExhausted(error, attempt)
      }
    }
    return parseTokenResponse(result.json, {
      secrets: new SecretSet(granted),
      issuedAt: result.sentAt,
      status: result.status,
      requestedScopes,
      endpoint: describeEndpoint(target.url),
      ...(this.#options.defaultLifetimeMs === undefined
        ? {}
        : { defaultLifetimeMs: this.#options.defaultLifetimeMs }),
      ...(this.#options.requireRequestedScopes === undefined
        ? {}
        : { requireRequestedScopes: this.#options.requireRequestedScopes }),
      ...(this.#options.acceptedTokenTypes === undefined
        ? dpop === undefined
          ? {}
          : { acceptedTokenTypes: ['bearer', 'dpop'] }
        : { acceptedTokenTypes: this.#options.acceptedTokenTypes }),
      ...(dpop === undefined
        ? {}
        : { dpopJkt: dpop.thumbprint, requireDpopBinding: this.#options.requireDpopBinding === true }),
    })
  }

  /**
   * One token request: the body, the client authentication (a fresh assertion each time), and a
   * fresh DPoP proof with `nonce` when there is a key.
   */
  async #send(
    target: { readonly url: URL; readonly tokenUrl: string },
    grant: readonly (readonly [string, string])[],
    auth: ClientAuth | undefined,
    clientId: string | undefined,
    options: FetchTokenOptions | undefined,
    clock: Clock,
    secrets: readonly string[],
    nonce: string | undefined,
    granted: string[],
  ): Promise<TokenHttpResult> {
    const { url, tokenUrl } = target
    const body = new URLSearchParams()
    for (const [name, value] of grant) body.set(name, value)
    if (this.scopes.length > 0) body.set('scope', this.scopes.join(' '))
    for (const [name, value] of this.#params) body.append(name, value)
    const headers: Record<string, string> = { ...this.#options.headers }
    const used = [...secrets, ...this.#paramSecrets]
    if (auth !== undefined && clientId !== undefined) {
      const credentials = await auth.apply({ clientId, tokenUrl, now: wallTime(clock), body, headers })
      used.push(...credentials)
      granted.push(...credentials)
    } else if (clientId !== undefined) {
      body.set('client_id', clientId)
    }
    const dpop = this.dpop
    if (dpop !== undefined) {
      const proof = await dpop.proof({ htm: 'POST', htu: url, now: wallTime(clock), nonce })
      headers['dpop'] = proof
      used.push(proof)
      granted.push(proof)
    }
    const origin = url.origin
    return postTokenRequest({
      url,
      body,
      headers,
      // Mutual TLS (RFC 8705): the request goes over a connection that presents the certificate.
      fetch: certificateOf(auth)?.fetch ?? this.#options.fetch,
      timeoutMs: this.#options.timeoutMs,
      maxResponseBytes: this.#options.maxResponseBytes,
      signal: options?.signal,
      clock,
      secrets: used,
      sentAssertion: body.has('client_assertion') || body.has('assertion'),
      onResponse:
        dpop === undefined ? undefined : (received) => dpop.rememberNonce(origin, received.get('dpop-nonce')),
    })
  }
}

/**
 * A `use_dpop_nonce` refusal that stands: after the one retry with the server's nonce, or with no
 * new nonce to retry with. Retryable: the next attempt signs with the latest nonce.
 */
function nonceExhausted(error: OAuthError, attempt: number): OAuthError {
  const why =
    attempt > 1
      ? 'again after one retry with the nonce it sent (DPoP-Nonce)'
      : 'without sending a new nonce (DPoP-Nonce) to retry with'
  return new OAuthError(
    { error: error.error, error_description: error.error_description, error_uri: error.error_uri },
    `${error.message}; it asked for a DPoP nonce ${why}`,
    {
      status: error.status ?? 400,
      retryable: true,
      ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
      response: error.response,
    },
  )
}

/** Where a source's options say its token endpoint is: a `tokenUrl`, or an `issuer` to discover. */
export interface EndpointLocation {
  readonly tokenUrl?: string | URL | undefined
  readonly issuer?: string | URL | undefined
  readonly discovery?: DiscoveryCache | undefined
}

/**
 * The endpoint of a source's options: from `tokenUrl`, or from an `issuer` to discover (a
 * TypeError for neither or both, or a `discovery` cache without an issuer). @internal
 */
export function endpointFrom(
  options: Omit<EndpointInput, 'tokenUrl'> & EndpointLocation,
  what: string,
): TokenEndpoint {
  if (typeof options !== 'object' || options === null) throw new TypeError(`${what}: options are required`)
  if (options.issuer === undefined) {
    if (options.discovery !== undefined) throw new TypeError(`${what}: discovery needs an issuer`)
    return new TokenEndpoint(options, what)
  }
  if (options.tokenUrl !== undefined) throw new TypeError(`${what}: give tokenUrl or issuer, not both`)
  if (options.discovery !== undefined && !(options.discovery instanceof DiscoveryCache)) {
    throw new TypeError(`${what}: discovery must be a DiscoveryCache`)
  }
  return new TokenEndpoint(options, what, {
    issuer: checkIssuer(options.issuer, `${what}: issuer`),
    cache: options.discovery,
  })
}
