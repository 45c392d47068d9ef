/**
 * A 3-master Redis Cluster on loopback: the store contract with ioredis `Cluster` and node-redis
 * `createCluster`, clear across every master, and a fleet fetching once through the cluster.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { Cluster } from 'ioredis'
import { createCluster } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from '../../src/stores/redis/index.js'
import { startTokenServer } from '../../src/testing/index.js'
import { describeStoreContract } from '../stores/contract.js'
import { redisSuite, requireRedis, startRedisCluster, type RedisCluster } from '../support/redis-server.js'
import { requireBuild, startFleet, stopFleet } from './fleet.js'

const key = randomBytes(32)

describe.skipIf(redisSuite() === 'skip')('redisStore on a 3-master Redis Cluster', () => {
  let cluster: RedisCluster

  beforeAll(async () => {
    requireRedis()
    cluster = await startRedisCluster(3)
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  async function ioredisCluster(): Promise<Cluster> {
    const client = new Cluster([...cluster.nodes], { lazyConnect: true })
    client.on('error', () => {})
    await client.connect()
    return client
  }

  async function nodeRedisCluster() {
    const client = createCluster({
      rootNodes: cluster.nodes.map((node) => ({ url: `redis://${node.host}:${node.port}` })),
    })
    client.on('error', () => {})
    await client.connect()
    return client
  }

  describeStoreContract('redisStore with an ioredis Cluster', async () => {
    const client = await ioredisCluster()
    const store = redisStore({ client, prefix: `cl-${randomUUID()}`, encryptionKeys: [{ id: 'k', key }] })
    await store.ready()
    return {
      store,
      cleanup: async () => {
        await store.close()
        client.disconnect()
      },
    }
  })

  describeStoreContract('redisStore with a node-redis cluster', async () => {
    const client = await nodeRedisCluster()
    const store = redisStore({ client, prefix: `cl-${randomUUID()}`, encryptionKeys: [{ id: 'k', key }] })
    await store.ready()
    return {
      store,
      cleanup: async () => {
        await store.close()
        client.destroy()
      },
    }
  })

  it('spreads keys over the masters and clear() removes them from every master', async () => {
    const client = await ioredisCluster()
    const prefix = `spread-${randomUUID()}`
    const store = redisStore({ client, prefix, encryptionKeys: [{ id: 'k', key }] })
    try {
      const expiresAt = Date.now() + 60_000
      for (let i = 0; i < 30; i++)
        await store.set(`key-${i}`, { tokenId: `id-${i}`, expiresAt, payload: '{}' }, { ttlMs: 60_000 })
      const perMaster = await Promise.all(
        client
          .nodes('master')
          .map(async (node) => ((await node.call('KEYS', `${prefix}:*`)) as string[]).length),
      )
      expect(perMaster.reduce((a, b) => a + b, 0)).toBe(30)
      expect(perMaster.filter((count) => count > 0).length).toBeGreaterThanOrEqual(2)
      await store.clear()
      const after = await Promise.all(
        client
          .nodes('master')
          .map(async (node) => ((await node.call('KEYS', `${prefix}:*`)) as string[]).length),
      )
      expect(after).toEqual([0, 0, 0])
    } finally {
      await store.close()
      client.disconnect()
    }
  })

  it('a fleet of 4 processes x 200 cold gets through the cluster -> 1 token request', async () => {
    requireBuild()
    const tokens = await startTokenServer({ clients: [{ clientId: 'fleet', clientSecret: 'fleet-secret' }] })
    const prefix = `fleet-${randomUUID()}`
    const fleet = await startFleet(4, () => ({
      cluster: cluster.nodes,
      tokenUrl: tokens.tokenUrl,
      prefix,
      key: key.toString('base64'),
    }))
    try {
      const scope = `cluster-${randomUUID()}`
      const replies = await Promise.all(
        fleet.map((member) => member.request<{ ids: string[]; failed: number }>('burst', { scope, n: 200 })),
      )
      expect(replies.map((reply) => reply.failed)).toEqual([0, 0, 0, 0])
      expect(new Set(replies.flatMap((reply) => reply.ids)).size).toBe(1)
      expect(tokens.stats().tokenRequests).toBe(1)
    } finally {
      await stopFleet(fleet)
      await tokens.close()
    }
  }, 60_000)
})
