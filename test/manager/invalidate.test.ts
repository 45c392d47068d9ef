import { afterEach, describe, expect, it } from 'vitest'
import { memoryStore, TokenManager, type AccessToken, type TokenStore } from '../../src/index.js'
import { createTestClock, type TestClock } from '../../src/testing/index.js'
import { flush, heldSource, recordEvents, type HeldSource } from './helpers.js'

const HOUR = 3_600_000
const managers: TokenManager[] = []

function manager(options: ConstructorParameters<typeof TokenManager>[0] & { clock?: TestClock } = {}) {
  const clock = options.clock ?? createTestClock()
  const tokens = new TokenManager({ random: () => 0.5, ...options, clock })
  managers.push(tokens)
  return { tokens, clock }
}

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()))
})

async function cached(tokens: TokenManager, held: HeldSource): Promise<AccessToken> {
  const got = tokens.get(held.source)
  await flush()
  const token = held.last().succeed(HOUR)
  await got
  return token
}

describe('invalidate (compare-and-delete)', () => {
  it('with the cached token removes it, and the next get fetches a new one', async () => {
    const { tokens } = manager()
    const events = recordEvents(tokens)
    const held = heldSource('api')
    const old = await cached(tokens, held)
    await expect(tokens.invalidate(held.source, { token: old })).resolves.toBe(true)
    expect(tokens.peek(held.source)).toBeUndefined()
    expect(events.invalidate).toEqual([{ key: held.source.key, removed: true, origin: 'local' }])
    const got = tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(2)
    const renewed = held.last().succeed(HOUR)
    await expect(got).resolves.toBe(renewed)
  })

  it('accepts the token value as a string', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    const old = await cached(tokens, held)
    await expect(tokens.invalidate(held.source, { token: 'not-the-token' })).resolves.toBe(false)
    expect(tokens.peek(held.source)).toBe(old)
    await expect(tokens.invalidate(held.source, { token: old.value })).resolves.toBe(true)
    expect(tokens.peek(held.source)).toBeUndefined()
  })

  it('with an old token does nothing to a newer cached token', async () => {
    const { tokens } = manager()
    const events = recordEvents(tokens)
    const held = heldSource('api')
    const old = await cached(tokens, held)
    await tokens.invalidate(held.source, { token: old })
    const newer = await cached(tokens, held)
    // A late 401 for the old token.
    await expect(tokens.invalidate(held.source, { token: old })).resolves.toBe(false)
    expect(tokens.peek(held.source)).toBe(newer)
    await expect(tokens.get(held.source)).resolves.toBe(newer)
    await flush()
    expect(held.fetches).toHaveLength(2)
    expect(events.invalidate.at(-1)).toEqual({ key: held.source.key, removed: false, origin: 'local' })
  })

  it('50 concurrent invalidate(old) + get cause exactly one new fetch', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    const old = await cached(tokens, held)
    const callers = Array.from({ length: 50 }, async () => {
      await tokens.invalidate(held.source, { token: old })
      return tokens.get(held.source)
    })
    await flush()
    expect(held.fetches).toHaveLength(2)
    const renewed = held.last().succeed(HOUR)
    const results = await Promise.all(callers)
    for (const result of results) expect(result).toBe(renewed)
    expect(held.fetches).toHaveLength(2)
    // Late invalidations of the old token leave the new one alone.
    await Promise.all(Array.from({ length: 10 }, () => tokens.invalidate(held.source, { token: old })))
    expect(tokens.peek(held.source)).toBe(renewed)
  })

  it('without a token removes whatever is cached; on an empty key it removes nothing', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    await expect(tokens.invalidate(held.source)).resolves.toBe(false)
    await cached(tokens, held)
    await expect(tokens.invalidate(held.source)).resolves.toBe(true)
    expect(tokens.peek(held.source)).toBeUndefined()
    await expect(tokens.invalidate(held.source)).resolves.toBe(false)
  })

  it('only touches its own key', async () => {
    const { tokens } = manager()
    const a = heldSource('a')
    const b = heldSource('b')
    const tokenA = await cached(tokens, a)
    const tokenB = await cached(tokens, b)
    await tokens.invalidate(a.source, { token: tokenB })
    await tokens.invalidate(b.source, { token: tokenA })
    expect(tokens.peek(a.source)).toBe(tokenA)
    expect(tokens.peek(b.source)).toBe(tokenB)
    await tokens.invalidate(a.source)
    expect(tokens.peek(a.source)).toBeUndefined()
    expect(tokens.peek(b.source)).toBe(tokenB)
  })

  it('during a refresh in flight: callers join that refresh instead of starting another', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    const old = await cached(tokens, held)
    clock.advance(0.8 * HOUR)
    await tokens.get(held.source) // advisory: background refresh starts
    await flush()
    expect(held.fetches).toHaveLength(2)
    await tokens.invalidate(held.source, { token: old })
    const waiting = Array.from({ length: 5 }, () => tokens.get(held.source))
    await flush()
    expect(held.fetches).toHaveLength(2)
    const renewed = held.last().succeed(HOUR)
    for (const got of waiting) await expect(got).resolves.toBe(renewed)
  })
})

