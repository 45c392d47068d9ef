import { createHash, randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { systemClock, type Clock } from '../../clock.js'
import type {
  StoreDeleteOptions,
  StoreEvent,
  StoreLock,
  StoreLockOptions,
  StoreRecord,
  StoreSetOptions,
  TokenStore,
} from '../types.js'
import { CircuitBreaker, CommandRunner, type CircuitState } from './breaker.js'
import { adaptClient, replyString, type Connection } from './client.js'
import { importKeys, RecordCodec } from './codec.js'
import { isRedisStoreError, isWrongType, RedisStoreError, type RedisStoreOperation } from './errors.js'
import { encodeMessage, EventHub } from './messages.js'
import { checkOptions, type RedisStoreOptions } from './options.js'
import { deleteTokenKeys } from './clear.js'
import { DELETE_IF, RELEASE_LOCK, SET_IF_NEWER, type Script } from './scripts.js'
import { Subscription } from './subscription.js'
import * as plain from './fallback.js'

/**
 * The {@link TokenStore} returned by {@link redisStore}: the lock and change events implemented, plus
 * `ready()` and the circuit breaker's state.
 *
 * @example
 * ```ts
 * const store: RedisStore = redisStore({ client, encryptionKeys })
 * await store.ready() // pub/sub is up: other processes' writes and invalidations reach this one
 * ```
 */
export interface RedisStore extends TokenStore {
  acquireLock(key: string, options: StoreLockOptions): Promise<StoreLock | undefined>
  /** How often a manager waiting for another process's lock re-checks (`pollIntervalMs`, default 250). */
  readonly pollIntervalMs: number
  subscribe(listener: (event: StoreEvent) => void): () => void
  /** Unsubscribes and closes the pub/sub connection the store created. Never closes `client`. */
  close(): Promise<void>
  /** Resolves once the pub/sub subscription is active; rejects if the store is closed first. */
  ready(): Promise<void>
  /** The circuit breaker's state (`'closed'` when there is none). */
  readonly circuit: CircuitState
}

const DEFAULT_PREFIX = 'tokenkeeper'
/** After Redis refused scripts, how long the store uses plain commands before trying a script again. */
const SCRIPT_RETRY_MS = 60_000

type Fallback = (send: (args: readonly string[]) => Promise<unknown>) => Promise<unknown>

function noop(): void {}

/** What a `GET` of a key holding another Redis type (a hash, a list, ...) reads as: not a record. */
const WRONG_TYPE = Symbol('wrong type')

class RedisStoreImpl implements RedisStore {
  readonly #connection: Connection
  readonly #codec: RecordCodec
  readonly #prefix: string
  readonly #channel: string
  readonly #clock: Clock
  readonly #breaker: CircuitBreaker | undefined
  readonly #runner: CommandRunner
  readonly #options: RedisStoreOptions
  readonly #events: EventHub
  readonly pollIntervalMs: number
  /** Names this instance in its messages: it delivers its own events locally and skips their echo. */
  readonly #origin = randomBytes(9).toString('base64url')
  #subscription: Subscription | undefined
  #closed = false
  /** Until when (clock ms) scripts are known to be refused; 0: try them. */
  #scriptsRefusedUntil = 0

  constructor(options: RedisStoreOptions) {
    checkOptions(options)
    this.#options = options
    this.#connection = adaptClient(options.client)
    this.#codec = new RecordCodec(
      options.encryptionKeys === undefined ? undefined : importKeys(options.encryptionKeys),
    )
    this.#prefix = options.prefix ?? DEFAULT_PREFIX
    this.#channel = `${this.#prefix}:events`
    this.#clock = options.clock ?? systemClock
    const breaker = options.circuitBreaker
    this.#breaker =
      breaker === false
        ? undefined
        : new CircuitBreaker({
            failureThreshold: breaker?.failureThreshold ?? 3,
            cooldownMs: breaker?.cooldownMs ?? 1_000,
          })
    this.#runner = new CommandRunner({
      clock: this.#clock,
      timeoutMs: options.commandTimeoutMs ?? 500,
      breaker: this.#breaker,
      onOpen: (error) => this.#report(error),
    })
    this.#events = new EventHub(this.#origin, (error) => this.#report(error))
    this.pollIntervalMs = options.pollIntervalMs ?? 250
  }

  get circuit(): CircuitState {
    return this.#breaker?.state ?? 'closed'
  }

  /** `${prefix}:{hash}`: the hash tag puts a key's token and lock in one Redis Cluster slot. */
  #base(key: string): string {
    return `${this.#prefix}:{${createHash('sha256').update(key).digest('base64url').slice(0, 22)}}`
  }

  #report(error: RedisStoreError): void {
    try {
      this.#options.onError?.(error)
    } catch {
      // A throwing onError must not break the store.
    }
  }

  /**
   * Runs `script` (EVALSHA, then EVAL after a NOSCRIPT). When Redis refuses scripts (ACL NOPERM,
   * renamed command), runs `fallback` with plain commands instead, reports SCRIPTS_FORBIDDEN once,
   * and keeps using plain commands for a minute before trying a script again.
   */
  async #script(
    script: Script,
    keys: readonly string[],
    args: readonly string[],
    fallback: Fallback,
  ): Promise<unknown> {
    const route = keys[0]
    const send = plain.routed(this.#connection, route)
    if (this.#scriptsRefusedUntil > this.#clock.now()) return fallback(send)
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await this.#connection.send(['EVALSHA', script.sha, ...tail], route).catch((error: unknown) => {
        if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error
        return this.#connection.send(['EVAL', script.source, ...tail], route)
      })
    } catch (error) {
      if (!plain.scriptsRefused(error)) throw error
      if (this.#scriptsRefusedUntil === 0) {
        this.#report(
          new RedisStoreError(
            'SCRIPTS_FORBIDDEN',
            'event',
            'Redis refused EVALSHA/EVAL: the store uses plain commands (not atomic; grant +evalsha +eval, see docs/REDIS.md)',
          ),
        )
      }
      this.#scriptsRefusedUntil = this.#clock.now() + SCRIPT_RETRY_MS
      return fallback(send)
    }
  }

  #decode(key: string, reply: unknown, operation: RedisStoreOperation): StoreRecord | undefined {
    if (reply === WRONG_TYPE) {
      this.#report(
        new RedisStoreError(
          'MALFORMED_RECORD',
          operation,
          'a stored value is not a tokenkeeper record (the key holds another Redis type than a string)',
        ),
      )
      return undefined
    }
    const text = replyString(reply)
    if (text === undefined) return undefined
    try {
      return this.#codec.decode(key, text, operation)
    } catch (error) {
      if (isRedisStoreError(error)) this.#report(error)
      return undefined
    }
  }

  /** Whether `text` decodes to a record with this store's keys (quietly: no error reported). */
  #decodes(key: string, text: string): boolean {
    try {
      this.#codec.decode(key, text, 'set')
      return true
    } catch {
      return false
    }
  }

  /**
   * The record and its remaining time by Redis' own countdown (`PTTL`), which the manager trusts
   * over the writer's clock. PTTL is sent first on the same connection: if the key is replaced in
   * between, the time read is the older record's, which is shorter, never longer.
   */
  async get(key: string): Promise<StoreRecord | undefined> {
    const tokenKey = `${this.#base(key)}:t`
    const [ttl, reply] = await this.#runner.run('get', () =>
      Promise.all([
        this.#connection.send(['PTTL', tokenKey], tokenKey),
        this.#connection.send(['GET', tokenKey], tokenKey).catch((error: unknown) => {
          // Another type under the key (WRONGTYPE) is foreign data, as a foreign string is: a miss.
          if (isWrongType(error)) return WRONG_TYPE
          throw error
        }),
      ]),
    )
    const record = this.#decode(key, reply, 'get')
    const remainingMs = Number(ttl)
    // -1: no expiry (written by hand), -2: gone between the two commands; `expiresAt` it is.
    if (record === undefined || !Number.isFinite(remainingMs) || remainingMs < 0) return record
    // 0: expiring within this millisecond.
    return remainingMs === 0 ? undefined : { ...record, remainingMs }
  }

  async set(key: string, record: StoreRecord, options: StoreSetOptions): Promise<boolean> {
    if (!(options.ttlMs > 0) || !Number.isFinite(record.expiresAt)) return false
    const tokenKey = `${this.#base(key)}:t`
    const value = this.#codec.encode(key, record)
    const message = encodeMessage('set', this.#origin, key, record.tokenId)
    const px = String(Math.ceil(options.ttlMs))
    const args = [value, String(record.expiresAt), px, this.#channel, message]
    let reply = await this.#runner.run('set', () =>
      this.#script(SET_IF_NEWER, [tokenKey], args, (send) => plain.setIfNewer(send, [tokenKey], args)),
    )
    if (Number(reply) !== 1) {
      // Refused for a later expiry. If the stored value is one this store cannot decode, its
      // expiry proves nothing (it is not authenticated): replace exactly that value, or a
      // leftover of a key-rotation mistake would stop the fleet from sharing until it expires.
      const stored = replyString(
        await this.#runner.run('set', () => this.#connection.send(['GET', tokenKey], tokenKey)),
      )
      if (stored === undefined || this.#decodes(key, stored)) return false
      const replace = [...args, stored]
      reply = await this.#runner.run('set', () =>
        this.#script(SET_IF_NEWER, [tokenKey], replace, (send) =>
          plain.setIfNewer(send, [tokenKey], replace),
        ),
      )
      if (Number(reply) !== 1) return false
    }
    this.#events.emit({ type: 'set', key, tokenId: record.tokenId })
    return true
  }

  async delete(key: string, options?: StoreDeleteOptions): Promise<boolean> {
    const tokenKey = `${this.#base(key)}:t`
    const match = options?.tokenId === undefined ? '0' : `1${options.tokenId}`
    const args = [match, this.#channel, key, this.#origin]
    const reply = await this.#runner.run('delete', () =>
      this.#script(DELETE_IF, [tokenKey], args, (send) => plain.deleteIf(send, [tokenKey], args)),
    )
    const deleted = replyString(reply)
    // Published (and emitted here) even when Redis no longer holds that token (expired, evicted,
    // flushed, or already replaced): other processes may still have it in memory.
    this.#events.emit({
      type: 'delete',
      key,
      tokenId: deleted === undefined || deleted === '' ? options?.tokenId : deleted,
    })
    return deleted !== undefined
  }

  /** SCAN + UNLINK of this prefix's tokens on every master (locks are left to expire), then a clear event. */
  async clear(): Promise<void> {
    await deleteTokenKeys(this.#connection, this.#runner, this.#prefix)
    await this.#runner.run('clear', () =>
      this.#connection.send(['PUBLISH', this.#channel, encodeMessage('clear', this.#origin)]),
    )
    this.#events.emit({ type: 'clear' })
  }

  /**
   * `SET NX PX` with the lock's `PTTL` in the same round trip: a lock held without an expiry
   * (never one of this store's) is made to expire, and taken if it is gone by the next try.
   */
  async acquireLock(key: string, options: StoreLockOptions): Promise<StoreLock | undefined> {
    this.#subscribe()
    const lockKey = `${this.#base(key)}:l`
    const owner = randomBytes(16).toString('base64url')
    const ttlMs = Math.max(1, Math.ceil(options.ttlMs))
    const px = String(ttlMs)
    const take = (): Promise<[unknown, unknown]> =>
      this.#runner.run(
        'lock',
        () =>
          Promise.all([
            this.#connection.send(['SET', lockKey, owner, 'NX', 'PX', px], lockKey),
            this.#connection.send(['PTTL', lockKey], lockKey),
          ]),
        // Taken after we gave up on it: nobody will use it, so hand it back at once.
        {
          abandoned: ([late]) =>
            void (
              replyString(late) === 'OK' &&
              this.#release(key, owner, true, this.#clock.now() + ttlMs).catch(noop)
            ),
        },
      )
    let [reply, held] = await take()
    if (replyString(reply) !== 'OK' && Number(held) === -1 && (await this.#expireStaleLock(lockKey))) {
      ;[reply, held] = await take()
    }
    if (replyString(reply) !== 'OK') return undefined
    let released = false
    const expiresAt = this.#clock.now() + ttlMs
    return {
      release: async () => {
        if (released) return
        released = true
        await this.#release(key, owner, false, expiresAt)
      },
    }
  }

  /** `expiresAt`: when the lock expires by itself (clock ms, at the latest). */
  async #release(key: string, owner: string, bypassBreaker: boolean, expiresAt: number): Promise<void> {
    const lockKey = `${this.#base(key)}:l`
    const message = encodeMessage('unlock', this.#origin, key)
    const args = [owner, this.#channel, message]
    // Without scripts the owner check and the DEL are two commands: leave a lock that is about to
    // expire alone, so the DEL cannot hit another process's lock taken in between.
    const margin = 2 * (this.#options.commandTimeoutMs ?? 500)
    const fallback: Fallback = (send) =>
      this.#clock.now() + margin >= expiresAt ? Promise.resolve(0) : plain.releaseLock(send, [lockKey], args)
    const reply = await this.#runner.run(
      'unlock',
      () => this.#script(RELEASE_LOCK, [lockKey], args, fallback),
      { bypassBreaker },
    )
    if (Number(reply) === 1) this.#events.emit({ type: 'unlock', key })
  }

  /**
   * A lock without an expiry: this store always sets one (`SET NX PX`), so nobody is fetching
   * under it (a leftover of a manual `SET`, a `PERSIST`, another tool). Left alone it would make
   * every cold `get` wait out its deadline. Makes it expire now (`PEXPIRE ... NX`: only if it still
   * has no expiry) and reports STALE_LOCK. Whether it did.
   */
  async #expireStaleLock(lockKey: string): Promise<boolean> {
    const send = (args: readonly string[]) => this.#connection.send(args, lockKey)
    const reply = await this.#runner.run('lock', () =>
      send(['PEXPIRE', lockKey, '1', 'NX']).catch((error: unknown) => {
        // Redis before 7.0 has no NX option.
        if (!(error instanceof Error && /syntax|unsupported option|wrong number/i.test(error.message)))
          throw error
        return send(['PEXPIRE', lockKey, '1'])
      }),
    )
    if (Number(reply) !== 1) return false
    this.#report(
      new RedisStoreError(
        'STALE_LOCK',
        'lock',
        'a fetch lock without an expiry was found and set to expire (locks of this store always have one)',
      ),
    )
    return true
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#subscribe()
    return this.#events.subscribe(listener)
  }

  ready(): Promise<void> {
    if (this.#closed)
      return Promise.reject(new RedisStoreError('STORE_CLOSED', 'subscribe', 'the Redis store is closed'))
    this.#subscribe()
    return (
      this.#subscription?.ready() ??
      Promise.reject(new RedisStoreError('STORE_CLOSED', 'subscribe', 'the Redis store is closed'))
    )
  }

  #subscribe(): void {
    if (this.#subscription !== undefined || this.#closed) return
    this.#subscription = new Subscription({
      connection: this.#connection,
      subscriber: this.#options.subscriber,
      channel: this.#channel,
      clock: this.#clock,
      stopTimeoutMs: this.#options.commandTimeoutMs ?? 500,
      onMessage: (message) => this.#events.receive(message),
      onError: (error) => this.#report(error),
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#runner.close()
    this.#events.close()
    await this.#subscription?.close()
  }

  toJSON(): Record<string, unknown> {
    return {
      kind: 'redisStore',
      prefix: this.#prefix,
      encrypted: this.#codec.encrypted,
      circuit: this.circuit,
    }
  }

  [inspect.custom](): string {
    return `RedisStore ${inspect(this.toJSON())}`
  }
}

