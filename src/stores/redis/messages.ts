import type { StoreEvent } from '../types.js'
import { RedisStoreError } from './errors.js'

/**
 * What travels on `${prefix}:events`: JSON `{ t, k, id, o }` — type, cache key, token id, and
 * the origin (the publishing store instance, which delivers its own events locally and skips
 * their echo). Never a token or a stored value.
 */
export type Message =
  | { readonly kind: 'event'; readonly event: StoreEvent; readonly origin: string | undefined }
  | { readonly kind: 'unlock'; readonly key: string; readonly origin: string | undefined }

/** The wire form of a message (the Lua delete script builds the same shape with cjson). */
export function encodeMessage(
  type: 'set' | 'unlock' | 'clear',
  origin: string,
  key?: string,
  tokenId?: string,
): string {
  return JSON.stringify({ t: type, k: key, id: tokenId, o: origin })
}

/** A message from the channel, or undefined when it is not one of ours. */
export function parseMessage(text: string): Message | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const { t, k, id, o } = parsed as { t?: unknown; k?: unknown; id?: unknown; o?: unknown }
  const origin = typeof o === 'string' ? o : undefined
  if (t === 'clear') return { kind: 'event', event: { type: 'clear' }, origin }
  if (typeof k !== 'string') return undefined
  if (t === 'unlock') return { kind: 'unlock', key: k, origin }
  if (t === 'set' && typeof id === 'string')
    return { kind: 'event', event: { type: 'set', key: k, tokenId: id }, origin }
  if (t === 'delete') {
    const tokenId = typeof id === 'string' && id !== '' ? id : undefined
    return { kind: 'event', event: { type: 'delete', key: k, tokenId }, origin }
  }
  return undefined
}

/**
 * Fans store events out to `subscribe` listeners and wakes per-key waiters: events of this
 * instance at once (pub/sub may be down), everyone else's as they arrive on the channel.
 */
export class EventHub {
  readonly #listeners = new Set<(event: StoreEvent) => void>()
  readonly #waiters = new Map<string, Set<() => void>>()
  readonly #origin: string
  readonly #report: (error: RedisStoreError) => void

  constructor(origin: string, report: (error: RedisStoreError) => void) {
    this.#origin = origin
    this.#report = report
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    const entry = (event: StoreEvent): void => listener(event)
    this.#listeners.add(entry)
    return () => {
      this.#listeners.delete(entry)
    }
  }

  /** Calls `wake` on the next change of `key` (or a clear). Returns an unregister. */
  onWake(key: string, wake: () => void): () => void {
    let waiters = this.#waiters.get(key)
    if (waiters === undefined) this.#waiters.set(key, (waiters = new Set()))
    waiters.add(wake)
    return () => {
      const current = this.#waiters.get(key)
      current?.delete(wake)
      if (current?.size === 0) this.#waiters.delete(key)
    }
  }

  /** Wakes the waiters of `key`, or of every key. */
  wake(key: string | undefined): void {
    const sets = key === undefined ? [...this.#waiters.values()] : [this.#waiters.get(key)]
    for (const waiters of sets) if (waiters !== undefined) for (const wake of [...waiters]) wake()
  }

  /** A message from the channel. */
  receive(text: string): void {
    const message = parseMessage(text)
    if (message === undefined) {
      this.#report(
        new RedisStoreError('MALFORMED_RECORD', 'event', 'a pub/sub message is not a tokenkeeper event'),
      )
      return
    }
    if (message.origin === this.#origin) return
    if (message.kind === 'unlock') return this.wake(message.key)
    this.#deliver(message.event)
  }

  /** An event of this instance, delivered in a microtask like the memory store's. */
  emit(event: StoreEvent): void {
    queueMicrotask(() => this.#deliver(event))
  }

  /** Drops every listener and wakes every waiter. */
  close(): void {
    this.#listeners.clear()
    this.wake(undefined)
  }

  #deliver(event: StoreEvent): void {
    this.wake(event.type === 'clear' ? undefined : event.key)
    for (const listener of [...this.#listeners]) {
      try {
        listener(event)
      } catch {
        this.#report(
          new RedisStoreError('LISTENER_FAILED', 'event', `a store listener threw on a ${event.type} event`),
        )
      }
    }
  }
}
