/**
 * The few parts of a Redis client the store uses, as structural types that an `ioredis`
 * `Redis` / `Cluster` and a node-redis (`redis` package, v4/v5) client / cluster / v5 Sentinel all satisfy,
 * and adapters that turn each into one raw command sender. tokenkeeper imports neither library.
 */

/** The arguments of a raw Redis command after its name. */
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
  /** Sends one raw command (`call('SET', key, value, 'PX', 60000)`) and resolves with its reply. */
  call(command: string, ...args: (string | number)[]): Promise<unknown>
  /**
   * A new connection with the same options; the store makes one for pub/sub (invalidation and
   * renewal notices) and closes it in `close()`.
   */
  duplicate(): IoredisSubscriberLike
  /** `true` on an ioredis `Cluster`: SCAN then visits every master through {@link nodes}. */
  readonly isCluster?: boolean
  /**
   * ioredis `Cluster` only: the master nodes, each able to send raw commands, for commands that
   * must visit every master (SCAN in `clear()`).
   */
  nodes?(role: 'master'): readonly {
    /** Sends one raw command to this node. */
    call(command: string, ...args: (string | number)[]): Promise<unknown>
  }[]
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
  /** Opens a connection that waits to be opened (status `'wait'`, created with `lazyConnect`). */
  connect?(): Promise<unknown>
  /** Subscribes to the store's notice channels. */
  subscribe(...channels: string[]): Promise<unknown>
  /** Stops receiving the store's notice channels. */
  unsubscribe(...channels: string[]): Promise<unknown>
  /** Receives a notice published on a subscribed channel. */
  on(event: 'message', listener: (channel: string, message: string) => void): unknown
  /**
   * Follows the connection's state: `error` (on a connection the store made) becomes a store
   * error, `ready` subscribes again after a reconnect, `end` ends the wait for `ready`.
   */
  on(event: 'error' | 'ready' | 'end', listener: (error?: Error) => void): unknown
  /** Removes a `message` listener the store added. */
  removeListener(event: 'message', listener: (channel: string, message: string) => void): unknown
  /** Removes a state listener the store added. */
  removeListener(event: 'error' | 'ready' | 'end', listener: (error?: Error) => void): unknown
  /** Closes the connection; the store calls it in `close()` for a connection it made. */
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
  /** Sends one raw command (`sendCommand(['SET', key, value])`) and resolves with its reply. */
  sendCommand(args: string[]): Promise<unknown>
  /**
   * A new client with the same options; the store connects it for pub/sub (invalidation and
   * renewal notices) and closes it in `close()`.
   */
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
  /**
   * Sends one raw command to the node that owns `firstKey` (the store passes `isReadonly`
   * `false`: a replica may lag behind a write) and resolves with its reply.
   */
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>
  /** A pub/sub connection to the cluster; the store connects it and closes it in `close()`. */
  duplicate(): NodeRedisSubscriberLike
  /** The cluster's master nodes, for commands that must visit every master (SCAN in `clear()`). */
  readonly masters: readonly object[]
  /** The client of one of {@link masters}, to send it raw commands. */
  nodeClient(node: object): Promise<{
    /** Sends one raw command to this node. */
    sendCommand(args: string[]): Promise<unknown>
  }>
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
  /** Sends one raw command; the store passes `isReadonly` `false`, so it goes to the primary. */
  sendCommand(isReadonly: boolean | undefined, args: string[]): Promise<unknown>
  /** The current primary; only its presence is checked, to tell a Sentinel client apart. */
  getMasterNode(): unknown
  /** The sentinel in use; only its presence is checked, to tell a Sentinel client apart. */
  getSentinelNode(): unknown
}

/**
 * A node-redis pub/sub listener: the message and the channel, as strings or, in buffer mode,
 * Buffers.
 */
export type PubSubListenerLike = (message: string | Buffer, channel: string | Buffer) => unknown

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
  /** Whether the connection is open; the store connects one that is not. */
  readonly isOpen: boolean
  /** Opens the connection. */
  connect(): Promise<unknown>
  /** Subscribes `listener` to one of the store's notice channels. */
  subscribe(channel: string, listener: PubSubListenerLike): Promise<unknown>
  /** Removes `listener` from a notice channel. */
  unsubscribe(channel: string, listener: PubSubListenerLike): Promise<unknown>
  /** Connection errors of a connection the store made, reported as store errors. */
  on(event: 'error', listener: (error: Error) => void): unknown
  /** The connection is ready again after a reconnect (node-redis subscribes again by itself). */
  on(event: 'ready', listener: () => void): unknown
  /** Removes the `error` listener the store added. */
  removeListener(event: 'error', listener: (error: Error) => void): unknown
  /** Removes the `ready` listener the store added. */
  removeListener(event: 'ready', listener: () => void): unknown
  /** Closes the connection at once; the store calls it in `close()` for a connection it made. */
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
