import type { Clock } from '../clock.js'
import { isTokenkeeperError, TokenkeeperError } from '../errors.js'
import { raceAbort } from '../abort.js'
import type { TokenSource } from '../sources/types.js'
import type { AccessToken } from '../token/access-token.js'
import { tokenId } from '../token/serialize.js'
import { asTokenkeeperError, closedError, failureFacts, sourceMistake } from './checks.js'
import { afterFailure, getAction, onArrival, timerAction } from './decisions.js'
import type { EntryTable, Entry, Failure } from './entries.js'
import type { ManagerEvents, RefreshMode, TokenManagerEvents } from './events.js'
import type { Counters } from './options.js'
import type { BackoffPolicy, RefreshPolicy } from './policy.js'
import type { Obtained, SourceUpstream, Upstream } from './upstream.js'

/** How many store reads in a row a flight may find refused on arrival before it asks the source itself. */
const MAX_REFUSED_READS = 3

/** What the flights need from their manager. */
export interface FlightsOptions {
  readonly entries: EntryTable
  readonly clock: Clock
  readonly policy: RefreshPolicy & BackoffPolicy
  readonly random: () => number
  /** Proactive renewal: how long a key may go unused and still be renewed (undefined: off). */
  readonly idleMs: number | undefined
  readonly upstream: Upstream
  /** The source itself, past the store: for a flight whose every store read was refused meanwhile. */
  readonly direct: SourceUpstream
  readonly counts: Counters
  readonly events: ManagerEvents
  /** Aborted when the manager closes. */
  readonly closing: AbortSignal
}

/**
 * The per-key flights: a caller that cannot be served from memory joins the key's one flight
 * (or fails fast in its backoff), a flight asks the upstream and settles the entry with the
 * answer (adopt, or keep against a late answer; backoff on failure), and timers renew keys in
 * the background. What to do at each step is decided by `decisions.ts`; this only acts.
 */
export class Flights {
  /** Every flight in progress, kept in an entry or detached by eviction: close() waits for them all. */
  readonly #all = new Set<Promise<AccessToken>>()
  readonly #entries: EntryTable
  readonly #clock: Clock
  readonly #policy: RefreshPolicy & BackoffPolicy
  readonly #random: () => number
  readonly #idleMs: number | undefined
  readonly #upstream: Upstream
  readonly #direct: SourceUpstream
  readonly #counts: Counters
  readonly #events: ManagerEvents
  readonly #closing: AbortSignal

  constructor(options: FlightsOptions) {
    this.#entries = options.entries
    this.#clock = options.clock
    this.#policy = options.policy
    this.#random = options.random
    this.#idleMs = options.idleMs
    this.#upstream = options.upstream
    this.#direct = options.direct
    this.#counts = options.counts
    this.#events = options.events
    this.#closing = options.closing
  }

