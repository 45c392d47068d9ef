/**
 * `tokenkeeper/redis`: share one token per key across a fleet of processes through Redis.
 * Works with an `ioredis` or node-redis (`redis`) client you create; tokenkeeper depends on
 * neither. See `docs/REDIS.md`.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import { TokenManager } from 'tokenkeeper'
 * import { redisStore } from 'tokenkeeper/redis'
 *
 * const client = await createClient({ url: process.env.REDIS_URL }).connect()
 * const tokens = new TokenManager({
 *   store: redisStore({ client, encryptionKeys: [{ id: 'k1', key: process.env.TOKEN_CACHE_KEY! }] }),
 * })
 * ```
 *
 * @packageDocumentation
 * @module tokenkeeper/redis
 */
export { redisStore, type RedisStore } from './store.js'
export type { RedisStoreOptions } from './options.js'
export type { EncryptionKey } from './codec.js'
export type { CircuitBreakerOptions, CircuitState } from './breaker.js'
export {
  isRedisStoreError,
  RedisStoreError,
  type RedisStoreErrorCode,
  type RedisStoreOperation,
} from './errors.js'
export type {
  IoredisLike,
  IoredisSubscriberLike,
  NodeRedisClusterLike,
  NodeRedisLike,
  NodeRedisSentinelLike,
  NodeRedisSubscriberLike,
  PubSubListenerLike,
  RedisClientLike,
  RedisSubscriberLike,
} from './client.js'
