import { InsufficientScopeError, TokenkeeperError } from '../errors.js'
import { scrubText, SecretSet } from '../secrets.js'
import { isValidScopeToken } from '../token/scopes.js'
import type { TokenSource } from '../sources/types.js'
import type { AccessToken } from '../token/access-token.js'
import type { BoundedMap } from '../bounded.js'

/**
 * Set by `tokens.fetch` when its requests go over connections that present the source's client
 * certificate (mutual TLS). @internal
 */
export const PRESENTS_CERTIFICATE: unique symbol = Symbol('tokenkeeper.presentsCertificate')

/** The part of {@link TokenManager} that authorizing requests uses. */
export interface TokenProvider {
  get(source: TokenSource, options?: { signal?: AbortSignal | undefined }): Promise<AccessToken>
  invalidate(source: TokenSource, options: { token: AccessToken }): Promise<boolean>
}

/**
 * What is remembered between requests, owned by the manager: keys whose resource refused even a
 * freshly obtained token, and until when to stop renewing on their 401s.
 */
export interface RefusalMemory {
  readonly now: () => number
  /** Calendar time (epoch ms), for the `iat` of DPoP proofs. Default: `now`. */
  readonly wallNow?: (() => number) | undefined
  /** How long to return 401s as they are after a fresh token was refused too. */
  readonly backoffMs: number
  /** Until when (on `now`) each key's 401s are returned as they are; bounded, as many keys as the manager's entries. */
  readonly refusedUntil: BoundedMap<string, number>
}

/** A request to a protected resource, as far as authorizing it is concerned. */
export interface ResourceRequest {
  /** HTTP method, e.g. `GET`. */
  readonly method: string
  /** Absolute URL of the resource. */
  readonly url: string | URL
}

/** The headers to send with one request, and the token they carry. */
export interface Authorization {
  /**
   * Header names (lower case) and values to set on the request: `authorization`, and `dpop`
   * (a fresh proof) for a DPoP-bound token. Both are secret.
   */
  readonly headers: Readonly<Record<string, string>>
  /** The token the headers carry; pass it back to {@link Authorizer.afterResponse}. */
  readonly token: AccessToken
}

/** What a resource answered, as far as authorization is concerned. */
export interface ResourceResponse {
  /** The HTTP status code of the answer, e.g. `401`. */
  readonly status: number
  /** The `WWW-Authenticate` header, or `null`/`undefined` when absent. */
  readonly wwwAuthenticate?: string | null | undefined
  /** The `DPoP-Nonce` header (RFC 9449 §9), or `null`/`undefined` when absent. */
  readonly dpopNonce?: string | null | undefined
}

/** Facts about the request an answer belongs to. */
export interface AnswerContext {
  /** Whether this answer is to the retry (the second attempt with a renewed token). */
  readonly retried: boolean
  /**
   * Whether the request was already sent again with a resource's DPoP nonce. Default:
   * `retried`, so that a client that counts one retry only makes one in all.
   */
  readonly nonceRetried?: boolean | undefined
  /** Whether the request body can be sent again (no body, a string, a buffer, ...). */
  readonly replayable: boolean
}