/**
 * A {@link TokenStore} in Redis that lets a fleet of processes share one token per key: values
 * are AES-256-GCM encrypted (the cache key as associated data), writes are write-if-newer and
 * deletes compare-and-delete (Lua), a per-key lock (`SET NX PX`, owner id) lets one process fetch
 * for all while the others wait on pub/sub, and every command has a timeout behind a circuit
 * breaker, so a slow or dead Redis turns into cache misses, never failed calls. Put it behind a
 * `TokenManager`, whose memory is the L1 in front of Redis: warm hits cost no round trip.
 *
 * Works with ioredis (`Redis`, `Cluster`) and node-redis (client, cluster); tokenkeeper depends
 * on neither. See `docs/REDIS.md`.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { TokenManager } from 'tokenkeeper'
 * import { redisStore } from 'tokenkeeper/redis'
 *
 * const client = new Redis(process.env.REDIS_URL!)
 * const tokens = new TokenManager({
 *   store: redisStore({
 *     client,
 *     prefix: 'tk',
 *     encryptionKeys: [{ id: '2026-11', key: process.env.TOKEN_CACHE_KEY! }], // 32 bytes, base64
 *   }),
 * })
 * // ...
 * await tokens.close() // closes the store's own pub/sub connection
 * client.disconnect() // the client stays yours
 * ```
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStoreImpl(options)
}
