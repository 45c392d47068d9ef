/**
 * Issuer discovery: the token endpoint of an authorization server found from its issuer URL,
 * by RFC 8414 (`/.well-known/oauth-authorization-server`, inserted before the issuer's path)
 * and then OpenID Connect Discovery 1.0 (`/.well-known/openid-configuration`, appended to it).
 * The document is fetched once per issuer per process ({@link DiscoveryCache}: single-flight,
 * cached, retried with backoff, refreshed when old) under the rules of token requests
 * (https or loopback, no redirects, a timeout, a size cap).
 */
import { raceAbort } from '../abort.js'
import { systemClock, wallTime, type Clock } from '../clock.js'
import { isTokenkeeperError, TokenkeeperError } from '../errors.js'
import { jsonOf, sendHttp, statusError, type FetchLike } from '../http/token-request.js'
import { checkTokenUrl, writtenHost } from '../http/url.js'
import { backoffDelayMs, type BackoffPolicy } from '../manager/policy.js'
import { scrubText, SecretSet } from '../secrets.js'
import { BoundedMap } from '../bounded.js'

/** The parts of an authorization server's metadata (RFC 8414 §2) that tokenkeeper uses, checked. */
export interface AuthorizationServerMetadata {
  /** `issuer`: exactly the issuer that was asked for (RFC 8414 §3.3). */
  readonly issuer: string
  /** `token_endpoint`, exactly as the document gives it (the default `aud` of client assertions). */
  readonly tokenUrl: string
  /** `token_endpoint`, parsed and checked: https, or http to a loopback address. */
  readonly tokenEndpoint: URL
  /**
   * `token_endpoint_auth_methods_supported`; when the document has none, `['client_secret_basic']`,
   * the default RFC 8414 §2 gives.
   */
  readonly tokenEndpointAuthMethods: readonly string[]
  /** Whether the document listed its methods (false: the RFC 8414 default applies). */
  readonly authMethodsListed: boolean
  /** The URL the document was read from. */
  readonly documentUrl: string
  /**
   * `mtls_endpoint_aliases.token_endpoint` (RFC 8705 §5), parsed and checked, when the document
   * gives one: where mutual-TLS clients send their token requests.
   */
  readonly mtlsTokenEndpoint?: MtlsTokenEndpoint | undefined
}

/** `mtls_endpoint_aliases.token_endpoint` of a discovery document (RFC 8705 §5). */
export interface MtlsTokenEndpoint {
  /** The alias, parsed and checked: https, or http to a loopback address. */
  readonly url: URL
  /** The alias exactly as the document gives it. */
  readonly tokenUrl: string
}

/** How one discovery request is sent: the token-request knobs of the source that asks. */
export interface DiscoveryRequestOptions {
  /** A `fetch` to use instead of the global one. Redirects are never followed. */
  readonly fetch?: FetchLike | undefined
  /** Timeout of each discovery request, body included, on the {@link DiscoveryCache}'s clock. Default 10 s. */
  readonly timeoutMs?: number | undefined
  /** Cap on the document. Default 256 KiB. */
  readonly maxResponseBytes?: number | undefined
  /** Ends this caller's wait only; the shared discovery request goes on. */
  readonly signal?: AbortSignal | undefined
}

/** Options of {@link DiscoveryCache}. */
export interface DiscoveryCacheOptions {
  /**
   * Time for the document's age, the backoff and each discovery request's `timeoutMs` (the
   * request is shared by every source that asks, so it runs on the cache's clock, not a
   * caller's). Default: the system clock. Tests inject a test clock.
   */
  readonly clock?: Clock
  /** Random numbers in [0, 1) for the backoff's jitter. Default `Math.random`. */
  readonly random?: () => number
  /**
   * A document older than this is fetched again at the next use, in the background: callers
   * keep getting the cached document meanwhile, and keep it if the new request fails. Default 1 hour.
   */
  readonly maxAgeMs?: number
  /**
   * Most issuers kept; the least recently used is forgotten first (a source of a forgotten
   * issuer discovers it again at its next use). Bounds the memory of a process that is handed
   * ever new issuer URLs. Default 1,000.
   */
  readonly maxEntries?: number
}

