/**
 * Redis behind Sentinel: a primary, a replica and three sentinels on loopback, a fleet of
 * processes (ioredis with `sentinels` + `name`, node-redis `createSentinel`) getting tokens under
 * load while the primary is killed (SIGKILL) and the sentinels promote the replica. No `get` may
 * fail or see an expired token, and sharing and invalidation must work again on the new primary.
 * Children run the built package: the test command builds first.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { createSentinel } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientCredentials, clientSecretBasic, TokenManager, type StoreErrorEvent } from '../../src/index.js'
import { redisStore } from '../../src/stores/redis/index.js'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { describeStoreContract } from '../stores/contract.js'
import { redisSuite, requireRedis, startSentinelSetup, type SentinelSetup } from '../support/redis-server.js'
import { requireBuild, startFleet, stopFleet, type Member } from './fleet.js'

const FLEET = 4
/** Short tokens, so that renewals (75-90 % of the lifetime) fall before, during and after the failover. */
const TOKEN_LIFETIME_MS = 3_000
const key = randomBytes(32).toString('base64')

type NodeRedisSentinel = ReturnType<typeof createSentinel>

interface LoadReply {
  readonly ok: number
  readonly failed: number
  readonly errors: string[]
  /** token value -> when it was last served (epoch ms) */
  readonly served: Record<string, number>
  readonly storeErrorsAt: [number, number] | null
  readonly storeErrorCount: number
}

interface BurstReply {
  readonly ids: string[]
  readonly failed: number
  readonly stats: { readonly storeHits: number; readonly fetches: number }
}

