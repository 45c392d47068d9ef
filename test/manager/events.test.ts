import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { inspect } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import {
  isTokenkeeperError,
  CHANNEL_NAMES,
  memoryStore,
  serializeToken,
  TokenManager,
  tokenId,
  tokenSource,
  type StoreRecord,
  type TokenStore,
} from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import {
  closeAfterTest,
  flush,
  heldSource,
  makeToken,
  manager,
  permanentError,
  recordEvents,
  tokenValue,
  transientError,
} from './helpers.js'

const HOUR = 3_600_000
const unsubscribers: (() => void)[] = []

/** Everything published on every tokenkeeper channel, by channel name. */
function listenToChannels(): Map<string, unknown[]> {
  const seen = new Map<string, unknown[]>()
  for (const name of Object.values(CHANNEL_NAMES)) {
    seen.set(name, [])
    const listener = (message: unknown) => {
      seen.get(name)!.push(message)
    }
    subscribe(name, listener)
    unsubscribers.push(() => unsubscribe(name, listener))
  }
  return seen
}

afterEach(async () => {
  for (const stop of unsubscribers.splice(0)) stop()
})

describe('events and diagnostics channels', () => {
  it('publish every event with its documented fields, on the emitter and on the channel', async () => {
    const channels = listenToChannels()
    const { tokens, clock, start } = manager()
    const events = recordEvents(tokens)
    const held = heldSource('events')
    const key = held.source.key

    const first = tokens.get(held.source)
    await flush()
    clock.advance(40)
    const token = held.last().succeed(HOUR)
    await first
    await tokens.get(held.source)
    clock.set(start + 0.8 * HOUR)
    await tokens.get(held.source)
    await flush()
    clock.advance(10)
    held.last().fail(transientError())
    await flush()
    await tokens.get(held.source) // stale: served while the renewal is failing
    clock.set(start + HOUR - 60_000)
    const late = tokens.get(held.source)
    await flush()
    const renewed = held.last().succeed(HOUR)
    await late
    await tokens.invalidate(held.source, { token })
    await tokens.invalidate(held.source, { token: renewed })

    const expected = {
      miss: [
        { key, reason: 'cold' },
        { key, reason: 'expired' },
      ],
      hit: [
        { key, window: 'fresh' },
        { key, window: 'advisory' },
        { key, window: 'advisory' },
      ],
      refreshStart: [
        { key, mode: 'foreground' },
        { key, mode: 'background' },
        { key, mode: 'foreground' },
      ],
      refreshSuccess: [
        { key, mode: 'foreground', durationMs: 40, expiresAt: token.expiresAt, origin: 'fetch' },
        { key, mode: 'foreground', durationMs: 0, expiresAt: renewed.expiresAt, origin: 'fetch' },
      ],
      refreshFailure: [
        {
          key,
          mode: 'background',
          durationMs: 10,
          code: 'SERVER_ERROR',
          message: 'token endpoint answered 503',
          retryable: true,
          retryAt: start + 0.8 * HOUR + 10 + 138,
          servingCached: true,
        },
      ],
      stale: [{ key, expiresAt: token.expiresAt }],
      invalidate: [
        { key, removed: false, origin: 'local' },
        { key, removed: true, origin: 'local' },
      ],
      storeError: [],
      failFast: [],
      lockWait: [],
    }
    for (const [name, list] of Object.entries(expected)) {
      expect(events[name as keyof typeof events], name).toEqual(list)
      const channelName = CHANNEL_NAMES[name as keyof typeof CHANNEL_NAMES]
      expect(channels.get(channelName), channelName).toEqual(list)
    }
    expect(held.fetches).toHaveLength(3)
  })

  it('uses the documented channel names', () => {
    expect(CHANNEL_NAMES).toEqual({
      hit: 'tokenkeeper:hit',
      miss: 'tokenkeeper:miss',
      refreshStart: 'tokenkeeper:refresh:start',
      refreshSuccess: 'tokenkeeper:refresh:success',
      refreshFailure: 'tokenkeeper:refresh:failure',
      stale: 'tokenkeeper:stale',
      storeError: 'tokenkeeper:store:error',
      invalidate: 'tokenkeeper:invalidate',
      failFast: 'tokenkeeper:fail-fast',
      lockWait: 'tokenkeeper:lock:wait',
    })
  })

  it('publishes failFast for a caller given the remembered error during the backoff', async () => {
    const channels = listenToChannels()
    const { tokens } = manager()
    const events = recordEvents(tokens)
    const held = heldSource('fail-fast')
    const first = tokens.get(held.source)
    await flush()
    held.last().fail(transientError())
    await expect(first).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    await expect(tokens.get(held.source)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    const retryAt = events.refreshFailure[0]!.retryAt
    const expected = [{ key: held.source.key, code: 'SERVER_ERROR', retryAt }]
    expect(events.failFast).toEqual(expected)
    expect(channels.get(CHANNEL_NAMES.failFast)).toEqual(expected)
    expect(held.fetches).toHaveLength(1)
  })

  it('publishes failFast also for a caller that may wait for recovery but meets a permanent error', async () => {
    const { tokens } = manager({ waitForRecoveryMs: 60_000 })
    const events = recordEvents(tokens)
    const held = heldSource('fail-fast-wait')
    const first = tokens.get(held.source)
    await flush()
    held.last().fail(permanentError())
    await expect(first).rejects.toBeDefined()
    await expect(tokens.get(held.source)).rejects.toBeDefined()
    expect(events.failFast).toEqual([
      {
        key: held.source.key,
        code: events.refreshFailure[0]!.code,
        retryAt: events.refreshFailure[0]!.retryAt,
      },
    ])
    expect(tokens.stats().failFast).toBe(1)
    expect(held.fetches).toHaveLength(1)
  })

  it('publishes hits on the channel with no emitter listener, and stops when unsubscribed', async () => {
    const { tokens } = manager()
    const held = heldSource('channel-only')
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(HOUR)
    await first
    const hits: unknown[] = []
    const listener = (message: unknown) => hits.push(message)
    subscribe(CHANNEL_NAMES.hit, listener)
    await tokens.get(held.source)
    unsubscribe(CHANNEL_NAMES.hit, listener)
    await tokens.get(held.source)
    expect(hits).toEqual([{ key: held.source.key, window: 'fresh' }])
  })

  it('emits hit events to listeners added, removed and added again', async () => {
    const { tokens } = manager()
    const held = heldSource('relisten')
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(HOUR)
    await first
    const seen: string[] = []
    const one = () => seen.push('one')
    tokens.on('hit', one)
    await tokens.get(held.source)
    tokens.off('hit', one)
    await tokens.get(held.source)
    tokens.once('hit', () => seen.push('once'))
    await tokens.get(held.source)
    await tokens.get(held.source)
    tokens.on('hit', () => seen.push('two'))
    await tokens.get(held.source)
    expect(seen).toEqual(['one', 'once', 'two'])
  })

  it('still emits hit events to a listener added after removeAllListeners()', async () => {
    const { tokens } = manager()
    const held = heldSource('remove-all')
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(HOUR)
    await first
    tokens.on('hit', () => undefined)
    tokens.removeAllListeners()
    const hits: unknown[] = []
    tokens.on('hit', (event) => hits.push(event))
    await tokens.get(held.source)
    expect(hits).toEqual([{ key: held.source.key, window: 'fresh' }])
  })
})

describe('listening to a manager', () => {
  it('on, once, off and their EventEmitter names work; nothing but the manager can emit', async () => {
    const tokens = new TokenManager()
    closeAfterTest(tokens)
    const source = tokenSource('listeners', () => ({ access_token: 'listener-token', expires_in: 3600 }))
    const seen: string[] = []
    const always = (event: { key: string }) => seen.push(`on:${event.key}`)
    const first = () => seen.push('once')
    const aliased = () => seen.push('alias')
    expect(tokens.on('refreshStart', always)).toBe(tokens)
    tokens.once('refreshStart', first)
    tokens.addListener('refreshStart', aliased)
    expect(tokens.listenerCount('refreshStart')).toBe(3)
    await tokens.get(source)
    expect(seen).toEqual([`on:${source.key}`, 'once', 'alias'])
    expect(tokens.listenerCount('refreshStart')).toBe(2)
    tokens.removeListener('refreshStart', aliased)
    tokens.off('refreshStart', always)
    expect(tokens.listenerCount('refreshStart')).toBe(0)
    tokens.on('hit', always).on('miss', always)
    tokens.removeAllListeners('hit')
    expect([tokens.listenerCount('hit'), tokens.listenerCount('miss')]).toEqual([0, 1])
    tokens.removeAllListeners()
    expect(tokens.listenerCount('miss')).toBe(0)
    // Events are the manager's to publish: no emit (a user could forge a refreshFailure).
    expect('emit' in tokens).toBe(false)
    expect((tokens as unknown as Record<string, unknown>)['emit']).toBeUndefined()
  })
})

describe('no token value leaks', () => {
  it('appears in no event, channel message, stats(), util.inspect or JSON of the manager', async () => {
    const channels = listenToChannels()
    const clock = createTestClock()
    const store = memoryStore({ clock })
    const tokens = new TokenManager({ clock, random: () => 0.5, store, proactive: true })
    closeAfterTest(tokens)
    const events = recordEvents(tokens)
    const held = heldSource('leak')
    const values: string[] = []

    const first = tokens.get(held.source)
    await flush()
    const token = held.last().succeed(HOUR)
    values.push(token.value)
    await first
    clock.advance(0.8 * HOUR)
    await tokens.get(held.source)
    await flush()
    held.last().fail(transientError())
    await flush()
    await tokens.get(held.source)
    await tokens.invalidate(held.source, { token })
    // A response that is refused for its expires_in must not carry its access_token into events.
    const secret = tokenValue('refused')
    values.push(secret)
    const refused = tokenSource('refused', () => ({ access_token: secret, expires_in: 'soon' }))
    await tokens.get(refused).catch(() => undefined)

    const texts = [
      JSON.stringify(events),
      inspect(events, { depth: Infinity }),
      JSON.stringify([...channels.entries()]),
      inspect(channels, { depth: Infinity }),
      JSON.stringify(tokens.stats()),
      inspect(tokens.stats()),
      inspect(tokens, { depth: Infinity, showHidden: true }),
      JSON.stringify(tokens),
    ]
    expect(events.refreshSuccess.length).toBeGreaterThan(0)
    expect(events.refreshFailure.length).toBe(2)
    for (const text of texts) for (const value of values) expect(text).not.toContain(value)
  })
})

describe('a failing store', () => {
  function throwingStore(mode: 'throw' | 'reject'): TokenStore & { calls: string[] } {
    const calls: string[] = []
    const fail = (name: string) => {
      calls.push(name)
      const error = new Error(`store ${name} failed`)
      if (mode === 'throw') throw error
      return Promise.reject(error)
    }
    return {
      calls,
      get: () => fail('get'),
      set: () => fail('set'),
      delete: () => fail('delete'),
      clear: () => fail('clear'),
      acquireLock: () => fail('acquireLock'),
    }
  }

  it.each(['throw', 'reject'] as const)(
    'whose methods %s causes storeError events and no failed get, still single-flight',
    async (mode) => {
      const channels = listenToChannels()
      const store = throwingStore(mode)
      const { tokens } = manager({ store })
      const events = recordEvents(tokens)
      const held = heldSource(`broken-store-${mode}`)
      const key = held.source.key
      const waiting = Array.from({ length: 100 }, () => tokens.get(held.source))
      await flush()
      expect(held.fetches).toHaveLength(1)
      const token = held.last().succeed(HOUR)
      for (const got of waiting) await expect(got).resolves.toBe(token)
      expect(events.storeError).toEqual([
        { key, operation: 'get', message: 'store get failed' },
        { key, operation: 'lock', message: 'store acquireLock failed' },
        { key, operation: 'set', message: 'store set failed' },
      ])
      expect(channels.get(CHANNEL_NAMES.storeError)).toEqual(events.storeError)
      expect(tokens.stats()).toMatchObject({ storeErrors: 3, fetches: 1 })

      await expect(tokens.invalidate(held.source, { token })).resolves.toBe(true)
      await expect(tokens.clear()).resolves.toBeUndefined()
      expect(events.storeError.slice(3).map((e) => e.operation)).toEqual(['delete', 'clear'])
      expect(store.calls).toEqual(['get', 'acquireLock', 'set', 'delete', 'clear'])
    },
  )

  it('a corrupt record in the store is a miss with a storeError event', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const { tokens } = manager({ clock, store: shared })
    const events = recordEvents(tokens)
    const held = heldSource('corrupt')
    const record: StoreRecord = { tokenId: 'x', expiresAt: clock.now() + HOUR, payload: '{not json' }
    await shared.set(held.source.key, record, { ttlMs: HOUR })
    const got = tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(1)
    const token = held.last().succeed(2 * HOUR)
    await expect(got).resolves.toBe(token)
    expect(events.storeError[0]).toMatchObject({ key: held.source.key, operation: 'get' })
  })

  it('a lock that never frees: the manager fetches itself after twice lockTtlMs, no sooner', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const busy: TokenStore = {
      get: (key) => shared.get(key),
      set: (key, record, options) => shared.set(key, record, options),
      delete: (key, options) => shared.delete(key, options),
      clear: () => shared.clear(),
      acquireLock: () => Promise.resolve(undefined),
    }
    const { tokens } = manager({ clock, store: busy, lockTtlMs: 1_000 })
    const events = recordEvents(tokens)
    const held = heldSource('dead-holder')
    const got = tokens.get(held.source)
    await clock.advanceAsync(1_999)
    expect(held.fetches).toHaveLength(0)
    expect(events.storeError).toEqual([])
    await clock.advanceAsync(1)
    await flush()
    expect(held.fetches).toHaveLength(1)
    const token = held.last().succeed(HOUR)
    await expect(got).resolves.toBe(token)
  })

  it("close() while a caller waits on another holder's lock: MANAGER_CLOSED at once, the source is never called", async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const { tokens } = manager({ clock, store: shared, lockTtlMs: 1_000 })
    const held = heldSource('closing-waiter')
    const lock = await shared.acquireLock!(held.source.key, { ttlMs: 60_000 })
    expect(lock).toBeDefined()
    const got = tokens.get(held.source).catch((error: unknown) => error)
    await flush()
    await tokens.close()
    await expect(got).resolves.toMatchObject({ code: 'MANAGER_CLOSED' })
    await clock.advanceAsync(5_000)
    await flush()
    expect(held.fetches).toHaveLength(0)
    await expect(shared.get(held.source.key)).resolves.toBeUndefined()
  })

  it('a token invalidated elsewhere while this process was reading it from the store is not adopted', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    let gate: (() => void) | undefined
    const slow: TokenStore = {
      get: async (key) => {
        const record = await shared.get(key)
        if (gate === undefined) await new Promise<void>((resolve) => (gate = resolve))
        return record
      },
      set: (key, record, options) => shared.set(key, record, options),
      delete: (key, options) => shared.delete(key, options),
      clear: () => shared.clear(),
      acquireLock: (key, options) => shared.acquireLock!(key, options),
      subscribe: (listener) => shared.subscribe!(listener),
    }
    const other = manager({ clock, store: shared }).tokens
    const here = manager({ clock, store: slow }).tokens
    const there = heldSource('shared-key')
    const mine = heldSource('shared-key')
    const first = other.get(there.source)
    await flush()
    const refused = there.last().succeed(HOUR)
    await expect(first).resolves.toBe(refused)

    const got = here.get(mine.source)
    await flush()
    expect(gate).toBeDefined() // reading the refused token from the store, slowly
    await expect(other.invalidate(there.source, { token: refused })).resolves.toBe(true)
    await flush()
    gate!()
    await flush()
    expect(mine.fetches).toHaveLength(1)
    const fresh = mine.last().succeed(HOUR)
    await expect(got).resolves.toBe(fresh)
  })

  it('a failing token endpoint: lock waiters stop queueing after two holders failed, and all get the error', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const fleet = Array.from({ length: 5 }, () => ({
      tokens: manager({ clock, store: shared }).tokens,
      held: heldSource('outage-key'),
    }))
    const calls = fleet.map(({ tokens, held }) => tokens.get(held.source).catch((error: unknown) => error))
    const pending = () => fleet.flatMap(({ held }) => held.pending())
    const rounds: number[] = []
    for (let i = 0; i < 5; i++) await flush()
    for (let round = 0; round < 5 && pending().length > 0; round++) {
      rounds.push(pending().length)
      for (const fetch of pending()) fetch.fail(transientError())
      for (let i = 0; i < 5; i++) await flush()
    }
    // One holder, then the next, then everyone left at once (not one process after another).
    expect(rounds).toEqual([1, 1, 3])
    const results = await Promise.all(calls)
    expect(results.every((result) => isTokenkeeperError(result) && result.retryable)).toBe(true)
  })

  it('a token another process writes while this one waits for the lock is adopted without a fetch', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const { tokens } = manager({ clock, store: shared })
    const held = heldSource('waiter')
    const key = held.source.key
    const lock = await shared.acquireLock!(key, { ttlMs: 15_000 })
    expect(lock).toBeDefined()
    const got = tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(0)
    const elsewhere = makeToken(tokenValue('elsewhere'), clock.now(), HOUR)
    await shared.set(
      key,
      { tokenId: tokenId(elsewhere), expiresAt: elsewhere.expiresAt, payload: serializeToken(elsewhere) },
      { ttlMs: HOUR },
    )
    await lock!.release()
    await expect(got).resolves.toMatchObject({ value: elsewhere.value })
    expect(held.fetches).toHaveLength(0)
    expect(tokens.stats().storeHits).toBe(1)
  })

  it('a store whose subscribe throws does not break construction or get', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const store: TokenStore = {
      get: (key) => shared.get(key),
      set: (key, record, options) => shared.set(key, record, options),
      delete: (key, options) => shared.delete(key, options),
      clear: () => shared.clear(),
      subscribe: () => {
        throw new Error('subscriber cannot connect')
      },
    }
    const { tokens } = manager({ clock, store })
    const held = heldSource('subscribe-throws')
    const got = tokens.get(held.source)
    await flush()
    const token = held.last().succeed(HOUR)
    await expect(got).resolves.toBe(token)
  })
})

describe('stats', () => {
  it('counts hits, misses, joins, fetches and background refreshes', async () => {
    const { tokens, clock, start } = manager()
    const held = heldSource('stats')
    const waiting = [tokens.get(held.source), tokens.get(held.source), tokens.get(held.source)]
    await flush()
    held.last().succeed(HOUR)
    await Promise.all(waiting)
    await tokens.get(held.source)
    clock.set(start + 0.8 * HOUR)
    await tokens.get(held.source)
    await flush()
    expect(tokens.stats()).toEqual({
      entries: 1,
      hits: 2,
      misses: 3,
      joined: 2,
      fetches: 2,
      failures: 0,
      failFast: 0,
      waitedForRecovery: 0,
      backgroundRefreshes: 1,
      staleServed: 0,
      storeHits: 0,
      storeErrors: 0,
      inFlight: 1,
    })
  })
})