const DEFAULT_MAX_AGE_MS = 3_600_000
const DEFAULT_MAX_ENTRIES = 1_000
/** How many `token_endpoint_auth_methods_supported` values a message lists, each at most 64 characters. */
const SHOWN_METHODS = 10
/** Failed discoveries: 1 s, 2 s, 4 s ... up to 1 min, at least 30 s for errors a retry cannot fix. */
const DISCOVERY_BACKOFF: BackoffPolicy = Object.freeze({
  baseBackoffMs: 1_000,
  maxBackoffMs: 60_000,
  maxRetryAfterMs: 300_000,
  permanentErrorBackoffMs: 30_000,
})

const RFC8414_SUFFIX = '/.well-known/oauth-authorization-server'
const OIDC_SUFFIX = '/.well-known/openid-configuration'

/**
 * Checks an issuer identifier at construction (RFC 8414 §2): an absolute URL, https (http only to
 * a loopback address), no credentials, no query, no fragment. Returns it as a string, exactly as
 * given: that string is what the document's `issuer` must equal.
 */
export function checkIssuer(raw: unknown, what: string): string {
  if (typeof raw !== 'string' && !(raw instanceof URL)) throw new TypeError(`${what} must be a URL string`)
  const url = checkTokenUrl(raw, what)
  if (url.search !== '') throw new TypeError(`${what} must not contain a query (RFC 8414 §2)`)
  return typeof raw === 'string' ? raw : raw.href
}

/**
 * The two places an issuer's metadata may be, in the order they are tried: RFC 8414 §3.1 inserts
 * the well-known path between the host and the issuer's path (a terminating `/` removed), and
 * OpenID Connect Discovery 1.0 §4 appends it to the issuer.
 *
 * @example
 * ```ts
 * wellKnownUrls('https://idp.example/tenant')
 * // [https://idp.example/.well-known/oauth-authorization-server/tenant,
 * //  https://idp.example/tenant/.well-known/openid-configuration]
 * ```
 */
export function wellKnownUrls(issuer: string): readonly URL[] {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/$/, '')
  return [new URL(`${url.origin}${RFC8414_SUFFIX}${path}`), new URL(`${url.origin}${path}${OIDC_SUFFIX}`)]
}

function describeGet(url: URL): string {
  return `GET ${url.host}${url.pathname}`
}

function invalid(endpoint: string, why: string, status: number): TokenkeeperError {
  return new TokenkeeperError('INVALID_DISCOVERY_DOCUMENT', `${endpoint}: the discovery document ${why}`, {
    status,
    retryable: false,
  })
}

/** A short, printable rendering of a value the server sent, for a message. */
function shown(value: unknown): string {
  if (typeof value !== 'string') {
    if (value === undefined) return 'none'
    if (value === null) return 'null'
    return Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`
  }
  return `"${scrubText(value, new SecretSet(), 200)}"`
}

/** Checks the document against the issuer asked for; the fields tokenkeeper relies on. @internal */
export function parseMetadata(
  json: unknown,
  issuer: string,
  documentUrl: URL,
  status: number,
): AuthorizationServerMetadata {
  const endpoint = describeGet(documentUrl)
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TokenkeeperError(
      'RESPONSE_NOT_OBJECT',
      `${endpoint}: the discovery document is not a JSON object`,
      {
        status,
        retryable: false,
      },
    )
  }
  const fields = json as Record<string, unknown>
  if (fields['issuer'] !== issuer) {
    throw new TokenkeeperError(
      'DISCOVERY_ISSUER_MISMATCH',
      `${endpoint}: the discovery document names issuer ${shown(fields['issuer'])}, not "${issuer}"; RFC 8414 §3.3 forbids using it (is the issuer URL exact, trailing slash included?)`,
      { status, retryable: false },
    )
  }
  const raw = fields['token_endpoint']
  if (typeof raw !== 'string' || raw === '') throw invalid(endpoint, 'has no token_endpoint', status)
  let tokenEndpoint: URL
  try {
    tokenEndpoint = checkTokenUrl(raw, `the token_endpoint of ${issuer}`)
  } catch (error) {
    if (isTokenkeeperError(error)) {
      // INSECURE_TOKEN_URL, quoting the host as the document wrote it (see writtenHost).
      const host = scrubText(writtenHost(raw) ?? '', new SecretSet(), 200)
      throw new TokenkeeperError(
        'INSECURE_TOKEN_URL',
        `the token_endpoint of ${issuer} must use https (http is allowed only for loopback addresses), got ${scrubText(raw.split(':')[0] ?? '', new SecretSet(), 16)}://${host}`,
        { retryable: false },
      )
    }
    throw invalid(
      endpoint,
      `has a token_endpoint that is not a usable URL (${(error as Error).message})`,
      status,
    )
  }
  const methods = fields['token_endpoint_auth_methods_supported']
  if (methods !== undefined && (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string'))) {
    throw invalid(
      endpoint,
      'has a token_endpoint_auth_methods_supported that is not an array of strings',
      status,
    )
  }
  const aliases = fields['mtls_endpoint_aliases']
  const aliasRaw =
    typeof aliases === 'object' && aliases !== null
      ? (aliases as Record<string, unknown>)['token_endpoint']
      : undefined
  let mtlsTokenEndpoint: MtlsTokenEndpoint | undefined
  if (aliasRaw !== undefined) {
    if (typeof aliasRaw !== 'string' || aliasRaw === '') {
      throw invalid(endpoint, 'has an mtls_endpoint_aliases.token_endpoint that is not a string', status)
    }
    try {
      mtlsTokenEndpoint = {
        url: checkTokenUrl(aliasRaw, `the mTLS token_endpoint of ${issuer}`),
        tokenUrl: aliasRaw,
      }
    } catch (error) {
      if (isTokenkeeperError(error)) throw error
      throw invalid(endpoint, `has an mtls_endpoint_aliases.token_endpoint that is not a usable URL`, status)
    }
  }
  return {
    issuer,
    tokenUrl: raw,
    tokenEndpoint,
    ...(mtlsTokenEndpoint === undefined ? {} : { mtlsTokenEndpoint }),
    tokenEndpointAuthMethods: methods === undefined ? ['client_secret_basic'] : methods,
    authMethodsListed: methods !== undefined,
    documentUrl: documentUrl.href,
  }
}

