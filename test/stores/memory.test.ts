import { describe, expect, it } from 'vitest'
import { memoryStore, type StoreRecord } from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import { describeStoreContract } from './contract.js'

describeStoreContract('memoryStore on a test clock', async () => {
  const clock = createTestClock()
  return {
    store: memoryStore({ clock }),
    advance: (ms) => clock.advance(ms),
    now: () => clock.now(),
    cleanup: async () => {},
  }
})

describeStoreContract('memoryStore on the system clock', async () => ({
  store: memoryStore(),
  cleanup: async () => {},
}))

describe('memoryStore specifics', () => {
  const record = (id: string, expiresAt: number): StoreRecord => ({
    tokenId: id,
    expiresAt,
    payload: `{"id":"${id}"}`,
  })

  it('rejects a maxEntries that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      expect(() => memoryStore({ maxEntries: bad })).toThrow(TypeError)
    expect(() => memoryStore({ maxEntries: 1 })).not.toThrow()
  })

  it('keeps at most maxEntries records, evicting the least recently used', async () => {
    const clock = createTestClock()
    const store = memoryStore({ clock, maxEntries: 2 })
    const at = clock.now() + 60_000
    await store.set('a', record('a', at), { ttlMs: 60_000 })
    await store.set('b', record('b', at), { ttlMs: 60_000 })
    await store.get('a') // a is now the most recently used
    await store.set('c', record('c', at), { ttlMs: 60_000 })
    expect(store.size).toBe(2)
    await expect(store.get('a')).resolves.toBeDefined()
    await expect(store.get('b')).resolves.toBeUndefined()
    await expect(store.get('c')).resolves.toBeDefined()
  })

  it('refuses a non-positive TTL', async () => {
    const clock = createTestClock()
    const store = memoryStore({ clock })
    await expect(store.set('a', record('a', clock.now() + 1_000), { ttlMs: 0 })).resolves.toBe(false)
    await expect(store.set('a', record('a', clock.now() + 1_000), { ttlMs: -5 })).resolves.toBe(false)
    await expect(store.get('a')).resolves.toBeUndefined()
  })
})
