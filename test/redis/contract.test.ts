import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe } from 'vitest'
import { redisStore } from '../../src/stores/redis/index.js'
import { describeStoreContract } from '../stores/contract.js'
import { redisSuite, requireRedis, startRedisServer, type RedisServer } from '../support/redis-server.js'

const key = randomBytes(32)

describe.skipIf(redisSuite() === 'skip')('redisStore: the store contract', () => {
  let server: RedisServer

  beforeAll(async () => {
    requireRedis()
    server = await startRedisServer()
  })

  afterAll(async () => {
    await server?.close()
  })

  describeStoreContract('redisStore with ioredis', async () => {
    const client = new Redis(server.port, '127.0.0.1', { lazyConnect: true })
    await client.connect()
    const store = redisStore({
      client,
      prefix: `contract-${randomUUID()}`,
      encryptionKeys: [{ id: 'k1', key }],
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

  describeStoreContract('redisStore with node-redis', async () => {
    const client = createClient({ url: server.url })
    client.on('error', () => {})
    await client.connect()
    const store = redisStore({
      client,
      prefix: `contract-${randomUUID()}`,
      encryptionKeys: [{ id: 'k1', key }],
    })
    await store.ready()
    return {
      store,
      cleanup: async () => {
        await store.close()
        client.destroy()
      },
    }
  })

  describeStoreContract('redisStore unencrypted (encryption: false)', async () => {
    const client = new Redis(server.port, '127.0.0.1')
    const store = redisStore({ client, prefix: `contract-${randomUUID()}`, encryption: false })
    await store.ready()
    return {
      store,
      cleanup: async () => {
        await store.close()
        client.disconnect()
      },
    }
  })
})
