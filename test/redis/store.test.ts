import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { getEventListeners } from 'node:events'
import { inspect } from 'node:util'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  AccessToken,
  clientCredentials,
  clientSecretBasic,
  serializeToken,
  TokenManager,
  tokenId,
  tokenSource,
  type TokenManagerEvents,
} from '../../src/index.js'
import type { StoreRecord } from '../../src/stores/types.js'
import {
  isRedisStoreError,
  redisStore,
  type RedisStore,
  type RedisStoreError,
  type RedisStoreOptions,
} from '../../src/stores/redis/index.js'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { redisSuite, requireRedis, startRedisServer, type RedisServer } from '../support/redis-server.js'

const KEY_A = randomBytes(32)
const KEY_B = randomBytes(32)

/** `r` as the store reads it back: with the remaining time Redis measured (its PTTL). */
function measured(r: StoreRecord): StoreRecord {
  return { ...r, remainingMs: expect.any(Number) as number }
}

function record(value = `secret-token-${randomUUID()}`, lifetimeMs = 3_600_000): StoreRecord {
  const issuedAt = Date.now()
  const token = new AccessToken({
    value,
    type: 'Bearer',
    scopes: [],
    issuedAt,
    expiresAt: issuedAt + lifetimeMs,
  })
  return { tokenId: tokenId(token), expiresAt: token.expiresAt, payload: serializeToken(token) }
}

/** The documented key layout: `${prefix}:{base64url(sha256(cacheKey))[0..22]}:t`. */
function redisKey(prefix: string, cacheKey: string): string {
  return `${prefix}:{${createHash('sha256').update(cacheKey).digest('base64url').slice(0, 22)}}:t`
}

/** Every key and raw value in the server. */
async function dump(client: Redis): Promise<Map<string, string>> {
  const all = new Map<string, string>()
  let cursor = '0'
  for (let round = 0; round < 1_000; round++) {
    const [next, keys] = (await client.call('SCAN', cursor, 'COUNT', '1000')) as [string, string[]]
    for (const key of keys) {
      const type = await client.type(key)
      all.set(key, type === 'string' ? ((await client.get(key)) ?? '') : `<${type}>`)
    }
    cursor = next
    if (cursor === '0') break
  }
  return all
}

