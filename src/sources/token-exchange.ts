import { inspect } from 'node:util'
import { deadline, raceAbort } from '../abort.js'
import { systemClock, wallTime, type Clock } from '../clock.js'
import { isTokenkeeperError, TokenkeeperError, type CoreErrorCode } from '../errors.js'
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../http/token-request.js'
import { describeEndpoint } from '../http/url.js'
import { AccessToken } from '../token/access-token.js'
import type { ClientAuth } from './auth.js'
import { describeExp, expiryOf } from './client-assertion.js'
import type { DiscoveryCache } from './discovery.js'
import type { DpopKey } from './dpop.js'
import { endpointFrom, type EndpointOptions, type TokenEndpoint } from './endpoint.js'
import { certificateOf, type TlsClientCertificate } from './mtls.js'
import { cacheKey, clientSegment, named, type KeySegment } from './cache-key.js'
import { fingerprint } from './fingerprint.js'
import type { FetchTokenOptions, TokenSource, TokenSourceContext } from './types.js'

/** The grant type of RFC 8693 §2.1. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'

/**
 * The token type identifiers of RFC 8693 §3, for `subjectTokenType`, `actorTokenType` and
 * `requestedTokenType`.
 *
 * @example
 * ```ts
 * import { TOKEN_TYPES } from 'tokenkeeper'
 * const type = TOKEN_TYPES.accessToken // 'urn:ietf:params:oauth:token-type:access_token'
 * ```
 */
export const TOKEN_TYPES = Object.freeze({
  /** An OAuth 2.0 access token issued by the authorization server (RFC 8693 §3). */
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  /** An OAuth 2.0 refresh token (RFC 8693 §3). */
  refreshToken: 'urn:ietf:params:oauth:token-type:refresh_token',
  /** An OpenID Connect ID token (RFC 8693 §3). */
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
  /** A base64url-encoded SAML 1.1 assertion (RFC 8693 §3). */
  saml1: 'urn:ietf:params:oauth:token-type:saml1',
  /** A base64url-encoded SAML 2.0 assertion (RFC 8693 §3). */
  saml2: 'urn:ietf:params:oauth:token-type:saml2',
  /** A JWT of any kind (RFC 8693 §3, RFC 7519). */
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
} as const)

/** What a subject or actor token provider is told about the exchange it is for. */
export interface ExchangeTokenContext {
  /** The token endpoint URL. */
  readonly tokenUrl: string
  /** The current time in epoch milliseconds (wall clock). */
  readonly now: number
  /**
   * Ends the caller's wait; also aborts when the provider takes longer than the source's
   * `timeoutMs` (on the clock of the call, the manager's).
   */
  readonly signal: AbortSignal | undefined
}

/**
 * Returns the token to exchange (a user's access token, an ID token, ...). Called for every
 * `get`; an answer slower than the source's `timeoutMs` (default 10 s) is
 * `SUBJECT_TOKEN_UNAVAILABLE` (`ACTOR_TOKEN_UNAVAILABLE`).
 */
export type ExchangeTokenProvider = (context: ExchangeTokenContext) => string | Promise<string>

/** Options of {@link tokenExchange}. */
export interface TokenExchangeOptions extends Omit<EndpointOptions, 'audience' | 'tokenUrl'> {
  /** The token endpoint. Must be https, or http to a loopback address. Or give `issuer`. */
  readonly tokenUrl?: string | URL
  /**
   * The authorization server's issuer identifier, instead of `tokenUrl`: its `token_endpoint` is
   * discovered as for {@link clientCredentials} (RFC 8414, then OpenID Connect; once per issuer
   * per process; the document's `issuer` must match exactly, and list the `auth` method). The
   * subject token is read once the endpoint is known.
   */
  readonly issuer?: string | URL
  /** With `issuer`: the cache of discovered documents. Default: one shared by the whole process. */
  readonly discovery?: DiscoveryCache
  /**
   * The token to exchange (RFC 8693 §2.1 `subject_token`): a function called for every `get`, or
   * another {@link TokenSource}, whose token then comes from the same manager (cached and renewed
   * like any other). A secret: it is never part of a key, an error, an event, `inspect` or JSON.
   */
  readonly subjectToken: ExchangeTokenProvider | TokenSource
  /** Its type, an RFC 8693 §3 URI such as {@link TOKEN_TYPES}`.accessToken`. */
  readonly subjectTokenType: string
  /** The acting party's token, for delegation (`actor_token`): a function or a source. */
  readonly actorToken?: ExchangeTokenProvider | TokenSource
  /** Its type; required with `actorToken`. */
  readonly actorTokenType?: string
  /** The type of token wanted (`requested_token_type`); the answer's `issued_token_type` must match it. */
  readonly requestedTokenType?: string
  /** The target service(s) by logical name (`audience`, one parameter each, RFC 8693 §2.1). */
  readonly audience?: string | readonly string[]
  /** The client, for servers that want it identified (most do). */
  readonly clientId?: string
  /** How the client authenticates; needs `clientId`. */
  readonly auth?: ClientAuth
}

