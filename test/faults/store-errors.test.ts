import { describe, expect, it } from 'vitest'
import {
  isTokenkeeperError,
  memoryStore,
  TokenManager,
  tokenSource,
  serializeToken,
  tokenId,
  type StoreErrorEvent,
  type StoreRecord,
  type TokenSource,
  type TokenStore,
} from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import { instantSource, makeToken } from '../manager/helpers.js'

function deepArray(depth: number): unknown {
  let value: unknown = []
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

function managerWith(store: TokenStore) {
  const clock = createTestClock()
  const tokens = new TokenManager({ clock, store })
  const errors: StoreErrorEvent[] = []
  tokens.on('storeError', (event) => errors.push(event))
  return { clock, tokens, errors }
}

/** A memory store with some methods replaced. */
function storeWith(overrides: Partial<Record<keyof TokenStore, unknown>>): TokenStore {
  const inner = memoryStore()
  const base: TokenStore = {
    get: (key) => inner.get(key),
    set: (key, record, options) => inner.set(key, record, options),
    delete: (key, options) => inner.delete(key, options),
    clear: () => inner.clear(),
    acquireLock: (key, options) => inner.acquireLock!(key, options),
  }
  return { ...base, ...(overrides as Partial<TokenStore>) }
}

describe('errors on the way to or from a store are store errors, never a failed get', () => {
  it('a token whose vendor field is nested 6,000 deep: served, kept in memory, set reported', async () => {
    const { tokens, errors } = managerWith(memoryStore())
    let calls = 0
    const source = tokenSource('deep', () => {
      calls++
      return { access_token: 'abc.def', token_type: 'Bearer', expires_in: 3600, vendor: deepArray(6_000) }
    })
    const token = await tokens.get(source)
    expect(token.value).toBe('abc.def')
    expect(errors.map((e) => e.operation)).toEqual(['set'])
    await tokens.get(source)
    expect(calls).toBe(1)
    await tokens.close()
  })

  it('a token with a huge vendor field is stored and served', async () => {
    const shared = memoryStore()
    const { tokens, errors } = managerWith(shared)
    const source = tokenSource('huge', () => ({
      access_token: 'abc',
      token_type: 'Bearer',
      expires_in: 3600,
      vendor: 'x'.repeat(2_000_000),
    }))
    await expect(tokens.get(source)).resolves.toBeDefined()
    expect(errors).toEqual([])
    expect(shared.size).toBe(1)
    await tokens.close()
  })

  const garbage: [string, unknown][] = [
    ['a number', 42],
    ['a string', 'record'],
    ['an empty object', {}],
    ['a record with a numeric tokenId', { tokenId: 1, expiresAt: Date.now() + 60_000, payload: '{}' }],
    ['a record with NaN expiry', { tokenId: 'id', expiresAt: Number.NaN, payload: '{}' }],
    [
      'a record whose payload is not a token',
      { tokenId: 'id', expiresAt: Date.UTC(2027, 0, 1), payload: '[[' },
    ],
  ]
  for (const [name, value] of garbage) {
    it(`get answering ${name}: a miss with a storeError, the source is asked`, async () => {
      const { tokens, errors } = managerWith(storeWith({ get: () => Promise.resolve(value) }))
      const source = instantSource('k', 60_000)
      await expect(tokens.get(source.source)).resolves.toBeDefined()
      expect(source.calls()).toBe(1)
      expect(errors.length).toBeGreaterThan(0)
      expect(errors.every((e) => e.operation === 'get')).toBe(true)
      await tokens.close()
    })
  }

  /** A record for a 60 s token issued now that claims far more time left than the token ever had. */
  const overlong: [string, (record: StoreRecord) => StoreRecord][] = [
    ['a remainingMs of 1e15', (record) => ({ ...record, remainingMs: 1e15 })],
    ['a remainingMs of Infinity', (record) => ({ ...record, remainingMs: Infinity })],
    [
      'an expiresAt 30 years ahead (no remainingMs)',
      (record) => ({ ...record, expiresAt: record.expiresAt + 1e12 }),
    ],
  ]
  it.each(overlong)(
    'get answering %s: the token is kept no longer than its own lifetime',
    async (_name, forge) => {
      const clock = createTestClock()
      const now = clock.now()
      const stored = makeToken('stored-SECRET-overlong', now, 60_000)
      const record = forge({
        tokenId: tokenId(stored),
        expiresAt: stored.expiresAt,
        payload: serializeToken(stored),
      })
      let reads = 0
      const store = storeWith({ get: () => Promise.resolve(reads++ === 0 ? record : undefined) })
      const tokens = new TokenManager({ clock, store, random: () => 0.5 })
      const { source, calls } = instantSource('overlong', 60_000)
      const adopted = await tokens.get(source)
      expect(adopted.value).toBe('stored-SECRET-overlong')
      expect(adopted.expiresAt).toBeLessThanOrEqual(now + 60_000)
      expect(calls()).toBe(0)
      clock.advance(60_000)
      expect(tokens.peek(source)).toBeUndefined()
      await expect(tokens.get(source)).resolves.not.toMatchObject({ value: 'stored-SECRET-overlong' })
      expect(calls()).toBe(1)
      await tokens.close()
    },
  )

  it('get answering a record whose tokenId is not its token’s: a miss with a storeError, the source is asked', async () => {
    const clock = createTestClock()
    const stored = makeToken('stored-SECRET-mislabelled', clock.now(), 60_000)
    const record = {
      tokenId: tokenId('another token'),
      expiresAt: stored.expiresAt,
      payload: serializeToken(stored),
    }
    const { tokens, errors } = managerWith(storeWith({ get: () => Promise.resolve(record) }))
    const { source, calls } = instantSource('mislabelled', 60_000)
    await expect(tokens.get(source)).resolves.not.toMatchObject({ value: 'stored-SECRET-mislabelled' })
    expect(calls()).toBe(1)
    expect(errors.map((e) => e.operation)).toContain('get')
    expect(JSON.stringify(errors)).not.toContain('stored-SECRET')
    await tokens.close()
  })

  it('acquireLock answering something that is not a lock: a lock storeError, then a direct fetch', async () => {
    const { tokens, errors } = managerWith(storeWith({ acquireLock: () => Promise.resolve(true) }))
    const source = instantSource('k', 60_000)
    await expect(tokens.get(source.source)).resolves.toBeDefined()
    expect(errors.map((e) => e.operation)).toEqual(['lock'])
    await tokens.close()
  })

  for (const method of ['get', 'set', 'acquireLock', 'delete', 'clear', 'close'] as const) {
    it(`${method} throwing synchronously is a storeError, never a failed call`, async () => {
      const { tokens, errors } = managerWith(
        storeWith({
          [method]: () => {
            throw new RangeError('sync failure')
          },
        }),
      )
      const source = instantSource('k', 60_000)
      await expect(tokens.get(source.source)).resolves.toBeDefined()
      await expect(tokens.invalidate(source.source)).resolves.toBeTypeOf('boolean')
      await expect(tokens.clear()).resolves.toBeUndefined()
      await expect(tokens.close()).resolves.toBeUndefined()
      const operation = method === 'acquireLock' ? 'lock' : method
      expect(errors.map((e) => e.operation)).toContain(operation)
    })
  }

  it('a store whose methods return plain values instead of promises works', async () => {
    const records = new Map<string, unknown>()
    const store = {
      get: (key: string) => records.get(key),
      set: (key: string, record: unknown) => (records.set(key, record), true),
      delete: (key: string) => records.delete(key),
      clear: () => records.clear(),
      acquireLock: () => ({ release: () => undefined }),
    } as unknown as TokenStore
    const { tokens, errors } = managerWith(store)
    const source = instantSource('k', 60_000)
    await tokens.get(source.source)
    expect(records.size).toBe(1)
    const other = new TokenManager({ clock: createTestClock(), store })
    await other.get(source.source)
    expect(source.calls()).toBe(1)
    await expect(tokens.invalidate(source.source)).resolves.toBe(true)
    expect(errors).toEqual([])
    await tokens.close()
    await other.close()
  })

  it('a raw TokenSource that throws a plain error: the caller gets a TokenkeeperError (SOURCE_FAILED)', async () => {
    const tokens = new TokenManager({ clock: createTestClock() })
    const raw: TokenSource = {
      key: 'raw',
      fetchToken: () => Promise.reject(new RangeError('boom')),
    }
    const error: unknown = await tokens.get(raw).catch((e: unknown) => e)
    expect(isTokenkeeperError(error)).toBe(true)
    expect(error).toMatchObject({ code: 'SOURCE_FAILED' })
    expect((error as Error).cause).toBeInstanceOf(RangeError)
    await tokens.close()
  })

  /** Thrown values that are not errors, down to one whose every read throws. */
  const unreadable = new Proxy(
    {},
    {
      get() {
        throw new Error('read of a thrown value')
      },
      has() {
        throw new Error('read of a thrown value')
      },
      getPrototypeOf() {
        throw new Error('read of a thrown value')
      },
    },
  )
  const badMessage = Object.create(Error.prototype, {
    message: {
      get() {
        throw new Error('read of a message')
      },
    },
  }) as unknown
  const thrownValues: [string, unknown][] = [
    ['a string', 'down'],
    ['null', null],
    ['undefined', undefined],
    ['an object whose every read throws (a Proxy)', unreadable],
    ['an Error whose message getter throws', badMessage],
  ]
  const thrownBy: [string, (thrown: unknown) => TokenSource][] = [
    [
      'a raw TokenSource (synchronously)',
      (thrown) => ({
        key: `raw-sync-${String(typeof thrown)}`,
        fetchToken: () => {
          throw thrown
        },
      }),
    ],
    [
      'a raw TokenSource (rejecting)',
      (thrown) => ({
        key: `raw-async-${String(typeof thrown)}`,
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- rejecting with a non-Error is the case under test
        fetchToken: () => Promise.reject(thrown),
      }),
    ],
    [
      'a tokenSource function',
      (thrown) =>
        tokenSource(`fn-${String(typeof thrown)}`, () => {
          throw thrown
        }),
    ],
  ]
  describe.each(thrownBy)('%s', (_by, build) => {
    it.each(thrownValues)(
      'throwing %s: every caller gets SOURCE_FAILED, then the backoff',
      async (_what, thrown) => {
        const tokens = new TokenManager({ clock: createTestClock() })
        const source = build(thrown)
        const failures: string[] = []
        tokens.on('refreshFailure', (event) => failures.push(event.code))
        const errors = await Promise.all(
          [tokens.get(source), tokens.get(source)].map((p) => p.catch((e: unknown) => e)),
        )
        for (const error of errors) {
          expect(isTokenkeeperError(error)).toBe(true)
          expect(error).toMatchObject({ code: 'SOURCE_FAILED', retryable: true })
        }
        expect(failures).toEqual(['SOURCE_FAILED'])
        await expect(tokens.get(source)).rejects.toBe(errors[0])
        await tokens.close()
      },
    )
  })

  it('a raw TokenSource that answers with something that is not a token: SOURCE_FAILED', async () => {
    const tokens = new TokenManager({ clock: createTestClock() })
    const raw = { key: 'raw2', fetchToken: () => Promise.resolve(undefined) } as unknown as TokenSource
    await expect(tokens.get(raw)).rejects.toMatchObject({ code: 'SOURCE_FAILED' })
    await tokens.close()
  })
})