/** Whether a failed well-known URL means "no document here" (try the next one). */
function absent(error: unknown): boolean {
  return (
    isTokenkeeperError(error) &&
    error.code === 'UNEXPECTED_STATUS' &&
    error.status !== undefined &&
    error.status >= 400 &&
    error.status < 500 &&
    error.status !== 408
  )
}

/** Whether a failed well-known URL answered something other than metadata (an HTML page). */
function notMetadata(error: unknown): boolean {
  return isTokenkeeperError(error) && (error.code === 'HTML_RESPONSE' || error.code === 'INVALID_JSON')
}

async function fetchDocument(
  url: URL,
  issuer: string,
  options: DiscoveryRequestOptions,
  clock: Clock,
): Promise<AuthorizationServerMetadata> {
  const endpoint = describeGet(url)
  const { response, text } = await sendHttp({
    method: 'GET',
    url,
    headers: { accept: 'application/json' },
    fetch: options.fetch,
    timeoutMs: options.timeoutMs,
    maxResponseBytes: options.maxResponseBytes,
    clock,
    secrets: new SecretSet(),
    endpoint,
    kind: 'discovery requests',
  })
  if (response.status < 200 || response.status >= 300) {
    throw statusError(response, text, endpoint, wallTime(clock), '; no metadata at this path')
  }
  return parseMetadata(jsonOf(response, text, endpoint), issuer, url, response.status)
}

/**
 * Fetches an issuer's metadata once, without a cache: the RFC 8414 URL first, the OpenID
 * Connect one when the first is not there (a 4xx other than 408 and 429) or is not JSON (an
 * HTML page served for every path). Transport failures, timeouts, 5xx and 429 end the attempt.
 * @internal
 */
export async function discover(
  issuer: string,
  options: DiscoveryRequestOptions,
  clock: Clock,
): Promise<AuthorizationServerMetadata> {
  const urls = wellKnownUrls(issuer)
  let unusable: TokenkeeperError | undefined
  for (const url of urls) {
    try {
      return await fetchDocument(url, issuer, options, clock)
    } catch (error) {
      if (!absent(error) && !notMetadata(error)) throw error
      if (notMetadata(error)) unusable ??= error as TokenkeeperError
    }
  }
  if (unusable !== undefined) throw unusable
  throw new TokenkeeperError(
    'DISCOVERY_NOT_FOUND',
    `no discovery document for issuer ${issuer}: ${urls.map(describeGet).join(' and ')} both answered that there is none; is the issuer URL right?`,
    { retryable: false },
  )
}

/**
 * Fails unless the server lists `method` in `token_endpoint_auth_methods_supported` (RFC 8414
 * §2; absent, only `client_secret_basic`). @internal
 */
