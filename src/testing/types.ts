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
  readonly tokensIssued: number
  /** Token requests answered with a fault or an error (no token issued). */
  readonly failures: number
  /** Token requests received and not yet answered (held, delayed, hanging). */
  readonly inFlight: number
  readonly resourceCalls: number
  readonly resourceAccepted: number
  readonly resourceRejectedExpired: number
  /** Resource calls with no bearer token or one the server never issued. */
  readonly resourceRejectedUnknown: number
  readonly resourceRejectedRevoked: number
  readonly resourceRejectedScope: number
  /** Token requests and resource calls refused for their DPoP proof (`invalid_dpop_proof`, `use_dpop_nonce`). */
  readonly dpopRejected: number
  /** Token requests per claimed client id (counted once the request body has been read). */
  readonly byClient: Readonly<Record<string, number>>
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
  readonly method: string
  /** The client id the request claimed (authenticated or not). */
  readonly clientId: string | undefined
  readonly grantType: string | undefined
  readonly authMethod: ClientAuthMethod | 'none' | 'multiple' | undefined
  /** Requested scopes. */
  readonly scopes: readonly string[]
  readonly status: number | undefined
  /** The OAuth `error` code of a refusal. */
  readonly error: string | undefined
  /** The kind of fault applied to this request. */
  readonly fault: TokenServerFault['kind'] | undefined
  readonly headers: Readonly<Record<string, string>>
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
 * Paths: `/token` (RFC 6749 §4.4 and RFC 7523 §2.1), `/resource` (RFC 6750 protected API),
 * `/.well-known/oauth-authorization-server` (RFC 8414 metadata).
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
  /** `${url}/resource` */
  readonly resourceUrl: string
  /** Token requests received, oldest first (live view; see {@link TokenRequestRecord}). */
  readonly requests: readonly TokenRequestRecord[]
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
  /** Removes the standing fault and every queued fault. */
  clearFaults(): void
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
