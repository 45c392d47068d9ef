import { systemClock, wallTime, type Clock } from '../clock.js'
import { isTokenkeeperError, TokenkeeperError } from '../errors.js'
import type { TokenSource } from '../sources/types.js'
import type { AccessToken } from '../token/access-token.js'
import { tokenId } from '../token/serialize.js'
import {
  aborted,
  asTokenkeeperError,
  checkWaitMs,
  closedError,
  failureFacts,
  sourceMistake,
} from './checks.js'
import type { GetTokenOptions, InvalidateOptions, TokenManagerOptions, TokenManagerStats } from './options.js'
import {
  ManagerEvents,
  type RefreshMode,
  type TokenManagerEvents,
  type TokenManagerListener,
} from './events.js'
import { Authorizer, type ResourceRequest } from '../http/authorizer.js'
import { authorizedFetch, type AuthorizedFetchOptions, type RefusalMemory } from './fetch.js'
import { raceAbort, whenAborted } from '../abort.js'
import { StoreCoordinator } from './coordinator.js'
import { SourceUpstream, type Upstream } from './upstream.js'
import { afterFailure, getAction, onArrival, timerAction } from './decisions.js'
import { EntryTable, type Entry, type Failure } from './entries.js'
import { checkLogger, subscribeLogger } from './logging.js'
import {
  checkPolicy,
  DEFAULT_BACKOFF_POLICY,
  DEFAULT_REFRESH_POLICY,
  type BackoffPolicy,
  type RefreshPolicy,
} from './policy.js'

const DEFAULT_IDLE_MS = 15 * 60_000
/** How many sources resolved per call may be nested (a token exchange whose subject is one). */
const MAX_RESOLVE_DEPTH = 8
/** How many store reads in a row a flight may find refused on arrival before it asks the source itself. */
const MAX_REFUSED_READS = 3

