import type { TokenServerDpopOptions } from './dpop.js'
import type { Clock } from '../clock.js'
import type { ClientAuthMethod, TestClient } from './client-auth.js'
import type { FaultHandle, TokenServerFault } from './faults.js'
import type { TokenIntrospection } from './issued-tokens.js'
import type { JwtBearerIssuer, ScopeGrantPolicy } from './token-endpoint.js'

/**
 * Options of {@link TokenServer}. Every duration is in milliseconds.
 *
 * @example
 * ```ts
 * import { startTokenServer, createTestClock, type TokenServerOptions } from 'tokenkeeper/testing'
 * const options: TokenServerOptions = {
 *   clients: [{ clientId: 'svc-a', clientSecret: 's3cret', allowedScopes: ['read', 'write'] }],
 *   tokenLifetimeMs: 60_000,
 *   clock: createTestClock(),
 * }
 * await using server = await startTokenServer(options)
 * ```
 */
export interface TokenServerOptions {
  /** Registered clients for `client_credentials` (and optional client auth on JWT-bearer grants). */
  readonly clients?: readonly TestClient[]
  /** Trusted issuers for the RFC 7523 §2.1 JWT-bearer grant. */
  readonly jwtBearerIssuers?: readonly JwtBearerIssuer[]
  /**
   * Targets the RFC 8693 token-exchange grant may issue tokens for (`audience` and `resource`
   * values); any other is refused with `invalid_target`. Default: any target.
   */
  readonly exchangeTargets?: readonly string[]
  /** Token lifetime; sent as `expires_in` rounded to whole seconds, which the server also honours. Default 3600 s. */
  readonly tokenLifetimeMs?: number
  /** When set, responses carry `refresh_in` (this, in whole seconds). */
  readonly refreshInMs?: number
  /** Real-time delay added to every token response. */
  readonly latencyMs?: number
  /** Clock for token expiry bookkeeping and assertion time checks. Default: the system clock. */
  readonly clock?: Clock
  /** Which scopes to grant. Default: all requested must be allowed, else `invalid_scope`. */
  readonly grantScopes?: ScopeGrantPolicy
  /** Whether responses carry `scope`. Default `true`. */
  readonly includeScopeInResponse?: boolean
  /** The `token_type` sent. Default `'Bearer'`. */
  readonly tokenType?: string
  /** Accepted `aud` values of assertions. Default: the token URL, exactly. */
  readonly audience?: string | readonly string[]
  /** Allowed clock skew when checking assertion `exp`, `iat`, `nbf`. Default 5 000 ms. */
  readonly clockToleranceMs?: number
  /** Furthest in the future an assertion's `exp` may be. Default 600 000 ms (10 min). */
  readonly maxAssertionLifetimeMs?: number
  /** Accepted JWS algorithms for assertions. Default: RS/PS/ES 256–512 and EdDSA (never `none` or HMAC). */
  readonly assertionAlgorithms?: readonly string[]
  /** Port on 127.0.0.1; default 0 (an ephemeral port). */
  readonly port?: number
  /** How many token requests `requests` keeps (oldest dropped first). Default 100 000. */
  readonly maxRecordedRequests?: number
  /**
   * DPoP (RFC 9449): token requests with a valid proof get `token_type: DPoP` tokens bound to the
   * proof's key (`introspect(token).jkt`), and the resource demands `Authorization: DPoP` with a
   * proof for each call (`htm`, `htu`, `ath`, the key of the token, no `jti` twice). `true` or
   * options (nonces, proofs required). Default: off; a proof is then ignored and the token is a
   * Bearer token, as a server without DPoP answers.
   */
  readonly dpop?: boolean | TokenServerDpopOptions
  /** Where and what authorization server metadata (RFC 8414) the server serves. */
  readonly discovery?: TokenServerDiscoveryOptions
}

/**
 * The authorization server metadata the token server serves for issuer discovery. By default
 * it serves `/.well-known/oauth-authorization-server` (RFC 8414) for the issuer `server.url`,
 * naming `server.tokenUrl` and the client authentication methods it supports.
 *
 * @example
 * ```ts
 * import { startTokenServer } from 'tokenkeeper/testing'
 * await using server = await startTokenServer({
 *   clients: [{ clientId: 'a', clientSecret: 's' }],
 *   discovery: { issuerPath: '/tenant-a', documents: ['openid-configuration'] },
 * })
 * server.issuer // `${server.url}/tenant-a`, served at /tenant-a/.well-known/openid-configuration
 * ```
 */
