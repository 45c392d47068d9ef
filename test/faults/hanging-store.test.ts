import { describe, expect, it } from 'vitest'
import { memoryStore, TokenManager, type StoreErrorEvent, type TokenStore } from '../../src/index.js'
import { createTestClock, type TestClock } from '../../src/testing/index.js'
import { flush, heldSource, instantSource, settle } from '../manager/helpers.js'
import { storeView } from '../support/stores.js'

type Method = 'get' | 'set' | 'acquireLock' | 'release' | 'delete' | 'clear' | 'close'

const never = <T>(): Promise<T> => new Promise<T>(() => undefined)

/** A memory store, except that `hang` never settles (and counts its calls). */
function hangingStore(clock: TestClock, hang: Method): { store: TokenStore; calls: () => number } {
  const inner = memoryStore({ clock })
  let calls = 0
  const stuck = <T>(method: Method, real: () => Promise<T>): Promise<T> => {
    if (method !== hang) return real()
    calls++
    return never()
  }
  const store: TokenStore = {
    get: (key) => stuck('get', () => inner.get(key)),
    set: (key, record, options) => stuck('set', () => inner.set(key, record, options)),
    delete: (key, options) => stuck('delete', () => inner.delete(key, options)),
    clear: () => stuck('clear', () => inner.clear()),
    acquireLock: (key, options) =>
      stuck('acquireLock', async () => {
        const lock = await inner.acquireLock!(key, options)
        if (lock === undefined) return undefined
        return { release: () => stuck('release', () => lock.release()) }
      }),
    close: () => stuck('close', () => Promise.resolve()),
  }
  return { store, calls: () => calls }
}

function setup(hang: Method) {
  const clock = createTestClock()
  const { store, calls } = hangingStore(clock, hang)
  const tokens = new TokenManager({ clock, store, storeTimeoutMs: 1_000 })
  const errors: StoreErrorEvent[] = []
  tokens.on('storeError', (event) => errors.push(event))
  return { clock, store, tokens, errors, calls }
}

describe('a store call that never settles', () => {
  for (const method of ['get', 'set', 'acquireLock', 'release'] as const) {
    it(`${method}: get() still answers once the store deadline passes, with a storeError event`, async () => {
      const { clock, tokens, errors, calls } = setup(method)
      const source = instantSource('k', 60_000)
      let done = false
      const call = tokens.get(source.source).finally(() => (done = true))
      await flush()
      expect(calls()).toBe(1)
      // Each hanging call costs one deadline (a cold get with a lock reads the store twice).
      for (let i = 0; i < 4 && !done; i++) await clock.advanceAsync(1_000)
      expect(done).toBe(true)
      await expect(call).resolves.toBeDefined()
      expect(source.calls()).toBe(1)
      const operation = { get: 'get', set: 'set', acquireLock: 'lock', release: 'unlock' }[method]
      expect(errors.map((e) => e.operation)).toContain(operation)
      await tokens.close()
    })

    it(`${method}: close() settles waiting callers with MANAGER_CLOSED and resolves`, async () => {
      const { clock, tokens, calls } = setup(method)
      const held = heldSource('k')
      const first = tokens.get(held.source)
      const second = tokens.get(held.source)
      await flush()
      // get and acquireLock hang before the source is asked; set and release after it answered.
      if (held.fetches.length > 0) held.last().succeed(60_000)
      await flush()
      expect(calls()).toBe(1)
      let closed = false
      const closing = tokens.close().then(() => (closed = true))
      const settled = { first: settle(first), second: settle(second) }
      await flush()
      expect(settled.first.result().status).not.toBe('pending')
      expect(settled.second.result().status).not.toBe('pending')
      if (method === 'get' || method === 'acquireLock') {
        expect(closed).toBe(true)
        await expect(first).rejects.toMatchObject({ code: 'MANAGER_CLOSED' })
        await expect(second).rejects.toMatchObject({ code: 'MANAGER_CLOSED' })
        expect(held.fetches).toHaveLength(0)
      } else {
        // The token had arrived and this process holds the lock: its write and the lock's
        // release are finished rather than abandoned (a lock left behind would keep the fleet
        // waiting for its TTL), so close() waits for them, no longer than the store deadline.
        expect(closed).toBe(false)
        await clock.advanceAsync(1_000)
        expect(closed).toBe(true)
      }
      await closing
    })
  }

  it('a lock that is never free: the waiter asks the source itself once its wait runs out', async () => {
    const clock = createTestClock()
    const inner = memoryStore({ clock })
    let tries = 0
    const store = storeView(inner, {
      acquireLock: () => {
        tries++
        return Promise.resolve(undefined) // always held by someone else
      },
    })
    const tokens = new TokenManager({ clock, store, storeTimeoutMs: 1_000, lockTtlMs: 2_000 })
    const source = instantSource('k', 60_000)
    let done = false
    const call = tokens.get(source.source).finally(() => (done = true))
    // Polled every 50 ms, the lock is held at every try: the wait is stretched to the most it may
    // be, twice the lock's TTL (each holder's lock ends within one TTL), and then it fetches.
    for (let i = 0; i < 39 && !done; i++) await clock.advanceAsync(100)
    expect(done).toBe(false)
    for (let i = 0; i < 2 && !done; i++) await clock.advanceAsync(100)
    expect(done).toBe(true)
    await expect(call).resolves.toBeDefined()
    expect(source.calls()).toBe(1)
    expect(tries).toBeGreaterThan(20)
    await tokens.close()
  })

  it('a lock that is never free: close() ends the wait and the caller gets MANAGER_CLOSED', async () => {
    const clock = createTestClock()
    const inner = memoryStore({ clock })
    const store = storeView(inner, { acquireLock: () => Promise.resolve(undefined) })
    const tokens = new TokenManager({ clock, store })
    const held = heldSource('k')
    const call = tokens.get(held.source)
    await flush()
    await tokens.close()
    await expect(call).rejects.toMatchObject({ code: 'MANAGER_CLOSED' })
    expect(held.fetches).toHaveLength(0)
  })

  for (const method of ['delete', 'clear'] as const) {
    it(`${method}: invalidate()/clear() answer after the deadline, and end on close()`, async () => {
      const { clock, tokens, errors } = setup(method)
      const source = instantSource('k', 60_000)
      await tokens.get(source.source)
      const run = (): Promise<unknown> =>
        method === 'delete' ? tokens.invalidate(source.source) : tokens.clear()
      let done = false
      const first = run().finally(() => (done = true))
      await flush()
      expect(done).toBe(false)
      await clock.advanceAsync(1_000)
      expect(done).toBe(true)
      await first
      expect(errors.map((e) => e.operation)).toContain(method)
      let second = false
      const again = run().finally(() => (second = true))
      await flush()
      await tokens.close()
      await flush()
      expect(second).toBe(true)
      await again
    })
  }

  it('close: close() resolves once the store deadline passes', async () => {
    const { clock, tokens, errors } = setup('close')
    let closed = false
    const closing = tokens.close().then(() => (closed = true))
    await flush()
    expect(closed).toBe(false)
    await clock.advanceAsync(1_000)
    await closing
    expect(closed).toBe(true)
    expect(errors.map((e) => e.operation)).toEqual(['close'])
  })
})
