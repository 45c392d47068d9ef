/**
 * The coordinator against a store that misbehaves or races it: change events that do not mean
 * what the waiting rule counts, malformed or synchronous events, odd poll hints, close() while
 * holding the lock, and store errors that quote what they were given. The other process is the
 * test, acting on the same memory store directly; time is a test clock.
 */
import { describe, expect, it } from 'vitest'
import {
  memoryStore,
  serializeToken,
  TokenManager,
  tokenId,
  type StoreEvent,
  type StoreLock,
  type TokenManagerEvents,
  type TokenStore,
} from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import { closeAfterTest, flush, heldSource, makeToken, settle } from './helpers.js'
import { storeView } from '../support/stores.js'

const LOCK_TTL_MS = 10_000

function setup(overrides: (shared: TokenStore & { size: number }) => Partial<TokenStore> = () => ({})) {
  const clock = createTestClock()
  const shared = memoryStore({ clock })
  const store = storeView(shared, {
    acquireLock: (key, options) => shared.acquireLock!(key, options),
    subscribe: (listener) => shared.subscribe!(listener),
    ...overrides(shared),
  })
  const tokens = new TokenManager({ clock, random: () => 0.5, store, lockTtlMs: LOCK_TTL_MS })
  closeAfterTest(tokens)
  const errors: TokenManagerEvents['storeError'][0][] = []
  tokens.on('storeError', (event) => errors.push(event))
  const source = heldSource(`misuse-${Math.random().toString(36).slice(2)}`)
  const key = source.source.key
  const lock = async (): Promise<StoreLock> => {
    const held = await shared.acquireLock!(key, { ttlMs: LOCK_TTL_MS })
    if (held === undefined) throw new Error('the lock is taken')
    return held
  }
  const write = async (value: string): Promise<string> => {
    const token = makeToken(value, clock.now(), 3_600_000)
    const record = { tokenId: tokenId(token), expiresAt: token.expiresAt, payload: serializeToken(token) }
    await shared.set(key, record, { ttlMs: 3_600_000 })
    return record.tokenId
  }
  return { clock, shared, store, tokens, source, key, lock, write, errors }
}

/** Every way a third-party store may get a change event wrong, and what the coordinator makes of it. */
const MALFORMED: [string, unknown][] = [
  ['null', null],
  ['a string', 'set'],
  ['no type', { key: 'k' }],
  ['an unknown type', { type: 'expire', key: 'k' }],
  ['a set without a key', { type: 'set', tokenId: 'x' }],
  ['an unlock whose key is a number', { type: 'unlock', key: 42 }],
]

