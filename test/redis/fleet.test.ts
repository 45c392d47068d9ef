/**
 * Many processes sharing one Redis: single-flight across the fleet at a cold start and at a
 * renewal, take-over after a lock holder is killed mid-fetch, and Redis going away under load.
 * Children run the built package: the test command builds first.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { redisSuite, requireRedis, startRedisServer, type RedisServer } from '../support/redis-server.js'
import { requireBuild, startFleet, stopFleet, type Member } from './fleet.js'

const FLEET = 8
const key = randomBytes(32).toString('base64')

interface BurstReply {
  readonly ids: string[]
  readonly failed: number
  readonly ms: number
}

describe.skipIf(redisSuite() === 'skip')('a fleet of processes sharing Redis', () => {
  const LOCK_TTL_MS = 3_000
  let redis: RedisServer
  let tokens: TokenServer
  let fleet: Member[] = []

  // One fleet for the whole file (starting processes is the slow part); every test uses its own scopes.
  beforeAll(async () => {
    requireRedis()
    requireBuild()
    redis = await startRedisServer()
    tokens = await startTokenServer({ clients: [{ clientId: 'fleet', clientSecret: 'fleet-secret' }] })
    fleet = await startFleet(FLEET, (index) => ({
      redisPort: redis.port,
      client: index % 2 === 0 ? 'ioredis' : 'node-redis',
      tokenUrl: tokens.tokenUrl,
      prefix: 'fleet',
      key,
      lockTtlMs: LOCK_TTL_MS,
    }))
  }, 60_000)

  afterEach(async () => {
    if (!redis.running) await redis.restart()
  })

  afterAll(async () => {
    await stopFleet(fleet)
    await tokens?.close()
    await redis?.close()
  })

  /** Token requests the fleet started for `scope` (each child reports before it sends one). */
  const fetches = (scope: string) =>
    fleet.reduce(
      (sum, member) => sum + member.events.filter((e) => e.type === 'fetching' && e.scope === scope).length,
      0,
    )

  it(`cold start: ${FLEET} processes x 500 concurrent gets -> exactly 1 token request (ioredis and node-redis mixed)`, async () => {
    const scope = `cold-${randomUUID()}`
    const before = tokens.stats().tokenRequests
    const replies = await Promise.all(
      fleet.map((member) => member.request<BurstReply>('burst', { scope, n: 500 })),
    )
    expect(replies.map((reply) => reply.failed)).toEqual(Array(FLEET).fill(0))
    expect(tokens.stats().tokenRequests - before).toBe(1)
    expect(fetches(scope)).toBe(1)
    expect(new Set(replies.flatMap((reply) => reply.ids)).size).toBe(1)
  })

  it('an invalidation in one process reaches every other process', async () => {
    const scope = `inv-${randomUUID()}`
    await Promise.all(fleet.map((member) => member.request('burst', { scope, n: 10 })))
    const [origin, ...others] = fleet
    const { at } = await origin!.request<{ removed: boolean; at: number }>('invalidate', { scope })

    await expect
      .poll(async () => {
        const peeks = await Promise.all(
          others.map((member) => member.request<{ tokenId: string | null }>('peek', { scope })),
        )
        return peeks.every((peek) => peek.tokenId === null)
      })
      .toBe(true)
    const reached = others.map(
      (member) =>
        member.events.find((event) => event.type === 'invalidated' && (event.at ?? 0) >= at)?.at ?? Infinity,
    )
    expect(Math.max(...reached) - at).toBeLessThan(2_000)
    // The next get across the fleet fetches once.
    await Promise.all(fleet.map((member) => member.request('burst', { scope, n: 20 })))
    expect(fetches(scope)).toBe(2)
  })

  it('one renewal cycle across the fleet -> 1 token request', async () => {
    // 4 s tokens: refresh point at 75-85 % (3.0-3.4 s, jittered per process), mandatory at 3.6 s.
    const short = await startTokenServer({
      clients: [{ clientId: 'fleet', clientSecret: 'fleet-secret' }],
      tokenLifetimeMs: 4_000,
    })
    try {
      const scope = `renew-${randomUUID()}`
      const tokenUrl = short.tokenUrl
      const first = await Promise.all(
        fleet.map((member) => member.request<BurstReply>('burst', { scope, n: 50, tokenUrl })),
      )
      expect(short.stats().tokenRequests).toBe(1)
      const untilMs = Date.now() + 7_000
      const renewed = await Promise.all(
        fleet.map((member) => member.request<BurstReply>('renew', { scope, untilMs, distinct: 2, tokenUrl })),
      )
      expect(renewed.map((reply) => reply.failed)).toEqual(Array(FLEET).fill(0))
      expect(short.stats().tokenRequests).toBe(2)
      // Every process moved from the first token to the same second one.
      const firstId = first[0]!.ids[0]
      for (const reply of renewed) expect(reply.ids).toEqual([firstId, expect.any(String)])
      expect(new Set(renewed.map((reply) => reply.ids[1])).size).toBe(1)
    } finally {
      await short.close()
    }
  })

  it('Redis stopped under load: zero failed gets; restarted: fleet single-flight works again', async () => {
    const scopes = ['a', 'b', 'c'].map((name) => `load-${name}-${randomUUID()}`)
    const load = Promise.all(
      fleet.map((member) =>
        member.request<{ ok: number; failed: number; errors: string[] }>('load', {
          scopes,
          durationMs: 3_000,
          concurrency: 10,
          invalidateEveryMs: 150,
        }),
      ),
    )
    await new Promise((resolve) => setTimeout(resolve, 700))
    await redis.stop()
    await new Promise((resolve) => setTimeout(resolve, 1_200))
    await redis.restart()
    const results = await load
    expect(results.map((result) => result.failed)).toEqual(Array(FLEET).fill(0))
    expect(results.every((result) => result.ok > 0)).toBe(true)
    // Every process reconnects and closes its circuit by itself ...
    const healthy = await Promise.all(
      fleet.map((member) => member.request<{ ok: boolean }>('healthy', { timeoutMs: 10_000 })),
    )
    expect(healthy.every((reply) => reply.ok)).toBe(true)
    // ... and the fleet fetches once again.
    const scope = `after-${randomUUID()}`
    const replies = await Promise.all(
      fleet.map((member) => member.request<BurstReply>('burst', { scope, n: 200 })),
    )
    expect(replies.map((reply) => reply.failed)).toEqual(Array(FLEET).fill(0))
    expect(fetches(scope)).toBe(1)
  })

  // Last: it kills a member of the shared fleet.
  it('kill -9 of the lock holder mid-fetch: another process takes over within the lock TTL', async () => {
    const scope = `kill-${randomUUID()}`
    const hold = tokens.hold()
    try {
      // The first process takes the lock and hangs in its token request.
      const [holder, ...others] = fleet
      void holder!.request('burst', { scope, n: 20 }).catch(() => {})
      await expect.poll(() => fetches(scope), { timeout: 5_000 }).toBe(1)
      // The others arrive 1 s into its fetch and wait for it. (The manager stops waiting lockTtlMs
      // after a caller arrived: arriving after the holder took the lock, they see it expire first.)
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      const waiting = others.map((member) => member.request<BurstReply>('burst', { scope, n: 50 }))
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(fetches(scope)).toBe(1)
      const killedAt = Date.now()
      await holder!.kill('SIGKILL')
      hold.release()
      const replies = await Promise.all(waiting)
      const tookOverMs = Date.now() - killedAt
      expect(replies.map((reply) => reply.failed)).toEqual(Array(FLEET - 1).fill(0))
      expect(new Set(replies.flatMap((reply) => reply.ids)).size).toBe(1)
      expect(tookOverMs).toBeLessThan(LOCK_TTL_MS) // the lock was ~1.3 s old when the holder died
      // One take-over request: the waiters saw the dead holder's lock expire, and one of them fetched.
      expect(fetches(scope)).toBe(2)
    } finally {
      hold.release()
    }
  })
})
