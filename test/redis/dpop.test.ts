/**
 * DPoP-bound tokens with a shared Redis store: they are kept per process and never written to
 * or read from the store (docs/DPOP.md, docs/REDIS.md), so no process can take a bound token it
 * has no private key for. Two managers with their own connections to one real redis-server,
 * against a real token server on 127.0.0.1; bearer tokens on the same store are shared, so the
 * store demonstrably works.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AccessToken,
  clientCredentials,
  clientSecretBasic,
  dpopKey,
  generateDpopKey,
  serializeToken,
  TokenManager,
  tokenId,
  type DpopKey,
  type TokenSource,
} from '../../src/index.js'
import { redisStore, type RedisStore } from '../../src/stores/redis/index.js'
import { redisSuite, requireRedis, startRedisServer, type RedisServer } from '../support/redis-server.js'
import { startLocalServer, type LocalServer } from '../wire/local-server.js'

const ENCRYPTION_KEY = randomBytes(32)

describe.skipIf(redisSuite() === 'skip')('DPoP-bound tokens and redisStore', () => {
  let redis: RedisServer
  let admin: Redis
  let endpoint: LocalServer
  let prefix: string
  const closers: (() => Promise<unknown>)[] = []

  beforeAll(async () => {
    requireRedis()
    redis = await startRedisServer()
    admin = new Redis(redis.port, '127.0.0.1')
    endpoint = await startLocalServer()
    endpoint.route('/token', (req, res) => {
      const bound = req.headers['dpop'] !== undefined
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          access_token: `tok-${randomUUID()}`,
          token_type: bound ? 'DPoP' : 'Bearer',
          expires_in: 600,
        }),
      )
    })
  })

  afterAll(async () => {
    for (const close of closers.reverse()) await close()
    admin?.disconnect()
    await endpoint?.close()
    await redis?.close()
  })

  /** A manager of its own "process": its own Redis connection, the shared prefix and key. */
  function manager(): { tokens: TokenManager; store: RedisStore } {
    const client = new Redis(redis.port, '127.0.0.1')
    const store = redisStore({ client, prefix, encryptionKeys: [{ id: 'k1', key: ENCRYPTION_KEY }] })
    const tokens = new TokenManager({ store })
    closers.push(async () => {
      await tokens.close()
      client.disconnect()
    })
    return { tokens, store }
  }

  function source(dpop?: DpopKey): TokenSource {
    return clientCredentials({
      tokenUrl: `${endpoint.origin}/token`,
      clientId: 'svc',
      auth: clientSecretBasic('a-client-secret'),
      ...(dpop === undefined ? {} : { dpop }),
    })
  }

  async function tokenKeys(): Promise<string[]> {
    return (await admin.keys(`${prefix}:*`)).filter((key) => key.endsWith(':t'))
  }

  it('a bound token is never written to Redis; each process gets its own, bound to its key', async () => {
    prefix = `dpop-${randomUUID()}`
    // The same key pair in both processes (as when a fleet loads one key): the same cache key.
    const key = dpopKey(await generateDpopKey())
    const a = manager()
    const b = manager()
    const before = endpoint.hits('/token').length
    const ta = await a.tokens.get(source(key))
    expect(ta.type).toBe('DPoP')
    expect(await tokenKeys()).toEqual([])
    expect(await a.store.get(source(key).key)).toBeUndefined()
    const tb = await b.tokens.get(source(key))
    expect(tb.value).not.toBe(ta.value)
    expect(endpoint.hits('/token').length - before).toBe(2)
    expect(b.tokens.stats().storeHits).toBe(0)
    expect(await tokenKeys()).toEqual([])

    // The same store shares bearer tokens: the second process takes the first one's.
    const bearer = source()
    const pa = await a.tokens.get(bearer)
    const pb = await b.tokens.get(bearer)
    expect(pb.value).toBe(pa.value)
    expect(b.tokens.stats().storeHits).toBe(1)
    expect(await tokenKeys()).toHaveLength(1)
  })

  it('a bound token that is in Redis anyway (written by someone else) is never taken', async () => {
    prefix = `dpop-${randomUUID()}`
    const other = dpopKey(await generateDpopKey())
    const mine = dpopKey(await generateDpopKey())
    const { tokens, store } = manager()
    // Planted under both sources' keys: a token bound to another key, and one "bound" to mine.
    for (const s of [source(other), source(mine)]) {
      const now = Date.now()
      const planted = new AccessToken({
        value: `planted-${randomUUID()}`,
        type: 'DPoP',
        scopes: [],
        issuedAt: now,
        expiresAt: now + 600_000,
        binding: { method: 'dpop', jkt: other.thumbprint, bound: true },
      })
      const record = {
        tokenId: tokenId(planted),
        expiresAt: planted.expiresAt,
        payload: serializeToken(planted),
      }
      expect(await store.set(s.key, record, { ttlMs: 600_000 })).toBe(true)
    }
    expect(await tokenKeys()).toHaveLength(2)
    const got = await tokens.get(source(mine))
    expect(got.value.startsWith('tok-')).toBe(true)
    expect(got.binding).toEqual({ method: 'dpop', jkt: mine.thumbprint, bound: true })
    expect(tokens.stats().storeHits).toBe(0)
    expect(tokens.stats().fetches).toBe(1)
  })
})
