import type { Clock } from '../../clock.js'
import type { CircuitBreakerOptions } from './breaker.js'
import type { RedisClientLike, RedisSubscriberLike } from './client.js'
import type { EncryptionKey } from './codec.js'
import type { RedisStoreError } from './errors.js'

/**
 * Options of {@link redisStore}. Give `encryptionKeys`, or opt out of encryption explicitly
 * with `encryption: false`.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import type { RedisStoreOptions } from 'tokenkeeper/redis'
 * const options: RedisStoreOptions = {
 *   client: new Redis(process.env.REDIS_URL!),
 *   prefix: 'tk',
 *   encryptionKeys: [{ id: '2026-11', key: process.env.TOKEN_CACHE_KEY! }],
 *   onError: (error) => logger.warn({ code: error.code }, error.message),
 * }
 * ```
 */
export interface RedisStoreOptions {
  /**
   * A connected ioredis `Redis` / `Cluster` or node-redis client / cluster. The store sends raw
   * commands through it and never closes it. (ioredis `keyPrefix` is not supported: use `prefix`.)
   */
  readonly client: RedisClientLike
  /**
   * A connection for pub/sub, which needs one of its own. Default `client.duplicate()`, which the
   * store creates on first use (a subscription or a lock) and closes in `close()`. A given
   * subscriber is unsubscribed by `close()` but never closed.
   */
  readonly subscriber?: RedisSubscriberLike
  /** Prefix of every key and of the pub/sub channel (`${prefix}:events`). Default `'tokenkeeper'`. */
  readonly prefix?: string
  /**
   * AES-256-GCM keys: the first encrypts, any decrypts (by key id). Required unless
   * `encryption: false`. Rotate by adding the new key second everywhere, then moving it first,
   * then removing the old key once the longest token lifetime has passed.
   */
  readonly encryptionKeys?: readonly EncryptionKey[]
  /**
   * `false` stores tokens in Redis **unencrypted**.
   *
   * **Warning:** then anyone who can read Redis (a replica, a backup, an RDB/AOF file, `MONITOR`,
   * a support dump) can use your tokens until they expire. Use it only for local development.
   */
  readonly encryption?: false
  /** Each command fails (and the manager treats the call as a miss) after this long. Default 500 ms. */
  readonly commandTimeoutMs?: number
  /** The circuit breaker that makes a dead Redis cost nothing per call, or `false` for none. */
  readonly circuitBreaker?: CircuitBreakerOptions | false
  /**
   * How often a manager waiting for another process's lock on this store re-reads and tries the
   * lock again, as a fallback to pub/sub (a lost notification, the expired lock of a dead holder).
   * The store's `pollIntervalMs` field. Default 250 ms.
   */
  readonly pollIntervalMs?: number
  /**
   * Failures the manager cannot see: an undecryptable or malformed value (served as a miss),
   * pub/sub trouble, the circuit opening, a throwing listener. Messages hold no secret.
   */
  readonly onError?: (error: RedisStoreError) => void
  /** Time and timers. Default: the system clock. */
  readonly clock?: Clock
}

function checkNumber(name: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw new TypeError(`redisStore: ${name} must be a number from ${min} to ${max}`)
}

/** Checks options at construction; a mistake is a `TypeError` that shows no key material. */
export function checkOptions(options: RedisStoreOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('redisStore: options are required')
  const { prefix, encryption, encryptionKeys, subscriber, circuitBreaker, onError } = options
  if (prefix !== undefined && (typeof prefix !== 'string' || !/^[^\s{}*?[\]\\]{1,64}$/.test(prefix)))
    throw new TypeError(
      'redisStore: prefix must be 1-64 characters without whitespace, braces or glob characters',
    )
  if (encryption !== undefined && encryption !== false)
    throw new TypeError(
      'redisStore: encryption may only be false (encryption is on when encryptionKeys are given)',
    )
  if (encryption === false && encryptionKeys !== undefined)
    throw new TypeError('redisStore: give either encryptionKeys or encryption: false, not both')
  if (encryption === undefined && encryptionKeys === undefined)
    throw new TypeError(
      'redisStore: encryptionKeys are required (tokens are encrypted at rest); pass encryption: false to store them unencrypted',
    )
  if (subscriber !== undefined && (subscriber as unknown) === (options.client as unknown))
    throw new TypeError('redisStore: subscriber must be a separate connection from client')
  checkNumber('commandTimeoutMs', options.commandTimeoutMs, 1, 60_000)
  checkNumber('pollIntervalMs', options.pollIntervalMs, 5, 60_000)
  if (circuitBreaker !== undefined && circuitBreaker !== false) {
    const threshold = circuitBreaker.failureThreshold
    if (threshold !== undefined && (!Number.isInteger(threshold) || threshold < 1))
      throw new TypeError('redisStore: circuitBreaker.failureThreshold must be a positive integer')
    checkNumber('circuitBreaker.cooldownMs', circuitBreaker.cooldownMs, 0, 600_000)
  }
  if (onError !== undefined && typeof onError !== 'function')
    throw new TypeError('redisStore: onError must be a function')
}