describe('the coordinator against a store that misbehaves', () => {
  it('close() while this process holds the lock and fetches releases the lock', async () => {
    const { tokens, source, shared, key } = setup()
    const got = settle(tokens.get(source.source))
    await flush(6)
    expect(source.fetches).toHaveLength(1)
    await tokens.close()
    expect(got.result()).toMatchObject({ status: 'rejected', reason: { code: 'MANAGER_CLOSED' } })
    // Another process takes the lock at once instead of waiting out its TTL.
    await expect(shared.acquireLock!(key, { ttlMs: LOCK_TTL_MS })).resolves.toBeDefined()
  })

  it('close() during the holder’s store write lets the write land, then releases the lock', async () => {
    let landWrite: (() => void) | undefined
    const { tokens, source, shared, key } = setup((inner) => ({
      set: (k, record, options) =>
        new Promise<boolean>((resolve) => {
          landWrite = () => void inner.set(k, record, options).then(resolve)
        }),
    }))
    const got = settle(tokens.get(source.source))
    await flush(6)
    const token = source.last().succeed(3_600_000)
    await flush(6)
    expect(landWrite).toBeDefined()
    const closed = tokens.close()
    await flush(6)
    // The caller has its answer at once; the lock is still held: released after the write, not before.
    await expect(shared.acquireLock!(key, { ttlMs: LOCK_TTL_MS })).resolves.toBeUndefined()
    expect(got.result()).toMatchObject({ status: 'rejected', reason: { code: 'MANAGER_CLOSED' } })
    landWrite!()
    await closed
    await expect(shared.get(key)).resolves.toMatchObject({ tokenId: tokenId(token) })
    await expect(shared.acquireLock!(key, { ttlMs: LOCK_TTL_MS })).resolves.toBeDefined()
  })

  it('deletes and a clear while another process fetches do not count as holders that failed', async () => {
    const { tokens, source, shared, key, lock, write } = setup()
    const holder = await lock()
    const got = settle(tokens.get(source.source))
    await flush(6)
    // A 401 storm elsewhere: every process invalidates the old token while the holder fetches.
    for (let i = 0; i < 3; i++) {
      await shared.delete(key, { tokenId: `old-token-${i}` })
      await flush(6)
    }
    await shared.clear()
    await flush(6)
    expect(source.fetches).toHaveLength(0)
    expect(got.result().status).toBe('pending')
    await write('from-the-holder')
    await holder.release()
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'from-the-holder' } })
    expect(source.fetches).toHaveLength(0)
  })

  it('locks of other keys ending without a token do not count as this key’s holders that failed', async () => {
    const { tokens, source, shared, lock, write } = setup()
    const holder = await lock()
    const got = settle(tokens.get(source.source))
    await flush(6)
    for (let i = 0; i < 3; i++) {
      const other = await shared.acquireLock!(`other-key-${i}`, { ttlMs: LOCK_TTL_MS })
      await other!.release()
      await flush(6)
    }
    expect(source.fetches).toHaveLength(0)
    await write('from-the-holder')
    await holder.release()
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'from-the-holder' } })
  })

  it('a set event that arrives before its record is readable does not count as a holder that failed', async () => {
    // A store whose events outrun its reads (a replica that lags): the first look after each
    // event finds nothing.
    let lagging = false
    const { tokens, source, shared, key, lock, write } = setup((inner) => ({
      get: (k) => (lagging ? ((lagging = false), Promise.resolve(undefined)) : inner.get(k)),
    }))
    const first = await lock()
    const got = settle(tokens.get(source.source))
    await flush(6)
    // The first holder writes (the read after its set event lags), then a second process takes the
    // lock right after the first releases it, and also writes late.
    lagging = true
    await write('first-holder')
    await flush(6)
    await shared.delete(key)
    await first.release()
    const second = await lock()
    await flush(6)
    expect(source.fetches).toHaveLength(0)
    await write('second-holder')
    await second.release()
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'second-holder' } })
    expect(source.fetches).toHaveLength(0)
  })

  it.each(MALFORMED)(
    'a malformed change event (%s), even inside subscribe(), is a storeError and changes nothing',
    async (_name, event) => {
      const listeners = new Set<(e: StoreEvent) => void>()
      const { tokens, source, write, errors, clock } = setup(() => ({
        subscribe: (listener) => {
          listeners.add(listener)
          listener(event as StoreEvent)
          return () => void listeners.delete(listener)
        },
      }))
      expect(errors).toEqual([])
      // Delivered later too: still a storeError, never an exception thrown back into the store.
      for (const listener of listeners) expect(() => listener(event as StoreEvent)).not.toThrow()
      expect(errors).toEqual([{ key: undefined, operation: 'subscribe', message: expect.any(String) }])
      expect(JSON.stringify(errors)).not.toContain('"k"')
      await write('shared')
      await expect(tokens.get(source.source)).resolves.toMatchObject({ value: 'shared' })
      expect(clock.now()).toBeGreaterThan(0)
      await tokens.close()
      // The subscription survived the event, so close() ends it.
      expect(listeners.size).toBe(0)
    },
  )

  it('a delete event whose tokenId is not a string drops any token of its key, with a storeError', async () => {
    let emit: ((e: StoreEvent) => void) | undefined
    const { tokens, source, key, write, errors } = setup(() => ({
      subscribe: (listener) => {
        emit = listener
        return () => undefined
      },
    }))
    await write('held')
    await expect(tokens.get(source.source)).resolves.toMatchObject({ value: 'held' })
    emit!({ type: 'delete', key, tokenId: 42 } as unknown as StoreEvent)
    expect(tokens.peek(source.source)).toBeUndefined()
    expect(errors).toMatchObject([{ key: undefined, operation: 'subscribe' }])
  })

  it('a subscribe that returns no unsubscribe function, or an unsubscribe that throws: close() still closes the store', async () => {
    for (const unsubscribe of [
      undefined,
      () => {
        throw new Error('unsubscribe failed')
      },
    ]) {
      let closed = false
      const { tokens } = setup(() => ({
        subscribe: () => unsubscribe as () => void,
        close: () => ((closed = true), Promise.resolve()),
      }))
      await expect(tokens.close()).resolves.toBeUndefined()
      expect(closed).toBe(true)
      // At construction (no unsubscribe) or at close (it threw): one subscribe store error.
      expect(tokens.stats().storeErrors).toBe(1)
    }
  })

  it('events delivered synchronously inside set() and release() still wake the waiter once', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const listeners = new Set<(e: StoreEvent) => void>()
    const emit = (event: StoreEvent) => {
      for (const listener of listeners) listener(event)
    }
    const store = storeView(shared, {
      set: async (key, record, options) => {
        const written = await shared.set(key, record, options)
        if (written) emit({ type: 'set', key, tokenId: record.tokenId })
        return written
      },
      acquireLock: async (key, options) => {
        const lock = await shared.acquireLock!(key, options)
        return lock && { release: async () => (await lock.release(), emit({ type: 'unlock', key })) }
      },
      subscribe: (listener) => (listeners.add(listener), () => void listeners.delete(listener)),
    })
    const a = new TokenManager({ clock, random: () => 0.5, store, lockTtlMs: LOCK_TTL_MS })
    const b = new TokenManager({ clock, random: () => 0.5, store, lockTtlMs: LOCK_TTL_MS })
    closeAfterTest(a, b)
    const source = heldSource('sync-events')
    const first = settle(a.get(source.source))
    await flush(6)
    const second = settle(b.get(source.source))
    await flush(6)
    expect(source.fetches).toHaveLength(1)
    source.last().succeed(3_600_000, { value: 'once' })
    await flush(6)
    expect(first.result()).toMatchObject({ status: 'fulfilled', value: { value: 'once' } })
    expect(second.result()).toMatchObject({ status: 'fulfilled', value: { value: 'once' } })
    expect(source.fetches).toHaveLength(1)
  })

  it.each([
    ['0', 0],
    ['negative', -5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a string', '20'],
    ['a getter that throws', 'throws'],
  ])('a pollIntervalMs hint that is %s is the default (50 ms without events)', async (_name, hint) => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const store = storeView(shared, { acquireLock: (key, options) => shared.acquireLock!(key, options) })
    Object.defineProperty(store, 'pollIntervalMs', {
      get: () => {
        if (hint === 'throws') throw new Error('no hint')
        return hint
      },
    })
    const tokens = new TokenManager({ clock, random: () => 0.5, store, lockTtlMs: LOCK_TTL_MS })
    closeAfterTest(tokens)
    const source = heldSource(`hint-${String(_name)}`)
    const holder = await shared.acquireLock!(source.source.key, { ttlMs: LOCK_TTL_MS })
    const got = settle(tokens.get(source.source))
    await flush(6)
    const token = makeToken('polled', clock.now(), 3_600_000)
    await shared.set(
      source.source.key,
      { tokenId: tokenId(token), expiresAt: token.expiresAt, payload: serializeToken(token) },
      { ttlMs: 3_600_000 },
    )
    await holder!.release()
    clock.advance(49)
    await flush(6)
    expect(got.result().status).toBe('pending')
    clock.advance(1)
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'polled' } })
  })

  it('a huge pollIntervalMs hint still ends the wait when the holder’s lock expires', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const store = storeView(shared, {
      acquireLock: (key, options) => shared.acquireLock!(key, options),
      pollIntervalMs: 1e15,
    })
    const tokens = new TokenManager({ clock, random: () => 0.5, store, lockTtlMs: LOCK_TTL_MS })
    closeAfterTest(tokens)
    const source = heldSource('huge-hint')
    await shared.acquireLock!(source.source.key, { ttlMs: LOCK_TTL_MS }) // its holder died
    const got = settle(tokens.get(source.source))
    await flush(6)
    clock.advance(LOCK_TTL_MS + 250)
    await flush(6)
    expect(source.fetches).toHaveLength(1)
    source.last().succeed(3_600_000, { value: 'taken-over' })
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'taken-over' } })
  })
})

