/**
 * The contract every {@link TokenStore} keeps, as one reusable suite. Run it for a store with
 *
 *   describeStoreContract('memoryStore', async () => ({ store, advance, now, cleanup }))
 *
 * The suite is store-agnostic: it uses a fresh random key per test (so a shared Redis server is
 * fine), skips the tests of optional methods the store lacks, and handles time two ways:
 * - a store on an injectable clock gives `advance(ms)` (and `now()`), and the TTL and timeout
 *   tests check the exact millisecond boundaries;
 * - a store with real TTLs (Redis) gives no `advance`, and those tests use short real TTLs and
 *   wait, with a bound, until the store has forgotten.
 */
import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AccessToken, serializeToken, TokenManager, tokenId } from '../../src/index.js'
import type { TokenSource } from '../../src/sources/types.js'
import type { StoreEvent, StoreRecord, TokenStore } from '../../src/stores/types.js'
import { storeView } from '../support/stores.js'

/** What a store factory hands the contract. */
export interface StoreFixture {
  readonly store: TokenStore
  /**
   * Moves the store's clock forward by `ms` (running its due timers). When absent, the store is
   * taken to use real time, and TTL / timeout tests use short real durations.
   */
  readonly advance?: (ms: number) => void | Promise<void>
  /** The store's current instant, used for records' expiresAt. Default `Date.now()`. */
  readonly now?: () => number
  /** Releases what the fixture made (closes the store, deletes its keys). */
  cleanup(): Promise<void>
}

