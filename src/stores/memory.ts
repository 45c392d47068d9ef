import { BoundedMap } from '../bounded.js'
import { steadyClock, type Clock } from '../clock.js'
import type {
  StoreDeleteOptions,
  StoreEvent,
  StoreLock,
  StoreLockOptions,
  StoreRecord,
  StoreSetOptions,
  TokenStore,
} from './types.js'

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The most records kept; the least recently used goes first. Default 10,000. As many fetch
   * locks are kept, but for locks still held: a held lock is never given to another holder to
   * make room.
   */
  readonly maxEntries?: number
  /**
   * The clock TTLs and lock expiries are measured with. Default: the system clock. Read as
   * never going back (a step back holds the store's time still); one without `now()` and
   * `setTimer()` is a `TypeError`.
   */
  readonly clock?: Clock
}

interface Slot {
  readonly record: StoreRecord
  readonly expiresAt: number
}

class MemoryStore implements TokenStore {
  readonly #records: BoundedMap<string, Slot>
  /**
   * The locks, as many as records but for the ones still held: at the bound, a new lock takes
   * the place of expired ones (a holder gone never releases), never of one still held, which
   * would let a second process fetch beside its holder.
   */
  readonly #locks = new Map<string, { owner: object; expiresAt: number }>()
  readonly #maxLocks: number
  /** The size at which expired locks are next swept: the bound, or twice the locks still held then. */
  #sweepAt: number
  readonly #listeners = new Set<(event: StoreEvent) => void>()
  readonly #clock: Clock

  constructor(options: MemoryStoreOptions) {
    const maxEntries = options.maxEntries ?? 10_000
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new TypeError('memoryStore: maxEntries must be a positive integer')
    this.#records = new BoundedMap(maxEntries)
    this.#maxLocks = maxEntries
    this.#sweepAt = maxEntries
    // Read so that it never goes back: a clock stepped back must not stretch every TTL and lock
    // by the step (a record would then outlive its token, and block the newer one).
    this.#clock = steadyClock(options.clock, 'memoryStore')
  }

  #read(key: string): StoreRecord | undefined {
    const slot = this.#records.peek(key)
    if (slot === undefined) return undefined
    if (this.#clock.now() >= slot.expiresAt) {
      this.#records.delete(key)
      return undefined
    }
    this.#records.get(key) // now the most recently used
    return slot.record
  }

  /** The record with its remaining time on this store's clock, as a store that leaves the process measures it. */
  #answer(key: string): StoreRecord | undefined {
    const slot = this.#records.peek(key)
    const record = this.#read(key)
    if (record === undefined || slot === undefined) return undefined
    return { ...record, remainingMs: slot.expiresAt - this.#clock.now() }
  }

  #emit(event: StoreEvent): void {
    if (this.#listeners.size === 0) return
    const listeners = [...this.#listeners]
    queueMicrotask(() => {
      for (const listener of listeners) {
        try {
          listener(event)
        } catch {
          // A listener's failure is its own; the others still hear of the change.
        }
      }
    })
  }

  get(key: string): Promise<StoreRecord | undefined> {
    return Promise.resolve(this.#answer(key))
  }

  set(key: string, record: StoreRecord, options: StoreSetOptions): Promise<boolean> {
    if (!(options.ttlMs > 0)) return Promise.resolve(false)
    // Write-if-newer by remaining time, not by the writers' `expiresAt`: managers with skewed
    // clocks may share this store.
    const held = this.#read(key) === undefined ? undefined : this.#records.peek(key)
    if (held !== undefined && held.expiresAt - this.#clock.now() > options.ttlMs)
      return Promise.resolve(false)
    this.#records.set(key, { record, expiresAt: this.#clock.now() + options.ttlMs })
    this.#emit({ type: 'set', key, tokenId: record.tokenId })
    return Promise.resolve(true)
  }

  delete(key: string, options?: StoreDeleteOptions): Promise<boolean> {
    const existing = this.#read(key)
    if (existing === undefined || (options?.tokenId !== undefined && existing.tokenId !== options.tokenId)) {
      // Nothing to delete here, but other managers may still hold that token in memory.
      this.#emit({ type: 'delete', key, tokenId: options?.tokenId })
      return Promise.resolve(false)
    }
    this.#records.delete(key)
    this.#emit({ type: 'delete', key, tokenId: existing.tokenId })
    return Promise.resolve(true)
  }

  clear(): Promise<void> {
    this.#records.clear()
    this.#emit({ type: 'clear' })
    return Promise.resolve()
  }

  acquireLock(key: string, options: StoreLockOptions): Promise<StoreLock | undefined> {
    const now = this.#clock.now()
    const held = this.#locks.get(key)
    if (held !== undefined && held.expiresAt > now) return Promise.resolve(undefined)
    if (held === undefined && this.#locks.size >= this.#sweepAt) this.#dropExpiredLocks(now)
    const owner = {}
    this.#locks.set(key, { owner, expiresAt: now + options.ttlMs })
    return Promise.resolve({
      release: () => {
        if (this.#locks.get(key)?.owner === owner) {
          this.#locks.delete(key)
          this.#emit({ type: 'unlock', key })
        }
        return Promise.resolve()
      },
    })
  }

  /**
   * Forgets every lock that has expired. Run when the locks reach `#sweepAt`, which then becomes
   * twice the locks still held (at least the bound), so a sweep costs O(1) per lock taken.
   */
  #dropExpiredLocks(now: number): void {
    for (const [key, lock] of this.#locks) if (lock.expiresAt <= now) this.#locks.delete(key)
    this.#sweepAt = Math.max(this.#maxLocks, 2 * this.#locks.size)
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  /** The number of records held (expired ones may linger until read or evicted). */
  get size(): number {
    return this.#records.size
  }
}

/**
 * An in-process {@link TokenStore}: a bounded LRU with TTLs, write-if-newer, compare-and-delete,
 * per-key locks and change events. Several `TokenManager`s given the same memory store share
 * tokens and fetch once between them. A manager without a `store` needs none of this: it keeps
 * tokens in its own bounded memory.
 *
 * @example
 * ```ts
 * import { memoryStore, TokenManager } from 'tokenkeeper'
 * const tokens = new TokenManager({ store: memoryStore({ maxEntries: 500 }) })
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): TokenStore & {
  /** The number of records held (expired ones may linger until read or evicted). */
  readonly size: number
} {
  return new MemoryStore(options)
}
