import { channel, subscribe, unsubscribe, type Channel } from 'node:diagnostics_channel'
import { EventEmitter } from 'node:events'
import type { TokenkeeperErrorCode } from '../errors.js'
import type { TokenBinding } from '../token/access-token.js'

/** Whether a refresh was awaited by callers or ran in the background. */
export type RefreshMode = 'foreground' | 'background'

/** A cache hit. `window` says whether the token is still fresh or already due for renewal. */
export interface HitEvent {
  /** The source's cache key ({@link TokenSource.key}): secret-free. */
  readonly key: string
  /** `fresh`: no renewal due; `advisory`: served while a background renewal is due or running. */
  readonly window: 'fresh' | 'advisory'
}

/** A call that could not be served from memory. */
export interface MissEvent {
  /** The source's cache key ({@link TokenSource.key}): secret-free. */
  readonly key: string
  /** `cold`: nothing cached; `expired`: the cached token reached its mandatory window. */
  readonly reason: 'cold' | 'expired'
}

/** A token request (or store read) started for a key. */
export interface RefreshStartEvent {
  /** The source's cache key ({@link TokenSource.key}): secret-free. */
  readonly key: string
  /** Whether callers wait for this refresh (`foreground`) or it runs behind a served token. */
  readonly mode: RefreshMode
}

/** A refresh ended with a token. */
export interface RefreshSuccessEvent {
  /** The source's cache key ({@link TokenSource.key}): secret-free. */
  readonly key: string
  /** Whether callers wait for this refresh (`foreground`) or it runs behind a served token. */
  readonly mode: RefreshMode
  /** How long the refresh took, on the manager's clock (ms). */
  readonly durationMs: number
  /** When the new token expires (epoch ms). */
  readonly expiresAt: number
  /** `fetch`: from the token endpoint; `store`: another process's token, read from the store. */
  readonly origin: 'fetch' | 'store'
  /**
   * For a DPoP source: the key's thumbprint and whether the server bound the token (`bound:
   * false`: it answered `Bearer` to a request with a proof). Absent otherwise.
   */
  readonly binding?: TokenBinding
}

/** A refresh failed. No token or secret is ever part of an event. */
export interface RefreshFailureEvent {
  /** The source's cache key ({@link TokenSource.key}): secret-free. */
  readonly key: string
  /** Whether callers wait for this refresh (`foreground`) or it runs behind a served token. */
  readonly mode: RefreshMode
  /** How long the refresh took until it failed, on the manager's clock (ms). */
  readonly durationMs: number
  /** The error's code when it is a tokenkeeper error, else `UNKNOWN`. */
  readonly code: TokenkeeperErrorCode | 'UNKNOWN'
  /** The error's message; tokenkeeper's own errors never contain a token or secret. */
  readonly message: string
  /** Whether the failure may pass by itself (network, 5xx, 429): it is retried with backoff. */
  readonly retryable: boolean
  /** No new token request for this key before this instant (epoch ms). */
  readonly retryAt: number
  /** Whether a still-valid token keeps being served meanwhile. */
  readonly servingCached: boolean
}

/** A cached token was served while its renewal is failing (an outage being ridden out). */
export interface StaleEvent {
  /** The source's cache key ({@link TokenSource.key}): secret-free. */
  readonly key: string
  /** When the served token expires (epoch ms). */
  readonly expiresAt: number
}

/** A store operation failed; the manager carried on as if it were a cache miss. */
export interface StoreErrorEvent {
  /** The source's cache key ({@link TokenSource.key}), or `undefined` when the operation had none (`subscribe`, `clear`, `close`). */
  readonly key: string | undefined
  /** The {@link TokenStore} operation that failed. */
  readonly operation: 'get' | 'set' | 'delete' | 'clear' | 'lock' | 'unlock' | 'subscribe' | 'close'
  /** The store error's message (stores put no token in their messages). */
  readonly message: string
}

