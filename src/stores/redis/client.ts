/**
 * The few parts of a Redis client the store uses, as structural types that an `ioredis`
 * `Redis` / `Cluster` and a node-redis (`redis` package, v4/v5) client / cluster / v5 Sentinel all satisfy,
 * and adapters that turn each into one raw command sender. tokenkeeper imports neither library.
 */

type Args = (string | number)[]

/**
 * The part of an ioredis `Redis` or `Cluster` the store uses (`call` sends a raw command).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import type { IoredisLike } from 'tokenkeeper/redis'
 * const client: IoredisLike = new Redis('redis://127.0.0.1:6379')
 * ```
 */
export interface IoredisLike {
  call(command: string, ...args: Args): Promise<unknown>
  duplicate(): IoredisSubscriberLike
  readonly isCluster?: boolean
  /** ioredis `Cluster` only. */
  nodes?(role: 'master'): readonly { call(command: string, ...args: Args): Promise<unknown> }[]
}

/**
 * The part of an ioredis connection used for pub/sub.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import type { IoredisSubscriberLike } from 'tokenkeeper/redis'
 * const subscriber: IoredisSubscriberLike = new Redis('redis://127.0.0.1:6379')
 * ```
 */
export interface IoredisSubscriberLike {
  /** ioredis connection status (`'ready'`, `'connecting'`, `'wait'`, `'end'`, ...). */
  readonly status?: string
  connect?(): Promise<unknown>
  subscribe(...channels: string[]): Promise<unknown>
  unsubscribe(...channels: string[]): Promise<unknown>
  on(event: 'message', listener: (channel: string, message: string) => void): unknown
  on(event: 'error' | 'ready' | 'end', listener: (error?: Error) => void): unknown
  removeListener(event: 'message', listener: (channel: string, message: string) => void): unknown
  removeListener(event: 'error' | 'ready' | 'end', listener: (error?: Error) => void): unknown
  disconnect(): void
}

/**
 * The part of a node-redis client (`createClient()`) the store uses.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import type { NodeRedisLike } from 'tokenkeeper/redis'
 * const client: NodeRedisLike = await createClient({ url: 'redis://127.0.0.1:6379' }).connect()
 * ```
 */
export interface NodeRedisLike {
  sendCommand(args: string[]): Promise<unknown>
  duplicate(): NodeRedisSubscriberLike
}

/**
 * The part of a node-redis cluster (`createCluster()`) the store uses.
 *
 * @example
 * ```ts
 * import { createCluster } from 'redis'
 * import type { NodeRedisClusterLike } from 'tokenkeeper/redis'
 * const cluster: NodeRedisClusterLike = await createCluster({ rootNodes: [{ url }] }).connect()
 * ```
 */
export interface NodeRedisClusterLike {
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>
  duplicate(): NodeRedisSubscriberLike
  readonly masters: readonly object[]
  nodeClient(node: object): Promise<{ sendCommand(args: string[]): Promise<unknown> }>
}

/**
 * The part of a node-redis Sentinel client (`createSentinel()`, redis v5) the store uses. It has
 * no `duplicate()`: its own pub/sub connection follows the primary through failovers, so the
 * store subscribes through it (and, the client being yours, only unsubscribes in `close()`).
 *
 * @example
 * ```ts
 * import { createSentinel } from 'redis'
 * import type { NodeRedisSentinelLike } from 'tokenkeeper/redis'
 * const client: NodeRedisSentinelLike = await createSentinel({
 *   name: 'mymaster',
 *   sentinelRootNodes: [{ host: '10.0.0.1', port: 26379 }],
 * }).connect()
 * ```
 */
export interface NodeRedisSentinelLike extends NodeRedisSubscriberLike {
  sendCommand(isReadonly: boolean | undefined, args: string[]): Promise<unknown>
  getMasterNode(): unknown
  getSentinelNode(): unknown
}

/** A node-redis pub/sub listener (strings, or Buffers in buffer mode). */
type PubSubListenerLike = (message: string | Buffer, channel: string | Buffer) => unknown

/**
 * The part of a node-redis client or cluster used for pub/sub.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import type { NodeRedisSubscriberLike } from 'tokenkeeper/redis'
 * const subscriber: NodeRedisSubscriberLike = createClient({ url: 'redis://127.0.0.1:6379' })
 * ```
 */
export interface NodeRedisSubscriberLike {
  readonly isOpen: boolean
  connect(): Promise<unknown>
  subscribe(channel: string, listener: PubSubListenerLike): Promise<unknown>
  unsubscribe(channel: string, listener: PubSubListenerLike): Promise<unknown>
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'ready', listener: () => void): unknown
  removeListener(event: 'error', listener: (error: Error) => void): unknown
  removeListener(event: 'ready', listener: () => void): unknown
  destroy(): void
}

/**
 * A client the Redis store accepts: ioredis `Redis` (also with `sentinels`) or `Cluster`,
 * node-redis client, cluster or Sentinel client.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import type { RedisClientLike } from 'tokenkeeper/redis'
 * const client: RedisClientLike = new Redis()
 * ```
 */
