/**
 * Foreign data and odd keys under the store's names, and faults around its commands, on a real
 * redis-server: a value that is not the store's (a foreign string, another type, another key's
 * ciphertext) is a miss, reported, never served, never a failed call, and replaced by the next
 * write; an error reply of Redis (WRONGTYPE, OOM) fails that command only, never the circuit.
 */
import { createHash, createCipheriv, randomBytes, randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  AccessToken,
  clientCredentials,
  clientSecretBasic,
  serializeToken,
  TokenManager,
  tokenId,
} from '../../src/index.js'
import type { StoreEvent, StoreRecord } from '../../src/stores/types.js'
import {
  isRedisStoreError,
  redisStore,
  type RedisStore,
  type RedisStoreError,
  type RedisStoreOptions,
} from '../../src/stores/redis/index.js'
import { createTestClock, startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { redisSuite, requireRedis, startRedisServer, type RedisServer } from '../support/redis-server.js'

const KEY_A = randomBytes(32)
const KEY_B = randomBytes(32)
const HOUR = 3_600_000

function record(value = `secret-token-${randomUUID()}`, lifetimeMs = HOUR): StoreRecord {
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

function tokenKey(prefix: string, cacheKey: string): string {
  return `${prefix}:{${createHash('sha256').update(cacheKey).digest('base64url').slice(0, 22)}}:t`
}

/** A value sealed as the store seals, but with the associated data or key given here. */
function sealedLike(
  key: Buffer,
  kid: string,
  id: string,
  exp: number,
  aad: string,
  plaintext: string,
): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 })
  cipher.setAAD(Buffer.from(aad, 'utf8'))
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return JSON.stringify({
    v: 1,
    id,
    exp,
    kid,
    iv: iv.toString('base64url'),
    ct: ct.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
  })
}