export interface TokenServerDiscoveryOptions {
  /**
   * A path the issuer has below `server.url`, e.g. `'/tenant-a'` (issuer `${url}/tenant-a`):
   * the RFC 8414 document is then served at `/.well-known/oauth-authorization-server/tenant-a`
   * and the OpenID one at `/tenant-a/.well-known/openid-configuration`. Default: none.
   */
  readonly issuerPath?: string
  /**
   * Which documents are served: `'oauth-authorization-server'` (RFC 8414) and/or
   * `'openid-configuration'` (OpenID Connect Discovery). Others answer 404. Default: RFC 8414's only.
   */
  readonly documents?: readonly ('oauth-authorization-server' | 'openid-configuration')[]
  /**
   * Fields that replace those of the document; a field given as `undefined` is left out (e.g.
   * `{ token_endpoint: undefined }`, `{ issuer: 'https://elsewhere.example' }`).
   */
  readonly metadata?: Readonly<Record<string, unknown>>
}

/**
 * A snapshot of the server's counters. Counts are exact: a token request is counted synchronously
 * when it arrives, before any fault, hold or latency.
 *
 * @example
 * ```ts
 * import { startTokenServer } from 'tokenkeeper/testing'
 * await using server = await startTokenServer({ clients: [{ clientId: 'a', clientSecret: 's' }] })
 * const { tokenRequests, tokensIssued } = server.stats() // 0, 0
 * ```
 */
export interface TokenServerStats {
  /** Token requests received (any method, any outcome). */
  readonly tokenRequests: number
  /** Tokens issued (a `latency`, `slow-body` or `token` fault still issues one). */
  readonly tokensIssued: number
  /** Token requests answered with a fault or an error (no token issued). */
  readonly failures: number
  /** Token requests received and not yet answered (held, delayed, hanging). */
  readonly inFlight: number
  /** Requests to `/resource`, any outcome. */
  readonly resourceCalls: number
  /** Resource calls with a valid token holding every scope asked for (200). */
  readonly resourceAccepted: number
  /** Resource calls with an expired token (401 `invalid_token`). */
  readonly resourceRejectedExpired: number
  /** Resource calls with no bearer token or one the server never issued. */
  readonly resourceRejectedUnknown: number
  /** Resource calls with a revoked token (401 `invalid_token`). */
  readonly resourceRejectedRevoked: number
  /** Resource calls whose token lacks a scope named in `?scope=` (403 `insufficient_scope`). */
  readonly resourceRejectedScope: number
  /** Token requests and resource calls refused for their DPoP proof (`invalid_dpop_proof`, `use_dpop_nonce`). */
  readonly dpopRejected: number
  /** Token requests per claimed client id (counted once the request body has been read). */
  readonly byClient: Readonly<Record<string, number>>
  /**
   * Requests to either well-known path of the issuer (RFC 8414's, OpenID Connect's), whether it
   * serves a document there or answers 404, counted on arrival.
   */
  readonly discoveryRequests: number
}

/**
 * One token request as logged. Never holds a secret, an assertion or a token: the
 * `Authorization` header is reduced to its scheme and the body is not kept. `status` and `error`
 * are filled in when the response is sent (`undefined` for hang/reset or while pending).
 *
 * @example
 * ```ts
 * import { startTokenServer } from 'tokenkeeper/testing'
 * await using server = await startTokenServer({ clients: [{ clientId: 'a', clientSecret: 's' }] })
 * const basicCalls = server.requests.filter((r) => r.authMethod === 'client_secret_basic').length
 * ```
 */
