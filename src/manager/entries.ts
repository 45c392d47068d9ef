import type { Timer } from '../clock.js'
import type { TokenSource } from '../sources/types.js'
import type { AccessToken } from '../token/access-token.js'

/** A remembered refresh failure: callers fail fast with `error` until `retryAt`. */
export interface Failure {
  readonly error: unknown
  readonly retryAt: number
  readonly attempt: number
}

/** One key's state. A plain object of fixed shape: the hot path reads three of its fields. */
export interface Entry {
  readonly key: string
  source: TokenSource
  token: AccessToken | undefined
  /** `Promise.resolve(token)`, made once, returned to every hit. */
  resolved: Promise<AccessToken> | undefined
  refreshAt: number
  mustRefreshAt: number
  flight: Promise<AccessToken> | undefined
  failure: Failure | undefined
  /**
   * Second-chance bit of the CLOCK eviction (an LRU approximation with O(1) hits): set by every
   * use after the first, so a key asked for once goes before one asked for again.
   */
  used: boolean
  lastUsedAt: number
  timer: Timer | undefined
}

/** A new, empty entry for `source`. */
export function newEntry(source: TokenSource): Entry {
  return {
    key: source.key,
    source,
    token: undefined,
    resolved: undefined,
    refreshAt: 0,
    mustRefreshAt: 0,
    flight: undefined,
    failure: undefined,
    used: false,
    lastUsedAt: 0,
    timer: undefined,
  }
}

/**
 * The manager's bounded memory: at most `maxEntries` keys, whatever is in flight. Eviction is
 * CLOCK (second chance): the hand passes over the oldest entries, giving each one used since it
 * was last passed one more round and evicting the first that was not. Each pass clears a bit a
 * hit set, so an eviction costs O(1) amortised, even when every entry is in flight.
 *
 * An evicted entry with a flight in progress is only detached: its flight goes on and settles
 * every caller already waiting on it; its token is simply not kept here.
 */
export class EntryTable {
  readonly #entries = new Map<string, Entry>()
  readonly #maxEntries: number
  /**
   * The CLOCK hand: one iterator that keeps its place between evictions (new keys join behind
   * it). Made at the first eviction and dropped by `clear()`: a live iterator keeps every hash
   * table the Map has grown out of or been cleared of, with the entries they held, until it
   * moves on, so a table that never evicts holds none.
   */
  #hand: IterableIterator<Entry> | undefined

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: string): Entry | undefined {
    return this.#entries.get(key)
  }

  /** Whether `entry` is still the one kept for its key (not evicted, cleared or replaced). */
  holds(entry: Entry): boolean {
    return this.#entries.get(entry.key) === entry
  }

  values(): IterableIterator<Entry> {
    return this.#entries.values()
  }

  /** Adds an entry for `source`, evicting one first when the table is full. */
  insert(source: TokenSource): Entry {
    const entry = newEntry(source)
    if (this.#entries.size >= this.#maxEntries) this.#evictOne()
    this.#entries.set(entry.key, entry)
    return entry
  }

  /** Drops every entry (their timers are cancelled; flights go on, detached). */
  clear(): void {
    for (const entry of this.#entries.values()) {
      entry.timer?.cancel()
      entry.timer = undefined
    }
    this.#entries.clear()
    this.#hand = undefined
  }

  #evictOne(): void {
    // Bounded: after one full turn every bit is clear, so this ends within two turns.
    for (let steps = 2 * this.#entries.size + 1; steps > 0; steps--) {
      let next = this.#hand?.next()
      if (next === undefined || next.done === true) {
        this.#hand = this.#entries.values()
        next = this.#hand.next()
        if (next.done === true) return
      }
      const entry = next.value
      if (entry.used) {
        entry.used = false
        continue
      }
      entry.timer?.cancel()
      entry.timer = undefined
      this.#entries.delete(entry.key)
      return
    }
  }
}
