import { systemClock, wallTime, type Clock } from '../clock.js'
import { postTokenRequest, type FetchLike } from '../http/token-request.js'
import { checkTokenUrl, describeEndpoint } from '../http/url.js'
import { isHttpToken, type AccessToken } from '../token/access-token.js'
import { parseTokenResponse } from '../token/parse.js'
import { isValidScopeToken, normalizeScopes } from '../token/scopes.js'
import type { ClientAuth } from './auth.js'
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
  readonly #options: EndpointInput
  readonly #params: readonly (readonly [string, string])[]
  /** Values that may be secret (extra parameters): kept out of every error. */
  readonly #paramSecrets: readonly string[]
  readonly #keySuffix: string

  constructor(options: EndpointInput, what: string) {
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
    const audience = audiences.map((one) => `|aud=${keyPart(one)}`).join('')
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
    this.#keySuffix = `|scope=${keyPart(this.scopes.join(' '))}${audience}${resource}${extra}${options_}`
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
    const result = await postTokenRequest({
      url: this.url,
      body,
      headers,
      fetch: this.#options.fetch,
      timeoutMs: this.#options.timeoutMs,
      maxResponseBytes: this.#options.maxResponseBytes,
      signal: options?.signal,
      clock,
      secrets: used,
      sentAssertion: body.has('client_assertion') || body.has('assertion'),
    })
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
        ? {}
        : { acceptedTokenTypes: this.#options.acceptedTokenTypes }),
    })
  }
}