describe('clear', () => {
  it('forgets every key', async () => {
    const { tokens } = manager()
    const a = heldSource('a')
    const b = heldSource('b')
    await cached(tokens, a)
    await cached(tokens, b)
    await tokens.clear()
    expect(tokens.peek(a.source)).toBeUndefined()
    expect(tokens.peek(b.source)).toBeUndefined()
    expect(tokens.stats().entries).toBe(0)
    const again = tokens.get(a.source)
    await flush()
    expect(a.fetches).toHaveLength(2)
    a.last().succeed(HOUR)
    await again
  })
})

describe('through a shared memoryStore', () => {
  function pair() {
    const clock = createTestClock()
    const store = memoryStore({ clock })
    const a = manager({ clock, store }).tokens
    const b = manager({ clock, store }).tokens
    return { clock, store, a, b }
  }

  it('a second manager adopts the first one’s token from the store without a fetch', async () => {
    const { a, b } = pair()
    const heldA = heldSource('api')
    const heldB = heldSource('api')
    const token = await cached(a, heldA)
    const fromB = await b.get(heldB.source)
    expect(fromB.value).toBe(token.value)
    expect(heldB.fetches).toHaveLength(0)
    expect(b.stats().storeHits).toBe(1)
  })

  it('an invalidation in one manager drops the token from the other manager’s memory', async () => {
    const { a, b } = pair()
    const eventsB = recordEvents(b)
    const heldA = heldSource('api')
    const heldB = heldSource('api')
    const token = await cached(a, heldA)
    await b.get(heldB.source)
    expect(b.peek(heldB.source)?.value).toBe(token.value)
    await a.invalidate(heldA.source, { token })
    await flush()
    expect(b.peek(heldB.source)).toBeUndefined()
    expect(eventsB.invalidate).toEqual([{ key: heldB.source.key, removed: true, origin: 'remote' }])
    // b now needs a new token: it fetches (a has none either).
    const got = b.get(heldB.source)
    await flush()
    expect(heldB.fetches).toHaveLength(1)
    const renewed = heldB.last().succeed(HOUR)
    await expect(got).resolves.toBe(renewed)
    // ... and a picks the new one up from the store.
    await expect(a.get(heldA.source)).resolves.toMatchObject({ value: renewed.value })
    expect(heldA.fetches).toHaveLength(1)
  })

  it('an invalidation for an old token does not reach a newer token in either manager', async () => {
    const { a, b } = pair()
    const heldA = heldSource('api')
    const heldB = heldSource('api')
    const old = await cached(a, heldA)
    await a.invalidate(heldA.source, { token: old })
    const newer = await cached(a, heldA)
    await expect(b.get(heldB.source)).resolves.toMatchObject({ value: newer.value })
    await expect(b.invalidate(heldB.source, { token: old })).resolves.toBe(false)
    await flush()
    expect(a.peek(heldA.source)).toBe(newer)
    expect(b.peek(heldB.source)?.value).toBe(newer.value)
  })

  it('50 concurrent invalidate(old) + get over two managers make one fetch in all', async () => {
    const { a, b } = pair()
    const heldA = heldSource('api')
    const heldB = heldSource('api')
    const old = await cached(a, heldA)
    await b.get(heldB.source)
    const callers = Array.from({ length: 50 }, async (_, i) => {
      const [tokens, held] = i % 2 === 0 ? [a, heldA] : [b, heldB]
      await tokens.invalidate(held.source, { token: old })
      return tokens.get(held.source)
    })
    await flush(10)
    const fetching = [...heldA.pending(), ...heldB.pending()]
    expect(fetching).toHaveLength(1)
    const renewed = fetching[0]!.succeed(HOUR)
    const results = await Promise.all(callers)
    for (const result of results) expect(result.value).toBe(renewed.value)
    expect(heldA.fetches.length + heldB.fetches.length).toBe(2)
  })

  it('clear() in one manager clears the other manager’s memory', async () => {
    const { a, b } = pair()
    const heldA = heldSource('api')
    const heldB = heldSource('api')
    await cached(a, heldA)
    await b.get(heldB.source)
    await a.clear()
    await flush()
    expect(b.peek(heldB.source)).toBeUndefined()
  })

  it('a token invalidated here is not adopted again from the store when the store delete fails', async () => {
    const clock = createTestClock()
    const shared = memoryStore({ clock })
    const failingDelete: TokenStore = {
      get: (key) => shared.get(key),
      set: (key, record, options) => shared.set(key, record, options),
      delete: () => Promise.reject(new Error('store down')),
      clear: () => shared.clear(),
    }
    const { tokens } = manager({ clock, store: failingDelete })
    const events = recordEvents(tokens)
    const held = heldSource('api')
    const old = await cached(tokens, held)
    await expect(tokens.invalidate(held.source, { token: old })).resolves.toBe(true)
    expect(events.storeError).toMatchObject([{ operation: 'delete', key: held.source.key }])
    // The store still holds the old token; the manager must not take it back.
    expect((await shared.get(held.source.key))?.expiresAt).toBe(old.expiresAt)
    const got = tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(2)
    const renewed = held.last().succeed(HOUR)
    await expect(got).resolves.toBe(renewed)
  })
})
