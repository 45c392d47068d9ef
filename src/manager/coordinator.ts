import type { Clock } from '../clock.js'
import type { StoreErrorEvent } from './events.js'
import type { TokenSource } from '../sources/types.js'
import type { StoreLock, StoreRecord, TokenStore } from '../stores/types.js'
import type { AccessToken } from '../token/access-token.js'
import { deserializeToken, serializeToken, tokenId } from '../token/serialize.js'
import { CallAbandoned, raceAbort, withinDeadline } from '../abort.js'
import { computeWindows, type RefreshPolicy } from './policy.js'
import { SecretSet } from '../secrets.js'
import {
  checkEvent,
  checkLock,
  checkRecord,
  localExpiry,
  pollInterval,
  redate,
  RefusedIds,
  storeErrorMessage,
} from './stored.js'
import type { Obtained, SourceUpstream, Upstream } from './upstream.js'
import { KeyWatches } from './watches.js'

/** What the coordinator needs from its manager. */
export interface CoordinatorOptions {
  readonly clock: Clock
  readonly policy: RefreshPolicy
  readonly random: () => number
  /** How long a fetch lock lives; also how long a loser waits before it fetches itself. */
  readonly lockTtlMs: number
  /** The longest a store call may take. */
  readonly storeTimeoutMs: number
  /** Aborted when the manager closes: ends every wait and every store call but `close`. */
  readonly signal: AbortSignal
  /** Asks the source itself. */
  readonly direct: SourceUpstream
  /**
   * A store call failed (or the store misbehaved): `message` says how, free of every secret the
   * call carried and of anything shaped like a credential.
   */
  readonly onError: (
    key: string | undefined,
    operation: StoreErrorEvent['operation'],
    message: string,
  ) => void
  /**
   * Called when this process stopped waiting for another one's fetch lock: `store` when the other
   * process's token arrived, `fetch` when this process went on to fetch itself (the holder died,
   * failed twice, or the wait ran out).
   */
  readonly onLockWait: (key: string, waitedMs: number, outcome: 'store' | 'fetch') => void
  /**
   * Another process (or this one) deleted the token `tokenId` of `key` (any token, when
   * undefined): the manager drops it from memory and answers the id of the token it dropped.
   */
  readonly onRemoteDelete: (key: string, tokenId: string | undefined) => string | undefined
  /** Every token of the store was deleted. */
  readonly onRemoteClear: () => void
}

const FAILED = Symbol('store call failed')

interface Read {
  readonly token?: AccessToken
  readonly tokenId?: string
}

/**
 * The upstream of a manager with a store: read the shared store first, and when a fetch is
 * needed take the store's per-key lock so that one process fetches for all; losers wait for the
 * winner's token (woken by the store's change events, polling as fallback), re-read, and take
 * over once the lock has expired. It alone talks to the store: every store failure counts as a
 * miss and ends in a direct fetch, so a broken store never fails a `get`. It remembers the
 * token ids refused anywhere in the fleet, so that no read adopts one.
 */
export class StoreCoordinator implements Upstream {
  readonly #store: TokenStore
  readonly #options: CoordinatorOptions
  readonly #refused = new RefusedIds()
  readonly #watches = new KeyWatches()
  /** Lock holds in progress (settling once released): close() waits for them. */
  readonly #holds = new Set<Promise<void>>()
  readonly #pollMs: number
  readonly #unsubscribe: () => void

  constructor(store: TokenStore, options: CoordinatorOptions) {
    this.#store = store
    this.#options = options
    this.#pollMs = pollInterval(store)
    this.#unsubscribe = this.#subscribe()
  }

  obtain(key: string, source: TokenSource, current: AccessToken | undefined): Promise<Obtained> {
    // A DPoP-bound token is useless without the private key, which never leaves this process:
    // such a source's tokens are neither read from nor written to a shared store.
    if (source.dpop !== undefined) return this.#options.direct.obtain(key, source)
    return this.#coordinate(key, source, current)
  }

  /** Whether `token` was refused here or anywhere in the fleet (a store read skips it too). */
  refuses(key: string, token: AccessToken): boolean {
    return this.#refused.has(key, tokenId(token))
  }