/** A real TTL short enough for a test, long enough to survive one round trip. */
const REAL_TTL_MS = 80
/** The longest a store may take to show an effect (a write, an expiry, an event). */
const BOUND_MS = 3_000

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * `store` with its reads checked and normalised: a `remainingMs` a store reports (its own
 * countdown, such as Redis' PTTL) must be a number above zero and no more than the TTL the
 * record was written with; it is then removed, so the tests compare records as written.
 */
function checkingRemaining(store: TokenStore): TokenStore {
  const written = new Map<string, number>()
  const check = (key: string, found: StoreRecord | undefined): StoreRecord | undefined => {
    if (found === undefined || found.remainingMs === undefined) return found
    const { remainingMs, ...rest } = found
    expect(remainingMs, `remainingMs of ${key}`).toBeGreaterThan(0)
    expect(remainingMs, `remainingMs of ${key}`).toBeLessThanOrEqual(written.get(key) ?? Infinity)
    return rest
  }
  const wrapped: TokenStore = {
    get: async (key) => check(key, await store.get(key)),
    set: (key, value, options) => {
      // Noted before the write: a waiter may read the record before set() resolves.
      written.set(key, Math.max(written.get(key) ?? 0, Math.ceil(options.ttlMs)))
      return store.set(key, value, options)
    },
    delete: (key, options) => store.delete(key, options),
    clear: () => store.clear(),
  }
  return Object.assign(wrapped, {
    ...(store.acquireLock === undefined ? {} : { acquireLock: store.acquireLock.bind(store) }),
    ...(store.subscribe === undefined ? {} : { subscribe: store.subscribe.bind(store) }),
    ...(store.close === undefined ? {} : { close: store.close.bind(store) }),
  })
}

export function describeStoreContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`TokenStore contract: ${name}`, () => {
    let fixture: StoreFixture
    let store: TokenStore

    beforeEach(async () => {
      fixture = await makeStore()
      store = checkingRemaining(fixture.store)
    })

    afterEach(async () => {
      await fixture.cleanup()
    })

    const now = () => fixture.now?.() ?? Date.now()
    const newKey = () => `contract:${randomUUID()}`

    function record(lifetimeMs = 3_600_000, value = `token-${randomUUID()}`): StoreRecord {
      const issuedAt = now()
      const token = new AccessToken({
        value,
        type: 'Bearer',
        scopes: ['read'],
        issuedAt,
        expiresAt: issuedAt + lifetimeMs,
      })
      return { tokenId: tokenId(token), expiresAt: token.expiresAt, payload: serializeToken(token) }
    }

    /** Lets the store act: event-loop turns on a test clock, a short real pause otherwise. */
    async function settleStore(): Promise<void> {
      if (fixture.advance !== undefined) for (let i = 0; i < 5; i++) await turn()
      else await sleep(30)
    }

    /** Waits (bounded) until `check()` holds. */
    async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
      const deadline = Date.now() + BOUND_MS
      for (;;) {
        if (await check()) return
        if (Date.now() > deadline) throw new Error(`store never got to: ${what}`)
        if (fixture.advance !== undefined) await turn()
        else await sleep(5)
      }
    }

    /** Tracks whether a promise has settled, and with what. */
    function track<T>(promise: Promise<T>): { done: () => boolean; value: () => T | undefined } {
      let done = false
      let value: T | undefined
      void promise.then((v) => {
        done = true
        value = v
      })
      return { done: () => done, value: () => value }
    }

    type Lock = Awaited<ReturnType<NonNullable<TokenStore['acquireLock']>>>

    /**
     * Takes `key`'s lock with a short TTL, lets it expire (on the test clock, or in real time)
     * and takes it over: the stale and the current holder.
     */
    async function expiredAndCurrent(key: string): Promise<{ stale: Lock; current: Lock }> {
      const ttlMs = fixture.advance !== undefined ? 1_000 : REAL_TTL_MS
      const stale = await store.acquireLock!(key, { ttlMs })
      expect(stale).toBeDefined()
      let current: Lock
      if (fixture.advance !== undefined) {
        await fixture.advance(ttlMs)
        current = await store.acquireLock!(key, { ttlMs: 60_000 })
      } else {
        await eventually(
          async () => (current = await store.acquireLock!(key, { ttlMs: 60_000 })) !== undefined,
          'take over an expired lock',
        )
      }
      expect(current!).toBeDefined()
      return { stale, current: current! }
    }

    describe('get / set', () => {
      it('get of an unknown key is undefined', async () => {
        await expect(store.get(newKey())).resolves.toBeUndefined()
      })

      it('round-trips a record', async () => {
        const key = newKey()
        const r = record()
        await expect(store.set(key, r, { ttlMs: 60_000 })).resolves.toBe(true)
        await expect(store.get(key)).resolves.toEqual(r)
      })

      it('keeps keys apart', async () => {
        const [a, b] = [newKey(), newKey()]
        const [ra, rb] = [record(), record()]
        await store.set(a, ra, { ttlMs: 60_000 })
        await store.set(b, rb, { ttlMs: 60_000 })
        await expect(store.get(a)).resolves.toEqual(ra)
        await expect(store.get(b)).resolves.toEqual(rb)
      })

      it('replaces a record with one that expires later or at the same instant', async () => {
        const key = newKey()
        const first = record(60_000)
        const later = record(120_000)
        await store.set(key, first, { ttlMs: 60_000 })
        await expect(store.set(key, later, { ttlMs: 120_000 })).resolves.toBe(true)
        await expect(store.get(key)).resolves.toEqual(later)
        const same = { ...record(), expiresAt: later.expiresAt }
        await expect(store.set(key, same, { ttlMs: 120_000 })).resolves.toBe(true)
        await expect(store.get(key)).resolves.toEqual(same)
      })

      it('write-if-newer: an earlier-expiring record does not replace a later one', async () => {
        const key = newKey()
        const later = record(120_000)
        const earlier = { ...record(), expiresAt: later.expiresAt - 1 }
        await store.set(key, later, { ttlMs: 120_000 })
        await expect(store.set(key, earlier, { ttlMs: 60_000 })).resolves.toBe(false)
        await expect(store.get(key)).resolves.toEqual(later)
      })
    })

    describe('TTL', () => {
      it('forgets a record once its TTL has passed', async () => {
        const key = newKey()
        if (fixture.advance !== undefined) {
          await store.set(key, record(), { ttlMs: 1_000 })
          await fixture.advance(999)
          await expect(store.get(key)).resolves.toBeDefined()
          await fixture.advance(1)
          await expect(store.get(key)).resolves.toBeUndefined()
        } else {
          // On a real clock the record is only sure to be there when the read came back within
          // its TTL, which a loaded machine may not manage: up to five tries, each on a new key.
          let seen: string | undefined
          for (let attempt = 0; attempt < 5 && seen === undefined; attempt++) {
            const tried = `${key}-${attempt}`
            const startedAt = performance.now()
            await store.set(tried, record(), { ttlMs: REAL_TTL_MS })
            const found = await store.get(tried)
            if (performance.now() - startedAt >= REAL_TTL_MS) continue
            expect(found).toBeDefined()
            seen = tried
          }
          expect(seen).toBeDefined()
          await eventually(async () => (await store.get(seen!)) === undefined, 'forget an expired record')
        }
      })

      it('an expired record no longer blocks an earlier-expiring write', async () => {
        const key = newKey()
        const later = record(3_600_000)
        const earlier = record(60_000)
        const ttlMs = fixture.advance !== undefined ? 1_000 : REAL_TTL_MS
        await store.set(key, later, { ttlMs })
        if (fixture.advance !== undefined) await fixture.advance(ttlMs)
        else await eventually(async () => (await store.get(key)) === undefined, 'forget an expired record')
        await expect(store.set(key, earlier, { ttlMs: 60_000 })).resolves.toBe(true)
        await expect(store.get(key)).resolves.toEqual(earlier)
      })
    })

    describe('delete (compare-and-delete)', () => {
      it('with the wrong tokenId keeps the record', async () => {
        const key = newKey()
        const r = record()
        await store.set(key, r, { ttlMs: 60_000 })
        await expect(store.delete(key, { tokenId: 'not-this-one' })).resolves.toBe(false)
        await expect(store.get(key)).resolves.toEqual(r)
      })

      it('with the right tokenId deletes it', async () => {
        const key = newKey()
        const r = record()
        await store.set(key, r, { ttlMs: 60_000 })
        await expect(store.delete(key, { tokenId: r.tokenId })).resolves.toBe(true)
        await expect(store.get(key)).resolves.toBeUndefined()
      })

      it('without a tokenId deletes whatever is there', async () => {
        const key = newKey()
        await store.set(key, record(), { ttlMs: 60_000 })
        await expect(store.delete(key)).resolves.toBe(true)
        await expect(store.get(key)).resolves.toBeUndefined()
        await expect(store.delete(key, { tokenId: undefined })).resolves.toBe(false)
      })

      it('of an unknown key deletes nothing', async () => {
        await expect(store.delete(newKey())).resolves.toBe(false)
        await expect(store.delete(newKey(), { tokenId: 'x' })).resolves.toBe(false)
      })
    })

    describe('clear', () => {
      it('deletes every record', async () => {
        const keys = [newKey(), newKey(), newKey()]
        for (const key of keys) await store.set(key, record(), { ttlMs: 60_000 })
        await store.clear()
        for (const key of keys) await expect(store.get(key)).resolves.toBeUndefined()
        // The store still works afterwards.
        const r = record()
        await expect(store.set(keys[0]!, r, { ttlMs: 60_000 })).resolves.toBe(true)
        await expect(store.get(keys[0]!)).resolves.toEqual(r)
      })
    })

    describe('acquireLock', () => {
      it('is exclusive until released', async (ctx) => {
        if (store.acquireLock === undefined) return ctx.skip('the store has no acquireLock')
        const key = newKey()
        const lock = await store.acquireLock(key, { ttlMs: 60_000 })
        expect(lock).toBeDefined()
        await expect(store.acquireLock(key, { ttlMs: 60_000 })).resolves.toBeUndefined()
        // Another key has its own lock.
        const other = await store.acquireLock(newKey(), { ttlMs: 60_000 })
        expect(other).toBeDefined()
        await lock!.release()
        const again = await store.acquireLock(key, { ttlMs: 60_000 })
        expect(again).toBeDefined()
        await again!.release()
        await other!.release()
      })

      it('expires by itself, so a dead holder does not block others', async (ctx) => {
        if (store.acquireLock === undefined) return ctx.skip('the store has no acquireLock')
        const key = newKey()
        if (fixture.advance !== undefined) {
          const lock = await store.acquireLock(key, { ttlMs: 1_000 })
          expect(lock).toBeDefined()
          await fixture.advance(999)
          await expect(store.acquireLock(key, { ttlMs: 1_000 })).resolves.toBeUndefined()
          await fixture.advance(1)
          const next = await store.acquireLock(key, { ttlMs: 1_000 })
          expect(next).toBeDefined()
          await next!.release()
        } else {
          const lock = await store.acquireLock(key, { ttlMs: REAL_TTL_MS })
          expect(lock).toBeDefined()
          let next: Awaited<ReturnType<NonNullable<TokenStore['acquireLock']>>>
          await eventually(
            async () => (next = await store.acquireLock!(key, { ttlMs: 60_000 })) !== undefined,
            'take over an expired lock',
          )
          await next!.release()
        }
      })

      it('is released only by its owner', async (ctx) => {
        if (store.acquireLock === undefined) return ctx.skip('the store has no acquireLock')
        const key = newKey()
        const { stale, current } = await expiredAndCurrent(key)
        // The first holder wakes up late and releases: the new holder keeps the lock.
        await stale!.release()
        await expect(store.acquireLock(key, { ttlMs: 60_000 })).resolves.toBeUndefined()
        await current!.release()
        // Releasing twice is harmless.
        await current!.release()
        const last = await store.acquireLock(key, { ttlMs: 60_000 })
        expect(last).toBeDefined()
        await last!.release()
      })
    })

    describe('clocks that disagree', () => {
      it('write-if-newer compares remaining time when the store measures it, not the writers’ expiresAt', async (ctx) => {
        const key = newKey()
        // A record dated an hour late (its writer's clock runs ahead) with one minute to live.
        const late = record(60_000)
        const ahead: StoreRecord = { ...late, expiresAt: late.expiresAt + 3_600_000 }
        await store.set(key, ahead, { ttlMs: 60_000 })
        const measured = await fixture.store.get(key)
        if (measured?.remainingMs === undefined) return ctx.skip('the store does not measure remaining time')
        expect(measured.remainingMs).toBeLessThanOrEqual(60_000)
        const longer = record(600_000)
        await expect(store.set(key, longer, { ttlMs: 600_000 })).resolves.toBe(true)
        await expect(store.get(key)).resolves.toEqual(longer)
        const shorter: StoreRecord = { ...record(1_000), expiresAt: longer.expiresAt + 3_600_000 }
        await expect(store.set(key, shorter, { ttlMs: 1_000 })).resolves.toBe(false)
        await expect(store.get(key)).resolves.toEqual(longer)
      })
    })

    describe('lock release events', () => {
      it('a release by the holder is an unlock event; a stale or repeated release is none', async (ctx) => {
        if (store.acquireLock === undefined || store.subscribe === undefined) {
          return ctx.skip('the store has no acquireLock or subscribe')
        }
        const key = newKey()
        const events: StoreEvent[] = []
        const unsubscribe = store.subscribe((event) => events.push(event))
        const unlocks = () => events.filter((event) => event.type === 'unlock' && event.key === key).length
        try {
          const { stale, current } = await expiredAndCurrent(key)
          // The expired holder's release changes nothing: no event.
          await stale!.release()
          await settleStore()
          expect(unlocks()).toBe(0)
          await current!.release()
          await eventually(() => unlocks() === 1, 'deliver the unlock event')
          await current!.release()
          await settleStore()
          expect(unlocks()).toBe(1)
          expect(events.filter((event) => event.type !== 'clear' && event.key === key)).toEqual([
            { type: 'unlock', key },
          ])
        } finally {
          unsubscribe()
        }
      })
    })

    describe('shared by managers', () => {
      /** A source whose answers the test releases one at a time, counting its requests. */
      function heldSource(key: string) {
        const pending: ((token: AccessToken) => void)[] = []
        const source: TokenSource = {
          key,
          fetchToken: () => new Promise<AccessToken>((resolve) => pending.push(resolve)),
        }
        const answer = (value: string) => {
          const issuedAt = Date.now()
          pending.shift()?.(
            new AccessToken({ value, type: 'Bearer', scopes: [], issuedAt, expiresAt: issuedAt + 3_600_000 }),
          )
        }
        return { source, pending, answer }
      }

      /**
       * Two managers on `shared`: the first asks the source and holds the lock, the second finds
       * it held and waits, never asking the source, until it reads the first one's token.
       */
      async function fetchOnceBetweenTwo(shared: TokenStore, value: string): Promise<void> {
        const a = new TokenManager({ store: shared })
        const b = new TokenManager({ store: shared })
        try {
          const { source, pending, answer } = heldSource(newKey())
          const first = a.get(source)
          await eventually(() => pending.length === 1, 'the first manager asks the source')
          const second = track(b.get(source))
          await settleStore()
          expect(second.done()).toBe(false)
          expect(pending).toHaveLength(1)
          answer(value)
          await expect(first).resolves.toMatchObject({ value })
          await eventually(() => second.done(), 'the waiting manager gets the token')
          expect(second.value()?.value).toBe(value)
          expect(a.stats().fetches + b.stats().fetches).toBe(1)
          expect(b.stats().storeHits).toBe(1)
        } finally {
          await Promise.all([a.close(), b.close()])
        }
      }

      /** The store with its lock and without its events and close(), as a store written with fewer parts. */
      const lockOnly = (): TokenStore => {
        const inner = fixture.store
        return storeView(inner, { acquireLock: inner.acquireLock!.bind(inner) })
      }

      it('two managers fetch once: the one waiting for the lock gets the holder’s token', async (ctx) => {
        if (store.acquireLock === undefined) return ctx.skip('the store has no acquireLock')
        await fetchOnceBetweenTwo(fixture.store, 'shared-token')
      })

      it('with only get/set/delete/clear (no lock, no events), managers fetch once each and share what is stored', async () => {
        // The store as one written with the four required methods only sees it.
        const store = storeView(fixture.store)
        const [a, b, c] = [
          new TokenManager({ store }),
          new TokenManager({ store }),
          new TokenManager({ store }),
        ]
        try {
          const { source, pending, answer } = heldSource(newKey())
          const first = a.get(source)
          const second = b.get(source)
          // Nothing to wait for: each process asks its source once, and neither hangs.
          await eventually(() => pending.length === 2, 'both managers ask the source')
          answer('from-a')
          answer('from-b')
          await expect(first).resolves.toMatchObject({ value: 'from-a' })
          await expect(second).resolves.toMatchObject({ value: 'from-b' })
          expect(a.stats().fetches + b.stats().fetches).toBe(2)
          // A third process reads what they stored instead of asking.
          const third = await c.get(source)
          expect(['from-a', 'from-b']).toContain(third.value)
          expect(c.stats()).toMatchObject({ fetches: 0, storeHits: 1 })
        } finally {
          await Promise.all([a.close(), b.close(), c.close()])
        }
      })

      it('with a lock but no events, the waiting manager polls and gets the holder’s token', async (ctx) => {
        if (fixture.store.acquireLock === undefined) return ctx.skip('the store has no acquireLock')
        await fetchOnceBetweenTwo(lockOnly(), 'polled-token')
      })

      it('a manager closed while it holds the fetch lock releases it', async (ctx) => {
        if (store.acquireLock === undefined) return ctx.skip('the store has no acquireLock')
        // Without the store's own close(), which would end the fixture's store for this test too.
        const a = new TokenManager({ store: lockOnly() })
        const { source, pending } = heldSource(newKey())
        const first = a.get(source).catch((error: unknown) => error)
        await eventually(() => pending.length === 1, 'the manager takes the lock and asks the source')
        await expect(store.acquireLock(source.key, { ttlMs: 60_000 })).resolves.toBeUndefined()
        await a.close()
        await expect(first).resolves.toMatchObject({ code: 'MANAGER_CLOSED' })
        // Another process takes the lock at once, not when its TTL runs out.
        const next = await store.acquireLock(source.key, { ttlMs: 60_000 })
        expect(next).toBeDefined()
        await next!.release()
      })

      it('an invalidation by one manager drops the token in the other', async (ctx) => {
        if (store.subscribe === undefined) return ctx.skip('the store has no subscribe')
        const a = new TokenManager({ store: fixture.store })
        const b = new TokenManager({ store: fixture.store })
        try {
          const { source, pending, answer } = heldSource(newKey())
          const first = a.get(source)
          await eventually(() => pending.length === 1, 'the first manager asks the source')
          answer('first-token')
          const token = await first
          await expect(b.get(source)).resolves.toMatchObject({ value: 'first-token' })
          await a.invalidate(source, { token })
          await eventually(() => b.peek(source) === undefined, 'the other manager drops the token')
          const again = b.get(source)
          await eventually(() => pending.length === 1, 'the other manager asks the source again')
          answer('second-token')
          await expect(again).resolves.toMatchObject({ value: 'second-token' })
        } finally {
          await Promise.all([a.close(), b.close()])
        }
      })
    })

    describe('subscribe', () => {
      it('delivers set, delete and clear events, and stops after unsubscribe', async (ctx) => {
        if (store.subscribe === undefined) return ctx.skip('the store has no subscribe')
        const key = newKey()
        const events: StoreEvent[] = []
        const unsubscribe = store.subscribe((event) => events.push(event))
        const mine = () => events.filter((event) => event.type === 'clear' || event.key === key)
        try {
          const later = record(120_000)
          await store.set(key, later, { ttlMs: 120_000 })
          await eventually(() => mine().length >= 1, 'deliver the set event')
          // A refused write (write-if-newer) is no event. A delete that finds another token (or
          // none) deletes nothing here, but still tells everyone to drop the token it names: a
          // process may hold it in memory after the store lost it (expiry, eviction, flush).
          await store.set(key, { ...record(), expiresAt: later.expiresAt - 1 }, { ttlMs: 60_000 })
          await expect(store.delete(key, { tokenId: 'not-this-one' })).resolves.toBe(false)
          await eventually(() => mine().length >= 2, 'deliver the refused delete event')
          await store.delete(key, { tokenId: later.tokenId })
          await eventually(() => mine().length >= 3, 'deliver the delete event')
          await store.clear()
          await eventually(() => mine().length >= 4, 'deliver the clear event')
          await settleStore()
          expect(mine()).toEqual([
            { type: 'set', key, tokenId: later.tokenId },
            { type: 'delete', key, tokenId: 'not-this-one' },
            { type: 'delete', key, tokenId: later.tokenId },
            { type: 'clear' },
          ])
        } finally {
          unsubscribe()
        }
        const count = events.length
        await store.set(key, record(), { ttlMs: 60_000 })
        await settleStore()
        expect(events).toHaveLength(count)
      })
    })
  })
}