/**
 * This process waited for another process's fetch lock on a key (a shared store's single flight)
 * and stopped waiting: `store` when that process's token arrived, `fetch` when this process went
 * on to ask the token endpoint itself (the holder died, failed twice, or the wait ran out).
 */
export interface LockWaitEvent {
  /** The cache key waited on. */
  readonly key: string
  /** How long this process waited, in ms, from finding the lock taken to the end of the wait. */
  readonly waitedMs: number
  /** `store`: the holder's token arrived; `fetch`: this process went on to fetch itself. */
  readonly outcome: 'store' | 'fetch'
}

/** A caller was given the remembered error at once: the key is backing off after a failure. */
export interface FailFastEvent {
  /** The source's cache key ({@link TokenSource.key}): secret-free. */
  readonly key: string
  /** The remembered error's code when it is a tokenkeeper error, else `UNKNOWN`. */
  readonly code: TokenkeeperErrorCode | 'UNKNOWN'
  /** No new token request for this key before this instant (epoch ms). */
  readonly retryAt: number
}

/** A token was invalidated (or an invalidation found a newer token and left it). */
export interface InvalidateEvent {
  /** The source's cache key ({@link TokenSource.key}): secret-free. */
  readonly key: string
  /** Whether a token was removed; `false` when the cache already held a newer token (or none). */
  readonly removed: boolean
  /** `local`: this manager's call; `remote`: a store event from elsewhere. */
  readonly origin: 'local' | 'remote'
}

/** Every event a {@link TokenManager} emits, by name. */
export interface TokenManagerEvents {
  /** A call served from memory. Emitted on every cache hit: listening costs on the hot path. */
  hit: [HitEvent]
  /** A call that could not be served from memory. */
  miss: [MissEvent]
  /** A token request (or store read) started. */
  refreshStart: [RefreshStartEvent]
  /** A refresh ended with a token. */
  refreshSuccess: [RefreshSuccessEvent]
  /** A refresh failed. */
  refreshFailure: [RefreshFailureEvent]
  /** A cached token was served while its renewal is failing. */
  stale: [StaleEvent]
  /** A store operation failed; the manager carried on without the store. */
  storeError: [StoreErrorEvent]
  /** A token was invalidated, here or (through the store) elsewhere. */
  invalidate: [InvalidateEvent]
  /** A caller got the remembered error at once while the key backs off. */
  failFast: [FailFastEvent]
  /** This process stopped waiting for another process's fetch lock in the shared store. */
  lockWait: [LockWaitEvent]
}

/** The `node:diagnostics_channel` channel names, one per event: `tokenkeeper:<event>`. */
export const CHANNEL_NAMES = {
  /** Carries {@link HitEvent}. */
  hit: 'tokenkeeper:hit',
  /** Carries {@link MissEvent}. */
  miss: 'tokenkeeper:miss',
  /** Carries {@link RefreshStartEvent}. */
  refreshStart: 'tokenkeeper:refresh:start',
  /** Carries {@link RefreshSuccessEvent}. */
  refreshSuccess: 'tokenkeeper:refresh:success',
  /** Carries {@link RefreshFailureEvent}. */
  refreshFailure: 'tokenkeeper:refresh:failure',
  /** Carries {@link StaleEvent}. */
  stale: 'tokenkeeper:stale',
  /** Carries {@link StoreErrorEvent}. */
  storeError: 'tokenkeeper:store:error',
  /** Carries {@link InvalidateEvent}. */
  invalidate: 'tokenkeeper:invalidate',
  /** Carries {@link FailFastEvent}. */
  failFast: 'tokenkeeper:fail-fast',
  /** Carries {@link LockWaitEvent}. */
  lockWait: 'tokenkeeper:lock:wait',
} as const satisfies Record<keyof TokenManagerEvents, string>