describe.skipIf(redisSuite('sentinel') === 'skip')('redisStore behind Redis Sentinel', () => {
  let setup: SentinelSetup
  /** Issues short tokens (the load under failover); `longTokens` 1-hour ones (sharing and invalidation checks). */
  let tokens: TokenServer
  let longTokens: TokenServer
  let fleet: Member[] = []
  /** One node-redis Sentinel client shared by many stores (a store never closes its client). */
  let nodeRedis: NodeRedisSentinel
  const clientOf = (index: number) => (index % 2 === 0 ? 'ioredis' : 'node-redis')

  beforeAll(async () => {
    requireRedis('sentinel')
    requireBuild()
    setup = await startSentinelSetup({ downAfterMs: 500, failoverTimeoutMs: 3_000 })
    tokens = await startTokenServer({
      clients: [{ clientId: 'fleet', clientSecret: 'fleet-secret' }],
      tokenLifetimeMs: TOKEN_LIFETIME_MS,
    })
    longTokens = await startTokenServer({
      clients: [{ clientId: 'fleet', clientSecret: 'fleet-secret' }],
      tokenLifetimeMs: 3_600_000,
    })
    nodeRedis = createSentinel({ name: setup.name, sentinelRootNodes: [...setup.sentinels] })
    nodeRedis.on('error', () => {})
    await nodeRedis.connect()
    fleet = await startFleet(FLEET, (index) => ({
      sentinels: setup.sentinels,
      sentinelName: setup.name,
      client: clientOf(index),
      tokenUrl: tokens.tokenUrl,
      prefix: 'sentinel',
      key,
      lockTtlMs: 3_000,
    }))
  }, 60_000)

  afterAll(async () => {
    await stopFleet(fleet)
    await nodeRedis?.destroy()
    await tokens?.close()
    await longTokens?.close()
    await setup?.close()
  })

  const ioredis = async (): Promise<Redis> => {
    const client = new Redis({ sentinels: [...setup.sentinels], name: setup.name, lazyConnect: true })
    client.on('error', () => {})
    await client.connect()
    return client
  }

  describeStoreContract('redisStore with ioredis (sentinels + name)', async () => {
    const client = await ioredis()
    const store = redisStore({
      client,
      prefix: `contract-${randomUUID()}`,
      encryptionKeys: [{ id: 'k', key }],
    })
    await store.ready()
    return {
      store,
      cleanup: async () => {
        await store.close()
        client.disconnect()
      },
    }
  })

  describeStoreContract('redisStore with a node-redis Sentinel client (createSentinel)', async () => {
    const store = redisStore({
      client: nodeRedis,
      prefix: `contract-${randomUUID()}`,
      encryptionKeys: [{ id: 'k', key }],
    })
    await store.ready()
    return { store, cleanup: () => store.close() }
  })

  it("node-redis Sentinel: the store subscribes on the client's own pub/sub connection, and close() unsubscribes without closing the client", async () => {
    const prefix = `own-${randomUUID()}`
    const channel = `${prefix}:events`
    const subscribers = async () => {
      const primary = new Redis(await setup.primaryPort(), '127.0.0.1')
      try {
        const [, count] = (await primary.call('PUBSUB', 'NUMSUB', channel)) as [string, number]
        return count
      } finally {
        primary.disconnect()
      }
    }
    const store = redisStore({ client: nodeRedis, prefix, encryptionKeys: [{ id: 'k', key }] })
    await store.ready()
    expect(await subscribers()).toBe(1)
    await store.close()
    expect(await subscribers()).toBe(0)
    expect(nodeRedis.isOpen).toBe(true)
    expect(await nodeRedis.sendCommand(false, ['PING'])).toBe('PONG')
  })

  /** Token requests the fleet started for `scope` (each child reports before it sends one). */
  const fetches = (scope: string) =>
    fleet.reduce(
      (sum, member) => sum + member.events.filter((e) => e.type === 'fetching' && e.scope === scope).length,
      0,
    )

  /** One process fetches and writes; every other one reads that token from the store. */
  async function expectSharing(): Promise<void> {
    const scope = `share-${randomUUID()}`
    const tokenUrl = longTokens.tokenUrl
    const [writer, ...readers] = fleet
    const first = await writer!.request<BurstReply>('burst', { scope, n: 5, tokenUrl })
    expect(first.failed).toBe(0)
    expect(fetches(scope)).toBe(1)
    const hitsBefore = await Promise.all(
      readers.map((member) => member.request<BurstReply>('redisInfo').then((info) => info.stats.storeHits)),
    )
    const read = await Promise.all(
      readers.map((member) => member.request<BurstReply>('burst', { scope, n: 5, tokenUrl })),
    )
    expect(read.map((reply) => reply.failed)).toEqual(Array(FLEET - 1).fill(0))
    // No other process fetched: each adopted the writer's token from Redis (a store hit).
    expect(fetches(scope)).toBe(1)
    for (const reply of read) expect(reply.ids).toEqual(first.ids)
    expect(read.map((reply, index) => reply.stats.storeHits - hitsBefore[index]!)).toEqual(
      Array(FLEET - 1).fill(1),
    )
  }

  /**
   * An invalidation in one process makes every other one drop the token: 1-hour tokens, so only
   * the notification through pub/sub on the primary can make them go.
   */
  async function expectInvalidation(): Promise<void> {
    const scope = `inv-${randomUUID()}`
    const tokenUrl = longTokens.tokenUrl
    await Promise.all(fleet.map((member) => member.request('burst', { scope, n: 5, tokenUrl })))
    expect(fetches(scope)).toBe(1)
    const [origin, ...others] = fleet
    await origin!.request('invalidate', { scope, tokenUrl })
    await expect
      .poll(
        async () => {
          const peeks = await Promise.all(
            others.map((member) => member.request<{ tokenId: string | null }>('peek', { scope, tokenUrl })),
          )
          return peeks.map((peek) => peek.tokenId)
        },
        { timeout: 5_000, interval: 50 },
      )
      .toEqual(Array(FLEET - 1).fill(null))
    // And the fleet fetches once again.
    await Promise.all(fleet.map((member) => member.request('burst', { scope, n: 5, tokenUrl })))
    expect(fetches(scope)).toBe(2)
  }

  it('shares and invalidates through the primary the sentinels name (ioredis and node-redis mixed)', async () => {
    expect(await setup.primaryPort()).toBe(setup.primary.port)
    await expectSharing()
    await expectInvalidation()
  })

  it('a store whose client reaches a replica (or a demoted primary) gets READONLY on writes: store errors, every get served', async () => {
    const client = new Redis(setup.replica.port, '127.0.0.1')
    client.on('error', () => {})
    const manager = new TokenManager({
      store: redisStore({ client, prefix: `ro-${randomUUID()}`, encryptionKeys: [{ id: 'k', key }] }),
    })
    const storeErrors: StoreErrorEvent[] = []
    manager.on('storeError', (event) => storeErrors.push(event))
    try {
      const source = clientCredentials({
        tokenUrl: longTokens.tokenUrl,
        clientId: 'fleet',
        auth: clientSecretBasic('fleet-secret'),
        scopes: [`ro-${randomUUID()}`],
      })
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => manager.get(source)))
      expect(results.filter((result) => result.status === 'rejected')).toEqual([])
      expect(manager.stats().fetches).toBe(1)
      expect(storeErrors.length).toBeGreaterThan(0)
      expect(storeErrors.some((event) => event.message.includes('READONLY'))).toBe(true)
      expect(storeErrors.every((event) => event.operation !== 'get')).toBe(true) // reads work on a replica
    } finally {
      await manager.close()
      client.disconnect()
    }
  })

  /**
   * 4 processes x 10 loops of gets (3 scopes, 3 s tokens, an invalidation every 400 ms per
   * process) for `LOAD_MS`; `fault` runs 1.5 s in; then the sentinels must name `newPrimary`.
   * Asserts 0 failed gets and 0 expired tokens served, every process healthy again, sharing and
   * invalidation on the new primary; prints the figures (docs/REDIS.md quotes them).
   */
  async function failoverUnderLoad(label: string, fault: () => Promise<void>, newPrimary: number) {
    const LOAD_MS = 5_000
    const scopes = ['a', 'b', 'c'].map((name) => `load-${name}-${randomUUID()}`)
    const tokenRequestsBefore = tokens.stats().tokenRequests
    const load = Promise.all(
      fleet.map((member) =>
        member.request<LoadReply>(
          'load',
          { scopes, durationMs: LOAD_MS, concurrency: 10, invalidateEveryMs: 400 },
          LOAD_MS + 20_000,
        ),
      ),
    )
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    const faultAt = Date.now()
    await fault()
    // The sentinels promote the replica (bounded wait).
    await setup.waitForPrimary(newPrimary, 20_000)
    const promotedAt = Date.now()
    const results = await load

    // Every process was served throughout ...
    expect(results.map((result) => result.failed)).toEqual(Array(FLEET).fill(0))
    expect(results.map((result) => result.errors)).toEqual(Array(FLEET).fill([]))
    expect(results.every((result) => result.ok > 0)).toBe(true)
    // ... never an expired token (by the token server's own record of each token's expiry) ...
    let expired = 0
    let servedTokens = 0
    for (const result of results) {
      for (const [value, lastServedAt] of Object.entries(result.served)) {
        servedTokens++
        const info = tokens.introspect(value)
        expect(info).toBeDefined()
        if (lastServedAt >= info!.expiresAt) expired++
      }
    }
    expect(expired).toBe(0)

    // Every process finds the new primary and closes its circuit by itself ...
    const healthy = await Promise.all(
      fleet.map((member) => member.request<{ ok: boolean }>('healthy', { timeoutMs: 15_000 }, 20_000)),
    )
    expect(healthy.map((reply) => reply.ok)).toEqual(Array(FLEET).fill(true))
    // ... and sharing and invalidation work again, on the new primary.
    expect(await setup.primaryPort()).toBe(newPrimary)
    await expectSharing()
    await expectInvalidation()

    const errorsAt = results.flatMap((result) => result.storeErrorsAt ?? [])
    console.info(
      JSON.stringify({
        [label]: {
          processes: fleet.map((_, index) => clientOf(index)),
          gets: results.reduce((sum, result) => sum + result.ok, 0),
          failedGets: results.reduce((sum, result) => sum + result.failed, 0),
          servedTokens,
          expiredServed: expired,
          storeErrors: results.map((result) => result.storeErrorCount),
          tokenRequests: tokens.stats().tokenRequests - tokenRequestsBefore,
          promotedMsAfterFault: promotedAt - faultAt,
          storeErrorsMsAfterFault:
            errorsAt.length === 0 ? null : [Math.min(...errorsAt) - faultAt, Math.max(...errorsAt) - faultAt],
        },
      }),
    )
    return results
  }

  it('primary killed (SIGKILL) under load from 4 processes: the replica is promoted; 0 failed gets, 0 expired tokens; sharing and invalidation work again', async () => {
    const results = await failoverUnderLoad('crash', () => setup.primary.stop('SIGKILL'), setup.replica.port)
    // The store did fail meanwhile: the failover happened under the fleet's feet.
    expect(results.some((result) => result.storeErrorCount > 0)).toBe(true)
  }, 60_000)

  // After the crash: the old primary comes back as a replica, and an operator switches back to it.
  it('switchover (SENTINEL FAILOVER) back to the restarted old primary under load: 0 failed gets, 0 expired tokens; sharing and invalidation work again', async () => {
    await setup.rejoin(setup.primary)
    await failoverUnderLoad('switchover', () => setup.switchover(), setup.primary.port)
  }, 60_000)
})
