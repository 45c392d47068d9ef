/**
 * What a store keeps for one key: the serialized token (which stores that leave the process
 * encrypt) plus the two facts a store needs to enforce its rules without reading the token:
 * its id, for compare-and-delete, and its expiry, for write-if-newer.
 */
export interface StoreRecord {
  /** `tokenId(token)`: identifies the token without revealing it. */
  readonly tokenId: string
  /** The token's hard expiry (epoch ms), on the clock of the process that wrote it. */
  readonly expiresAt: number
  /** `serializeToken(token)`. Secret. */
  readonly payload: string
  /**
   * On a read: how long the record has left (ms), measured by the store itself (Redis: `PTTL`).
   * The manager then dates the token by this rather than by `expiresAt`, which another machine's
   * wall clock wrote: a process whose clock is behind never keeps a token past its real expiry.
   * Stores that cannot measure it leave it out. Zero or less: the record has expired.
   */
  readonly remainingMs?: number | undefined
}

/** Options of {@link TokenStore.set}. */
export interface StoreSetOptions {
  /** Time to live: the store forgets the record after this many ms (time to hard expiry). */
  readonly ttlMs: number
}

/** Options of {@link TokenStore.delete}. */
export interface StoreDeleteOptions {
  /** Delete only if the stored record has this token id (compare-and-delete). */
  readonly tokenId?: string | undefined
}

/** A held per-key lock of a store that coordinates processes. */
export interface StoreLock {
  /** Releases the lock if this holder still owns it (compare-and-delete of the owner id). */
  release(): Promise<void>
}

/** Options of {@link TokenStore.acquireLock}. */
export interface StoreLockOptions {
  /** The lock expires by itself after this long, so a dead holder cannot block others. */
  readonly ttlMs: number
}

/** Something that happened in a store, possibly in another process. */
export type StoreEvent =
  | {
      /** A token was written for `key`. */
      readonly type: 'set'
      /** The source's cache key. */
      readonly key: string
      /** The {@link tokenId} of the token written. */
      readonly tokenId: string
    }
  | {
      /** The token of `key` was deleted (invalidated). */
      readonly type: 'delete'
      /** The source's cache key. */
      readonly key: string
      /** The {@link tokenId} of the token deleted, when the delete named one (compare-and-delete). */
      readonly tokenId: string | undefined
    }
  | {
      /**
       * The fetch lock of `key` was released by its holder (with or without a new token): a
       * process waiting for that lock may take it now.
       */
      readonly type: 'unlock'
      /** The source's cache key. */
      readonly key: string
    }
  | {
      /** Every token was deleted. */
      readonly type: 'clear'
    }

/**
 * Where the {@link TokenManager} keeps tokens beyond its own memory. Stores are dumb: they keep
 * records with a TTL, enforce two atomic rules and announce changes; the manager owns every
 * decision (when to read, lock, wait, take over, fetch), so a store for another database is
 * short to write. The store-contract suite (`test/stores/contract.ts`) specifies the rules.
 *
 * Required: `get`, `set` (write-if-newer), `delete` (optionally compare-and-delete), `clear`.
 * Optional: `acquireLock` (a per-key lock with a TTL: processes sharing the store then fetch
 * once between them) and `subscribe` (change events, this process's included: invalidations
 * reach every process, and a process waiting for another's lock wakes at once instead of
 * polling). A store method that throws or rejects is treated by the manager as a cache miss.
 *
 * @example
 * ```ts
 * import { memoryStore, TokenManager } from 'tokenkeeper'
 * const shared = memoryStore({ maxEntries: 1_000 })
 * const a = new TokenManager({ store: shared })
 * const b = new TokenManager({ store: shared }) // a and b share tokens and single-flight
 * ```
 */
export interface TokenStore {
  /** The record for `key`, or undefined when there is none or it has expired. */
  get(key: string): Promise<StoreRecord | undefined>
  /**
   * Stores `record` unless the store holds one that expires later (write-if-newer: compare the
   * stored record's remaining time with `options.ttlMs` when the store can, which no clock skew
   * between writers can fool). Returns whether the record was written.
   */
  set(key: string, record: StoreRecord, options: StoreSetOptions): Promise<boolean>
  /**
   * Deletes the record (only if its token id matches, when one is given). Returns whether it did.
   * A store with `subscribe` announces a delete event either way, naming the token id it was
   * given, so that processes still holding that token in memory drop it.
   */
  delete(key: string, options?: StoreDeleteOptions): Promise<boolean>
  /** Deletes every record this store holds. */
  clear(): Promise<void>
  /**
   * Tries to take the per-key lock, which expires by itself after `options.ttlMs`. Resolves
   * undefined when another holder has it. A store with `subscribe` announces an `unlock` event
   * when a holder releases it.
   */
  acquireLock?(key: string, options: StoreLockOptions): Promise<StoreLock | undefined>
  /**
   * How often (ms) a manager waiting for another process's lock re-checks the store, for a
   * change event lost on the way and a holder that died. Default: 250 ms for a store with
   * `subscribe`, 50 ms for one without; also when the value is not a positive finite number.
   */
  readonly pollIntervalMs?: number
  /**
   * Calls `listener` for changes made anywhere (this process included): `set`, `delete`,
   * `unlock`, `clear`. Returns an unsubscribe. An `unlock` means a holder released the lock:
   * a manager waiting for it counts two of them without a token as a failing token endpoint and
   * asks it itself, so a store must not announce one for anything else. A malformed event is
   * ignored (a `storeError`), whenever it is delivered.
   */
  subscribe?(listener: (event: StoreEvent) => void): () => void
  /** Releases what the store holds (subscriptions, timers). Does not close a client it was given. */
  close?(): Promise<void>
}