/** The channels, created once. Publishing is skipped unless someone subscribes. */
export const channels: { readonly [K in keyof TokenManagerEvents]: Channel } = {
  hit: channel(CHANNEL_NAMES.hit),
  miss: channel(CHANNEL_NAMES.miss),
  refreshStart: channel(CHANNEL_NAMES.refreshStart),
  refreshSuccess: channel(CHANNEL_NAMES.refreshSuccess),
  refreshFailure: channel(CHANNEL_NAMES.refreshFailure),
  stale: channel(CHANNEL_NAMES.stale),
  storeError: channel(CHANNEL_NAMES.storeError),
  invalidate: channel(CHANNEL_NAMES.invalidate),
  failFast: channel(CHANNEL_NAMES.failFast),
  lockWait: channel(CHANNEL_NAMES.lockWait),
}

/**
 * The message type of every tokenkeeper `node:diagnostics_channel` channel, by channel name.
 *
 * @example
 * ```ts
 * type Failure = TokenkeeperChannelMessages['tokenkeeper:refresh:failure'] // RefreshFailureEvent
 * ```
 */
export type TokenkeeperChannelMessages = {
  readonly [K in keyof TokenManagerEvents as (typeof CHANNEL_NAMES)[K]]: TokenManagerEvents[K][0]
}

/** A tokenkeeper channel name. */
export type TokenkeeperChannelName = keyof TokenkeeperChannelMessages

/**
 * Subscribes to one tokenkeeper `node:diagnostics_channel` channel with a typed listener (the
 * channel carries the messages of every manager in the process). Returns the unsubscribe function.
 *
 * @example
 * ```ts
 * const stop = subscribeChannel('tokenkeeper:refresh:failure', (event) => {
 *   console.warn(event.key, event.code, event.retryAt) // typed RefreshFailureEvent, no cast
 * })
 * stop()
 * ```
 */
export function subscribeChannel<N extends TokenkeeperChannelName>(
  name: N,
  listener: (message: TokenkeeperChannelMessages[N], name: N) => void,
): () => void {
  const onMessage = listener as (message: unknown, name: string | symbol) => void
  subscribe(name, onMessage)
  return () => {
    unsubscribe(name, onMessage)
  }
}

/** A listener of one {@link TokenManager} event. */
export type TokenManagerListener<K extends keyof TokenManagerEvents> = (
  ...event: TokenManagerEvents[K]
) => void

/**
 * Where a manager's events go: its own listeners (`tokens.on`) and the process-wide
 * `node:diagnostics_channel` channels. One check, {@link ManagerEvents.wants}, says whether
 * anyone listens, so that an event nobody hears is not even built. Composed into the manager,
 * which exposes `on`/`once`/`off` but no `emit`: only the manager publishes. @internal
 */
export class ManagerEvents {
  readonly #emitter = new EventEmitter()

  /** Whether anyone listens to `name`, here or on its channel. */
  wants(name: keyof TokenManagerEvents): boolean {
    return channels[name].hasSubscribers || this.#emitter.listenerCount(name) > 0
  }

  /** Publishes on the channel and to the listeners, to those that listen. */
  publish<K extends keyof TokenManagerEvents>(name: K, event: TokenManagerEvents[K][0]): void {
    const dc = channels[name]
    if (dc.hasSubscribers) dc.publish(event)
    if (this.#emitter.listenerCount(name) > 0) this.#emitter.emit(name, event)
  }

  on<K extends keyof TokenManagerEvents>(name: K, listener: TokenManagerListener<K>): void {
    this.#emitter.on(name, listener as (...args: unknown[]) => void)
  }

  once<K extends keyof TokenManagerEvents>(name: K, listener: TokenManagerListener<K>): void {
    this.#emitter.once(name, listener as (...args: unknown[]) => void)
  }

  off<K extends keyof TokenManagerEvents>(name: K, listener: TokenManagerListener<K>): void {
    this.#emitter.off(name, listener as (...args: unknown[]) => void)
  }

  removeAll(name?: keyof TokenManagerEvents): void {
    if (name === undefined) this.#emitter.removeAllListeners()
    else this.#emitter.removeAllListeners(name)
  }

  listenerCount(name: keyof TokenManagerEvents): number {
    return this.#emitter.listenerCount(name)
  }
}
