import { steadyClock, type SteadyClock } from '../clock.js'
import type { TokenSource } from '../sources/types.js'
import type { AccessToken } from '../token/access-token.js'
import { tokenId } from '../token/serialize.js'
import {
  aborted,
  checkWaitMs,
  clockFailedError,
  closedError,
  failureFacts,
  sourceMistake,
  unreadableSource,
} from './checks.js'
import type {
  Counters,
  GetTokenOptions,
  InvalidateOptions,
  TokenManagerOptions,
  TokenManagerStats,
} from './options.js'
import { resolveOptions } from './options.js'
import { Flights } from './flights.js'
import { ManagerEvents, type TokenManagerEvents, type TokenManagerListener } from './events.js'
import { Authorizer, type ResourceRequest } from '../http/authorizer.js'
import { authorizedFetch, type AuthorizedFetchOptions, type RefusalMemory } from './fetch.js'
import { raceAbort, whenAborted } from '../abort.js'
import { StoreCoordinator } from './coordinator.js'
import { SourceUpstream, type Upstream } from './upstream.js'
import { getAction } from './decisions.js'
import { EntryTable } from './entries.js'
import { BoundedMap } from '../bounded.js'
import { checkLogger, subscribeLogger } from './logging.js'

/** A step back of the clock up to this long holds the time still; a longer one ends every cached token's windows. */
const STEP_BACK_TOLERANCE_MS = 1_000

/** How many sources resolved per call may be nested (a token exchange whose subject is one). */
const MAX_RESOLVE_DEPTH = 8

/**
 * Obtains tokens from sources and keeps them: one request per key serves every caller, tokens
 * are renewed in the background before they run out, failures back off, and a still-valid
 * token keeps being served through an outage. See `docs/LIFECYCLE.md`.
 *
 * @example
 * ```ts
 * import { TokenManager, clientCredentials, clientSecretBasic } from 'tokenkeeper'
 * const tokens = new TokenManager()
 * const source = clientCredentials({ tokenUrl, clientId: 'svc-a', auth: clientSecretBasic(secret) })
 * const token = await tokens.get(source)
 * const api = tokens.fetch(source)
 * const res = await api('https://api.example/v1/things')
 * await tokens.close()
 * ```
 */
