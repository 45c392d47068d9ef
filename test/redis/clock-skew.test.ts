/**
 * Processes whose clocks disagree, sharing one real Redis: the reader dates a shared token by
 * Redis' own countdown (PTTL), and write-if-newer compares remaining times, with the Lua scripts
 * and with the plain commands used when an ACL forbids scripts.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientCredentials, clientSecretBasic, TokenManager } from '../../src/index.js'
import { redisStore } from '../../src/stores/redis/index.js'
import type { StoreRecord } from '../../src/stores/types.js'
import { createTestClock, startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { redisSuite, requireRedis, startRedisServer, type RedisServer } from '../support/redis-server.js'

const HOUR = 3_600_000
const encryptionKeys = [{ id: 'k', key: randomBytes(32) }]

describe.skipIf(redisSuite() === 'skip')('redisStore with clocks that disagree', () => {
  let server: RedisServer
  let tokenServer: TokenServer
  let client: Redis
  let scriptless: Redis

  beforeAll(async () => {
    requireRedis()
    server = await startRedisServer()
    tokenServer = await startTokenServer({
      clients: [{ clientId: 'svc', clientSecret: 's3cret' }],
      tokenLifetimeMs: 300_000,
    })
    client = new Redis(server.port, '127.0.0.1')
    await client.call('ACL', 'SETUSER', 'noscripts', 'on', '>pw', '~*', '&*', '+@all', '-eval', '-evalsha')
    scriptless = new Redis({ port: server.port, host: '127.0.0.1', username: 'noscripts', password: 'pw' })
  })

  afterAll(async () => {
    scriptless?.disconnect()
    client?.disconnect()
    await tokenServer?.close()
    await server?.close()
  })

  it('a reader an hour behind dates the shared token by PTTL, not by the writer’s clock', async () => {
    const prefix = `skew-${randomUUID()}`
    const source = clientCredentials({
      tokenUrl: tokenServer.tokenUrl,
      clientId: 'svc',
      auth: clientSecretBasic('s3cret'),
    })
    const writerClock = createTestClock(Date.now())
    const readerClock = createTestClock(Date.now() - HOUR)
    const writer = new TokenManager({
      clock: writerClock,
      store: redisStore({ client, prefix, encryptionKeys }),
    })
    const reader = new TokenManager({
      clock: readerClock,
      store: redisStore({ client, prefix, encryptionKeys }),
    })
    try {
      const written = await writer.get(source)
      const adopted = await reader.get(source)
      expect(adopted.value).toBe(written.value)
      expect(reader.stats().storeHits).toBe(1)
      const left = adopted.expiresAt - readerClock.now()
      expect(left).toBeLessThanOrEqual(300_000)
      expect(left).toBeGreaterThan(290_000)
      expect(adopted.lifetimeMs).toBe(written.lifetimeMs)
    } finally {
      await writer.close()
      await reader.close()
    }
  })

  for (const [name, pick, reported] of [
    ['Lua scripts', () => client, []],
    ['plain commands (ACL without EVAL)', () => scriptless, ['SCRIPTS_FORBIDDEN']],
  ] as const) {
    it(`write-if-newer compares remaining time (${name})`, async () => {
      const codes: string[] = []
      const store = redisStore({
        client: pick(),
        prefix: `skew-${randomUUID()}`,
        encryptionKeys,
        onError: (error) => codes.push(error.code),
      })
      const record = (value: string, expiresAt: number): StoreRecord => ({
        tokenId: value,
        expiresAt,
        payload: value,
      })
      const now = Date.now()
      // Dated an hour late by a writer whose clock runs ahead, with one minute to live.
      await expect(store.set('k', record('ahead', now + HOUR + 60_000), { ttlMs: 60_000 })).resolves.toBe(
        true,
      )
      await expect(store.set('k', record('right', now + 600_000), { ttlMs: 600_000 })).resolves.toBe(true)
      await expect(store.get('k')).resolves.toMatchObject({ tokenId: 'right' })
      await expect(store.set('k', record('late', now + 5 * HOUR), { ttlMs: 1_000 })).resolves.toBe(false)
      const kept = await store.get('k')
      expect(kept?.tokenId).toBe('right')
      expect(kept?.remainingMs).toBeGreaterThan(590_000)
      expect([...new Set(codes)]).toEqual(reported)
      await store.close()
    })
  }
})