describe('a token refused while it is on its way', () => {
  it('a delete event landing at any point between the store read and the adoption: the refused token is never kept', async () => {
    // The other process invalidates the token this flight just read, its delete event arriving
    // `depth` microtask turns after the read answered: before the coordinator looks again, between
    // its answer and the manager resuming, or after the manager kept the token.
    const kept: number[] = []
    for (let depth = 0; depth < 40; depth++) {
      let emit: ((event: StoreEvent) => void) | undefined
      let armed = true
      const { tokens, source, key, shared, write } = setup((inner) => ({
        get: async (k) => {
          const record = await inner.get(k)
          if (armed && record !== undefined) {
            armed = false
            let turns = depth
            const hop = (): void => {
              if (turns-- > 0) return queueMicrotask(hop)
              void shared.delete(key, { tokenId: record.tokenId })
              emit!({ type: 'delete', key, tokenId: record.tokenId })
            }
            queueMicrotask(hop)
          }
          return record
        },
        subscribe: (listener) => ((emit = listener), () => undefined),
      }))
      await write(`refused-${depth}`)
      const got = settle(tokens.get(source.source))
      await flush(6)
      if (source.fetches.length > 0) source.last().succeed(3_600_000, { value: `fresh-${depth}` })
      await flush(6)
      expect(got.result().status, `depth ${depth}`).toBe('fulfilled')
      if (tokens.peek(source.source)?.value === `refused-${depth}`) kept.push(depth)
      await tokens.close()
    }
    expect(kept).toEqual([])
  })
})