/** One of the two tokens an exchange sends, as read for one call. */
interface ReadToken {
  readonly value: string
  /** When it stops being valid on the caller's clock, when known. */
  readonly expiresAt: number | undefined
}

const TOKEN_TYPE_URI = /^[\x21-\x7e]{1,512}$/

function isTokenSource(value: unknown): value is TokenSource {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as TokenSource).key === 'string' &&
    (value as TokenSource).key !== '' &&
    typeof (value as TokenSource).fetchToken === 'function'
  )
}

/** Reads the subject or actor token for one call; errors name the role and origin, never the token. */
class TokenInput {
  readonly #role: 'subject' | 'actor'
  readonly #input: ExchangeTokenProvider | TokenSource
  /** Where the token comes from, for messages and JSON. */
  readonly where: string
  /** A fingerprint of the configuration (not the token), for the source's own key. */
  readonly origin: string

  /** How long a provider may take. */
  readonly #timeoutMs: number

  constructor(role: 'subject' | 'actor', input: unknown, timeoutMs: number) {
    this.#role = role
    this.#timeoutMs = timeoutMs
    if (isTokenSource(input)) {
      this.where = `source ${input.key}`
      this.origin = fingerprint('exchange-source', input.key)
    } else if (typeof input === 'function') {
      this.where = 'provider'
      this.origin = 'provider'
    } else {
      throw new TypeError(
        `tokenExchange: ${role}Token must be a function returning the token or a TokenSource`,
      )
    }
    this.#input = input as ExchangeTokenProvider | TokenSource
  }

  #fail(code: CoreErrorCode, what: string, retryable: boolean, cause?: unknown): never {
    throw new TokenkeeperError(code, `tokenExchange: the ${this.#role} token from ${this.where} ${what}`, {
      retryable,
      ...(cause === undefined ? {} : { cause }),
    })
  }

  async read(context: TokenSourceContext, tokenUrl: string): Promise<ReadToken> {
    const unavailable = this.#role === 'subject' ? 'SUBJECT_TOKEN_UNAVAILABLE' : 'ACTOR_TOKEN_UNAVAILABLE'
    const input = this.#input
    const now = wallTime(context.clock)
    if (typeof input !== 'function') {
      let token: AccessToken
      try {
        token = await context.get(input, { signal: context.signal })
      } catch (error) {
        if (context.signal?.aborted === true) throw error
        const code = isTokenkeeperError(error) ? error.code : 'an error'
        this.#fail(
          unavailable,
          `could not be obtained (${code}; its own error is error.cause)`,
          isTokenkeeperError(error) ? error.retryable : true,
          error,
        )
      }
      return { value: token.value, expiresAt: token.expiresAt }
    }
    let value: unknown
    // A provider that never answers (and ignores its signal) must not hold the caller for ever.
    const clock = context.clock
    const limit = deadline(this.#timeoutMs, (callback, ms) => clock.setTimer(callback, ms), context.signal)
    try {
      value = await raceAbort(
        Promise.resolve().then(() => input({ tokenUrl, now, signal: limit.signal })),
        limit.signal,
      )
    } catch (error) {
      if (context.signal?.aborted === true) throw context.signal.reason
      if (limit.timedOut) this.#fail(unavailable, `did not answer within ${this.#timeoutMs} ms`, true)
      this.#fail(unavailable, 'failed (its own error is error.cause)', true, error)
    } finally {
      limit.dispose()
    }
    if (typeof value !== 'string' || value.trim() === '') this.#fail(unavailable, 'is empty', true)
    const token = value.trim()
    if (!/^[\x21-\x7e]+$/.test(token)) {
      this.#fail(unavailable, 'holds spaces, control or non-ASCII characters', true)
    }
    const exp = expiryOf(token)
    if (exp === undefined) return { value: token, expiresAt: undefined }
    if (exp * 1000 <= now) {
      const ago = Math.round((now - exp * 1000) / 1000)
      this.#fail(
        this.#role === 'subject' ? 'SUBJECT_TOKEN_EXPIRED' : 'ACTOR_TOKEN_EXPIRED',
        `expired ${ago} s ago (exp ${describeExp(exp)}); nothing was sent`,
        true,
      )
    }
    // `exp` is wall time; the manager's windows run on its own clock.
    return { value: token, expiresAt: context.clock.now() + (exp * 1000 - now) }
  }
}