export type RedisClientLike = IoredisLike | NodeRedisLike | NodeRedisClusterLike | NodeRedisSentinelLike

/**
 * A dedicated pub/sub connection the Redis store may be given.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import type { RedisSubscriberLike } from 'tokenkeeper/redis'
 * const subscriber: RedisSubscriberLike = new Redis()
 * ```
 */
export type RedisSubscriberLike = IoredisSubscriberLike | NodeRedisSubscriberLike

/** One Redis node (or the whole deployment) as a raw command sender. */
export interface CommandSender {
  send(args: readonly string[], routeKey?: string): Promise<unknown>
}

/** A client, adapted. */
export interface Connection extends CommandSender {
  readonly kind: 'ioredis' | 'node-redis'
  readonly cluster: boolean
  /** Every master, for commands that must visit each (SCAN). A standalone server is its own master. */
  masters(): Promise<readonly CommandSender[]>
  /** The pub/sub connection the store makes for itself (closed by the store) ... */
  duplicate(): RedisSubscriberLike
  /** ... unless pub/sub runs on the client itself (node-redis Sentinel): then it is only unsubscribed. */
  readonly pubSubOnClient: boolean
}

function isFunction(value: unknown): value is (...args: never[]) => unknown {
  return typeof value === 'function'
}

/** Adapts `client`; throws a `TypeError` when it is neither ioredis nor node-redis. */
export function adaptClient(client: RedisClientLike): Connection {
  const probe = client as unknown as Record<string, unknown>
  if (typeof client !== 'object' || client === null)
    throw new TypeError('redisStore: client must be an ioredis or node-redis client (or cluster)')
  if (
    isFunction(probe.sendCommand) &&
    isFunction(probe.getMasterNode) &&
    isFunction(probe.getSentinelNode) &&
    isFunction(probe.subscribe)
  ) {
    const sentinel = client as NodeRedisSentinelLike
    // Every command goes to the primary (isReadonly false): a replica may lag behind a write.
    const sender: CommandSender = { send: (args) => sentinel.sendCommand(false, [...args]) }
    return {
      kind: 'node-redis',
      cluster: false,
      send: (args) => sender.send(args),
      masters: () => Promise.resolve([sender]),
      duplicate: () => sentinel,
      pubSubOnClient: true,
    }
  }
  if (!isFunction(probe.duplicate))
    throw new TypeError('redisStore: client must be an ioredis or node-redis client (or cluster)')
  if (isFunction(probe.call)) {
    const io = client as IoredisLike
    const options = probe.options as
      { keyPrefix?: unknown; redisOptions?: { keyPrefix?: unknown } } | undefined
    const keyPrefix = options?.keyPrefix ?? options?.redisOptions?.keyPrefix
    if (typeof keyPrefix === 'string' && keyPrefix !== '')
      throw new TypeError("redisStore: ioredis keyPrefix is not supported; use the store's prefix option")
    const cluster = io.isCluster === true && isFunction(probe.nodes)
    const send = (
      node: { call(command: string, ...args: Args): Promise<unknown> },
      args: readonly string[],
    ) => {
      const [command, ...rest] = args
      return node.call(command as string, ...rest)
    }
    return {
      kind: 'ioredis',
      cluster,
      send: (args) => send(io, args),
      masters: () => {
        if (!cluster || io.nodes === undefined) return Promise.resolve([{ send: (args) => send(io, args) }])
        return Promise.resolve(io.nodes('master').map((node) => ({ send: (args) => send(node, args) })))
      },
      duplicate: () => io.duplicate(),
      pubSubOnClient: false,
    }
  }
  if (!isFunction(probe.sendCommand))
    throw new TypeError('redisStore: client must be an ioredis or node-redis client (or cluster)')
  if (isFunction(probe.nodeClient) && Array.isArray(probe.masters)) {
    const nodeCluster = client as NodeRedisClusterLike
    return {
      kind: 'node-redis',
      cluster: true,
      send: (args, routeKey) => nodeCluster.sendCommand(routeKey, false, [...args]),
      masters: async () => {
        const nodes = await Promise.all(nodeCluster.masters.map((master) => nodeCluster.nodeClient(master)))
        return nodes.map((node) => ({ send: (args) => node.sendCommand([...args]) }))
      },
      duplicate: () => nodeCluster.duplicate(),
      pubSubOnClient: false,
    }
  }
  const node = client as NodeRedisLike
  const sender: CommandSender = { send: (args) => node.sendCommand([...args]) }
  return {
    kind: 'node-redis',
    cluster: false,
    send: (args) => sender.send(args),
    masters: () => Promise.resolve([sender]),
    duplicate: () => node.duplicate(),
    pubSubOnClient: false,
  }
}

/** A reply as a string (clients may map bulk strings to Buffers); null and others: undefined. */
export function replyString(reply: unknown): string | undefined {
  if (typeof reply === 'string') return reply
  if (Buffer.isBuffer(reply)) return reply.toString('utf8')
  return undefined
}
