import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { clientCredentials, clientSecretBasic, TokenManager, type StoreErrorEvent } from '../../src/index.js'
import type { StoreEvent } from '../../src/stores/types.js'
import { redisStore, type RedisStore, type RedisStoreError } from '../../src/stores/redis/index.js'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { redisSuite, requireRedis, startRedisServer, type RedisServer } from '../support/redis-server.js'
import { CircuitBreaker } from '../../src/stores/redis/breaker.js'

const encryptionKeys = [{ id: 'k', key: randomBytes(32) }]
const record = (id: string, expiresAt = Date.now() + 3_600_000) => ({
  tokenId: id,
  expiresAt,
  payload: `{"v":1}`,
})

describe('CircuitBreaker (pure)', () => {
  it('opens after the threshold, fails fast for the cool-down, lets one probe through, and closes on success', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1_000 })
    expect(breaker.admit(0)).toBe('pass')
    expect(breaker.failure(0, 'pass')).toBe(false)
    expect(breaker.failure(0, 'pass')).toBe(false)
    breaker.success() // a success resets the count
    expect(breaker.failure(10, 'pass')).toBe(false)
    expect(breaker.failure(10, 'pass')).toBe(false)
    expect(breaker.failure(10, 'pass')).toBe(true)
    expect(breaker.state).toBe('open')
    expect(breaker.admit(1_009)).toBe('reject')
    expect(breaker.admit(1_010)).toBe('probe')
    expect(breaker.state).toBe('half-open')
    expect(breaker.admit(1_010)).toBe('reject') // one probe at a time
    expect(breaker.failure(1_020, 'probe')).toBe(false) // re-opens quietly
    expect(breaker.admit(2_019)).toBe('reject')
    expect(breaker.admit(2_020)).toBe('probe')
    breaker.success()
    expect(breaker.state).toBe('closed')
    expect(breaker.admit(2_021)).toBe('pass')
  })
})

