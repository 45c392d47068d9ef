import type { Clock } from '../clock.js'
import type { AccessToken } from '../token/access-token.js'
import type { DpopKey } from './dpop.js'
import type { TlsClientCertificate } from './mtls.js'

/** Options for one call to {@link TokenSource.fetchToken}. */
export interface FetchTokenOptions {
  /** Ends this request early; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined
  /**
   * The clock that timestamps the request (`issuedAt`, and so `expiresAt`) and times its
   * `timeoutMs`. The token manager passes its own, so that a token's windows, its expiry and
   * the request's time limit share one timeline. Default: the system clock (or the source's own).
   */
  readonly clock?: Clock | undefined
}

/**
 * What a manager gives a source it resolves per call ({@link TokenSource.resolve}): a way to get
 * another source's token from the same cache.
 */
export interface TokenSourceContext {
  /**
   * Another source's token, from the same {@link TokenManager} (cached, renewed and single-flight
   * like any other `get`). Without a manager (a direct `fetchToken()`), that source's own
   * `fetchToken()`.
   */
  get(source: TokenSource, options?: { readonly signal?: AbortSignal | undefined }): Promise<AccessToken>
  /** Ends the caller's wait. */
  readonly signal?: AbortSignal | undefined
  /** The clock of the manager (or of the direct call). */
  readonly clock: Clock
}

/**
 * Knows how to obtain one fresh token, and how to name itself. A source never caches: the
 * {@link TokenManager} does. Wrap any function with `tokenSource(key, fn)`.
 *
 * @example
 * ```ts
 * const token = await source.fetchToken({ signal: AbortSignal.timeout(5_000) })
 * ```
 */
export interface TokenSource {
  /**
   * A stable, secret-free identity: two sources with the same key are interchangeable, and
   * anything that changes the token (endpoint, client, credential, scopes, audience, ...)
   * changes the key. The manager caches by it.
   */
  readonly key: string
  /**
   * The key its tokens are bound to (DPoP, RFC 9449), when the source was made with `dpop`: the
   * fetch wrapper and the integrations sign a proof with it for every request that carries a
   * `DPoP` token, and such tokens are never written to a shared store (see `docs/DPOP.md`).
   */
  readonly dpop?: DpopKey | undefined
  /**
   * The client certificate (mutual TLS, RFC 8705) the source's token requests present. Its
   * tokens may be bound to it (`cnf.x5t#S256`), so `tokens.fetch` sends API requests over
   * connections that present it, and the other ways of sending a token refuse
   * (`MTLS_TRANSPORT_REQUIRED`): a bound token is never sent without its certificate.
   */
  readonly mtls?: TlsClientCertificate | undefined
  /**
   * Only for a source whose key is known after a network step (`clientCredentials({ issuer })`
   * before its issuer's metadata is known, whose key then names the discovered token
   * endpoint): `undefined` when `key` is final, else a promise that settles, never rejecting,
   * once it may be. The {@link TokenManager} waits for it before it looks a key up on its slow
   * path. Hand-written sources leave it out.
   */
  whenKeyKnown?(): Promise<void> | undefined
  /** Makes one token request. No caching, no retries. */
  fetchToken(options?: FetchTokenOptions): Promise<AccessToken>
  /**
   * Optional, for a source whose token depends on an input read at every call (token exchange:
   * the subject token). When present, {@link TokenManager.get} first calls it and then caches
   * by the `key` of the source it returns, which names that input (by a fingerprint, never the
   * input itself): the same input is served from cache, a new one gets its own entry, and
   * entries of inputs no longer used age out of the manager's bounded table. `key` then names
   * the configuration only and is never a cache entry. The returned source must not have
   * `resolve` itself.
   */
  resolve?(context: TokenSourceContext): Promise<TokenSource>
}