/** The counters of {@link TokenManagerStats} a manager counts itself. */
type Counters = { -readonly [K in Exclude<keyof TokenManagerStats, 'entries'>]: number }

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
  /** Every flight in progress, kept here or detached by eviction: close() waits for them all. */
  readonly #flights = new Set<Promise<AccessToken>>()
  readonly #clock: Clock
  readonly #random: () => number
  readonly #policy: RefreshPolicy & BackoffPolicy
  readonly #idleMs: number | undefined
  /** Where tokens come from: the source itself, or the store coordinator in front of it. */
  readonly #upstream: Upstream
  /** The source itself, past the store: for a flight whose every store read was refused meanwhile. */
  readonly #direct: SourceUpstream
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
    const policy = { ...DEFAULT_REFRESH_POLICY, ...DEFAULT_BACKOFF_POLICY }
    for (const name of Object.keys(policy) as (keyof typeof policy)[]) {
      const value = options[name]
      if (value !== undefined) policy[name] = value
    }
    checkPolicy(policy)
    this.#policy = policy
    this.#clock = options.clock ?? systemClock
    this.#random = options.random ?? Math.random
    const maxEntries = options.maxEntries ?? 10_000
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new TypeError('TokenManager: maxEntries must be a positive integer')
    this.#entries = new EntryTable(maxEntries)
    const proactive = options.proactive
    this.#idleMs =
      proactive === undefined || proactive === false
        ? undefined
        : proactive === true
          ? DEFAULT_IDLE_MS
          : (proactive.idleMs ?? DEFAULT_IDLE_MS)
    const lockTtlMs = options.lockTtlMs ?? 15_000
    if (!Number.isFinite(lockTtlMs) || lockTtlMs <= 0)
      throw new TypeError('TokenManager: lockTtlMs must be a positive number')
    if (this.#idleMs !== undefined && !(this.#idleMs >= 0 && Number.isFinite(this.#idleMs))) {
      throw new TypeError('TokenManager: proactive.idleMs must be a non-negative number')
    }
    const storeTimeoutMs = options.storeTimeoutMs ?? 5_000
    if (!Number.isFinite(storeTimeoutMs) || storeTimeoutMs <= 0)
      throw new TypeError('TokenManager: storeTimeoutMs must be a positive number')
    this.#waitForRecoveryMs = checkWaitMs(options.waitForRecoveryMs, 'TokenManager: waitForRecoveryMs') ?? 0
    this.#refusals = {
      now: () => this.#clock.now(),
      wallNow: () => wallTime(this.#clock),
      backoffMs: policy.permanentErrorBackoffMs,
      refusedUntil: new Map(),
    }
    const direct = new SourceUpstream({
      clock: this.#clock,
      signal: this.#closing.signal,
      onFetch: () => void this.#counts.fetches++,
    })
    this.#direct = direct
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
            onRemoteDelete: (key, id) => this.#onRemoteDelete(key, id),
            onRemoteClear: () => {
              for (const entry of this.#entries.values()) this.#dropToken(entry)
            },
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
    // `?.`: plain JavaScript may pass anything; #wait says what is wrong with it.
    const entry = this.#entries.get((source as TokenSource | undefined)?.key as string)
    if (entry !== undefined && options?.signal?.aborted !== true) {
      const now = this.#clock.now()
      const action = getAction(entry, now)
      if (action === 'fresh' || action === 'advisory' || action === 'advisory-renew') {
        this.#counts.hits++
        entry.used = true
        entry.lastUsedAt = now
        if (this.#events.wants('hit'))
          this.#publish('hit', { key: entry.key, window: action === 'fresh' ? 'fresh' : 'advisory' })
        if (action !== 'fresh') this.#advisory(entry, source, action === 'advisory-renew')
        return entry.resolved as Promise<AccessToken>
      }
    }
    if (typeof (source as TokenSource | undefined)?.resolve === 'function')
      return this.#getResolved(source, options)
    const waitMs =
      options?.waitForRecoveryMs === undefined
        ? this.#waitForRecoveryMs
        : checkWaitMs(options.waitForRecoveryMs, 'TokenManager.get: waitForRecoveryMs')
    if (waitMs !== undefined && waitMs > 0) return this.#waitThrough(source, options?.signal, waitMs)
    return this.#wait(source, entry, options?.signal)
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
          this.#failedFast(source.key, error, retryAt)
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
    if (typeof (source as TokenSource | undefined)?.resolve === 'function') return undefined
    const entry = this.#entries.get((source as TokenSource | undefined)?.key as string)
    if (entry === undefined || entry.token === undefined) return undefined
    return this.#clock.now() < entry.mustRefreshAt ? entry.token : undefined
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
    if (typeof source.resolve === 'function') {
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
      this.#dropToken(entry)
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
    const flights = [...this.#flights]
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

  #wait(
    source: TokenSource,
    existing: Entry | undefined,
    signal: AbortSignal | undefined,
    keyKnown = false,
  ): Promise<AccessToken> {
    if (this.#closed) return Promise.reject(closedError())
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error)
    if (existing === undefined) {
      // Only a new key is checked: an entry exists only for a source that passed.
      const mistake = sourceMistake(source, 'TokenManager.get')
      if (mistake !== undefined) return Promise.reject(mistake)
    }
    // A source whose key names what discovery finds: look the key up once it is known, so
    // that the token is cached under its final key (shared with a source built with that URL).
    const pending = keyKnown || typeof source.whenKeyKnown !== 'function' ? undefined : source.whenKeyKnown()
    if (pending !== undefined) {
      const next = (): Promise<AccessToken> => this.#wait(source, this.#entries.get(source.key), signal, true)
      // close() ends the wait at once (next() then rejects with MANAGER_CLOSED), even while the
      // discovery request goes on.
      const known = raceAbort(pending, this.#closing.signal).then(next, next)
      return signal === undefined ? known : raceAbort(known, signal)
    }
    const now = this.#clock.now()
    const entry = existing ?? this.#entries.insert(source)
    entry.source = source
    entry.used = existing !== undefined
    entry.lastUsedAt = now
    this.#counts.misses++
    if (this.#events.wants('miss')) {
      this.#publish('miss', { key: entry.key, reason: entry.token === undefined ? 'cold' : 'expired' })
    }
    const action = getAction(entry, now)
    let flight: Promise<AccessToken>
    if (action === 'join') {
      this.#counts.joined++
      flight = entry.flight as Promise<AccessToken>
    } else if (action === 'fail-fast') {
      const failure = entry.failure as Failure
      this.#failedFast(entry.key, failure.error, failure.retryAt)
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- rethrows the remembered failure as it was
      return Promise.reject((entry.failure as Failure).error)
    } else {
      flight = this.#start(entry, 'foreground')
    }
    return signal === undefined ? flight : raceAbort(flight, signal)
  }

  /** Counts a caller given the remembered error at once, and says so to whoever listens. */
  #failedFast(key: string, error: unknown, retryAt: number): void {
    this.#counts.failFast++
    if (this.#events.wants('failFast')) {
      this.#publish('failFast', { key, code: isTokenkeeperError(error) ? error.code : 'UNKNOWN', retryAt })
    }
  }

  /** A hit in the advisory window: says so while renewal fails, and starts the renewal when `renew`. */
  #advisory(entry: Entry, source: TokenSource, renew: boolean): void {
    if (entry.failure !== undefined) {
      this.#counts.staleServed++
      if (this.#events.wants('stale')) {
        this.#publish('stale', { key: entry.key, expiresAt: entry.token?.expiresAt ?? 0 })
      }
    }
    if (!renew || this.#closed) return
    entry.source = source
    void this.#start(entry, 'background')
  }

  #start(entry: Entry, mode: RefreshMode): Promise<AccessToken> {
    const flight = this.#refresh(entry, mode)
    entry.flight = flight
    this.#flights.add(flight)
    flight.then(
      () => this.#flights.delete(flight),
      () => this.#flights.delete(flight),
    )
    return flight
  }

  async #refresh(entry: Entry, mode: RefreshMode): Promise<AccessToken> {
    const startedAt = this.#clock.now()
    this.#counts.inFlight++
    if (mode === 'background') this.#counts.backgroundRefreshes++
    this.#publish('refreshStart', { key: entry.key, mode })
    try {
      let obtained = await this.#upstream.obtain(entry.key, entry.source, entry.token)
      // A token read from the store may be invalidated anywhere in the fleet while it is on its
      // way here (the store's delete event can land after the upstream's last look and before
      // this flight resumes). Checked here, with no wait between this check and its adoption,
      // and asked for again (the store read now skips it); after a few such races in a row, the
      // source itself is asked.
      for (
        let asked = 1;
        obtained.origin === 'store' && this.#upstream.refuses(entry.key, obtained.token);
        asked++
      ) {
        obtained =
          asked < MAX_REFUSED_READS
            ? await this.#upstream.obtain(entry.key, entry.source, entry.token)
            : await this.#direct.obtain(entry.key, entry.source)
      }
      const now = this.#clock.now()
      if (now >= obtained.token.expiresAt) {
        throw new TokenkeeperError(
          'EXPIRED_ON_ARRIVAL',
          `the token for ${entry.key} had expired when it arrived`,
          {
            retryable: true,
          },
        )
      }
      entry.failure = undefined
      const kept = this.#adopt(entry, obtained.token, now)
      if (obtained.origin === 'store') this.#counts.storeHits++
      this.#publish('refreshSuccess', {
        key: entry.key,
        mode,
        durationMs: now - startedAt,
        expiresAt: kept.expiresAt,
        origin: obtained.origin,
        ...(kept.binding === undefined ? {} : { binding: kept.binding }),
      })
      return kept
    } catch (thrown) {
      if (this.#closed) throw closedError()
      const error = asTokenkeeperError(thrown, entry.key)
      const now = this.#clock.now()
      const facts = failureFacts(error)
      const { retryAt, attempt } = afterFailure(entry, facts, now, this.#policy, this.#random)
      entry.failure = { error, retryAt, attempt }
      this.#counts.failures++
      this.#publish('refreshFailure', {
        key: entry.key,
        mode,
        durationMs: now - startedAt,
        code: isTokenkeeperError(error) ? error.code : 'UNKNOWN',
        message: error instanceof Error ? error.message : 'non-error thrown',
        retryable: facts.retryable,
        retryAt,
        servingCached: entry.resolved !== undefined && now < entry.mustRefreshAt,
      })
      if (this.#idleMs !== undefined && entry.resolved !== undefined && this.#entries.holds(entry)) {
        this.#schedule(entry, retryAt)
      }
      throw error
    } finally {
      entry.flight = undefined
      this.#counts.inFlight--
    }
  }

  /**
   * Keeps `token` and fixes its windows, unless it is a late answer: the entry holds a token
   * issued after it that also expires later. A newer token that expires earlier (the server now
   * issues shorter tokens, or re-sends its current token with a smaller `expires_in`) is the
   * server's answer and is adopted; keeping the older one would send a request on every call.
   */
  #adopt(entry: Entry, token: AccessToken, now: number): AccessToken {
    const arrival = onArrival(entry, token, now, this.#policy, this.#random)
    if (arrival.kind === 'keep') {
      // A late answer: the cached, newer token stays, with its refresh point moved forward.
      entry.refreshAt = arrival.refreshAt
      return entry.token as AccessToken
    }
    const { windows } = arrival
    entry.token = token
    entry.resolved = Promise.resolve(token)
    entry.refreshAt = windows.refreshAt
    entry.mustRefreshAt = windows.mustRefreshAt
    if (this.#idleMs !== undefined && !this.#closed && this.#entries.holds(entry)) {
      this.#schedule(entry, windows.refreshAt)
    }
    return token
  }

  #schedule(entry: Entry, at: number): void {
    entry.timer?.cancel()
    entry.timer = this.#clock.setTimer(() => this.#onTimer(entry), Math.max(0, at - this.#clock.now()))
  }

  #onTimer(entry: Entry): void {
    entry.timer = undefined
    if (this.#closed || !this.#entries.holds(entry) || entry.resolved === undefined) return
    const action = timerAction(entry, this.#clock.now(), entry.lastUsedAt, this.#idleMs ?? 0)
    if (action.kind === 'later') this.#schedule(entry, action.at)
    else if (action.kind === 'renew') void this.#start(entry, 'background')
  }

  #dropToken(entry: Entry): void {
    entry.token = undefined
    entry.resolved = undefined
    entry.refreshAt = 0
    entry.mustRefreshAt = 0
    entry.timer?.cancel()
    entry.timer = undefined
  }

  /**
   * The store says the token `id` of `key` (any token, when undefined) was deleted: drop it here
   * too. Answers the id of the token dropped.
   */
  #onRemoteDelete(key: string, id: string | undefined): string | undefined {
    const entry = this.#entries.get(key)
    if (entry?.token === undefined) return undefined
    const held = tokenId(entry.token)
    if (id !== undefined && id !== held) return undefined
    this.#dropToken(entry)
    this.#publish('invalidate', { key, removed: true, origin: 'remote' })
    return held
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
