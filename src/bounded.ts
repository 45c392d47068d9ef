/**
 * A `Map` that keeps at most `capacity` keys, least recently used first out: reading a key with
 * `get` or writing it makes it the newest, and a write beyond the capacity forgets the oldest.
 * One implementation for every bounded memory in the library (the memory store's records,
 * discovered issuers, refused token ids, resources that refused a fresh token), so that no
 * input, however many keys it names, grows one without bound.
 */
export class BoundedMap<K, V> {
  readonly #map = new Map<K, V>()
  readonly #capacity: number

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new TypeError('capacity must be a positive integer')
    this.#capacity = capacity
  }

  /** The value of `key`, which becomes the most recently used. */
  get(key: K): V | undefined {
    const value = this.#map.get(key)
    if (value !== undefined) {
      this.#map.delete(key)
      this.#map.set(key, value)
    }
    return value
  }

  /** The value of `key`, leaving the order as it is. */
  peek(key: K): V | undefined {
    return this.#map.get(key)
  }

  /** Sets `key` as the most recently used; forgets the least recently used beyond the capacity. */
  set(key: K, value: V): this {
    this.#map.delete(key)
    this.#map.set(key, value)
    while (this.#map.size > this.#capacity) {
      const oldest = this.#map.keys().next()
      if (oldest.done === true) break
      this.#map.delete(oldest.value)
    }
    return this
  }

  delete(key: K): boolean {
    return this.#map.delete(key)
  }

  clear(): void {
    this.#map.clear()
  }

  get size(): number {
    return this.#map.size
  }
}