describe.skipIf(redisSuite() === 'skip')('redisStore', () => {
  let server: RedisServer
  let admin: Redis
  const cleanups: (() => Promise<void> | void)[] = []

  beforeAll(async () => {
    requireRedis()
    server = await startRedisServer()
    admin = new Redis(server.port, '127.0.0.1')
  })

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  afterAll(async () => {
    admin?.disconnect()
    await server?.close()
  })

  function client(): Redis {
    const redis = new Redis(server.port, '127.0.0.1')
    cleanups.push(() => redis.disconnect())
    return redis
  }

  function store(options: Partial<RedisStoreOptions> & { errors?: RedisStoreError[] } = {}): RedisStore {
    const { errors, ...rest } = options
    const made = redisStore({
      client: client(),
      prefix: `t-${randomUUID()}`,
      encryptionKeys: [{ id: 'a', key: KEY_A }],
      onError: (error) => errors?.push(error),
      ...rest,
    })
    cleanups.push(() => made.close())
    return made
  }

  describe('construction', () => {
    it('requires encryption keys unless encryption is turned off explicitly', () => {
      const redis = client()
      expect(() => redisStore({ client: redis })).toThrow(/encryptionKeys are required.*encryption: false/)
      expect(() => redisStore({ client: redis, encryption: false })).not.toThrow()
      expect(() =>
        redisStore({ client: redis, encryption: false, encryptionKeys: [{ id: 'a', key: KEY_A }] }),
      ).toThrow(TypeError)
      expect(() => redisStore({ client: redis, encryption: true as unknown as false })).toThrow(TypeError)
    })

    it('checks keys without ever showing them', () => {
      const redis = client()
      const secret = randomBytes(31)
      const cases: unknown[] = [
        [],
        [{ id: 'a', key: secret }],
        [{ id: 'a', key: secret.toString('base64') }],
        [{ id: 'a', key: 'not base64 !!' }],
        [{ id: '', key: KEY_A }],
        [{ id: 'has space', key: KEY_A }],
        [
          { id: 'a', key: KEY_A },
          { id: 'a', key: KEY_B },
        ],
        [{ id: 'a' }],
        'k',
      ]
      for (const encryptionKeys of cases) {
        let thrown: unknown
        try {
          redisStore({ client: redis, encryptionKeys } as RedisStoreOptions)
        } catch (error) {
          thrown = error
        }
        expect(thrown).toBeInstanceOf(TypeError)
        const message = (thrown as Error).message
        expect(message).not.toContain(secret.toString('base64'))
        expect(message).not.toContain(secret.toString('hex'))
      }
      // base64, base64url and raw bytes are all accepted.
      for (const key of [
        KEY_A,
        KEY_A.toString('base64'),
        KEY_A.toString('base64url'),
        new Uint8Array(KEY_A),
      ]) {
        expect(() => redisStore({ client: redis, encryptionKeys: [{ id: 'a', key }] })).not.toThrow()
      }
    })

    it('rejects clients it cannot drive, a bad prefix, ioredis keyPrefix, and the client as its own subscriber', () => {
      const redis = client()
      const keys = [{ id: 'a', key: KEY_A }]
      const bad = (options: Record<string, unknown>) => () =>
        redisStore({ client: redis, encryptionKeys: keys, ...options })
      expect(bad({ client: {} })).toThrow(/ioredis or node-redis/)
      expect(bad({ client: undefined })).toThrow(TypeError)
      for (const prefix of ['', 'a{b', 'a b', 'a*', 'x'.repeat(65)])
        expect(bad({ prefix })).toThrow(TypeError)
      expect(bad({ commandTimeoutMs: 0 })).toThrow(TypeError)
      expect(bad({ pollIntervalMs: Number.NaN })).toThrow(TypeError)
      expect(bad({ circuitBreaker: { failureThreshold: 0 } })).toThrow(TypeError)
      expect(bad({ subscriber: redis })).toThrow(/separate connection/)
      const prefixed = new Redis(server.port, '127.0.0.1', { keyPrefix: 'app:', lazyConnect: true })
      expect(bad({ client: prefixed })).toThrow(/keyPrefix/)
    })

    it('shows no key material in inspect or JSON', () => {
      const made = store()
      const shown = `${inspect(made, { depth: 10, showHidden: true })} ${JSON.stringify(made)}`
      expect(shown).toContain('redisStore')
      for (const form of [KEY_A.toString('base64'), KEY_A.toString('hex'), KEY_A.toString('base64url')])
        expect(shown).not.toContain(form)
    })
  })

  describe('values at rest', () => {
    it('holds no token bytes in Redis: every key and raw value, through a real manager', async () => {
      const tokenServer: TokenServer = await startTokenServer({
        clients: [{ clientId: 'svc', clientSecret: 's3cret' }],
      })
      cleanups.push(() => tokenServer.close())
      const made = store({ prefix: 'tk-at-rest' })
      const manager = new TokenManager({ store: made })
      cleanups.push(() => manager.close())
      const values: string[] = []
      for (const scope of ['read', 'write', 'admin']) {
        const source = clientCredentials({
          tokenUrl: tokenServer.tokenUrl,
          clientId: 'svc',
          auth: clientSecretBasic('s3cret'),
          scopes: [scope],
        })
        values.push((await manager.get(source)).value)
      }
      const all = await dump(admin)
      const ours = [...all].filter(([key]) => key.startsWith('tk-at-rest:'))
      expect(ours).toHaveLength(3)
      for (const [key, value] of ours) {
        expect(key).toMatch(/^tk-at-rest:\{[A-Za-z0-9_-]{22}\}:t$/)
        expect(value).toMatch(/"kid":"a"/)
        for (const token of values) {
          for (const form of [
            token,
            Buffer.from(token).toString('base64'),
            Buffer.from(token).toString('base64url'),
          ])
            expect(value).not.toContain(form.slice(0, 24))
          expect(key).not.toContain(token.slice(0, 12))
        }
        expect(value).not.toContain('s3cret')
      }
    })

    it('an invalidation reaches another process holding the token even after Redis lost it (flush, expiry, eviction)', async () => {
      const tokenServer: TokenServer = await startTokenServer({
        clients: [{ clientId: 'svc', clientSecret: 's3cret' }],
      })
      cleanups.push(() => tokenServer.close())
      const prefix = `tk-lost-${randomUUID()}`
      const stores = [store({ prefix }), store({ prefix })]
      await Promise.all(stores.map((s) => s.ready()))
      const [a, b] = stores.map((s) => new TokenManager({ store: s }))
      cleanups.push(
        () => a!.close(),
        () => b!.close(),
      )
      const source = clientCredentials({
        tokenUrl: tokenServer.tokenUrl,
        clientId: 'svc',
        auth: clientSecretBasic('s3cret'),
      })
      const token = await a!.get(source)
      expect((await b!.get(source)).value).toBe(token.value)
      expect(b!.peek(source)?.value).toBe(token.value)
      expect(tokenServer.stats().tokenRequests).toBe(1)
      for (const key of (await dump(admin)).keys()) if (key.startsWith(`${prefix}:`)) await admin.del(key)
      await expect(a!.invalidate(source, { token })).resolves.toBe(true)
      for (let i = 0; i < 200 && b!.peek(source) !== undefined; i++)
        await new Promise((r) => setTimeout(r, 5))
      expect(b!.peek(source)).toBeUndefined()
    })

    it('token and lock of a key share one hash tag (one Redis Cluster slot)', async () => {
      const made = store({ prefix: 'tk-tags' })
      const lock = await made.acquireLock('some|cache|key', { ttlMs: 60_000 })
      await made.set('some|cache|key', record(), { ttlMs: 60_000 })
      const keys = [...(await dump(admin)).keys()].filter((key) => key.startsWith('tk-tags:')).sort()
      expect(keys).toHaveLength(2)
      const tags = keys.map((key) => /\{([^}]+)\}/.exec(key)![1])
      expect(tags[0]).toBe(tags[1])
      expect(keys.map((key) => key.slice(-2))).toEqual([':l', ':t'])
      await lock!.release()
    })

    it('rotation: records written under key A are read after configuring [B, A]; new writes use B', async () => {
      const prefix = `rot-${randomUUID()}`
      const oldStore = store({ prefix, encryptionKeys: [{ id: 'a', key: KEY_A }] })
      const r = record()
      await oldStore.set('k', r, { ttlMs: 60_000 })
      const errors: RedisStoreError[] = []
      const rotated = store({
        prefix,
        encryptionKeys: [
          { id: 'b', key: KEY_B.toString('base64') },
          { id: 'a', key: KEY_A.toString('base64') },
        ],
        errors,
      })
      await expect(rotated.get('k')).resolves.toEqual(measured(r))
      const newer = record(undefined, 7_200_000)
      await rotated.set('k', newer, { ttlMs: 60_000 })
      const raw = [...(await dump(admin))].find(([key]) => key.startsWith(`${prefix}:`))![1]
      expect(JSON.parse(raw).kid).toBe('b')
      await expect(rotated.get('k')).resolves.toEqual(measured(newer))
      expect(errors).toEqual([])
    })

    it('a record under an unknown key id is a miss, reported through onError, never a crash', async () => {
      const prefix = `unknown-${randomUUID()}`
      await store({ prefix, encryptionKeys: [{ id: 'b', key: KEY_B }] }).set('k', record(), { ttlMs: 60_000 })
      const errors: RedisStoreError[] = []
      const reader = store({ prefix, errors })
      await expect(reader.get('k')).resolves.toBeUndefined()
      expect(errors.map((error) => error.code)).toEqual(['UNKNOWN_KEY_ID'])
      expect(isRedisStoreError(errors[0])).toBe(true)
      // A write over it works when newer (write-if-newer still holds).
      const newer = record(undefined, 7_200_000)
      await expect(reader.set('k', newer, { ttlMs: 60_000 })).resolves.toBe(true)
      await expect(reader.get('k')).resolves.toEqual(measured(newer))
    })

    it('a value it cannot decode does not block writes with the expiry it claims (not authenticated)', async () => {
      const prefix = `poison-${randomUUID()}`
      const lateExpiry = record(undefined, 24 * 3_600_000)
      await store({ prefix, encryptionKeys: [{ id: 'b', key: KEY_B }] }).set('k', lateExpiry, {
        ttlMs: 60_000,
      })
      const writer = store({ prefix })
      const sooner = record(undefined, 3_600_000)
      await expect(writer.set('k', sooner, { ttlMs: 3_600_000 })).resolves.toBe(true)
      await expect(writer.get('k')).resolves.toEqual(measured(sooner))
      // Once the value is its own again, write-if-newer holds as before.
      await expect(writer.set('k', record(undefined, 60_000), { ttlMs: 60_000 })).resolves.toBe(false)
      await expect(writer.get('k')).resolves.toEqual(measured(sooner))
    })

    it('a tampered value, a value copied to another key, or a plaintext value is a miss', async () => {
      const prefix = `tamper-${randomUUID()}`
      const errors: RedisStoreError[] = []
      const made = store({ prefix, errors })
      await made.set('one', record(), { ttlMs: 60_000 })
      await made.set('two', record(), { ttlMs: 60_000 })
      const keyOne = redisKey(prefix, 'one')
      const keyTwo = redisKey(prefix, 'two')
      const valueOne = (await admin.get(keyOne))!
      // Copy one's value over two: the associated data (the cache key) no longer matches.
      await admin.set(keyTwo, valueOne)
      // Flip a ciphertext byte in one.
      const envelope = JSON.parse(valueOne)
      const ct = Buffer.from(envelope.ct, 'base64url')
      ct[0] = ct[0]! ^ 1
      await admin.set(keyOne, JSON.stringify({ ...envelope, ct: ct.toString('base64url') }))
      await expect(made.get('one')).resolves.toBeUndefined()
      await expect(made.get('two')).resolves.toBeUndefined()
      // Changing the clear expiry (to defeat write-if-newer) also fails authentication.
      await admin.set(keyOne, JSON.stringify({ ...envelope, exp: envelope.exp + 1 }))
      await expect(made.get('one')).resolves.toBeUndefined()
      // A plaintext record (from an `encryption: false` store) is refused by an encrypting store.
      const plain = redisStore({ client: client(), prefix, encryption: false })
      cleanups.push(() => plain.close())
      const r = record(undefined, 9_000_000)
      await plain.set('one', r, { ttlMs: 60_000 })
      await expect(plain.get('one')).resolves.toEqual(measured(r))
      await expect(made.get('one')).resolves.toBeUndefined()
      await admin.set(keyOne, 'not json')
      await expect(made.get('one')).resolves.toBeUndefined()
      expect(errors.map((error) => error.code)).toEqual([
        'DECRYPT_FAILED',
        'DECRYPT_FAILED',
        'DECRYPT_FAILED',
        'UNENCRYPTED_RECORD',
        'MALFORMED_RECORD',
      ])
      for (const error of errors) expect(error.message).not.toMatch(/secret-token/)
    })
  })

  describe('connections', () => {
    it('close() closes only the connection it created; the client keeps working', async () => {
      const redis = client()
      const made = redisStore({ client: redis, prefix: `c-${randomUUID()}`, encryption: false })
      await made.ready()
      const before = Number((await admin.info('clients')).match(/connected_clients:(\d+)/)![1])
      await made.close()
      await made.close()
      await expect(redis.call('PING')).resolves.toBe('PONG')
      await expect
        .poll(async () => Number((await admin.info('clients')).match(/connected_clients:(\d+)/)![1]))
        .toBe(before - 1)
      await expect(made.get('k')).rejects.toMatchObject({ code: 'STORE_CLOSED' })
      await expect(made.ready()).rejects.toMatchObject({ code: 'STORE_CLOSED' })
    })

    it('a given subscriber is used, unsubscribed by close(), and left open (ioredis and node-redis)', async () => {
      const ioSub = client()
      const nodeSub = createClient({ url: server.url })
      nodeSub.on('error', () => {})
      await nodeSub.connect()
      cleanups.push(() => nodeSub.destroy())
      for (const subscriber of [ioSub, nodeSub]) {
        const prefix = `s-${randomUUID()}`
        const made = redisStore({ client: client(), subscriber, prefix, encryption: false })
        const writer = redisStore({ client: client(), prefix, encryption: false })
        cleanups.push(() => writer.close())
        const events: unknown[] = []
        made.subscribe((event) => events.push(event))
        await made.ready()
        const r = record()
        await writer.set('k', r, { ttlMs: 60_000 })
        await expect.poll(() => events).toEqual([{ type: 'set', key: 'k', tokenId: r.tokenId }])
        await made.close()
        const channels = (await admin.call('PUBSUB', 'CHANNELS', `${prefix}:*`)) as string[]
        expect(channels).toEqual([])
      }
      await expect(ioSub.call('PING')).resolves.toBe('PONG')
      expect(nodeSub.isOpen).toBe(true)
    })

    /**
     * A manager on `made` waiting for a lock another process (`holder`) holds on its source's key;
     * the source counts its requests.
     */
    async function waitOnHeldLock(made: RedisStore, holder: RedisStore, lockTtlMs = 60_000) {
      const manager = new TokenManager({ store: made })
      cleanups.push(() => manager.close())
      const waits: TokenManagerEvents['lockWait'][0][] = []
      manager.on('lockWait', (event) => waits.push(event))
      let requests = 0
      const source = tokenSource(`waited-${randomUUID()}`, () => {
        requests++
        return { access_token: `own-${randomUUID()}`, token_type: 'Bearer', expires_in: 3600 }
      })
      const lock = await holder.acquireLock(source.key, { ttlMs: lockTtlMs })
      expect(lock).toBeDefined()
      let found = 0
      const watching = made.acquireLock.bind(made)
      made.acquireLock = async (key, options) => {
        const got = await watching(key, options)
        if (got === undefined) found++
        return got
      }
      const got = manager.get(source)
      await expect.poll(() => found, { timeout: 10_000, interval: 5 }).toBeGreaterThan(0)
      /** The holder's process writes its token and releases the lock. */
      const finish = async (): Promise<AccessToken> => {
        const issuedAt = Date.now()
        const token = new AccessToken({
          value: `holder-${randomUUID()}`,
          type: 'Bearer',
          scopes: [],
          issuedAt,
          expiresAt: issuedAt + 3_600_000,
        })
        const r = { tokenId: tokenId(token), expiresAt: token.expiresAt, payload: serializeToken(token) }
        await holder.set(source.key, r, { ttlMs: 3_600_000 })
        await lock!.release()
        return token
      }
      return { manager, source, got, finish, waits, requests: () => requests }
    }

    it("a manager takes over when a dead holder's lock expires, long before its own wait would end", async () => {
      const prefix = `dead-${randomUUID()}`
      const waiter = store({ prefix })
      await waiter.ready()
      // A 300 ms lock never released: its process died.
      const { got, waits, requests } = await waitOnHeldLock(waiter, store({ prefix }), 300)
      await expect(got).resolves.toBeDefined()
      expect(requests()).toBe(1)
      expect(waits).toHaveLength(1)
      expect(waits[0]).toMatchObject({ outcome: 'fetch' })
      // It waited for the lock, and not its own 15 s lock TTL.
      expect(waits[0]!.waitedMs).toBeGreaterThanOrEqual(200)
      expect(waits[0]!.waitedMs).toBeLessThan(15_000)
    })

    it('many keys waiting on one signal put one listener on it (no MaxListenersExceededWarning)', async () => {
      const prefix = `many-${randomUUID()}`
      const holder = store({ prefix })
      const waiter = store({ prefix })
      await waiter.ready()
      const manager = new TokenManager({ store: waiter })
      cleanups.push(() => manager.close())
      const controller = new AbortController()
      const sources = Array.from({ length: 30 }, (_, i) =>
        tokenSource(`many-${i}-${randomUUID()}`, () => ({ access_token: 'never', expires_in: 60 })),
      )
      for (const source of sources)
        expect(await holder.acquireLock(source.key, { ttlMs: 60_000 })).toBeDefined()
      const waits = sources.map((source) =>
        manager.get(source, { signal: controller.signal }).catch((error: unknown) => error),
      )
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1)
      controller.abort(new Error('stop waiting'))
      for (const result of await Promise.all(waits)) expect(result).toMatchObject({ message: 'stop waiting' })
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    })

    it('a manager waiting for a lock adopts the holder’s token on its notification, asking no source', async () => {
      const prefix = `notified-${randomUUID()}`
      const waiter = store({ prefix })
      await waiter.ready()
      const { got, finish, waits, requests } = await waitOnHeldLock(waiter, store({ prefix }))
      const token = await finish()
      await expect(got).resolves.toMatchObject({ value: token.value })
      expect(requests()).toBe(0)
      expect(waits).toMatchObject([{ outcome: 'store' }])
    })

    it('without pub/sub, a waiting manager still gets the holder’s token by polling', async () => {
      // The subscriber is connected to another server: no notification ever arrives.
      const elsewhere = await startRedisServer()
      cleanups.push(() => elsewhere.close())
      const deaf = new Redis(elsewhere.port, '127.0.0.1')
      cleanups.push(() => deaf.disconnect())
      const prefix = `deaf-${randomUUID()}`
      const waiter = store({ prefix, subscriber: deaf, pollIntervalMs: 50 })
      await waiter.ready()
      expect(waiter.pollIntervalMs).toBe(50)
      const { got, finish, requests } = await waitOnHeldLock(waiter, store({ prefix }))
      const token = await finish()
      await expect(got).resolves.toMatchObject({ value: token.value })
      expect(requests()).toBe(0)
    })

    it('a client whose duplicate() throws: reported, retried, and a waiting manager still gets the token by polling', async () => {
      const redis = client()
      const errors: RedisStoreError[] = []
      const made = store({
        client: {
          call: (command: string, ...args: (string | number)[]) => redis.call(command, ...args),
          duplicate: () => {
            throw new Error('no second connection allowed')
          },
        },
        pollIntervalMs: 50,
        errors,
      })
      const unsubscribe = made.subscribe(() => {}) // must not throw (the manager calls it in its constructor)
      const prefix = (JSON.parse(JSON.stringify(made)) as { prefix: string }).prefix
      const { got, finish, requests } = await waitOnHeldLock(made, store({ prefix }))
      const token = await finish()
      await expect(got).resolves.toMatchObject({ value: token.value })
      expect(requests()).toBe(0)
      expect(errors.map((error) => error.code)).toContain('SUBSCRIBE_FAILED')
      unsubscribe()
    })

    it('a listener that throws is reported and does not stop the others', async () => {
      const errors: RedisStoreError[] = []
      const made = store({ errors })
      const seen: string[] = []
      made.subscribe(() => {
        throw new Error('boom')
      })
      made.subscribe((event) => seen.push(event.type))
      await made.set('k', record(), { ttlMs: 60_000 })
      await expect.poll(() => seen).toEqual(['set'])
      expect(errors.map((error) => error.code)).toEqual(['LISTENER_FAILED'])
    })
  })
})