export function checkAuthMethod(metadata: AuthorizationServerMetadata, method: string): void {
  const methods = metadata.tokenEndpointAuthMethods
  if (methods.includes(method)) return
  // The server's strings, bounded and without control characters (no forged log lines).
  const shownMethods = methods.slice(0, SHOWN_METHODS).map((one) => scrubText(one, new SecretSet(), 64))
  if (methods.length > SHOWN_METHODS) shownMethods.push(`and ${methods.length - SHOWN_METHODS} more`)
  const listed = metadata.authMethodsListed
    ? `it supports ${shownMethods.join(', ') || 'none'} (token_endpoint_auth_methods_supported)`
    : 'its metadata lists no token_endpoint_auth_methods_supported, which means client_secret_basic only (RFC 8414 §2)'
  throw new TokenkeeperError(
    'AUTH_METHOD_NOT_SUPPORTED',
    `issuer ${metadata.issuer} does not support client authentication by ${method} at its token endpoint: ${listed}`,
    { retryable: false },
  )
}

interface DiscoveryEntry {
  document: AuthorizationServerMetadata | undefined
  fetchedAt: number
  flight: Promise<AuthorizationServerMetadata> | undefined
  failure: { readonly error: unknown; readonly retryAt: number; readonly attempt: number } | undefined
}

/**
 * Discovered metadata by issuer: one request per issuer however many sources and callers ask
 * (callers join the request in flight), the document kept and fetched again in the background
 * once older than `maxAgeMs` (callers are served the cached one meanwhile, and through a failed
 * refresh). A failed discovery is remembered for a backoff (1 s doubling to 1 min with jitter,
 * `Retry-After` honoured, at least 30 s for errors a retry cannot fix): callers within it get
 * the same error at once, the next one after it tries again. At most `maxEntries` issuers are
 * kept (default 1,000), the least recently used forgotten first. Sources share one process-wide
 * cache unless given their own (`discovery` option), which tests do to inject a clock.
 *
 * @example
 * ```ts
 * import { DiscoveryCache, clientCredentials, clientSecretBasic } from 'tokenkeeper'
 * const discovery = new DiscoveryCache({ maxAgeMs: 15 * 60_000 })
 * const source = clientCredentials({
 *   issuer: 'https://idp.example',
 *   clientId: 'svc-a',
 *   auth: clientSecretBasic(process.env.SECRET!),
 *   discovery,
 * })
 * ```
 */
export class DiscoveryCache {
  readonly #entries: BoundedMap<string, DiscoveryEntry>
  readonly #clock: Clock
  readonly #random: () => number
  readonly #maxAgeMs: number

  constructor(options: DiscoveryCacheOptions = {}) {
    const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS
    if (!Number.isFinite(maxAgeMs) || maxAgeMs <= 0)
      throw new TypeError('DiscoveryCache: maxAgeMs must be a positive number of milliseconds')
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new TypeError('DiscoveryCache: maxEntries must be a positive integer')
    this.#clock = options.clock ?? systemClock
    this.#random = options.random ?? Math.random
    this.#maxAgeMs = maxAgeMs
    this.#entries = new BoundedMap(maxEntries)
  }

  /** The document discovered for `issuer`, however old, or `undefined`. No I/O. */
  peek(issuer: string): AuthorizationServerMetadata | undefined {
    return this.#entries.peek(issuer)?.document
  }

  /** How many issuers are kept (documents, failures and requests in flight). */
  get size(): number {
    return this.#entries.size
  }