/** Reads the parameters of a `WWW-Authenticate: Bearer ...` challenge (RFC 6750 §3). */
export function parseBearerChallenge(header: string | null | undefined): Record<string, string> {
  const params: Record<string, string> = {}
  if (header === null || header === undefined) return params
  const pattern = /([a-zA-Z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g
  for (const match of header.matchAll(pattern)) {
    const name = match[1]
    if (name !== undefined) params[name.toLowerCase()] = (match[2] ?? match[3] ?? '').replace(/\\(.)/g, '$1')
  }
  return params
}

/**
 * Whether an answer is a resource's demand for a DPoP nonce (RFC 9449 §9): a 401 with a `DPoP`
 * challenge whose `error` is `use_dpop_nonce`, and a `DPoP-Nonce` header.
 */
export function isDpopNonceChallenge(response: ResourceResponse): boolean {
  if (response.status !== 401 || typeof response.dpopNonce !== 'string' || response.dpopNonce === '')
    return false
  const header = response.wwwAuthenticate
  return (
    typeof header === 'string' &&
    /(^|[\s,])DPoP(\s|$)/i.test(header) &&
    parseBearerChallenge(header)['error'] === 'use_dpop_nonce'
  )
}

/** `host/path` of a resource URL, for messages: no query string (it may carry credentials). */
function describeResource(url: string | URL): string {
  const parsed = new URL(url)
  return `${parsed.host}${parsed.pathname}`
}

/** A URL that is surely http(s) without user-info: the fast path of {@link checkResourceUrl}. */
const PLAIN_HTTP_URL = /^https?:\/\/[^/?#@]*(?:[/?#]|$)/i

/**
 * Refuses, with a `TypeError`, a resource URL no token may be sent to: one that is not http(s),
 * and one with user-info (`https://user:password@host/`): its credentials would go along with
 * the token, into a DPoP proof's `htu` too. The message names the method, host and path only.
 */
function checkResourceUrl(request: ResourceRequest): void {
  const { url } = request
  if (typeof url === 'string' && PLAIN_HTTP_URL.test(url)) return
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new TypeError(`${request.method.toUpperCase()}: the resource URL is not a valid absolute URL`)
  }
  const what = `${request.method.toUpperCase()} ${parsed.host}${parsed.pathname}`
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new TypeError(`${what}: a token is sent only to an http(s) URL, not ${parsed.protocol}`)
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new TypeError(
      `${what}: the URL has user-info (user:password@); a token is never sent with a URL's own credentials`,
    )
  }
}

/**
 * Authorizes requests to resources protected by one source's tokens, for any HTTP client: the
 * one policy behind `tokens.fetch()` and the axios and undici integrations. Ask
 * {@link Authorizer.authorize} for the headers of a request, send it, then hand the answer to
 * {@link Authorizer.afterResponse}: on a 401 it invalidates exactly the token that was sent
 * (compare-and-delete, so 50 concurrent 401s cause one token request) and says `'retry'` once
 * when the body can be replayed; if the renewed token is refused too, 401s for that key are
 * returned as they are for a backoff period. A 403 whose challenge says
 * `error="insufficient_scope"` rejects with {@link InsufficientScopeError}: a new token with the
 * same scopes would not help.
 *
 * @example
 * ```ts
 * const authorizer = tokens.authorizer(source)
 * let retried = false
 * for (;;) {
 *   const sent = await authorizer.authorize({ method: 'GET', url })
 *   const res = await fetch(url, { headers: sent.headers })
 *   const next = await authorizer.afterResponse(
 *     { method: 'GET', url },
 *     sent,
 *     { status: res.status, wwwAuthenticate: res.headers.get('www-authenticate') },
 *     { retried, replayable: true },
 *   )
 *   if (next === 'return') break
 *   retried = true
 * }
 * ```
 */
export class Authorizer {
  readonly #tokens: TokenProvider
  readonly #source: TokenSource
  readonly #refusals: RefusalMemory

  /** @internal Use `tokens.authorizer(source)`. */
  constructor(tokens: TokenProvider, source: TokenSource, refusals: RefusalMemory) {
    this.#tokens = tokens
    this.#source = source
    this.#refusals = refusals
  }

  /**
   * The headers for one request: `authorization: <type> <token>` with a token for the source,
   * and for a DPoP-bound token (RFC 9449 §7) `authorization: DPoP <token>` with `dpop`: a fresh
   * proof for this method and URL, with `ath` and the resource's last nonce.
   */
  async authorize(
    request: ResourceRequest,
    options: { signal?: AbortSignal | undefined; [PRESENTS_CERTIFICATE]?: boolean } = {},
  ): Promise<Authorization> {
    if (this.#source.mtls !== undefined && options[PRESENTS_CERTIFICATE] !== true) {
      throw new TokenkeeperError(
        'MTLS_TRANSPORT_REQUIRED',
        `the tokens of ${this.#source.key} may be bound to its client certificate; send its requests with tokens.fetch(source), whose connections present it`,
        { retryable: false },
      )
    }
    checkResourceUrl(request)
    const token = await this.#tokens.get(this.#source, { signal: options.signal })
    if (token.type !== 'DPoP') return { headers: { authorization: token.authorization }, token }
    const dpop = this.#source.dpop
    if (dpop === undefined) {
      // A bound token without its proof would be refused, and must never be sent.
      throw new TokenkeeperError(
        'DPOP_KEY_MISSING',
        `the token for ${this.#source.key} is DPoP-bound but the source has no dpop key to sign proofs with`,
        { retryable: false },
      )
    }
    const url = new URL(request.url)
    const now = (this.#refusals.wallNow ?? this.#refusals.now)()
    const proof = await dpop.proof({
      htm: request.method.toUpperCase(),
      htu: url,
      now,
      accessToken: token.value,
      nonce: dpop.nonce(url.origin),
    })
    return { headers: { authorization: token.authorization, dpop: proof }, token }
  }

  /**
   * Remembers what any answer says for the next requests: the resource's `DPoP-Nonce` (RFC 9449
   * §9), when the request carried a proof. {@link Authorizer.afterResponse} does it too; call it
   * for answers you do not hand to `afterResponse`.
   */
  observe(request: ResourceRequest, sent: Authorization, response: ResourceResponse): void {
    const dpop = this.#source.dpop
    if (dpop === undefined || sent.headers['dpop'] === undefined) return
    if (typeof response.dpopNonce !== 'string') return
    dpop.rememberNonce(new URL(request.url).origin, response.dpopNonce)
  }

  /**
   * Decides what to do with an answer: `'retry'` when the token that was sent has been
   * invalidated and sending the request once more with a renewed token may help, `'return'`
   * otherwise. Rejects with {@link InsufficientScopeError} on a 403 `insufficient_scope`.
   */
  async afterResponse(
    request: ResourceRequest,
    sent: Authorization,
    response: ResourceResponse,
    context: AnswerContext,
  ): Promise<'retry' | 'return'> {
    const key = this.#source.key
    this.observe(request, sent, response)
    if (sent.headers['dpop'] !== undefined) {
      // A demand for a nonce is retried once with it, and says nothing about the token.
      if (isDpopNonceChallenge(response)) {
        return (context.nonceRetried ?? context.retried) || !context.replayable ? 'return' : 'retry'
      }
    }
    if (response.status === 401) {
      if (context.retried) {
        this.#refusals.refusedUntil.set(key, this.#refusals.now() + this.#refusals.backoffMs)
        return 'return'
      }
      // A resource that refused a fresh token too is not asking for renewal: until the backoff
      // ends, its 401s are returned as they are, so a loop of calls cannot become a loop of
      // token requests.
      const refusedUntil = this.#refusals.refusedUntil.peek(key)
      if (refusedUntil !== undefined) {
        if (this.#refusals.now() < refusedUntil) return 'return'
        this.#refusals.refusedUntil.delete(key)
      }
      await this.#tokens.invalidate(this.#source, { token: sent.token })
      return context.replayable ? 'retry' : 'return'
    }
    if (context.retried) this.#refusals.refusedUntil.delete(key)
    if (response.status === 403) {
      const challenge = parseBearerChallenge(response.wwwAuthenticate)
      if (challenge['error'] === 'insufficient_scope') {
        // The challenge is the resource's text: a resource may echo the token it was sent, so
        // only scope tokens that hold no form of the token are kept, and the message is
        // scrubbed too.
        const secrets = new SecretSet([
          sent.token.value,
          ...(sent.headers['dpop'] === undefined ? [] : [sent.headers['dpop']]),
        ])
        const required = (challenge['scope'] ?? '')
          .split(' ')
          .filter((scope) => isValidScopeToken(scope) && secrets.scrub(scope) === scope)
        const what = `${request.method.toUpperCase()} ${describeResource(request.url)}`
        throw new InsufficientScopeError(
          scrubText(
            `${what} needs scope ${required.join(' ') || '(unnamed)'}, which the token was not granted`,
            secrets,
            1000,
          ),
          required,
          sent.token.scopes,
        )
      }
    }
    return 'return'
  }
}
