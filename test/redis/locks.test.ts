import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { clientCredentials, clientSecretBasic, TokenManager } from '../../src/index.js'
import type { TokenStore } from '../../src/stores/types.js'
import { redisStore, type RedisStoreError } from '../../src/stores/redis/index.js'
import { scriptsRefused } from '../../src/stores/redis/fallback.js'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { redisSuite, requireRedis, startRedisServer, type RedisServer } from '../support/redis-server.js'

const encryptionKeys = [{ id: 'k', key: randomBytes(32) }]

/** The lock key the store uses for `cacheKey` (see docs/REDIS.md, "Keys"). */
function lockKey(prefix: string, cacheKey: string): string {
  return `${prefix}:{${createHash('sha256').update(cacheKey).digest('base64url').slice(0, 22)}}:l`
}

describe('scriptsRefused', () => {
  it('recognises an ACL refusal and a renamed command, not a failing script', () => {
    expect(scriptsRefused(new Error("NOPERM User tk has no permissions to run the 'evalsha' command"))).toBe(
      true,
    )
    expect(scriptsRefused(new Error("NOPERM User tk has no permissions to run the 'eval' command"))).toBe(
      true,
    )
    expect(scriptsRefused(new Error("ERR unknown command 'EVALSHA', with args beginning with: 'abc'"))).toBe(
      true,
    )
    expect(scriptsRefused(new Error("NOPERM User tk has no permissions to run the 'publish' command"))).toBe(
      false,
    )
    expect(scriptsRefused(new Error('ERR Error running script (call to f_1): @user_script:1: oops'))).toBe(
      false,
    )
    expect(scriptsRefused(new Error('NOSCRIPT No matching script'))).toBe(false)
  })
})