  async #coordinate(key: string, source: TokenSource, current: AccessToken | undefined): Promise<Obtained> {
    const store = this.#store
    const { clock, lockTtlMs, signal } = this.#options
    const first = await this.#read(key, current)
    if (first.token !== undefined) return { token: first.token, origin: 'store' }
    if (store.acquireLock === undefined) return this.#fetchAndWrite(key, source)
    const acquire = store.acquireLock.bind(store)
    const watch = this.#watches.watch(key)
    const startedAt = clock.now()
    let deadline = startedAt + lockTtlMs
    // Lock releases that brought no token: a holder failed. Other changes of the key (a delete,
    // a set this process may not adopt, a clear) say nothing about the holder and do not count.
    let emptyWakes = 0
    // When this process began waiting for another one's lock (undefined: it has not waited).
    let waitingSince: number | undefined
    const endWait = (outcome: 'store' | 'fetch'): void => {
      if (waitingSince === undefined) return
      this.#options.onLockWait(key, Math.max(0, clock.now() - waitingSince), outcome)
      waitingSince = undefined
    }
    try {
      for (;;) {
        const lock = await this.#call(
          key,
          'lock',
          async () => checkLock(await acquire(key, { ttlMs: lockTtlMs })),
          FAILED,
        )
        if (lock === FAILED) {
          endWait('fetch')
          return await this.#fetchAndWrite(key, source)
        }
        if (lock !== undefined) {
          return await this.#holding(key, lock, async () => {
            const again = await this.#read(key, current)
            if (again.token !== undefined) {
              endWait('store')
              return { token: again.token, origin: 'store' }
            }
            endWait('fetch')
            return this.#fetchAndWrite(key, source)
          })
        }
        waitingSince ??= clock.now()
        // Someone else holds the lock again after two holders ended without a token: the token
        // endpoint is failing. Ask it once from here too instead of queueing behind each holder in
        // turn, so every waiter gets its answer within about three requests, not one per process.
        if (emptyWakes >= 2) {
          endWait('fetch')
          return await this.#fetchAndWrite(key, source)
        }
        // Whoever holds the lock, it ends within lockTtlMs from now, so waiting that long (plus a
        // little) lets this process take over from a holder that died instead of fetching beside
        // the others; never past twice the TTL from the start.
        deadline = Math.max(deadline, Math.min(startedAt + 2 * lockTtlMs, clock.now() + lockTtlMs + 250))
        const remaining = deadline - clock.now()
        if (remaining <= 0 || signal.aborted) {
          endWait('fetch')
          return await this.#fetchAndWrite(key, source)
        }
        await this.#watches.next(watch, Math.min(remaining, this.#pollMs), clock, signal)
        const unlocked = watch.unlocked
        watch.unlocked = false
        const after = await this.#read(key, current)
        if (after.token !== undefined) {
          endWait('store')
          return { token: after.token, origin: 'store' }
        }
        if (unlocked && clock.now() < deadline) emptyWakes++
      }
    } finally {
      this.#watches.unwatch(key, watch)
    }
  }

  /**
   * Runs `work` while this process holds `key`'s lock, then releases it. The caller's answer ends
   * at once when the manager closes, but the work's store write and the release go on (each
   * bounded by storeTimeoutMs) and `close()` waits for them before it closes the store: a process
   * shutting down while it fetches must not leave the fleet waiting out the lock's TTL.
   */
  #holding(key: string, lock: StoreLock, work: () => Promise<Obtained>): Promise<Obtained> {
    const held = (async () => {
      try {
        return await work()
      } finally {
        await this.#call(key, 'unlock', () => lock.release(), undefined, { untilClose: false })
      }
    })()
    const settled = held.then(
      () => undefined,
      () => undefined,
    )
    this.#holds.add(settled)
    void settled.then(() => this.#holds.delete(settled))
    return raceAbort(held, this.#options.signal)
  }

  /** Skips the token `tokenId` of `key` in later reads, without touching the store. */
  distrust(key: string, id: string): void {
    this.#refused.remember(key, id)
  }

  /** The token `tokenId` of `key` was refused here: skip it in reads, delete it from the store. */
  async invalidate(key: string, id: string | undefined, heldId: string | undefined): Promise<boolean> {
    if (heldId !== undefined) this.#refused.remember(key, heldId)
    if (id !== undefined) this.#refused.remember(key, id)
    const store = this.#store
    return this.#call(key, 'delete', () => store.delete(key, { tokenId: id }), false)
  }

  async clear(): Promise<void> {
    const store = this.#store
    await this.#call(undefined, 'clear', () => store.clear(), undefined)
  }

  /**
   * Waits for the locks this process still holds to be released (after their store writes), stops
   * listening and closes the store, each bounded by the store deadline only.
   */
  async close(): Promise<void> {
    await Promise.all([...this.#holds])
    try {
      this.#unsubscribe()
    } catch (error) {
      this.#failed(undefined, 'subscribe', error)
    }
    const store = this.#store
    if (store.close === undefined) return
    await this.#call(undefined, 'close', () => store.close?.() ?? Promise.resolve(), undefined, {
      untilClose: false,
    })
  }

  #subscribe(): () => void {
    const store = this.#store
    if (store.subscribe === undefined) return () => undefined
    try {
      const unsubscribe: unknown = store.subscribe((event) => this.#onEvent(event))
      if (typeof unsubscribe === 'function') return unsubscribe as () => void
      throw new TypeError('the store’s subscribe returned no unsubscribe function')
    } catch (error) {
      this.#failed(undefined, 'subscribe', error)
      return () => undefined
    }
  }

  /**
   * A change event from the store. Never throws back into the store: a malformed event (which a
   * third-party store may send, even synchronously inside `subscribe()` or a write) is a
   * `subscribe` store error and changes nothing, but for a `delete` naming its key with an
   * unreadable token id, which drops any token of the key (the safe reading of an invalidation).
   */
  #onEvent(raw: unknown): void {
    const checked = checkEvent(raw)
    if (checked.problem !== undefined) this.#failed(undefined, 'subscribe', new TypeError(checked.problem))
    const event = checked.event
    if (event === undefined) return
    if (event.type === 'clear') {
      this.#watches.changed(undefined)
      this.#options.onRemoteClear()
      return
    }
    this.#watches.changed(event.key, event.type === 'unlock')
    if (event.type !== 'delete') return
    // Remembered even when this process holds another token or none: a flight in progress may
    // have read that token from the store just before it was invalidated.
    if (event.tokenId !== undefined) this.#refused.remember(event.key, event.tokenId)
    const dropped = this.#options.onRemoteDelete(event.key, event.tokenId)
    if (dropped !== undefined) this.#refused.remember(event.key, dropped)
  }

  /** A token from the store that this process may adopt: not refused, newer than ours, not due. */
  async #read(key: string, current: AccessToken | undefined): Promise<Read> {
    const store = this.#store
    const record = await this.#call<StoreRecord | undefined>(
      key,
      'get',
      async () => checkRecord(await store.get(key)),
      undefined,
    )
    if (record === undefined) return {}
    const id = record.tokenId
    const { policy, random, clock } = this.#options
    const now = clock.now()
    let expiresAt = localExpiry(record, now)
    if (this.#refused.has(key, id) || now >= expiresAt) return { tokenId: id }
    let stored: AccessToken
    try {
      stored = deserializeToken(record.payload)
      if (tokenId(stored) !== id)
        throw new TypeError('the store returned a record whose tokenId is not its token’s')
    } catch (error) {
      this.#failed(key, 'get', error)
      return { tokenId: id }
    }
    // No token has more time left than it had when issued: a record that says otherwise (a store
    // that lost its countdown, a writer's clock far ahead) is believed no further than that.
    expiresAt = Math.min(expiresAt, now + Math.max(0, stored.expiresAt - stored.issuedAt))
    if (current !== undefined && expiresAt <= current.expiresAt) return { tokenId: id }
    const token = redate(stored, expiresAt - stored.expiresAt)
    if (now >= computeWindows(token, policy, random).mustRefreshAt) return { tokenId: id }
    return { token, tokenId: id }
  }

  async #fetchAndWrite(key: string, source: TokenSource): Promise<Obtained> {
    const token = await this.#options.direct.fetch(source)
    const ttlMs = token.expiresAt - this.#options.clock.now()
    if (ttlMs > 0) {
      const store = this.#store
      // Serialising is part of the store write: a token it cannot encode (say, a vendor field
      // nested too deep for JSON) is a store error and stays in memory only, never a failed get.
      // Finished even when the manager closes meanwhile (bounded by storeTimeoutMs), so that the
      // token reaches the store before the lock is released. A store error quoting what it was
      // given (the record) never shows the token.
      const secrets = new SecretSet([token.value])
      await this.#call(
        key,
        'set',
        () => {
          const record: StoreRecord = {
            tokenId: tokenId(token),
            expiresAt: token.expiresAt,
            payload: serializeToken(token),
          }
          secrets.add(record.payload)
          return store.set(key, record, { ttlMs })
        },
        false,
        { untilClose: false, secrets },
      )
    }
    return { token, origin: 'fetch' }
  }

  /**
   * One store call, bounded: it fails (an error event, then `fallback`) when it throws or rejects
   * or takes longer than `storeTimeoutMs`, and ends at once, without an event, when the manager
   * closes, but for the calls that must finish (`untilClose` false: the store's `close`, a lock
   * release, the write before it). A store that never answers is a miss, never a hung `get`.
   * `secrets`: what the call carries, removed from its error's message.
   */
  async #call<T, F = T>(
    key: string | undefined,
    operation: StoreErrorEvent['operation'],
    call: () => Promise<T>,
    fallback: F,
    { untilClose = true, secrets }: { untilClose?: boolean; secrets?: SecretSet } = {},
  ): Promise<T | F> {
    const { clock, storeTimeoutMs, signal } = this.#options
    try {
      return await withinDeadline(
        call,
        storeTimeoutMs,
        clock.setTimer.bind(clock),
        untilClose ? signal : undefined,
      )
    } catch (error) {
      if (!(error instanceof CallAbandoned && error.reason === 'aborted')) {
        this.#failed(key, operation, error, secrets)
      }
      return fallback
    }
  }

  #failed(
    key: string | undefined,
    operation: StoreErrorEvent['operation'],
    error: unknown,
    secrets?: SecretSet,
  ): void {
    this.#options.onError(key, operation, storeErrorMessage(error, secrets))
  }
}
