import { systemClock, wallTime, type Clock } from '../clock.js'
import { isOAuthError, OAuthError } from '../errors.js'
import { postTokenRequest, type FetchLike, type TokenHttpResult } from '../http/token-request.js'
import { checkTokenUrl, describeEndpoint } from '../http/url.js'
import { isHttpToken, type AccessToken } from '../token/access-token.js'
import { parseTokenResponse } from '../token/parse.js'
import { isValidScopeToken, normalizeScopes } from '../token/scopes.js'
import type { ClientAuth } from './auth.js'
import { dpopKey, type DpopKey, type DpopKeyPair } from './dpop.js'
import { certificateOf } from './mtls.js'
import { fingerprint, keyPart } from './fingerprint.js'
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
  /** A `fetch` to use instead of the global one (proxies, tracing). Redirects are never followed. */
  readonly fetch?: FetchLike
  /** Timeout of each token request, body included. Default 10 s. */
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

const RESERVED_PARAMS = new Set([
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

function positive(value: number | undefined, name: string, what: string): void {
  if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
    throw new TypeError(`${what}: ${name} must be a positive number of milliseconds`)
  }
}

/** The checked, normalised form of {@link EndpointOptions}, shared by the token sources. */
export class TokenEndpoint {
  readonly url: URL
  readonly tokenUrl: string
  readonly scopes: readonly string[]
  readonly #options: EndpointOptions
  readonly #params: readonly (readonly [string, string])[]
  /** Values that may be secret (extra parameters): kept out of every error. */
  readonly #paramSecrets: readonly string[]
  readonly #keySuffix: string
  /** The key tokens are bound to, when `dpop` is set. */
  readonly dpop: DpopKey | undefined

  constructor(options: EndpointOptions, what: string) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`${what}: options are required`)
    this.url = checkTokenUrl(options.tokenUrl, `${what}: tokenUrl`)
    this.tokenUrl = String(options.tokenUrl)
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
    if (options.audience !== undefined) params.push(['audience', options.audience])
    const resources = options.resource === undefined ? [] : [options.resource].flat()
    for (const resource of [...new Set(resources)].sort()) params.push(['resource', resource])
    const extras = Object.entries(options.extraParams ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    for (const [name, value] of extras) {
      if (RESERVED_PARAMS.has(name)) throw new TypeError(`${what}: extraParams must not set ${name}`)
      params.push([name, String(value)])
    }
    this.#params = params
    this.#paramSecrets = extras.map(([, value]) => String(value))
    this.#options = options
    const audience = options.audience === undefined ? '' : `|aud=${keyPart(options.audience)}`
    const resource = resources.length === 0 ? '' : `|res=${keyPart([...new Set(resources)].sort().join(' '))}`
    const extra = extras.length === 0 ? '' : `|x=${fingerprint('extra-params', JSON.stringify(extras))}`
    // Options that change which token is returned or accepted, and headers (which may carry
    // credentials), enter the key as one fingerprint, present only when any is set.
    const acceptance = [
      options.defaultLifetimeMs ?? '',
      options.requireRequestedScopes === true ? 'require-scopes' : '',
      [...(options.acceptedTokenTypes ?? [])]
        .map((t) => t.toLowerCase())
        .sort()
        .join(' '),
      JSON.stringify(
        Object.entries(options.headers ?? {})
          .map(([n, v]) => [n.toLowerCase(), v])
          .sort(),
      ),
    ]
    const options_ =
      acceptance.join('') === '[]' ? '' : `|o=${fingerprint('endpoint-options', ...acceptance.map(String))}`
    // The key's thumbprint: another key never shares a token (RFC 9449 binds it to the key).
    const dpop =
      this.dpop === undefined
        ? ''
        : `|dpop=${this.dpop.thumbprint}${options.requireDpopBinding === true ? ':required' : ''}`
    this.#keySuffix = `|scope=${keyPart(this.scopes.join(' '))}${audience}${resource}${extra}${options_}${dpop}`
  }

  /**
   * The token URL as a key segment: origin and path, with any query string (which may hold an
   * API key) replaced by its fingerprint.
   */
  get keyUrl(): string {
    const { origin, pathname, search } = this.url
    return keyPart(`${origin}${pathname}${search === '' ? '' : `?#${fingerprint('query', search)}`}`)
  }

  /** The key segments every endpoint source shares: scopes, audience, resource, extras. */
  get keySuffix(): string {
    return this.#keySuffix
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
    const dpop = this.dpop
    const origin = this.url.origin
    let result: TokenHttpResult
    // RFC 9449 §8: a `use_dpop_nonce` refusal that brings a new nonce is retried once with it.
    for (let attempt = 1; ; attempt++) {
      const sentNonce = dpop?.nonce(origin)
      try {
        result = await this.#send(grant, auth, clientId, options, clock, secrets, sentNonce)
        break
      } catch (error) {
        if (dpop === undefined || !isOAuthError(error, 'use_dpop_nonce')) throw error
        if (attempt === 1 && dpop.nonce(origin) !== sentNonce) continue
        throw nonceExhausted(error, attempt)
      }
    }
    return parseTokenResponse(result.json, {
      issuedAt: result.sentAt,
      status: result.status,
      requestedScopes,
      endpoint: describeEndpoint(this.url),
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
    grant: readonly (readonly [string, string])[],
    auth: ClientAuth | undefined,
    clientId: string | undefined,
    options: FetchTokenOptions | undefined,
    clock: Clock,
    secrets: readonly string[],
    nonce: string | undefined,
  ): Promise<TokenHttpResult> {
    const body = new URLSearchParams()
    for (const [name, value] of grant) body.set(name, value)
    if (this.scopes.length > 0) body.set('scope', this.scopes.join(' '))
    for (const [name, value] of this.#params) body.append(name, value)
    const headers: Record<string, string> = { ...this.#options.headers }
    const used = [...secrets, ...this.#paramSecrets]
    if (auth !== undefined && clientId !== undefined) {
      used.push(
        ...(await auth.apply({ clientId, tokenUrl: this.tokenUrl, now: wallTime(clock), body, headers })),
      )
    } else if (clientId !== undefined) {
      body.set('client_id', clientId)
    }
    const dpop = this.dpop
    if (dpop !== undefined) {
      const proof = await dpop.proof({ htm: 'POST', htu: this.url, now: wallTime(clock), nonce })
      headers['dpop'] = proof
      used.push(proof)
    }
    const origin = this.url.origin
    return postTokenRequest({
      url: this.url,
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