export class TokenManager {
  readonly #events = new ManagerEvents()
  readonly #entries: EntryTable
  /** The per-key flights: joining, starting and settling refreshes, and renewal timers. */
  readonly #flights: Flights
  /** The clock given, checked: never going back, always finite (`read()` says when it failed). */
  readonly #clock: SteadyClock
  readonly #random: () => number
  /** Where tokens come from: the source itself, or the store coordinator in front of it. */
  readonly #upstream: Upstream
  readonly #closing = new AbortController()
  readonly #refusals: RefusalMemory
  readonly #waitForRecoveryMs: number
  #closed = false
  /** The counters `stats()` reports (but for `entries`), counted where they happen. */
  readonly #counts: Counters = {
    hits: 0,
    misses: 0,
    joined: 0,
    fetches: 0,
    failures: 0,
    failFast: 0,
    waitedForRecovery: 0,
    backgroundRefreshes: 0,
    staleServed: 0,
    storeHits: 0,
    storeErrors: 0,
    inFlight: 0,
  }

  constructor(options: TokenManagerOptions = {}) {
    const { policy, maxEntries, idleMs, lockTtlMs, storeTimeoutMs, waitForRecoveryMs } =
      resolveOptions(options)
    this.#clock = steadyClock(options.clock, 'TokenManager', (stepMs) => this.#steppedBack(stepMs))
    const random = options.random
    // A draw that throws is read as one that is not a number: the low end of each jitter range
    // (policy.ts), never a failed refresh or an exception out of a backoff.
    this.#random =
      random === undefined
        ? Math.random
        : () => {
            try {
              return random()
            } catch {
              return Number.NaN
            }
          }
    this.#entries = new EntryTable(maxEntries)
    this.#waitForRecoveryMs = waitForRecoveryMs
    this.#refusals = {
      now: () => this.#clock.now(),
      wallNow: () => this.#clock.wallNow(),
      backoffMs: policy.permanentErrorBackoffMs,
      refusedUntil: new BoundedMap(maxEntries),
    }
    const direct = new SourceUpstream({
      clock: this.#clock,
      signal: this.#closing.signal,
      onFetch: () => void this.#counts.fetches++,
    })
    this.#upstream =
      options.store === undefined
        ? direct
        : new StoreCoordinator(options.store, {
            clock: this.#clock,
            policy,
            random: this.#random,
            lockTtlMs,
            storeTimeoutMs,
            signal: this.#closing.signal,
            direct,
            onError: (key, operation, message) => this.#storeFailed(key, operation, message),
            onLockWait: (key, waitedMs, outcome) => this.#publish('lockWait', { key, waitedMs, outcome }),
            onRemoteDelete: (key, id) => this.#flights.dropRemote(key, id),
            onRemoteClear: () => {
              for (const entry of this.#entries.values()) this.#flights.drop(entry)
            },
          })
    this.#flights = new Flights({
      entries: this.#entries,
      clock: this.#clock,
      policy,
      random: this.#random,
      idleMs,
      upstream: this.#upstream,
      direct,
      counts: this.#counts,
      events: this.#events,
      closing: this.#closing.signal,
    })
    if (options.logger !== undefined) {
      checkLogger(options.logger)
      subscribeLogger(this, options.logger, () => this.#clock.now())
    }
  }

  /**
   * A token that is fresh enough to use now. Served from memory without any I/O while it is
   * fresh or advisory (starting one background renewal in the advisory window); otherwise every
   * concurrent caller for the key waits on one shared request.
   */
  get(source: TokenSource, options?: GetTokenOptions): Promise<AccessToken> {
    // A clock that fails says nothing of any token's window: nothing is served or fetched on it.
    const now = this.#clock.read()
    if (now === undefined) return Promise.reject(clockFailedError())
    // `?.`: plain JavaScript may pass anything; join() says what is wrong with it.
    let key: string
    let resolves: boolean
    try {
      key = (source as TokenSource | undefined)?.key as string
      resolves = typeof (source as TokenSource | undefined)?.resolve === 'function'
    } catch {
      return Promise.reject(unreadableSource('TokenManager.get'))
    }
    const entry = this.#entries.get(key)
    if (entry !== undefined && options?.signal?.aborted !== true) {
      const action = getAction(entry, now)
      if (action === 'fresh' || action === 'advisory' || action === 'advisory-renew') {
        this.#counts.hits++
        entry.used = true
        entry.lastUsedAt = now
        if (this.#events.wants('hit'))
          this.#publish('hit', { key: entry.key, window: action === 'fresh' ? 'fresh' : 'advisory' })
        if (action !== 'fresh') this.#flights.advisory(entry, source, action === 'advisory-renew')
        return entry.resolved as Promise<AccessToken>
      }
    }
    if (resolves) return this.#getResolved(source, options)
    const waitMs =
      options?.waitForRecoveryMs === undefined
        ? this.#waitForRecoveryMs
        : checkWaitMs(options.waitForRecoveryMs, 'TokenManager.get: waitForRecoveryMs')
    if (waitMs !== undefined && waitMs > 0) return this.#waitThrough(source, options?.signal, waitMs)
    return this.#flights.join(source, entry, options?.signal)
  }

  /**
   * A `get` of a source resolved per call ({@link TokenSource.resolve}, token exchange): the
   * token is cached under the key of the source it resolves to.
   */
  async #getResolved(
    source: TokenSource,
    options: GetTokenOptions | undefined,
    depth = 0,
  ): Promise<AccessToken> {
    return this.get(await this.#resolve(source, options?.signal, depth), options)
  }

  /**
   * The source `source.resolve` names for this call, through this manager's own `get`. `depth`
   * counts the resolutions this one is inside (a subject that is itself resolved per call): a
   * chain longer than {@link MAX_RESOLVE_DEPTH} is a cycle, and fails instead of recursing
   * until the stack overflows. The wait ends on the caller's signal and on `close()`, even if
   * `resolve` (a subject provider) never settles.
   */
  async #resolve(source: TokenSource, signal: AbortSignal | undefined, depth = 0): Promise<TokenSource> {
    if (this.#closed) throw closedError()
    if (signal?.aborted === true) throw signal.reason
    const mistake = sourceMistake(source, 'TokenManager.get')
    if (mistake !== undefined) throw mistake
    if (depth >= MAX_RESOLVE_DEPTH) {
      throw new TypeError(
        `TokenManager.get: ${source.key} is resolved inside ${depth} other resolutions; does a source's subject resolve through the source itself?`,
      )
    }
    const resolving = (source.resolve as NonNullable<TokenSource['resolve']>).call(source, {
      get: (other, options) =>
        typeof (other as TokenSource | undefined)?.resolve === 'function'
          ? this.#getResolved(other, options, depth + 1)
          : this.get(other, options),
      signal,
      clock: this.#clock,
    })
    const closing = raceAbort(resolving, this.#closing.signal)
    const resolved = await (signal === undefined ? closing : raceAbort(closing, signal))
    const wrong = sourceMistake(resolved, `TokenManager.get: ${source.key} resolved to something that`)
    if (wrong !== undefined) throw wrong
    if (typeof resolved.resolve === 'function') {
      throw new TypeError(`TokenManager.get: ${source.key} resolved to a source that must be resolved again`)
    }
    return resolved
  }

  /**
   * A `get` that waits through an outage: after a retryable failure it sleeps until the key's
   * next attempt is due (`retryAt`, set by the backoff schedule and Retry-After) and asks again,
   * joining that attempt. It gives up with the last error when the next attempt is due after
   * its deadline, on a non-retryable error, on `close()` and on its signal.
   */
  async #waitThrough(
    source: TokenSource,
    signal: AbortSignal | undefined,
    waitMs: number,
  ): Promise<AccessToken> {
    const deadline = this.#clock.now() + waitMs
    const once = { signal, waitForRecoveryMs: 0 }
    for (;;) {
      const entry = this.#entries.get(source.key)
      const now = this.#clock.now()
      const failure = entry?.failure
      if (
        !this.#closed &&
        entry !== undefined &&
        failure !== undefined &&
        getAction(entry, now) === 'fail-fast'
      ) {
        const { error, retryAt } = failure
        if (!failureFacts(error).retryable || retryAt > deadline) {
          this.#flights.failedFast(source.key, error, retryAt)
          throw error
        }
        this.#counts.waitedForRecovery++
        await this.#sleep(retryAt - now, signal)
        if (this.#closed) throw closedError()

        if (signal !== undefined && aborted(signal)) throw signal.reason
        continue
      }
      try {
        return await this.get(source, once)
      } catch (error) {
        if (this.#closed || signal?.aborted === true || !failureFacts(error).retryable) throw error
        const next = this.#entries.get(source.key)?.failure?.retryAt
        // Only a failure that set a later attempt is waited through (never a loop without a request).
        if (next === undefined || next <= this.#clock.now()) throw error
      }
    }
  }

  /** Waits `delayMs` on the manager's clock, or less if `close()` is called or `signal` aborts. */
  #sleep(delayMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const stops: (() => void)[] = []
      const done = (): void => {
        for (const stop of stops) stop()
        resolve()
      }
      const timer = this.#clock.setTimer(done, delayMs)
      stops.push(() => timer.cancel(), whenAborted(this.#closing.signal, done))
      if (signal !== undefined) stops.push(whenAborted(signal, done))
    })
  }

  /**
   * The cached token if it may be used now (not in its mandatory window). Synchronous, no I/O.
   * Always `undefined` for a source resolved per call (token exchange), whose entry depends on
   * an input only a `get` reads.
   */
  peek(source: TokenSource): AccessToken | undefined {
    let entry
    try {
      if (typeof (source as TokenSource | undefined)?.resolve === 'function') return undefined
      entry = this.#entries.get((source as TokenSource | undefined)?.key as string)
    } catch {
      return undefined // a source whose members cannot be read has no token here
    }
    if (entry === undefined || entry.token === undefined) return undefined
    const now = this.#clock.read()
    return now !== undefined && now < entry.mustRefreshAt ? entry.token : undefined
  }

  /**
   * Drops the cached token, but only if it is still `options.token` when one is given
   * (compare-and-delete), here and in the store. So N concurrent 401s for one token cause one
   * refresh, and a late 401 for an old token never evicts a newer one. Resolves to whether a
   * token was removed.
   */
  async invalidate(source: TokenSource, options: InvalidateOptions = {}): Promise<boolean> {
    const mistake = sourceMistake(source, 'TokenManager.invalidate')
    if (mistake !== undefined) throw mistake
    let resolves: boolean
    try {
      resolves = typeof source.resolve === 'function'
    } catch {
      throw unreadableSource('TokenManager.invalidate')
    }
    if (resolves) {
      // The entry of the current input (subject token); none to drop when it cannot be read.
      let resolved: TokenSource
      try {
        resolved = await this.#resolve(source, undefined)
      } catch {
        return false
      }
      return this.invalidate(resolved, options)
    }
    if (typeof source.whenKeyKnown === 'function') await source.whenKeyKnown()
    const key = source.key
    const given = options.token
    const value = given === undefined ? undefined : typeof given === 'string' ? given : given.value
    const givenId = value === undefined ? undefined : tokenId(value)
    const entry = this.#entries.get(key)
    let dropped: string | undefined
    if (entry?.token !== undefined && (value === undefined || entry.token.value === value)) {
      dropped = tokenId(entry.token)
      this.#flights.drop(entry)
    }
    const deleted = await this.#upstream.invalidate(key, givenId, dropped)
    const removed = dropped !== undefined || deleted
    this.#publish('invalidate', { key, removed, origin: 'local' })
    return removed
  }

  /** Forgets every token, here and in the store. Requests in flight finish but are not cached here. */
  async clear(): Promise<void> {
    this.#entries.clear()
    await this.#upstream.clear()
  }

  /** Counters and gauges, free of tokens and secrets. */
  stats(): TokenManagerStats {
    return { entries: this.#entries.size, ...this.#counts }
  }

  /**
   * A `fetch` that sends `Authorization` with a token for `source`; on a 401 it invalidates the
   * token it sent, gets a fresh one and retries once (when the body can be replayed). A 403 with
   * `error="insufficient_scope"` rejects with an {@link InsufficientScopeError}.
   */
  fetch(source: TokenSource, options: AuthorizedFetchOptions = {}): typeof globalThis.fetch {
    const authorizer = this.authorizer(source)
    const certificate = source.mtls
    if (certificate !== undefined && options.fetch !== undefined) {
      throw new TypeError(
        'TokenManager.fetch: the source uses mutual TLS; its requests go over connections that present its certificate, so fetch cannot be given',
      )
    }
    return authorizedFetch(authorizer, options, certificate)
  }

  /**
   * Authorizes requests to a resource for any HTTP client with the same policy as
   * {@link TokenManager.fetch}: the headers for a request, and what to do with its answer (renew
   * and retry once on 401, {@link InsufficientScopeError} on 403 `insufficient_scope`). The
   * axios and undici integrations are built on it.
   *
   * @example
   * ```ts
   * const authorizer = tokens.authorizer(source)
   * const sent = await authorizer.authorize({ method: 'GET', url: 'https://api.example/v1/things' })
   * // send the request with sent.headers, then: await authorizer.afterResponse(...)
   * ```
   */
  authorizer(source: TokenSource): Authorizer {
    const mistake = sourceMistake(source, 'TokenManager.authorizer')
    if (mistake !== undefined) throw mistake
    return new Authorizer(this, source, this.#refusals)
  }

  /**
   * The headers that authorize one request with a token for `source`, for any HTTP client:
   * `authorization`, and for a DPoP-bound token (RFC 9449 §7) `dpop`, a proof signed for this
   * method and URL (with `ath` and the resource's last nonce). Both values are secret. Sign a new
   * set for every request: a proof is for one request only. For the 401 and nonce retries, use
   * {@link TokenManager.fetch} or {@link TokenManager.authorizer}.
   *
   * @example
   * ```ts
   * const url = 'https://api.example/v1/things'
   * const headers = await tokens.headers(source, { method: 'GET', url })
   * const res = await fetch(url, { headers })
   * ```
   */
  async headers(
    source: TokenSource,
    request: ResourceRequest & { readonly signal?: AbortSignal | undefined },
  ): Promise<Record<string, string>> {
    const sent = await this.authorizer(source).authorize(request, { signal: request.signal })
    return { ...sent.headers }
  }

  /**
   * Stops timers, aborts requests in flight (their callers get `MANAGER_CLOSED`), forgets every
   * token, and closes the store. Later calls reject with `MANAGER_CLOSED`. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const flights = this.#flights.inProgress()
    // With no entries, every later call takes the slow path, which refuses a closed manager.
    this.#entries.clear()
    this.#closing.abort(closedError())
    await Promise.allSettled(flights)
    await this.#upstream.close()
  }

  /** {@link TokenManager.close}, for `await using tokens = new TokenManager()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /**
   * The clock was stepped back by `stepMs`: how much time passed before the step no reading can
   * show, so no cached token is served on the windows it was given, nor read back from the store
   * (whose own clock may have been stepped back with it); each is renewed at its key's next `get`
   * (one request per key, callers waiting on it). A step of at most
   * {@link STEP_BACK_TOLERANCE_MS} (a clock that wavers) only holds the time still.
   */
  #steppedBack(stepMs: number): void {
    if (stepMs <= STEP_BACK_TOLERANCE_MS) return
    for (const entry of this.#entries.values()) {
      entry.refreshAt = 0
      entry.mustRefreshAt = 0
      // A store on the same clock dates the token by it too: it is not read back from there.
      if (entry.token !== undefined) this.#upstream.distrust(entry.key, tokenId(entry.token))
    }
  }

  #storeFailed(
    key: string | undefined,
    operation: TokenManagerEvents['storeError'][0]['operation'],
    message: string,
  ): void {
    this.#counts.storeErrors++
    this.#publish('storeError', { key, operation, message })
  }

  #publish<K extends keyof TokenManagerEvents>(name: K, ...event: TokenManagerEvents[K]): void {
    this.#events.publish(name, event[0])
  }

  /**
   * Listens to an event of this manager (see {@link TokenManagerEvents}; the same payloads go to
   * the `node:diagnostics_channel` channels of {@link CHANNEL_NAMES}). Listeners are called
   * synchronously; one that throws is not caught.
   *
   * @example
   * ```ts
   * tokens.on('refreshFailure', (event) => console.warn(event.key, event.code, event.retryAt))
   * ```
   */
  on<K extends keyof TokenManagerEvents>(name: K, listener: TokenManagerListener<K>): this {
    this.#events.on(name, listener)
    return this
  }

  /** Like {@link TokenManager.on}, for the next event of that name only. */
  once<K extends keyof TokenManagerEvents>(name: K, listener: TokenManagerListener<K>): this {
    this.#events.once(name, listener)
    return this
  }

  /** Removes a listener added with {@link TokenManager.on} or {@link TokenManager.once}. */
  off<K extends keyof TokenManagerEvents>(name: K, listener: TokenManagerListener<K>): this {
    this.#events.off(name, listener)
    return this
  }

  /** The same as {@link TokenManager.on} (the `EventEmitter` name). */
  addListener<K extends keyof TokenManagerEvents>(name: K, listener: TokenManagerListener<K>): this {
    return this.on(name, listener)
  }

  /** The same as {@link TokenManager.off} (the `EventEmitter` name). */
  removeListener<K extends keyof TokenManagerEvents>(name: K, listener: TokenManagerListener<K>): this {
    return this.off(name, listener)
  }

  /** Removes every listener of `name`, or of every event when no name is given. */
  removeAllListeners(name?: keyof TokenManagerEvents): this {
    this.#events.removeAll(name)
    return this
  }

  /** How many listeners `name` has on this manager (channel subscribers not counted). */
  listenerCount(name: keyof TokenManagerEvents): number {
    return this.#events.listenerCount(name)
  }
}

export type { GetTokenOptions, InvalidateOptions, TokenManagerOptions, TokenManagerStats } from './options.js'
