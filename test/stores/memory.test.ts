import { describe, expect, it } from 'vitest'
import { memoryStore, TokenManager, tokenSource, type StoreRecord } from '../../src/index.js'
import { flush } from '../manager/helpers.js'
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

  it('at its bound, a held lock stays its holder’s: other keys’ locks take only expired ones’ places', async () => {
    const clock = createTestClock()
    const store = memoryStore({ clock, maxEntries: 1 })
    const held = await store.acquireLock!('a', { ttlMs: 10_000 })
    expect(held).toBeDefined()
    await expect(store.acquireLock!('b', { ttlMs: 10_000 })).resolves.toBeDefined()
    await expect(store.acquireLock!('a', { ttlMs: 10_000 })).resolves.toBeUndefined()
    clock.advance(10_000)
    // Both expired: a new lock of another key takes their place, and 'a' is free again.
    await expect(store.acquireLock!('c', { ttlMs: 10_000 })).resolves.toBeDefined()
    await expect(store.acquireLock!('a', { ttlMs: 10_000 })).resolves.toBeDefined()
  })

  it('at its bound, two managers still fetch a key once between them while other keys come and go', async () => {
    const clock = createTestClock()
    const store = memoryStore({ clock, maxEntries: 1 })
    const first = new TokenManager({ clock, store })
    const second = new TokenManager({ clock, store })
    let calls = 0
    let answer: () => void = () => undefined
    const slow = tokenSource('bound-slow', () => {
      calls++
      return new Promise<Record<string, unknown>>((resolve) => {
        answer = () => resolve({ access_token: `slow-${calls}`, expires_in: 60 })
      })
    })
    const other = tokenSource('bound-other', () => ({ access_token: 'other', expires_in: 60 }))
    const a = first.get(slow)
    await flush()
    await second.get(other) // takes a lock of its own while the first one is held
    const b = second.get(slow)
    await flush()
    answer()
    const [fromFirst, fromSecond] = await Promise.all([a, b])
    expect(calls).toBe(1)
    expect(fromSecond.value).toBe(fromFirst.value)
    await first.close()
    await second.close()
  })

  it('refuses a non-positive TTL', async () => {
    const clock = createTestClock()
    const store = memoryStore({ clock })
    await expect(store.set('a', record('a', clock.now() + 1_000), { ttlMs: 0 })).resolves.toBe(false)
    await expect(store.set('a', record('a', clock.now() + 1_000), { ttlMs: -5 })).resolves.toBe(false)
    await expect(store.get('a')).resolves.toBeUndefined()
  })
})