export interface TokenRequestRecord {
  /** Arrival time by the server clock. */
  readonly at: number
  /** The HTTP method, e.g. `POST`. */
  readonly method: string
  /** The client id the request claimed (authenticated or not). */
  readonly clientId: string | undefined
  /** The form's `grant_type`, e.g. `client_credentials`. */
  readonly grantType: string | undefined
  /**
   * How the client authenticated as presented (not whether it succeeded): `none` for no
   * credentials, `multiple` for more than one method at once (which RFC 6749 §2.3 forbids).
   */
  readonly authMethod: ClientAuthMethod | 'none' | 'multiple' | undefined
  /** Requested scopes. */
  readonly scopes: readonly string[]
  /** The HTTP status answered; `undefined` while pending and for `hang` and `reset`. */
  readonly status: number | undefined
  /** The OAuth `error` code of a refusal. */
  readonly error: string | undefined
  /** The kind of fault applied to this request. */
  readonly fault: TokenServerFault['kind'] | undefined
  /**
   * The request headers by lower-case name; `authorization` keeps only its scheme
   * (`Basic [redacted]`), `dpop` is `[redacted]` and `cookie` is left out.
   */
  readonly headers: Readonly<Record<string, string>>
  /** The request's `Content-Type` as sent. */
  readonly contentType: string | undefined
}

/**
 * A hold on the token endpoint from {@link TokenServer.hold}: requests wait until `release()`.
 *
 * @example
 * ```ts
 * import { startTokenServer } from 'tokenkeeper/testing'
 * await using server = await startTokenServer({ clients: [{ clientId: 'a', clientSecret: 's' }] })
 * const hold = server.hold()
 * hold.release()
 * ```
 */
export interface HoldHandle {
  /** Lets every waiting request (and later ones) through. Idempotent. */
  release(): void
  /** How many token requests are waiting on this hold. */
  readonly waiting: number
}

/**
 * A running RFC 6749 token endpoint on 127.0.0.1 with a protected resource, fault injection and
 * exact counters. Start one with `startTokenServer()`.
 *
 * Paths: `/token` (RFC 6749 §4.4, RFC 7523 §2.1 and RFC 8693), `/resource` (RFC 6750 protected
 * API), `/.well-known/oauth-authorization-server` (RFC 8414 metadata; see
 * {@link TokenServerDiscoveryOptions} for more).
 *
 * @example
 * ```ts
 * import { startTokenServer } from 'tokenkeeper/testing'
 * await using server = await startTokenServer({ clients: [{ clientId: 'a', clientSecret: 's' }] })
 * const response = await fetch(server.tokenUrl, {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/x-www-form-urlencoded' },
 *   body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'a', client_secret: 's' }),
 * })
 * ```
 */
export interface TokenServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** `${url}/token` */
  readonly tokenUrl: string
  /** The issuer its discovery document names: `url`, plus `discovery.issuerPath` when set. */
  readonly issuer: string
  /** `${url}/resource` */
  readonly resourceUrl: string
  /** Token requests received, oldest first (live view; see {@link TokenRequestRecord}). */
  readonly requests: readonly TokenRequestRecord[]
  /** The counters now, as a snapshot. */
  stats(): TokenServerStats
  /** What the server knows about a token it issued, or `undefined`. */
  introspect(token: string): TokenIntrospection | undefined
  /** Revokes one token early; `true` if it was known and not yet revoked. */
  revoke(token: string): boolean
  /** Revokes every token issued so far; returns how many. */
  revokeAll(): number
  /** Queues `fault` for the next `times` token requests (default 1; `Infinity` allowed). */
  inject(fault: TokenServerFault, options?: { readonly times?: number }): FaultHandle
  /** Sets (or with `undefined` clears) a fault applied to every token request not given a queued one. */
  setFault(fault: TokenServerFault | undefined): void
  /** Removes the standing fault and every queued fault (of token and discovery requests). */
  clearFaults(): void
  /**
   * Queues `fault` for the next `times` discovery requests (default 1), apart from the token
   * requests' faults. `latency`, `hang`, `reset` and the replacing kinds apply; `token` and
   * `slow-body` serve the document normally.
   */
  injectDiscovery(fault: TokenServerFault, options?: { readonly times?: number }): FaultHandle
  /** Makes token requests wait, unanswered, until `release()`; a second call returns the same hold. */
  hold(): HoldHandle
  /** Resolves once `count` token requests have arrived in total; rejects after `timeoutMs` (default 10 s) or on close. */
  waitForRequests(count: number, options?: { readonly timeoutMs?: number }): Promise<void>
  /**
   * With `dpop.requireNonce`: replaces the server's DPoP nonce (proofs with the old one are
   * answered `use_dpop_nonce`) and returns the new one.
   */
  rotateDpopNonce(): string
  /** Stops listening and destroys every open socket, including hung requests. Idempotent. */
  close(): Promise<void>
}