  /** The flights in progress now. */
  inProgress(): Promise<AccessToken>[] {
    return [...this.#all]
  }

  /**
   * The slow path of a `get`: joins the key's flight, starts one, or fails fast in the key's
   * backoff. `keyKnown`: the source's `whenKeyKnown()` has settled.
   */
  join(
    source: TokenSource,
    existing: Entry | undefined,
    signal: AbortSignal | undefined,
    keyKnown = false,
  ): Promise<AccessToken> {
    if (this.#closing.aborted) return Promise.reject(closedError())
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error)
    if (existing === undefined) {
      // Only a new key is checked: an entry exists only for a source that passed.
      const mistake = sourceMistake(source, 'TokenManager.get')
      if (mistake !== undefined) return Promise.reject(mistake)
    }
    // A source whose key names what discovery finds: look the key up once it is known, so
    // that the token is cached under its final key (shared with a source built with that URL).
    let pending: Promise<void> | undefined
    if (!keyKnown && typeof source.whenKeyKnown === 'function') {
      try {
        pending = source.whenKeyKnown()
      } catch (error) {
        // Thrown instead of rejected: the same (the key is looked up once it has settled).
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes what the source threw through unchanged
        pending = Promise.reject(error)
      }
    }
    if (pending !== undefined) {
      const next = (): Promise<AccessToken> => this.join(source, this.#entries.get(source.key), signal, true)
      // close() ends the wait at once (next() then rejects with MANAGER_CLOSED), even while the
      // discovery request goes on.
      const known = raceAbort(pending, this.#closing).then(next, next)
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
      this.failedFast(entry.key, failure.error, failure.retryAt)
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- rethrows the remembered failure as it was
      return Promise.reject((entry.failure as Failure).error)
    } else {
      flight = this.start(entry, 'foreground')
    }
    return signal === undefined ? flight : raceAbort(flight, signal)
  }

  /** Counts a caller given the remembered error at once, and says so to whoever listens. */
  failedFast(key: string, error: unknown, retryAt: number): void {
    this.#counts.failFast++
    if (this.#events.wants('failFast')) {
      this.#publish('failFast', { key, code: isTokenkeeperError(error) ? error.code : 'UNKNOWN', retryAt })
    }
  }

  /** A hit in the advisory window: says so while renewal fails, and starts the renewal when `renew`. */
  advisory(entry: Entry, source: TokenSource, renew: boolean): void {
    if (entry.failure !== undefined) {
      this.#counts.staleServed++
      if (this.#events.wants('stale')) {
        this.#publish('stale', { key: entry.key, expiresAt: entry.token?.expiresAt ?? 0 })
      }
    }
    if (!renew || this.#closing.aborted) return
    entry.source = source
    void this.start(entry, 'background')
  }

  start(entry: Entry, mode: RefreshMode): Promise<AccessToken> {
    const flight = this.#refresh(entry, mode)
    entry.flight = flight
    this.#all.add(flight)
    flight.then(
      () => this.#all.delete(flight),
      () => this.#all.delete(flight),
    )
    return flight
  }

  async #refresh(entry: Entry, mode: RefreshMode): Promise<AccessToken> {
    const startedAt = this.#clock.now()
    this.#counts.inFlight++
    if (mode === 'background') this.#counts.backgroundRefreshes++
    this.#publish('refreshStart', { key: entry.key, mode })
    try {
      let obtained: Obtained = await this.#upstream.obtain(entry.key, entry.source, entry.token)
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
      if (this.#closing.aborted) throw closedError()
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
    // A token that arrived already in its mandatory window (its request took longer than its
    // useful life) is never served from memory, so a timer could only renew it again at once,
    // and again: the next get asks for it instead.
    if (
      this.#idleMs !== undefined &&
      !this.#closing.aborted &&
      this.#entries.holds(entry) &&
      now < windows.mustRefreshAt
    ) {
      this.#schedule(entry, windows.refreshAt)
    } else {
      entry.timer?.cancel()
      entry.timer = undefined
    }
    return token
  }

  #schedule(entry: Entry, at: number): void {
    entry.timer?.cancel()
    entry.timer = this.#clock.setTimer(() => this.#onTimer(entry), Math.max(0, at - this.#clock.now()))
  }

  #onTimer(entry: Entry): void {
    entry.timer = undefined
    if (this.#closing.aborted || !this.#entries.holds(entry) || entry.resolved === undefined) return
    const action = timerAction(entry, this.#clock.now(), entry.lastUsedAt, this.#idleMs ?? 0)
    if (action.kind === 'later') this.#schedule(entry, action.at)
    else if (action.kind === 'renew') void this.start(entry, 'background')
  }

  drop(entry: Entry): void {
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
  dropRemote(key: string, id: string | undefined): string | undefined {
    const entry = this.#entries.get(key)
    if (entry?.token === undefined) return undefined
    const held = tokenId(entry.token)
    if (id !== undefined && id !== held) return undefined
    this.drop(entry)
    this.#publish('invalidate', { key, removed: true, origin: 'remote' })
    return held
  }

  #publish<K extends keyof TokenManagerEvents>(name: K, ...event: TokenManagerEvents[K]): void {
    this.#events.publish(name, event[0])
  }
}