/** The checked configuration of one {@link tokenExchange} source, shared by every subject it exchanges. */
class Exchange {
  readonly endpoint: TokenEndpoint
  readonly options: TokenExchangeOptions
  readonly subject: TokenInput
  readonly actor: TokenInput | undefined
  /** The key segments after the subject and actor ones. */
  readonly keyTail: readonly (KeySegment | undefined)[]

  constructor(options: TokenExchangeOptions) {
    this.endpoint = endpointFrom(options, 'tokenExchange')
    const o = options
    for (const [name, value] of [
      ['subjectTokenType', o.subjectTokenType],
      ['actorTokenType', o.actorTokenType],
      ['requestedTokenType', o.requestedTokenType],
    ] as const) {
      if (
        (name === 'subjectTokenType' || value !== undefined) &&
        !(typeof value === 'string' && TOKEN_TYPE_URI.test(value))
      ) {
        throw new TypeError(
          `tokenExchange: ${name} must be a token type URI such as ${TOKEN_TYPES.accessToken}`,
        )
      }
    }
    if ((o.actorToken === undefined) !== (o.actorTokenType === undefined)) {
      throw new TypeError('tokenExchange: actorToken and actorTokenType go together (RFC 8693 §2.1)')
    }
    const audiences = o.audience === undefined ? [] : [o.audience].flat()
    if (audiences.some((one) => typeof one !== 'string' || one === '')) {
      throw new TypeError('tokenExchange: audience must be a non-empty string or an array of them')
    }
    if (o.auth !== undefined && o.clientId === undefined)
      throw new TypeError('tokenExchange: auth needs a clientId')
    if (o.clientId !== undefined && (typeof o.clientId !== 'string' || o.clientId === '')) {
      throw new TypeError('tokenExchange: clientId must be a non-empty string')
    }
    const timeoutMs = o.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.subject = new TokenInput('subject', o.subjectToken, timeoutMs)
    this.actor = o.actorToken === undefined ? undefined : new TokenInput('actor', o.actorToken, timeoutMs)
    this.options = options
    this.keyTail = [
      named('rtt', o.requestedTokenType),
      ...this.endpoint.keySegments,
      clientSegment(o.clientId, o.auth),
    ]
  }

  /** The key of the exchange of these tokens: their types and fingerprints, never the tokens. */
  keyFor(subject: ReadToken, actor: ReadToken | undefined): string {
    const o = this.options
    return cacheKey('token-exchange', this.endpoint.keyUrl, [
      named('sub', `${o.subjectTokenType}:${fingerprint('subject-token', subject.value)}`),
      named(
        'act',
        actor === undefined || o.actorTokenType === undefined
          ? undefined
          : `${o.actorTokenType}:${fingerprint('actor-token', actor.value)}`,
      ),
      ...this.keyTail,
    ])
  }

