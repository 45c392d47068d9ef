import { channel, subscribe, unsubscribe, type Channel } from 'node:diagnostics_channel'
import type { TokenkeeperErrorCode } from '../errors.js'
import type { TokenBinding } from '../token/access-token.js'

/** Whether a refresh was awaited by callers or ran in the background. */
export type RefreshMode = 'foreground' | 'background'

/** A cache hit. `window` says whether the token is still fresh or already due for renewal. */
export interface HitEvent {
  readonly key: string
  readonly window: 'fresh' | 'advisory'
}

/** A call that could not be served from memory. */
export interface MissEvent {
  readonly key: string
  /** `cold`: nothing cached; `expired`: the cached token reached its mandatory window. */
  readonly reason: 'cold' | 'expired'
}

/** A token request (or store read) started for a key. */
export interface RefreshStartEvent {
  readonly key: string
  readonly mode: RefreshMode
}

/** A refresh ended with a token. */
export interface RefreshSuccessEvent {
  readonly key: string
  readonly mode: RefreshMode
  readonly durationMs: number
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
  readonly key: string
  readonly mode: RefreshMode
  readonly durationMs: number
  /** The error's code when it is a tokenkeeper error, else `UNKNOWN`. */
  readonly code: TokenkeeperErrorCode | 'UNKNOWN'
  readonly message: string
  readonly retryable: boolean
  /** No new token request for this key before this instant (epoch ms). */
  readonly retryAt: number
  /** Whether a still-valid token keeps being served meanwhile. */
  readonly servingCached: boolean
}

/** A cached token was served while its renewal is failing (an outage being ridden out). */
export interface StaleEvent {
  readonly key: string
  readonly expiresAt: number
}

/** A store operation failed; the manager carried on as if it were a cache miss. */
export interface StoreErrorEvent {
  readonly key: string | undefined
  readonly operation: 'get' | 'set' | 'delete' | 'clear' | 'lock' | 'unlock' | 'wait' | 'subscribe' | 'close'
  readonly message: string
}

/** A caller was given the remembered error at once: the key is backing off after a failure. */
export interface FailFastEvent {
  readonly key: string
  /** The remembered error's code when it is a tokenkeeper error, else `UNKNOWN`. */
  readonly code: TokenkeeperErrorCode | 'UNKNOWN'
  /** No new token request for this key before this instant (epoch ms). */
  readonly retryAt: number
}

/** A token was invalidated (or an invalidation found a newer token and left it). */
export interface InvalidateEvent {
  readonly key: string
  readonly removed: boolean
  /** `local`: this manager's call; `remote`: a store event from elsewhere. */
  readonly origin: 'local' | 'remote'
}

/** Every event a {@link TokenManager} emits, by name. */
export interface TokenManagerEvents {
  hit: [HitEvent]
  miss: [MissEvent]
  refreshStart: [RefreshStartEvent]
  refreshSuccess: [RefreshSuccessEvent]
  refreshFailure: [RefreshFailureEvent]
  stale: [StaleEvent]
  storeError: [StoreErrorEvent]
  invalidate: [InvalidateEvent]
  failFast: [FailFastEvent]
}

/** The `node:diagnostics_channel` channel names, one per event: `tokenkeeper:<event>`. */
export const CHANNEL_NAMES = {
  hit: 'tokenkeeper:hit',
  miss: 'tokenkeeper:miss',
  refreshStart: 'tokenkeeper:refresh:start',
  refreshSuccess: 'tokenkeeper:refresh:success',
  refreshFailure: 'tokenkeeper:refresh:failure',
  stale: 'tokenkeeper:stale',
  storeError: 'tokenkeeper:store:error',
  invalidate: 'tokenkeeper:invalidate',
  failFast: 'tokenkeeper:fail-fast',
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
