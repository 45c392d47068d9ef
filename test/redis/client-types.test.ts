import type { Cluster, Redis } from 'ioredis'
import type { createClient, createCluster, createSentinel } from 'redis'
import { describe, expectTypeOf, test } from 'vitest'
import type { RedisClientLike, RedisStoreOptions, RedisSubscriberLike } from '../../src/stores/redis/index.js'

// Compile-time: the real clients satisfy the structural client types (tsc checks this file).
describe('client types', () => {
  test('ioredis Redis and Cluster, node-redis client, cluster and Sentinel are accepted', () => {
    expectTypeOf<Redis>().toExtend<RedisClientLike>()
    expectTypeOf<Cluster>().toExtend<RedisClientLike>()
    expectTypeOf<ReturnType<typeof createClient>>().toExtend<RedisClientLike>()
    expectTypeOf<ReturnType<typeof createCluster>>().toExtend<RedisClientLike>()
    expectTypeOf<ReturnType<typeof createSentinel>>().toExtend<RedisClientLike>()
    expectTypeOf<Redis>().toExtend<RedisSubscriberLike>()
    expectTypeOf<ReturnType<typeof createClient>>().toExtend<RedisSubscriberLike>()
    expectTypeOf<{ client: Redis; encryption: false }>().toExtend<RedisStoreOptions>()
  })
})