  /** One exchange of `subject` (and `actor`): RFC 8693 §2.1 request, §2.2 answer. */
  async exchange(
    subject: ReadToken,
    actor: ReadToken | undefined,
    options: FetchTokenOptions | undefined,
  ): Promise<AccessToken> {
    const o = this.options
    const clock = options?.clock ?? o.clock ?? systemClock
    if (subject.expiresAt !== undefined && clock.now() >= subject.expiresAt) {
      throw new TokenkeeperError(
        'SUBJECT_TOKEN_EXPIRED',
        `tokenExchange: the subject token from ${this.subject.where} has expired; nothing was sent`,
        { retryable: true },
      )
    }
    const grant: [string, string][] = [
      ['grant_type', TOKEN_EXCHANGE_GRANT],
      ['subject_token', subject.value],
      ['subject_token_type', o.subjectTokenType],
    ]
    if (actor !== undefined && o.actorTokenType !== undefined) {
      grant.push(['actor_token', actor.value], ['actor_token_type', o.actorTokenType])
    }
    if (o.requestedTokenType !== undefined) grant.push(['requested_token_type', o.requestedTokenType])
    const secrets = actor === undefined ? [subject.value] : [subject.value, actor.value]
    const token = await this.endpoint.request(grant, o.auth, o.clientId, options, secrets)
    const { url } = await this.endpoint.resolveUrl(o.auth, options?.signal)
    this.#checkIssuedType(token, url)
    return capExpiry(token, subject.expiresAt)
  }

  /** RFC 8693 §2.2.1: `issued_token_type` is required, and must be the requested type when one was asked for. */
  #checkIssuedType(token: AccessToken, url: URL): void {
    const issued = token.extra['issued_token_type']
    const where = `token response from ${describeEndpoint(url)}`
    // Only the field is named, never what the server sent in it.
    if (typeof issued !== 'string' || issued === '') {
      throw new TokenkeeperError(
        'INVALID_ISSUED_TOKEN_TYPE',
        `${where} has no issued_token_type string (RFC 8693 §2.2.1 requires it)`,
        { retryable: false, status: 200 },
      )
    }
    const requested = this.options.requestedTokenType
    if (requested !== undefined && issued !== requested) {
      throw new TokenkeeperError(
        'INVALID_ISSUED_TOKEN_TYPE',
        `${where} has an issued_token_type other than the requested ${requested}`,
        { retryable: false, status: 200 },
      )
    }
  }
}

/**
 * The token, expiring no later than `limit` (the subject token's expiry), when one is known. A
 * capped token is not renewed early (its `refreshAt` is its expiry, unless the server asked for
 * an earlier one): exchanging the same subject again cannot give a token that lasts longer, and
 * the subject's own renewal brings a new subject, hence a new key and a new exchange.
 */
function capExpiry(token: AccessToken, limit: number | undefined): AccessToken {
  if (limit === undefined || token.expiresAt <= limit) return token
  return new AccessToken({
    value: token.value,
    type: token.type,
    scopes: token.scopes,
    requestedScopes: token.requestedScopes,
    issuedAt: token.issuedAt,
    expiresAt: limit,
    refreshAt: token.refreshAt !== undefined && token.refreshAt < limit ? token.refreshAt : limit,
    extra: token.extra,
  })
}

/** A context for a direct `fetchToken()`, without a manager: another source's token is fetched anew. */
function directContext(options: FetchTokenOptions | undefined, clock: Clock): TokenSourceContext {
  return {
    get: (source, getOptions) => source.fetchToken({ signal: getOptions?.signal ?? options?.signal, clock }),
    signal: options?.signal,
    clock,
  }
}

/** The exchange of one subject (and actor) token: what the manager caches, under a key that names them by fingerprint. */
class BoundExchangeSource implements TokenSource {
  readonly key: string
  readonly #exchange: Exchange
  readonly #subject: ReadToken
  readonly #actor: ReadToken | undefined

  constructor(exchange: Exchange, subject: ReadToken, actor: ReadToken | undefined) {
    this.#exchange = exchange
    this.#subject = subject
    this.#actor = actor
    this.key = exchange.keyFor(subject, actor)
  }

  /** The DPoP key the exchanged tokens are bound to, when `dpop` was given. */
  get dpop(): DpopKey | undefined {
    return this.#exchange.endpoint.dpop
  }