describe('tokens refused on their way, again and again', () => {
  it('a store whose every token is refused on its way: after three reads the source itself is asked', async () => {
    // Each read finds a new token, and each is invalidated `depth` microtask turns after it was
    // read. Some depth hits the gap before adoption every time: that flight asks its source.
    const outcomes = new Map<number, string>()
    for (let depth = 0; depth < 40; depth++) {
      let emit: ((event: StoreEvent) => void) | undefined
      let reads = 0
      const refused = new Set<string>()
      const clock = createTestClock()
      const source = heldSource(`refused-again-${depth}`)
      const key = source.source.key
      const store: TokenStore = {
        get: () => {
          const token = makeToken(`stored-${depth}-${++reads}`, clock.now(), 3_600_000)
          const id = tokenId(token)
          let turns = depth
          const hop = (): void => {
            if (turns-- > 0) return queueMicrotask(hop)
            refused.add(token.value)
            emit!({ type: 'delete', key, tokenId: id })
          }
          queueMicrotask(hop)
          return Promise.resolve({ tokenId: id, expiresAt: token.expiresAt, payload: serializeToken(token) })
        },
        set: () => Promise.resolve(true),
        delete: () => Promise.resolve(false),
        clear: () => Promise.resolve(),
        subscribe: (listener) => ((emit = listener), () => undefined),
      }
      const tokens = new TokenManager({ clock, random: () => 0.5, store })
      closeAfterTest(tokens)
      const got = settle(tokens.get(source.source))
      await flush(6)
      if (source.fetches.length > 0) source.last().succeed(3_600_000, { value: `fresh-${depth}` })
      await flush(6)
      const result = got.result()
      expect(result.status, `depth ${depth}`).toBe('fulfilled')
      const value = result.status === 'fulfilled' ? result.value.value : ''
      // What it keeps was never refused (a token refused after it was kept is dropped).
      const held = tokens.peek(source.source)?.value
      expect(held === undefined || !refused.has(held), `depth ${depth}: kept ${held}`).toBe(true)
      outcomes.set(depth, value)
      await tokens.close()
    }
    const asked = [...outcomes].filter(([depth, value]) => value === `fresh-${depth}`)
    expect(asked.length).toBeGreaterThan(0)
    expect(asked.length).toBeLessThan(40)
  })
})

describe('store errors never show a secret', () => {
  it('a set() error that quotes the record shows neither the token nor the payload', async () => {
    const { tokens, source, errors } = setup(() => ({
      set: (_key, record) => Promise.reject(new Error(`cannot write ${record.payload} (${record.tokenId})`)),
    }))
    const got = settle(tokens.get(source.source))
    await flush(6)
    const token = source.last().succeed(3_600_000)
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: token.value } })
    expect(errors).toMatchObject([{ operation: 'set' }])
    expect(JSON.stringify(errors)).not.toContain(token.value)
    expect(errors[0]!.message).toContain('cannot write')
  })

  it('a get() error that quotes the stored record shows no token', async () => {
    const { tokens, source, shared, key, write, errors } = setup((inner) => ({
      get: async (k) => {
        const record = await inner.get(k)
        throw new Error(`row unreadable: ${JSON.stringify(record)}`)
      },
    }))
    await write('stored-SECRET-value')
    expect(await shared.get(key)).toBeDefined()
    const got = settle(tokens.get(source.source))
    await flush(6)
    source.last().succeed(3_600_000)
    await flush(6)
    expect(got.result().status).toBe('fulfilled')
    expect(errors.length).toBeGreaterThan(0)
    for (const error of errors) expect(error.message).not.toContain('stored-SECRET-value')
  })

  it('an error whose message cannot be read is “store failure”, not a failed get', async () => {
    const hostile = new Error('x')
    Object.defineProperty(hostile, 'message', {
      get: () => {
        throw new Error('no message')
      },
    })
    const { tokens, source, errors } = setup(() => ({ get: () => Promise.reject(hostile) }))
    const got = settle(tokens.get(source.source))
    await flush(6)
    source.last().succeed(3_600_000)
    await flush(6)
    expect(got.result().status).toBe('fulfilled')
    expect(errors[0]).toMatchObject({ operation: 'get', message: 'store failure' })
  })
})