describe.skipIf(redisSuite() === 'skip')('redisStore locks that cannot be released or never expire', () => {
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

  /** An ACL user on `prefix` with exactly `commands` (e.g. '+get'). */
  async function aclUser(
    prefix: string,
    commands: readonly string[],
  ): Promise<{ username: string; password: string }> {
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
      ...commands,
    )
    return { username, password }
  }

  const PLAIN = [
    '+get',
    '+set',
    '+del',
    '+pttl',
    '+pexpire',
    '+publish',
    '+subscribe',
    '+unsubscribe',
    '+scan',
    '+unlink',
  ]
  const CONNECT = ['+ping', '+info', '+client', '+hello', '+auth']

  async function client(kind: 'ioredis' | 'node-redis', user: { username: string; password: string }) {
    if (kind === 'ioredis') {
      const io = new Redis(server.port, '127.0.0.1', { username: user.username, password: user.password })
      io.on('error', () => {})
      cleanups.push(() => io.disconnect())
      return io
    }
    const node = createClient({ url: server.url, username: user.username, password: user.password })
    node.on('error', () => {})
    await node.connect()
    cleanups.push(() => node.destroy())
    return node
  }

  function source(scope: string) {
    return clientCredentials({
      tokenUrl: tokenServer.tokenUrl,
      clientId: 'svc',
      auth: clientSecretBasic('s3cret'),
      scopes: [scope],
    })
  }

  for (const kind of ['ioredis', 'node-redis'] as const) {
    it(`${kind}: an ACL user without EVAL/EVALSHA still shares, releases its lock and invalidates (plain commands, one report)`, async () => {
      const prefix = `acl-${randomUUID()}`
      const user = await aclUser(prefix, [...PLAIN, ...CONNECT])
      const errors: RedisStoreError[] = []
      const make = async () => {
        const store = redisStore({
          client: await client(kind, user),
          prefix,
          encryptionKeys,
          onError: (e) => errors.push(e),
        })
        const manager = new TokenManager({ store, lockTtlMs: 600_000 })
        cleanups.push(() => manager.close())
        return { store, manager }
      }
      const a = await make()
      const b = await make()
      await a.store.ready()
      await b.store.ready()
      const scope = `s-${randomUUID()}`
      const before = tokenServer.stats().tokenRequests
      const first = await a.manager.get(source(scope))
      // Released, not left to its 10-minute TTL.
      expect(await admin.call('KEYS', `${prefix}:*:l`)).toEqual([])
      expect(await admin.call('KEYS', `${prefix}:*:t`)).toHaveLength(1)
      // Another process adopts it: one token request for both.
      const second = await b.manager.get(source(scope))
      expect(second.value).toBe(first.value)
      expect(tokenServer.stats().tokenRequests - before).toBe(1)
      // Invalidation without scripts: the record goes, b fetches once more.
      const invalidated = new Promise<void>((resolve) => {
        const stop = b.store.subscribe((event) => {
          if (event.type === 'delete') {
            stop()
            resolve()
          }
        })
      })
      await a.manager.invalidate(source(scope), { token: first })
      await invalidated
      expect(await admin.call('KEYS', `${prefix}:*:t`)).toEqual([])
      const third = await b.manager.get(source(scope))
      expect(third.value).not.toBe(first.value)
      expect(tokenServer.stats().tokenRequests - before).toBe(2)
      expect(await admin.call('KEYS', `${prefix}:*:l`)).toEqual([])
      // Each store says once that it runs without scripts; nothing failed, the circuit stays closed.
      expect(errors.map((error) => error.code)).toEqual(['SCRIPTS_FORBIDDEN', 'SCRIPTS_FORBIDDEN'])
      expect(a.store.circuit).toBe('closed')
      expect(b.store.circuit).toBe('closed')
    }, 20_000)

    it(`${kind}: the documented ACL (docs/REDIS.md) is enough for the scripts: no fallback, no error`, async () => {
      const prefix = `acl-full-${randomUUID()}`
      const user = await aclUser(prefix, [...PLAIN, '+evalsha', '+eval', ...CONNECT])
      const errors: RedisStoreError[] = []
      const store = redisStore({
        client: await client(kind, user),
        prefix,
        encryptionKeys,
        onError: (e) => errors.push(e),
      })
      const manager = new TokenManager({ store, lockTtlMs: 600_000 })
      cleanups.push(() => manager.close())
      await store.ready()
      const token = await manager.get(source(`s-${randomUUID()}`))
      await manager.invalidate(source(`x-${randomUUID()}`), { token })
      expect(await admin.call('KEYS', `${prefix}:*:l`)).toEqual([])
      await store.clear()
      expect(errors).toEqual([])
    }, 20_000)
  }

  it('a lock planted without a TTL is expired by the first waiter, which then fetches (no wait for the deadline)', async () => {
    const prefix = `stale-${randomUUID()}`
    const errors: RedisStoreError[] = []
    const inner = redisStore({
      client: admin.duplicate(),
      prefix,
      encryptionKeys,
      onError: (e) => errors.push(e),
    })
    // Plants the lock for the cache key the manager asks for, right before its first read.
    let planted = false
    const store: TokenStore = {
      get: async (key) => {
        if (!planted) {
          planted = true
          await admin.call('SET', lockKey(prefix, key), 'left-over')
        }
        return inner.get(key)
      },
      set: (key, record, options) => inner.set(key, record, options),
      delete: (key, options) => inner.delete(key, options),
      clear: () => inner.clear(),
      acquireLock: (key, options) => inner.acquireLock(key, options),
      subscribe: (listener) => inner.subscribe(listener),
      close: () => inner.close(),
    }
    // A 10-minute lock TTL: waiting for the deadline would time the test out.
    const manager = new TokenManager({ store, lockTtlMs: 600_000 })
    cleanups.push(() => manager.close())
    cleanups.push(() => inner.close())
    await inner.ready()
    const scope = `s-${randomUUID()}`
    const before = tokenServer.stats().tokenRequests
    const tokens = await Promise.all(Array.from({ length: 20 }, () => manager.get(source(scope))))
    expect(planted).toBe(true)
    expect(tokens).toHaveLength(20)
    expect(errors.filter((error) => error.code === 'STALE_LOCK')).toHaveLength(1)
    expect(tokenServer.stats().tokenRequests - before).toBe(1)
    expect(new Set(tokens.map((token) => token.value)).size).toBe(1)
    expect(await admin.call('KEYS', `${prefix}:*:l`)).toEqual([])
  }, 10_000)

  it('acquireLock expires a lock without expiry and takes it; a lock with an expiry is never touched', async () => {
    const prefix = `stale-store-${randomUUID()}`
    const errors: RedisStoreError[] = []
    const store = redisStore({
      client: admin.duplicate(),
      prefix,
      encryptionKeys,
      onError: (e) => errors.push(e),
    })
    cleanups.push(() => store.close())
    await store.ready()
    await admin.call('SET', lockKey(prefix, 'k'), 'left-over')
    // The first try finds it, makes it expire, and (once it is gone) the next try takes it.
    let lock = await store.acquireLock('k', { ttlMs: 600_000 })
    for (let i = 0; i < 100 && lock === undefined; i++)
      lock = await store.acquireLock('k', { ttlMs: 600_000 })
    expect(lock).toBeDefined()
    expect(errors.map((error) => error.code)).toEqual(['STALE_LOCK'])
    expect(Number(await admin.call('PTTL', lockKey(prefix, 'k')))).toBeGreaterThan(0)
    // A lock that has an expiry is never touched.
    await admin.call('SET', lockKey(prefix, 'other'), 'someone', 'PX', '600000')
    await expect(store.acquireLock('other', { ttlMs: 600_000 })).resolves.toBeUndefined()
    expect(await admin.call('GET', lockKey(prefix, 'other'))).toBe('someone')
    expect(errors.map((error) => error.code)).toEqual(['STALE_LOCK'])
    await lock?.release()
  }, 10_000)
})