describe.skipIf(redisSuite() === 'skip')('redisStore when Redis is slow, down or restarted', () => {
  let server: RedisServer
  let tokenServer: TokenServer
  const cleanups: (() => Promise<void> | void)[] = []

  beforeAll(async () => {
    requireRedis()
    server = await startRedisServer()
    tokenServer = await startTokenServer({ clients: [{ clientId: 'svc', clientSecret: 's3cret' }] })
  })

  afterEach(async () => {
    if (!server.running) await server.restart()
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  afterAll(async () => {
    await tokenServer?.close()
    await server?.close()
  })

  function ioredis(): Redis {
    const client = new Redis(server.port, '127.0.0.1', { retryStrategy: () => 50 })
    client.on('error', () => {})
    cleanups.push(() => client.disconnect())
    return client
  }

  async function nodeRedis() {
    const client = createClient({ url: server.url, socket: { reconnectStrategy: () => 50 } })
    client.on('error', () => {})
    await client.connect()
    cleanups.push(() => client.destroy())
    return client
  }

  function store(
    client: Parameters<typeof redisStore>[0]['client'],
    prefix: string,
    errors?: RedisStoreError[],
    commandTimeoutMs = 1_000,
  ) {
    const made = redisStore({
      client,
      prefix,
      encryptionKeys,
      commandTimeoutMs,
      circuitBreaker: { failureThreshold: 3, cooldownMs: 300 },
      onError: (error) => errors?.push(error),
    })
    cleanups.push(() => made.close())
    return made
  }

  /** Makes the server answer nobody for `ms` (it stays up: commands queue, then run). */
  async function pause(ms: number): Promise<void> {
    const admin = ioredis()
    await admin.call('CLIENT', 'PAUSE', String(ms), 'ALL')
  }

  it('a slow Redis: each command times out, then the circuit opens and calls fail at once; it closes by itself', async () => {
    const errors: RedisStoreError[] = []
    const made = store(ioredis(), `slow-${randomUUID()}`, errors, 100)
    // Connected and scripts loaded first (a busy machine may need more than 100 ms for that).
    await expect.poll(() => made.set('k', record('a'), { ttlMs: 60_000 }).catch(() => false)).toBe(true)
    errors.length = 0
    await pause(2_000)
    for (let i = 0; i < 3; i++) {
      const started = Date.now()
      await expect(made.get('k')).rejects.toMatchObject({ code: 'REDIS_TIMEOUT', operation: 'get' })
      expect(Date.now() - started).toBeLessThan(1_000) // 100 ms, plus a busy machine's timer lag
    }
    expect(made.circuit).toBe('open')
    const started = performance.now()
    for (let i = 0; i < 100; i++)
      await expect(made.get('k')).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' })
    expect(performance.now() - started).toBeLessThan(250) // fail fast: no timer, no network
    expect(errors.filter((error) => error.code === 'REDIS_UNAVAILABLE')).toHaveLength(1)
    // After the pause and a cool-down, a probe succeeds and the circuit closes.
    await expect
      .poll(async () => (await made.get('k').catch(() => undefined))?.tokenId, {
        timeout: 5_000,
        interval: 50,
      })
      .toBe('a')
    expect(made.circuit).toBe('closed')
    for (const error of errors) expect(error.message).not.toContain('{"v":1}')
  })

  it('a lock taken after its command timed out is handed back when the late answer arrives', async () => {
    const admin = ioredis()
    const prefix = `late-${randomUUID()}`
    const made = store(ioredis(), prefix, undefined, 100)
    await made.ready()
    await expect
      .poll(() =>
        made.get('warm-up').then(
          () => true,
          () => false,
        ),
      )
      .toBe(true)
    await pause(400)
    await expect(made.acquireLock('k', { ttlMs: 60_000 })).rejects.toMatchObject({ code: 'REDIS_TIMEOUT' })
    // The SET NX runs once the pause ends; the store releases it at once instead of holding it for 60 s.
    await expect
      .poll(async () => (await admin.call('KEYS', `${prefix}:*`)) as string[], {
        timeout: 3_000,
        interval: 50,
      })
      .toEqual([])
    const other = store(ioredis(), prefix)
    const lock = await other.acquireLock('k', { ttlMs: 60_000 })
    expect(lock).toBeDefined()
    await lock!.release()
  })

  for (const kind of ['ioredis', 'node-redis'] as const) {
    it(`${kind}: pub/sub comes back after a Redis restart`, async () => {
      const prefix = `restart-${kind}-${randomUUID()}`
      const make = async () => store(kind === 'ioredis' ? ioredis() : await nodeRedis(), prefix)
      const listener = await make()
      const writer = await make()
      const events: StoreEvent[] = []
      listener.subscribe((event) => events.push(event))
      await listener.ready()
      await writer.set('before', record('one'), { ttlMs: 60_000 })
      await expect.poll(() => events.length).toBe(1)
      await server.restart()
      // Writes reach the listener again once both have reconnected (the data is gone: no persistence).
      await expect
        .poll(
          async () => {
            await writer.set(`after-${randomUUID()}`, record('two'), { ttlMs: 60_000 }).catch(() => false)
            return events.some((event) => event.type === 'set' && event.tokenId === 'two')
          },
          { timeout: 10_000, interval: 200 },
        )
        .toBe(true)
    })
  }

  it('a manager on a dead Redis: no get fails, tokens are fetched per process, and it recovers by itself', async () => {
    const source = (scope: string) =>
      clientCredentials({
        tokenUrl: tokenServer.tokenUrl,
        clientId: 'svc',
        auth: clientSecretBasic('s3cret'),
        scopes: [scope],
      })
    const made: RedisStore = store(ioredis(), `down-${randomUUID()}`)
    const manager = new TokenManager({ store: made })
    cleanups.push(() => manager.close())
    const storeErrors: StoreErrorEvent[] = []
    manager.on('storeError', (event) => storeErrors.push(event))
    const warm = source('warm')
    await manager.get(warm)
    await server.stop()
    const failures: unknown[] = []
    const startedAt = Date.now()
    // Cold keys (each a store miss → direct fetch), warm hits and invalidations, for a while.
    for (let round = 0; round < 20; round++) {
      const calls = [
        manager.get(warm),
        manager.get(source(`cold-${round}`)),
        manager.invalidate(source(`cold-${round - 1}`)),
      ]
      for (const result of await Promise.allSettled(calls))
        if (result.status === 'rejected') failures.push(result.reason)
    }
    expect(failures).toEqual([])
    expect(Date.now() - startedAt).toBeLessThan(5_000) // the breaker keeps a dead Redis cheap
    expect(storeErrors.length).toBeGreaterThan(0)
    for (const event of storeErrors) expect(event.message).not.toMatch(/s3cret/)
    await server.restart()
    // Coordination resumes: the store works again without any help.
    const probe = source('after-restart')
    await expect
      .poll(
        async () => {
          await manager.invalidate(probe)
          const token = await manager.get(probe)
          return (await made.get(probe.key).catch(() => undefined))?.expiresAt === token.expiresAt
        },
        { timeout: 10_000, interval: 200 },
      )
      .toBe(true)
    expect(made.circuit).toBe('closed')
  })

  it('close() during an outage returns promptly and leaves no pending work', async () => {
    const made = store(ioredis(), `close-${randomUUID()}`)
    await made.ready()
    await server.stop()
    const waiting = made.get('k').catch((error: unknown) => error)
    await made.close()
    const result = await waiting
    expect(result === undefined || (result as RedisStoreError).code !== undefined).toBe(true)
  })
})
