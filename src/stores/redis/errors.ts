import { TokenkeeperError } from '../../errors.js'

const BRAND = Symbol.for('tokenkeeper.redisStoreError')

/**
 * Every code a {@link RedisStoreError} can carry.
 *
 * @example
 * ```ts
 * import type { RedisStoreErrorCode } from 'tokenkeeper/redis'
 * const alerting: RedisStoreErrorCode[] = ['UNKNOWN_KEY_ID', 'DECRYPT_FAILED']
 * ```
 */
export type RedisStoreErrorCode =
  /** Redis did not answer within `commandTimeoutMs`. */
  | 'REDIS_TIMEOUT'
  /** The circuit breaker is open after repeated failures: the command was not sent. */
  | 'REDIS_UNAVAILABLE'
  /** Redis or the client rejected the command (connection lost, error reply, ...). */
  | 'REDIS_COMMAND_FAILED'
  /** The store was closed. */
  | 'STORE_CLOSED'
  /** A stored value names an encryption key id this store was not given. */
  | 'UNKNOWN_KEY_ID'
  /** A stored value failed authentication (tampered, moved to another key, or a wrong key). */
  | 'DECRYPT_FAILED'
  /** A stored value or pub/sub message is not in the store's format. */
  | 'MALFORMED_RECORD'
  /** An unencrypted value was found by a store that requires encryption. */
  | 'UNENCRYPTED_RECORD'
  /** The pub/sub subscription could not be set up (the store retries by itself). */
  | 'SUBSCRIBE_FAILED'
  /** A `subscribe` listener threw. */
  | 'LISTENER_FAILED'
  /**
   * Redis refused `EVALSHA`/`EVAL` (ACL `NOPERM`, or the command is renamed away): the store falls
   * back to plain commands (not atomic, see docs/REDIS.md) and tries scripts again a minute later.
   */
  | 'SCRIPTS_FORBIDDEN'
  /** A fetch lock without an expiry was found (never written by this store): it was set to expire at once. */
  | 'STALE_LOCK'

/**
 * What the store was doing when a {@link RedisStoreError} happened.
 *
 * @example
 * ```ts
 * const onError = (error: RedisStoreError) => metrics.increment(`redis_store.${error.operation}.${error.code}`)
 * ```
 */
export type RedisStoreOperation =
  'get' | 'set' | 'delete' | 'clear' | 'lock' | 'unlock' | 'subscribe' | 'event'

/** The codes where trying again later can succeed: Redis was slow, down or briefly unreachable. */
const RETRYABLE: ReadonlySet<RedisStoreErrorCode> = new Set([
  'REDIS_TIMEOUT',
  'REDIS_UNAVAILABLE',
  'REDIS_COMMAND_FAILED',
  'SUBSCRIBE_FAILED',
])

/**
 * A failure of the Redis store. Its message names the operation and what went wrong; it never
 * holds a token, a stored value, an encryption key or the client's own error object (whose
 * command arguments would carry stored values).
 *
 * It is a `TokenkeeperError` (so `isTokenkeeperError` is true for it, across package copies),
 * `retryable` for `REDIS_TIMEOUT`, `REDIS_UNAVAILABLE`, `REDIS_COMMAND_FAILED` and
 * `SUBSCRIBE_FAILED`.
 *
 * @example
 * ```ts
 * import { redisStore, isRedisStoreError } from 'tokenkeeper/redis'
 * const store = redisStore({
 *   client,
 *   encryptionKeys,
 *   onError: (error) => {
 *     if (error.code === 'UNKNOWN_KEY_ID') metrics.increment('tokens.undecryptable')
 *   },
 * })
 * ```
 */
export class RedisStoreError extends TokenkeeperError<RedisStoreErrorCode> {
  /** What the store was doing. */
  readonly operation: RedisStoreOperation

  constructor(code: RedisStoreErrorCode, operation: RedisStoreOperation, message: string) {
    super(code, message, { retryable: RETRYABLE.has(code) })
    this.name = 'RedisStoreError'
    this.operation = operation
    Object.defineProperty(this, BRAND, { value: true, enumerable: false })
  }
}

/**
 * Whether `value` is a {@link RedisStoreError}, also across duplicate copies of the package.
 *
 * @example
 * ```ts
 * import { isRedisStoreError } from 'tokenkeeper/redis'
 * try {
 *   await store.get(key)
 * } catch (error) {
 *   if (isRedisStoreError(error) && error.code === 'REDIS_UNAVAILABLE') fallBack()
 * }
 * ```
 */
export function isRedisStoreError(value: unknown): value is RedisStoreError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true
}

/**
 * Whether `error` is an error reply of Redis itself (`WRONGTYPE ...`, `OOM ...`, `READONLY ...`,
 * `NOPERM ...`): Redis answered, so it is up, unlike a timeout or a lost connection. Redis starts
 * every error reply with an upper-case code; ioredis and node-redis pass it on as the message.
 */
export function isErrorReply(error: unknown): boolean {
  return error instanceof Error && /^[A-Z][A-Z0-9_-]* /.test(error.message)
}

/** Whether `error` is Redis' `WRONGTYPE` reply: the key holds another type than a string. */
export function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE')
}

/**
 * The message of a client error, reduced to one short line. Client error objects are never
 * chained as `cause`: ioredis attaches the command and its arguments (a stored value) to them.
 */
export function describeClientError(error: unknown): string {
  const text = error instanceof Error ? error.message : 'non-error rejection'
  const line = text.split('\n', 1)[0] ?? ''
  return line.length > 160 ? `${line.slice(0, 160)}...` : line
}
