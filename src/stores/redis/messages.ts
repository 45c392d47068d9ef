import type { StoreEvent } from '../types.js'
import { RedisStoreError } from './errors.js'

/**
 * What travels on `${prefix}:events`: JSON `{ t, k, id, o }` — type, cache key, token id, and
 * the origin (the publishing store instance, which delivers its own events locally and skips
 * their echo). Never a token or a stored value.
 */
export interface Message {
  readonly event: StoreEvent
  readonly origin: string | undefined
}

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
  if (t === 'clear') return { event: { type: 'clear' }, origin }
  if (typeof k !== 'string') return undefined
  if (t === 'unlock') return { event: { type: 'unlock', key: k }, origin }
  if (t === 'set' && typeof id === 'string') return { event: { type: 'set', key: k, tokenId: id }, origin }
  if (t === 'delete') {
    const tokenId = typeof id === 'string' && id !== '' ? id : undefined
    return { event: { type: 'delete', key: k, tokenId }, origin }
  }
  return undefined
}

/**
 * Fans store events out to `subscribe` listeners: events of this instance at once (pub/sub may
 * be down), everyone else's as they arrive on the channel.
 */
export class EventHub {
  readonly #listeners = new Set<(event: StoreEvent) => void>()
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
    this.#deliver(message.event)
  }

  /** An event of this instance, delivered in a microtask like the memory store's. */
  emit(event: StoreEvent): void {
    queueMicrotask(() => this.#deliver(event))
  }

  /** Drops every listener. */
  close(): void {
    this.#listeners.clear()
  }

  #deliver(event: StoreEvent): void {
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