  /** The client certificate of mutual TLS, when `auth` is one. */
  get mtls(): TlsClientCertificate | undefined {
    return certificateOf(this.#exchange.options.auth)
  }

  fetchToken(options?: FetchTokenOptions): Promise<AccessToken> {
    return this.#exchange.exchange(this.#subject, this.#actor, options)
  }

  toJSON(): Record<string, string> {
    return { kind: 'tokenExchange', subject: this.#exchange.subject.where, key: this.key }
  }

  [inspect.custom](): string {
    return `TokenSource ${inspect(this.toJSON())}`
  }
}

class TokenExchangeSource implements TokenSource {
  readonly key: string
  readonly #exchange: Exchange

  constructor(options: TokenExchangeOptions) {
    const exchange = new Exchange(options)
    this.#exchange = exchange
    this.key = cacheKey('token-exchange', exchange.endpoint.keyUrl, [
      named('sub-from', exchange.subject.origin),
      named('act-from', exchange.actor?.origin),
      ...exchange.keyTail,
    ])
  }

  /** The DPoP key the exchanged tokens are bound to, when `dpop` was given. */
  get dpop(): DpopKey | undefined {
    return this.#exchange.endpoint.dpop
  }

  /** The client certificate of mutual TLS, when `auth` is one. */
  get mtls(): TlsClientCertificate | undefined {
    return certificateOf(this.#exchange.options.auth)
  }

  async resolve(context: TokenSourceContext): Promise<TokenSource> {
    const exchange = this.#exchange
    // With an issuer: discovered first, so that the provider is told the real token endpoint
    // and the key names it (the one a tokenUrl source has).
    const { tokenUrl } = await exchange.endpoint.resolveUrl(exchange.options.auth, context.signal)
    const [subject, actor] = await Promise.all([
      exchange.subject.read(context, tokenUrl),
      exchange.actor?.read(context, tokenUrl),
    ])
    return new BoundExchangeSource(exchange, subject, actor)
  }

  async fetchToken(options?: FetchTokenOptions): Promise<AccessToken> {
    const clock = options?.clock ?? this.#exchange.options.clock ?? systemClock
    const bound = await this.resolve(directContext(options, clock))
    return bound.fetchToken(options)
  }

  toJSON(): Record<string, string> {
    const exchange = this.#exchange
    return {
      kind: 'tokenExchange',
      subject: exchange.subject.where,
      ...(exchange.actor === undefined ? {} : { actor: exchange.actor.where }),
      key: this.key,
    }
  }

  [inspect.custom](): string {
    return `TokenSource ${inspect(this.toJSON())}`
  }
}

/**
 * The token-exchange grant (RFC 8693): trades a token the service holds (a user's access token,
 * an ID token, a workload token) for one meant for another service, keeping who the user is.
 *
 * The subject token is read at every `get`: from `subjectToken(ctx)`, or from another source
 * through the same {@link TokenManager}. The manager caches the exchanged token under a key
 * holding a fingerprint of the subject token (never the token), so the same subject gives one
 * exchange and a new subject (rotated, or another user's) gives a new one; entries of subjects
 * no longer used age out of the manager's bounded table. An exchanged token never outlives its
 * subject: its expiry is capped at the subject's (the source's `expiresAt`, or a JWT's `exp`).
 * The answer's `issued_token_type` is checked (`INVALID_ISSUED_TOKEN_TYPE`); RFC 8693 §2.2.2
 * refusals (`invalid_request`, `invalid_target`, ...) are {@link OAuthError}s.
 *
 * ⚠️ The subject token grants what its user may do: pass it only to a token endpoint you trust.
 *
 * @example
 * ```ts
 * import { TokenManager, TOKEN_TYPES, clientSecretBasic, tokenExchange } from 'tokenkeeper'
 * const tokens = new TokenManager()
 * const forOrders = tokenExchange({
 *   tokenUrl: 'https://idp.example/oauth/token',
 *   clientId: 'gateway',
 *   auth: clientSecretBasic(process.env.GATEWAY_SECRET!),
 *   subjectToken: () => currentRequest().bearerToken,
 *   subjectTokenType: TOKEN_TYPES.accessToken,
 *   audience: 'orders-api',
 *   scopes: ['orders:read'],
 * })
 * const token = await tokens.get(forOrders)
 * ```
 */
export function tokenExchange(options: TokenExchangeOptions): TokenSource {
  return new TokenExchangeSource(options)
}