  /**
   * The metadata of `issuer`: the cached document (starting one background refresh when it is
   * older than `maxAgeMs`), else the one discovery request in flight, else a new one, unless
   * the last one failed within its backoff (then its error, at once). `request` sets how a new
   * request is sent (the first caller's options serve everyone who joins it).
   */
  get(issuer: string, request: DiscoveryRequestOptions = {}): Promise<AuthorizationServerMetadata> {
    let entry = this.#entries.get(issuer)
    if (entry === undefined) {
      entry = { document: undefined, fetchedAt: 0, flight: undefined, failure: undefined }
      // The least recently used issuer goes (a request in flight finishes, uncached).
      this.#entries.set(issuer, entry)
    }
    const now = this.#clock.now()
    const backingOff = entry.failure !== undefined && now < entry.failure.retryAt
    if (entry.document !== undefined) {
      if (now - entry.fetchedAt >= this.#maxAgeMs && entry.flight === undefined && !backingOff) {
        this.#start(entry, issuer, request).catch(() => undefined) // a failed refresh keeps the document
      }
      return Promise.resolve(entry.document)
    }
    let flight = entry.flight
    if (flight === undefined) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the remembered failure, as it was
      if (backingOff) return Promise.reject(entry.failure?.error)
      flight = this.#start(entry, issuer, request)
    }
    return request.signal === undefined ? flight : raceAbort(flight, request.signal)
  }

  /** Forgets every document and failure (requests in flight finish, uncached). */
  clear(): void {
    this.#entries.clear()
  }

  #start(
    entry: DiscoveryEntry,
    issuer: string,
    request: DiscoveryRequestOptions,
  ): Promise<AuthorizationServerMetadata> {
    const { signal: _callerSignal, ...shared } = request
    const flight = discover(issuer, shared, this.#clock).then(
      (document) => {
        if (this.#entries.peek(issuer) === entry) {
          entry.document = document
          entry.fetchedAt = this.#clock.now()
          entry.failure = undefined
        }
        return document
      },
      (error: unknown) => {
        const retryable = isTokenkeeperError(error) ? error.retryable : true
        const retryAfterMs = isTokenkeeperError(error) ? error.retryAfterMs : undefined
        const attempt = (entry.failure?.attempt ?? 0) + 1
        const delay = backoffDelayMs({ attempt, retryable, retryAfterMs }, DISCOVERY_BACKOFF, this.#random)
        entry.failure = { error, retryAt: this.#clock.now() + delay, attempt }
        throw error
      },
    )
    entry.flight = flight
    const done = (): void => {
      if (entry.flight === flight) entry.flight = undefined
    }
    flight.then(done, done)
    return flight
  }
}

/** The cache every source shares unless given its own: one discovery per issuer per process. */
export const processDiscoveryCache: DiscoveryCache = new DiscoveryCache()

/** Options of {@link resolveTokenEndpoint}. */
export interface ResolveTokenEndpointOptions extends DiscoveryRequestOptions {
  /**
   * The client authentication method the caller will use (`client_secret_basic`,
   * `private_key_jwt`, ...): checked against `token_endpoint_auth_methods_supported`.
   * Default: not checked (a request without client authentication).
   */
  readonly authMethod?: string | undefined
  /** Default: the process-wide cache. */
  readonly cache?: DiscoveryCache | undefined
}

/** A token endpoint found by discovery. */
export interface ResolvedTokenEndpoint {
  /** `token_endpoint`, checked. */
  readonly url: URL
  /** `token_endpoint` exactly as the document gives it. */
  readonly tokenUrl: string
  /** The metadata it came from. */
  readonly metadata: AuthorizationServerMetadata
}

/**
 * The token endpoint of `issuer` (an issuer checked with {@link checkIssuer}), through the
 * cache: typed errors `DISCOVERY_NOT_FOUND`, `DISCOVERY_ISSUER_MISMATCH`,
 * `INVALID_DISCOVERY_DOCUMENT`, `INSECURE_TOKEN_URL` (an http `token_endpoint` off loopback),
 * `AUTH_METHOD_NOT_SUPPORTED`, and those of any request to the server (`TIMEOUT`,
 * `HTML_RESPONSE`, `REDIRECT_REJECTED`, ...).
 *
 * @example
 * ```ts
 * const { url } = await resolveTokenEndpoint('https://idp.example', { authMethod: 'private_key_jwt' })
 * ```
 */
export async function resolveTokenEndpoint(
  issuer: string,
  options: ResolveTokenEndpointOptions = {},
): Promise<ResolvedTokenEndpoint> {
  const { authMethod, cache, ...request } = options
  const metadata = await (cache ?? processDiscoveryCache).get(issuer, request)
  if (authMethod !== undefined) checkAuthMethod(metadata, authMethod)
  // RFC 8705 §5: a mutual-TLS client uses the alias when the server names one.
  const alias = metadata.mtlsTokenEndpoint
  if (
    alias !== undefined &&
    (authMethod === 'tls_client_auth' || authMethod === 'self_signed_tls_client_auth')
  ) {
    return { url: alias.url, tokenUrl: alias.tokenUrl, metadata }
  }
  return { url: metadata.tokenEndpoint, tokenUrl: metadata.tokenUrl, metadata }
}
