import type { Clock, Timer } from '../../clock.js'
import type {
  Connection,
  IoredisSubscriberLike,
  NodeRedisSubscriberLike,
  RedisSubscriberLike,
} from './client.js'
import { describeClientError, RedisStoreError } from './errors.js'

/** One pub/sub connection in one of the two client dialects. */
interface Dialect {
  start(signal: AbortSignal): Promise<void>
  stop(): Promise<void>
}

/**
 * Resolves once an ioredis connection is ready. ioredis writes SUBSCRIBE straight away while
 * its handshake is still running (status 'connect'), which then fails its own ready check, so
 * the store subscribes only on a ready connection.
 */
function ioredisReady(sub: IoredisSubscriberLike, signal: AbortSignal): Promise<void> {
  if (sub.status === undefined || sub.status === 'ready') return Promise.resolve()
  if (sub.status === 'wait' && sub.connect !== undefined) return sub.connect().then(noop)
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error): void => {
      sub.removeListener('ready', ready)
      sub.removeListener('end', end)
      signal.removeEventListener('abort', aborted)
      if (error === undefined) resolve()
      else reject(error)
    }
    const ready = (): void => done()
    const end = (): void => done(new Error('connection closed'))
    const aborted = (): void => done(new Error('store closed'))
    sub.on('ready', ready)
    sub.on('end', end)
    signal.addEventListener('abort', aborted, { once: true })
  })
}

function ioredisDialect(
  sub: IoredisSubscriberLike,
  owned: boolean,
  channel: string,
  onMessage: (message: string) => void,
  onConnectionError: (error: unknown) => void,
  onReady: () => void,
): Dialect {
  const message = (from: string, text: string): void => {
    if (from === channel) onMessage(text)
  }
  let subscribed = false
  // ioredis re-subscribes after a reconnect (autoResubscribe); doing it again on 'ready' is
  // idempotent and also covers clients created with autoResubscribe: false.
  const ready = (): void => {
    onReady()
    if (subscribed) sub.subscribe(channel).catch(onConnectionError)
  }
  const error = (cause?: Error): void => onConnectionError(cause)
  sub.on('message', message)
  sub.on('ready', ready)
  if (owned) sub.on('error', error)
  return {
    start: async (signal) => {
      await ioredisReady(sub, signal)
      await sub.subscribe(channel)
      subscribed = true
    },
    stop: async () => {
      sub.removeListener('message', message)
      sub.removeListener('ready', ready)
      if (owned) {
        sub.disconnect()
        sub.removeListener('error', error)
      } else {
        await sub.unsubscribe(channel)
      }
    },
  }
}

function nodeRedisDialect(
  sub: NodeRedisSubscriberLike,
  owned: boolean,
  channel: string,
  onMessage: (message: string) => void,
  onConnectionError: (error: unknown) => void,
  onReady: () => void,
): Dialect {
  // node-redis re-subscribes by itself after a reconnect.
  const listener = (text: string | Buffer): void => onMessage(String(text))
  const error = (cause: Error): void => onConnectionError(cause)
  if (owned) sub.on('error', error)
  sub.on('ready', onReady)
  return {
    start: async () => {
      if (!sub.isOpen) await sub.connect()
      await sub.subscribe(channel, listener)
    },
    stop: async () => {
      sub.removeListener('ready', onReady)
      if (owned) {
        sub.destroy()
        sub.removeListener('error', error)
      } else if (sub.isOpen) {
        await sub.unsubscribe(channel, listener)
      }
    },
  }
}

/** Options of {@link Subscription}. */
export interface SubscriptionOptions {
  readonly connection: Connection
  readonly subscriber: RedisSubscriberLike | undefined
  readonly channel: string
  readonly clock: Clock
  readonly stopTimeoutMs: number
  readonly onMessage: (message: string) => void
  readonly onError: (error: RedisStoreError) => void
}

const RETRY_MIN_MS = 250
const RETRY_MAX_MS = 5_000

function noop(): void {}

/**
 * The store's one pub/sub subscription: created on first need, retried with backoff until it
 * succeeds, restored after reconnects by the client, and torn down by `close()`. Connection
 * errors are reported once per outage, not once per reconnect attempt.
 */
export class Subscription {
  readonly #options: SubscriptionOptions
  /** Made on the first attempt (a `duplicate()` that throws is retried, never thrown to the caller). */
  #dialect: Dialect | undefined
  readonly #ready: Promise<void>
  #resolveReady: () => void = noop
  #rejectReady: (error: Error) => void = noop
  #retryMs = RETRY_MIN_MS
  #timer: Timer | undefined
  #closed = false
  readonly #closing = new AbortController()
  #active = false
  #reported = false

  constructor(options: SubscriptionOptions) {
    this.#options = options
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    this.#ready.catch(noop)
    void this.#attempt()
  }

  #makeDialect(): Dialect {
    const options = this.#options
    // A node-redis Sentinel client subscribes through its own pub/sub connection: not the store's to close.
    const owned = options.subscriber === undefined && !options.connection.pubSubOnClient
    const sub = options.subscriber ?? options.connection.duplicate()
    const onConnectionError = (error: unknown): void => this.#connectionError(error)
    const onMessage = (message: string): void => {
      this.#reported = false
      options.onMessage(message)
    }
    const onReady = (): void => {
      this.#reported = false
    }
    const probe = sub as unknown as Record<string, unknown>
    const ioredis = typeof probe.call === 'function' || typeof probe.sendCommand !== 'function'
    return ioredis
      ? ioredisDialect(
          sub as IoredisSubscriberLike,
          owned,
          options.channel,
          onMessage,
          onConnectionError,
          onReady,
        )
      : nodeRedisDialect(
          sub as NodeRedisSubscriberLike,
          owned,
          options.channel,
          onMessage,
          onConnectionError,
          onReady,
        )
  }

  /** Resolves once the subscription is active; rejects if the store closes first. */
  ready(): Promise<void> {
    return this.#ready
  }

  async #attempt(): Promise<void> {
    this.#timer = undefined
    if (this.#closed) return
    try {
      this.#dialect ??= this.#makeDialect()
      await this.#dialect.start(this.#closing.signal)
    } catch (error) {
      if (this.#closed) return
      this.#connectionError(error)
      const delay = this.#retryMs
      this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2)
      this.#timer = this.#options.clock.setTimer(() => void this.#attempt(), delay)
      return
    }
    this.#active = true
    this.#reported = false
    this.#resolveReady()
  }

  #connectionError(error: unknown): void {
    if (this.#closed || this.#reported) return
    this.#reported = true
    const phase = this.#active ? 'connection lost' : 'could not subscribe'
    this.#options.onError(
      new RedisStoreError(
        'SUBSCRIBE_FAILED',
        'subscribe',
        `pub/sub ${phase} (${describeClientError(error)}); waiters poll until it is back`,
      ),
    )
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#closing.abort()
    this.#timer?.cancel()
    this.#rejectReady(new RedisStoreError('STORE_CLOSED', 'subscribe', 'the Redis store is closed'))
    let timer: Timer | undefined
    const timeout = new Promise<void>((resolve) => {
      timer = this.#options.clock.setTimer(resolve, this.#options.stopTimeoutMs)
    })
    try {
      await Promise.race([this.#dialect?.stop().catch(noop), timeout])
    } finally {
      timer?.cancel()
    }
  }
}