describe.skipIf(redisSuite() === 'skip')('redisStore with foreign data and faults', () => {
  let server: RedisServer
  let tokenServer: TokenServer
  let admin: Redis
  const cleanups: (() => Promise<void> | void)[] = []

  beforeAll(async () => {
    requireRedis()
    server = await startRedisServer()
    tokenServer = await startTokenServer({ clients: [{ clientId: 'svc', clientSecret: 's3cret' }] })
    admin = new Redis(server.port, '127.0.0.1')
  })

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  afterAll(async () => {
    admin?.disconnect()
    await tokenServer?.close()
    await server?.close()
  })

  function ioredis(options: RedisOptions = {}): Redis {
    const client = new Redis(server.port, '127.0.0.1', options)
    client.on('error', () => {})
    cleanups.push(() => client.disconnect())
    return client
  }

  async function nodeRedis() {
    const client = createClient({ url: server.url })
    client.on('error', () => {})
    await client.connect()
    cleanups.push(() => {
      if (client.isOpen) client.destroy()
    })
    return client
  }

  async function client(kind: 'ioredis' | 'node-redis') {
    return kind === 'ioredis' ? ioredis() : nodeRedis()
  }

  function store(
    options: Partial<RedisStoreOptions> & { errors?: RedisStoreError[] } & Pick<RedisStoreOptions, 'client'>,
  ): RedisStore {
    const { errors, ...rest } = options
    const made = redisStore({
      prefix: `h-${randomUUID()}`,
      encryptionKeys: [{ id: 'a', key: KEY_A }],
      onError: (error) => errors?.push(error),
      ...rest,
    })
    cleanups.push(() => made.close())
    return made
  }

  function source(scope: string) {
    return clientCredentials({
      tokenUrl: tokenServer.tokenUrl,
      clientId: 'svc',
      auth: clientSecretBasic('s3cret'),
      scopes: [scope],
    })
  }

  describe('a string under a token key that is not this store’s record', () => {
    const cacheKey = 'https://as.example/token|svc|scope'
    const exp = Date.now() + 10 * HOUR
    const id = 'planted-id'
    const aad = (kid: string) => `tokenkeeper/redis v1\n${kid}\n${id}\n${exp}\n${cacheKey}`
    const plaintextPayload = serializeToken(
      new AccessToken({ value: 'planted-token', type: 'Bearer', scopes: [], issuedAt: 0, expiresAt: exp }),
    )
    const good = sealedLike(KEY_A, 'a', id, exp, aad('a'), plaintextPayload)
    const tampered = (() => {
      const parsed = JSON.parse(good) as { ct: string }
      const bytes = Buffer.from(parsed.ct, 'base64url')
      bytes[0] = (bytes[0] ?? 0) ^ 1
      return JSON.stringify({ ...parsed, ct: bytes.toString('base64url') })
    })()
    const cases: [string, string, RedisStoreError['code']][] = [
      ['plain text', 'hello', 'MALFORMED_RECORD'],
      ['an empty string', '', 'MALFORMED_RECORD'],
      ['a JSON number', '123', 'MALFORMED_RECORD'],
      ['JSON null', 'null', 'MALFORMED_RECORD'],
      ['a JSON array', '[1,2]', 'MALFORMED_RECORD'],
      ['an empty object', '{}', 'MALFORMED_RECORD'],
      [
        'a future format version',
        JSON.stringify({ v: 2, id, exp, kid: 'a', iv: 'x', ct: 'y', tag: 'z' }),
        'MALFORMED_RECORD',
      ],
      [
        'a version as a string',
        JSON.stringify({ ...(JSON.parse(good) as object), v: '1' }),
        'MALFORMED_RECORD',
      ],
      [
        'prototype keys',
        `{"__proto__":{"v":1,"id":"${id}","exp":${exp},"p":"x"},"constructor":{"prototype":{"v":1}}}`,
        'MALFORMED_RECORD',
      ],
      [
        'an infinite exp',
        `{"v":1,"id":"${id}","exp":1e999,"kid":"a","iv":"x","ct":"y","tag":"z"}`,
        'MALFORMED_RECORD',
      ],
      ['an envelope without ciphertext', JSON.stringify({ v: 1, id, exp, kid: 'a' }), 'MALFORMED_RECORD'],
      ['a plaintext record', JSON.stringify({ v: 1, id, exp, p: plaintextPayload }), 'UNENCRYPTED_RECORD'],
      [
        'a value of another key id',
        sealedLike(KEY_B, 'b', id, exp, aad('b'), plaintextPayload),
        'UNKNOWN_KEY_ID',
      ],
      [
        'a value sealed with another key under this id',
        sealedLike(KEY_B, 'a', id, exp, aad('a'), plaintextPayload),
        'DECRYPT_FAILED',
      ],
      ['a tampered ciphertext', tampered, 'DECRYPT_FAILED'],
      [
        'a value sealed for another cache key',
        sealedLike(KEY_A, 'a', id, exp, aad('a').replace(cacheKey, 'other'), plaintextPayload),
        'DECRYPT_FAILED',
      ],
      ['1 MiB of junk', 'x'.repeat(1 << 20), 'MALFORMED_RECORD'],
    ]
    for (const [name, value, code] of cases) {
      it(`${name}: a miss reported as ${code}, then replaced by the next write`, async () => {
        const errors: RedisStoreError[] = []
        const prefix = `h-${randomUUID()}`
        const made = store({ client: ioredis(), prefix, errors })
        await admin.set(tokenKey(prefix, cacheKey), value, 'PX', 10 * HOUR)
        await expect(made.get(cacheKey)).resolves.toBeUndefined()
        expect(errors.map((error) => [error.code, error.operation])).toEqual([[code, 'get']])
        expect(errors.every((error) => !error.message.includes('planted-token'))).toBe(true)
        // The expiry such a value claims is not trusted: a write replaces it.
        const mine = record()
        await expect(made.set(cacheKey, mine, { ttlMs: 60_000 })).resolves.toBe(true)
        await expect(made.get(cacheKey)).resolves.toMatchObject({
          tokenId: mine.tokenId,
          payload: mine.payload,
        })
        expect(made.circuit).toBe('closed')
      })
    }
  })

  for (const kind of ['ioredis', 'node-redis'] as const) {
    describe(`${kind}: a token key of another Redis type (WRONGTYPE)`, () => {
      const plant: [string, (key: string) => Promise<unknown>][] = [
        ['a hash', (key) => admin.hset(key, 'v', '1')],
        ['a list', (key) => admin.rpush(key, 'a')],
        ['a set', (key) => admin.sadd(key, 'a')],
        ['a sorted set', (key) => admin.zadd(key, 1, 'a')],
        ['a stream', (key) => admin.xadd(key, '*', 'f', 'v')],
      ]
      for (const [name, put] of plant) {
        it(`${name}: get is a miss (reported, the circuit stays closed), set replaces it, delete works`, async () => {
          const errors: RedisStoreError[] = []
          const prefix = `h-${randomUUID()}`
          const made = store({ client: await client(kind), prefix, errors })
          await put(tokenKey(prefix, 'k'))
          await put(tokenKey(prefix, 'k2'))
          // More reads than the breaker's threshold (3): a key of another type is not a dead Redis.
          for (let i = 0; i < 5; i++) await expect(made.get('k')).resolves.toBeUndefined()
          expect(made.circuit).toBe('closed')
          expect(errors.map((error) => [error.code, error.operation])).toEqual(
            Array.from({ length: 5 }, () => ['MALFORMED_RECORD', 'get']),
          )
          // Compare-and-delete leaves it (it is not that token); a delete of any token removes it.
          await expect(made.delete('k2', { tokenId: 'x' })).resolves.toBe(false)
          await expect(made.delete('k2')).resolves.toBe(true)
          expect(await admin.exists(tokenKey(prefix, 'k2'))).toBe(0)
          const mine = record()
          await expect(made.set('k', mine, { ttlMs: 60_000 })).resolves.toBe(true)
          await expect(made.get('k')).resolves.toMatchObject({ tokenId: mine.tokenId })
          expect(await admin.type(tokenKey(prefix, 'k'))).toBe('string')
          expect(made.circuit).toBe('closed')
        })
      }

      it('two managers share one token over a key planted as a hash (1 token request, no failed get)', async () => {
        const prefix = `h-${randomUUID()}`
        const scope = `wrongtype-${randomUUID()}`
        const before = tokenServer.stats().tokenRequests
        const managers = await Promise.all(
          [0, 1].map(async () => {
            const manager = new TokenManager({ store: store({ client: await client(kind), prefix }) })
            cleanups.push(() => manager.close())
            return manager
          }),
        )
        const probe = source(scope)
        await admin.hset(tokenKey(prefix, probe.key), 'v', '1')
        const first = await managers[0]!.get(probe)
        const second = await managers[1]!.get(source(scope))
        expect(second.value).toBe(first.value)
        expect(tokenServer.stats().tokenRequests - before).toBe(1)
      })
    })
  }

  for (const kind of ['ioredis', 'node-redis'] as const) {
    it(`${kind}: without scripts (ACL user lacking EVAL/EVALSHA) a key of another type is a miss and replaced too`, async () => {
      const prefix = `h-${randomUUID()}`
      const username = `u-${randomUUID()}`
      const password = randomBytes(12).toString('hex')
      await admin.call(
        'ACL',
        'SETUSER',
        username,
        'reset',
        'on',
        `>${password}`,
        `~${prefix}:*`,
        `&${prefix}:events`,
        ...['+get', '+set', '+del', '+pttl', '+pexpire', '+publish', '+subscribe', '+unsubscribe'],
        ...['+scan', '+unlink', '+ping', '+info', '+client', '+hello', '+auth'],
      )
      cleanups.push(async () => void (await admin.call('ACL', 'DELUSER', username)))
      let limited: Parameters<typeof redisStore>[0]['client']
      if (kind === 'ioredis') {
        limited = ioredis({ username, password })
      } else {
        const node = createClient({ url: server.url, username, password })
        node.on('error', () => {})
        await node.connect()
        cleanups.push(() => {
          if (node.isOpen) node.destroy()
        })
        limited = node
      }
      const errors: RedisStoreError[] = []
      const made = store({ client: limited, prefix, errors })
      await admin.hset(tokenKey(prefix, 'k'), 'v', '1')
      await admin.hset(tokenKey(prefix, 'k2'), 'v', '1')
      await expect(made.get('k')).resolves.toBeUndefined()
      const mine = record()
      await expect(made.set('k', mine, { ttlMs: 60_000 })).resolves.toBe(true)
      await expect(made.get('k')).resolves.toMatchObject({ tokenId: mine.tokenId })
      await expect(made.delete('k2', { tokenId: 'x' })).resolves.toBe(false)
      await expect(made.delete('k2')).resolves.toBe(true)
      const lockKey = tokenKey(prefix, 'k').replace(/:t$/, ':l')
      const held = await made.acquireLock('k', { ttlMs: 10_000 })
      await admin.del(lockKey)
      await admin.rpush(lockKey, 'x')
      await expect(held?.release()).resolves.toBeUndefined()
      expect(errors.map((error) => error.code)).toEqual(['MALFORMED_RECORD', 'SCRIPTS_FORBIDDEN'])
      expect(made.circuit).toBe('closed')
    })
  }

  it('an error reply to writes (OOM under maxmemory noeviction) fails the writes only: reads go on, the circuit stays closed', async () => {
    const errors: RedisStoreError[] = []
    const made = store({ client: ioredis(), errors })
    const kept = record()
    await made.set('kept', kept, { ttlMs: 60_000 })
    await admin.call('CONFIG', 'SET', 'maxmemory', '1')
    try {
      for (let i = 0; i < 5; i++) {
        const failure = await made.set(`k${i}`, record(), { ttlMs: 60_000 }).catch((error: unknown) => error)
        expect(isRedisStoreError(failure) && failure.code).toBe('REDIS_COMMAND_FAILED')
        expect(String((failure as Error).message)).toMatch(/OOM/)
      }
      const lock = await made.acquireLock('k0', { ttlMs: 1_000 }).catch((error: unknown) => error)
      expect(isRedisStoreError(lock) && lock.code).toBe('REDIS_COMMAND_FAILED')
      expect(made.circuit).toBe('closed')
      await expect(made.get('kept')).resolves.toMatchObject({ tokenId: kept.tokenId })
    } finally {
      await admin.call('CONFIG', 'SET', 'maxmemory', '0')
    }
    expect(errors.filter((error) => error.code === 'REDIS_UNAVAILABLE')).toEqual([])
  })

  it('a manager on an OOM Redis serves every get and adopts the token already stored', async () => {
    const prefix = `h-${randomUUID()}`
    const scope = `oom-${randomUUID()}`
    const writer = new TokenManager({ store: store({ client: ioredis(), prefix }) })
    cleanups.push(() => writer.close())
    const first = await writer.get(source(scope))
    await admin.call('CONFIG', 'SET', 'maxmemory', '1')
    try {
      const before = tokenServer.stats().tokenRequests
      const reader = new TokenManager({ store: store({ client: ioredis(), prefix }) })
      cleanups.push(() => reader.close())
      // Other keys' writes fail first (more than the breaker's threshold) ...
      for (let i = 0; i < 4; i++) await reader.get(source(`${scope}-${i}`))
      const requests = tokenServer.stats().tokenRequests - before
      // ... and the stored token is still read and adopted.
      const adopted = await reader.get(source(scope))
      expect(adopted.value).toBe(first.value)
      expect(tokenServer.stats().tokenRequests - before).toBe(requests)
    } finally {
      await admin.call('CONFIG', 'SET', 'maxmemory', '0')
    }
  })

  it('store.close() ends a command queued by a client that never connects (offline queue), at once', async () => {
    const clock = createTestClock()
    // A client in offline-queue mode: its server is down, it retries and queues every command.
    const offline = new Redis(1, '127.0.0.1', { retryStrategy: () => 20, maxRetriesPerRequest: null })
    offline.on('error', () => {})
    cleanups.push(() => offline.disconnect())
    const made = redisStore({ client: offline, encryption: false, clock, commandTimeoutMs: 60_000 })
    const pending = [
      made.get('k').catch((error: unknown) => error),
      made.set('k', record(), { ttlMs: 60_000 }).catch((error: unknown) => error),
      made.acquireLock('k', { ttlMs: 1_000 }).catch((error: unknown) => error),
      made.delete('k').catch((error: unknown) => error),
    ]
    await made.close()
    // The test clock never moves: only close() can end them.
    for (const outcome of await Promise.all(pending)) {
      expect(isRedisStoreError(outcome) && outcome.code).toBe('STORE_CLOSED')
    }
  })

  it('a client in offline-queue mode: each command ends at its deadline (test clock), and the client is not closed', async () => {
    const clock = createTestClock()
    const offline = new Redis(1, '127.0.0.1', { retryStrategy: () => 20, maxRetriesPerRequest: null })
    offline.on('error', () => {})
    cleanups.push(() => offline.disconnect())
    const made = redisStore({
      client: offline,
      encryption: false,
      clock,
      commandTimeoutMs: 800,
      circuitBreaker: false,
    })
    const pending = made.get('k').catch((error: unknown) => error)
    await clock.advanceAsync(799)
    const early = await Promise.race([pending, Promise.resolve('pending')])
    expect(early).toBe('pending')
    await clock.advanceAsync(1)
    const outcome = await pending
    expect(isRedisStoreError(outcome) && outcome.code).toBe('REDIS_TIMEOUT')
    await made.close()
    // The client is the user's: close() leaves it as it was (still trying to connect).
    expect(offline.status).not.toBe('end')
  })

  it('manager.close() while its store read is queued (offline queue, test clock): get and close end, nothing hangs', async () => {
    const clock = createTestClock()
    const offline = new Redis(1, '127.0.0.1', { retryStrategy: () => 20, maxRetriesPerRequest: null })
    offline.on('error', () => {})
    cleanups.push(() => offline.disconnect())
    const manager = new TokenManager({
      clock,
      store: redisStore({ client: offline, encryption: false, clock, commandTimeoutMs: 60_000 }),
    })
    const got = manager.get(source(`closing-${randomUUID()}`)).then(
      () => 'served',
      (error: unknown) => (error instanceof Error ? error.name : 'error'),
    )
    // Bounded: the read is queued in the client.
    await new Promise((resolve) => setImmediate(resolve))
    await manager.close()
    await expect(got).resolves.toBeTypeOf('string')
    expect(offline.status).not.toBe('end')
  })

  for (const kind of ['ioredis', 'node-redis'] as const) {
    it(`${kind}: a lock key of another Redis type: without expiry it is expired and taken (STALE_LOCK); with one it is left`, async () => {
      const errors: RedisStoreError[] = []
      const prefix = `h-${randomUUID()}`
      const made = store({ client: await client(kind), prefix, errors })
      const lockKey = tokenKey(prefix, 'k').replace(/:t$/, ':l')
      await admin.hset(lockKey, 'owner', 'someone')
      // The first try makes it expire (in 1 ms); a later one takes it (bounded polling of Redis).
      let lock = await made.acquireLock('k', { ttlMs: 10_000 })
      for (let i = 0; i < 100 && lock === undefined; i++)
        lock = await made.acquireLock('k', { ttlMs: 10_000 })
      expect(lock).toBeDefined()
      expect(errors.map((error) => error.code)).toEqual(['STALE_LOCK'])
      await lock?.release()
      expect(await admin.exists(lockKey)).toBe(0)
      await admin.hset(lockKey, 'owner', 'someone')
      await admin.pexpire(lockKey, 60_000)
      await expect(made.acquireLock('k', { ttlMs: 10_000 })).resolves.toBeUndefined()
      expect(await admin.type(lockKey)).toBe('hash')
      // A lock replaced by another type while held is not its owner's: release leaves it, no error.
      await admin.del(lockKey)
      const held = await made.acquireLock('k', { ttlMs: 10_000 })
      await admin.del(lockKey)
      await admin.rpush(lockKey, 'x')
      await expect(held?.release()).resolves.toBeUndefined()
      expect(await admin.type(lockKey)).toBe('list')
      expect(made.circuit).toBe('closed')
    })
  }

  it('node-redis with RESP3: round trip, write-if-newer, compare-and-delete and events', async () => {
    const resp3 = createClient({ url: server.url, RESP: 3 })
    resp3.on('error', () => {})
    await resp3.connect()
    cleanups.push(() => {
      if (resp3.isOpen) resp3.destroy()
    })
    const errors: RedisStoreError[] = []
    const prefix = `h-${randomUUID()}`
    const made = store({ client: resp3, prefix, errors })
    const writer = store({ client: ioredis(), prefix })
    const seen: StoreEvent[] = []
    made.subscribe((event) => seen.push(event))
    await Promise.all([made.ready(), writer.ready()])
    const later = record(undefined, 2 * HOUR)
    await expect(made.set('k', later, { ttlMs: 120_000 })).resolves.toBe(true)
    await expect(made.set('k', record(), { ttlMs: 60_000 })).resolves.toBe(false)
    const read = await made.get('k')
    expect(read).toMatchObject({ tokenId: later.tokenId })
    expect(read?.remainingMs).toBeGreaterThan(60_000)
    await expect(made.delete('k', { tokenId: 'other' })).resolves.toBe(false)
    await expect(made.delete('k', { tokenId: later.tokenId })).resolves.toBe(true)
    await writer.set('w', record(), { ttlMs: 60_000 })
    for (let i = 0; i < 200 && !seen.some((event) => event.type === 'set' && event.key === 'w'); i++)
      await new Promise((resolve) => setTimeout(resolve, 10))
    expect(seen.some((event) => event.type === 'set' && event.key === 'w')).toBe(true)
    await made.clear()
    expect(errors).toEqual([])
  })

  it('a client created with lazyConnect (not connected yet) works, pub/sub included', async () => {
    const lazy = ioredis({ lazyConnect: true })
    expect(lazy.status).toBe('wait')
    const made = store({ client: lazy })
    const mine = record()
    await expect(made.set('k', mine, { ttlMs: 60_000 })).resolves.toBe(true)
    await expect(made.get('k')).resolves.toMatchObject({ tokenId: mine.tokenId })
    await expect(made.ready()).resolves.toBeUndefined()
  })

  for (const kind of ['ioredis', 'node-redis'] as const) {
    it(`${kind}: a client already closed: store calls fail at once as store errors, a manager still serves`, async () => {
      const closed = await client(kind)
      if (closed instanceof Redis) {
        await closed.quit()
      } else {
        closed.destroy()
      }
      const errors: RedisStoreError[] = []
      const made = store({ client: closed, errors, circuitBreaker: false })
      const outcome = await made.get('k').catch((error: unknown) => error)
      expect(isRedisStoreError(outcome) && outcome.code).toBe('REDIS_COMMAND_FAILED')
      const manager = new TokenManager({ store: made })
      cleanups.push(() => manager.close())
      await expect(manager.get(source(`closed-${randomUUID()}`))).resolves.toBeInstanceOf(AccessToken)
    })
  }

  it("prefixes 'p' and 'p:' keep apart: records, clear() and events", async () => {
    const base = `x-${randomUUID()}`
    const short = store({ client: ioredis(), prefix: base })
    const long = store({ client: ioredis(), prefix: `${base}:` })
    const seenByLong: StoreEvent[] = []
    long.subscribe((event) => seenByLong.push(event))
    await Promise.all([short.ready(), long.ready()])
    const a = record()
    const b = record()
    await short.set('k', a, { ttlMs: 60_000 })
    await long.set('k', b, { ttlMs: 60_000 })
    await expect(short.get('k')).resolves.toMatchObject({ tokenId: a.tokenId })
    await expect(long.get('k')).resolves.toMatchObject({ tokenId: b.tokenId })
    await short.clear()
    await short.delete('k2')
    await expect(short.get('k')).resolves.toBeUndefined()
    await expect(long.get('k')).resolves.toMatchObject({ tokenId: b.tokenId })
    // Long's own set is delivered locally; nothing of short's reaches it (checked after a
    // round trip on long's own channel, which comes after short's messages).
    const marker = record()
    const echo = store({ client: ioredis(), prefix: `${base}:` })
    await echo.set('marker', marker, { ttlMs: 60_000 })
    for (
      let i = 0;
      i < 200 && !seenByLong.some((event) => event.type === 'set' && event.key === 'marker');
      i++
    )
      await new Promise((resolve) => setTimeout(resolve, 10))
    expect(seenByLong.map((event) => event.type)).toEqual(['set', 'set'])
  })

  it('cache keys with CR LF, spaces, NUL, non-ASCII and 64 KiB length round-trip and name themselves in events', async () => {
    const prefix = `h-${randomUUID()}`
    const made = store({ client: ioredis(), prefix })
    const listener = store({ client: await nodeRedis(), prefix })
    const seen: StoreEvent[] = []
    listener.subscribe((event) => seen.push(event))
    await Promise.all([made.ready(), listener.ready()])
    const keys = [
      'a\r\nSET x y\r\n',
      ' spaced key ',
      'nul\u0000byte',
      'ключ/キー/🔑',
      '\\"quoted\\"',
      'k'.repeat(65_536),
    ]
    for (const key of keys) {
      const mine = record()
      await made.set(key, mine, { ttlMs: 60_000 })
      await expect(listener.get(key)).resolves.toMatchObject({ tokenId: mine.tokenId })
      await made.delete(key, { tokenId: mine.tokenId })
      await expect(listener.get(key)).resolves.toBeUndefined()
    }
    for (let i = 0; i < 200 && seen.filter((event) => event.type === 'delete').length < keys.length; i++)
      await new Promise((resolve) => setTimeout(resolve, 10))
    expect(seen.filter((event) => event.type === 'delete').map((event) => event.key)).toEqual(keys)
    expect(seen.filter((event) => event.type === 'set').map((event) => event.key)).toEqual(keys)
    expect(await admin.exists('x')).toBe(0)
  })

  it('SCRIPT FLUSH between calls (NOSCRIPT): writes, deletes and lock releases go on, nothing reported', async () => {
    const errors: RedisStoreError[] = []
    const made = store({ client: ioredis(), errors })
    await made.set('k', record(), { ttlMs: 60_000 })
    await admin.call('SCRIPT', 'FLUSH')
    const newer = record(undefined, 2 * HOUR)
    await expect(made.set('k', newer, { ttlMs: 120_000 })).resolves.toBe(true)
    await admin.call('SCRIPT', 'FLUSH')
    await expect(made.delete('k', { tokenId: newer.tokenId })).resolves.toBe(true)
    const lock = await made.acquireLock('k', { ttlMs: 10_000 })
    await admin.call('SCRIPT', 'FLUSH')
    await lock?.release()
    await expect(made.acquireLock('k', { ttlMs: 10_000 })).resolves.toBeDefined()
    expect(errors).toEqual([])
  })

  for (const kind of ['ioredis', 'node-redis'] as const) {
    it(`${kind}: CLIENT KILL of the pub/sub connection: events come back by themselves`, async () => {
      const prefix = `h-${randomUUID()}`
      const listener = store({ client: await client(kind), prefix })
      const writer = store({ client: ioredis(), prefix })
      const seen: StoreEvent[] = []
      listener.subscribe((event) => seen.push(event))
      await listener.ready()
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
      // Bounded polling of real Redis state: writes go on until one reaches the listener.
      let delivered = false
      for (let i = 0; i < 300 && !delivered; i++) {
        await writer.set(`k${i}`, record(), { ttlMs: 60_000 })
        await new Promise((resolve) => setTimeout(resolve, 20))
        delivered = seen.some((event) => event.type === 'set')
      }
      expect(delivered).toBe(true)
    })
  }
})
