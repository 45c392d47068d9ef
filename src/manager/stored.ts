import { BoundedMap } from '../bounded.js'
import { scrubText, type SecretSet } from '../secrets.js'
import type { StoreEvent, StoreLock, StoreRecord, TokenStore } from '../stores/types.js'
import { AccessToken } from '../token/access-token.js'

/** Poll interval while waiting for another process's lock, by whether the store has change events. */
const POLL_MS = { events: 250, none: 50 }

/**
 * How often to re-check a store while waiting for another process's lock: its `pollIntervalMs`
 * hint when that is a positive finite number, else 250 ms for a store with change events and
 * 50 ms for one without. A hint that cannot be read (a getter that throws) counts as none.
 */
export function pollInterval(store: TokenStore): number {
  let hinted: unknown
  try {
    hinted = store.pollIntervalMs
  } catch {
    hinted = undefined
  }
  if (typeof hinted === 'number' && hinted > 0 && Number.isFinite(hinted)) return hinted
  return store.subscribe === undefined ? POLL_MS.none : POLL_MS.events
}

/** A store's change event, checked: `problem` says what was wrong with it, `event` what is left to act on. */
export interface CheckedEvent {
  readonly event?: StoreEvent
  readonly problem?: string
}

const KEYED_TYPES: ReadonlySet<unknown> = new Set(['set', 'delete', 'unlock'])

/**
 * A store's change event as the coordinator may act on it. A `clear`, or a `set`, `delete` or
 * `unlock` with a string `key`, is an event (a `set`'s `tokenId` is not needed); anything else is
 * a problem and no event, but for a `delete` whose `tokenId` is neither a string nor undefined:
 * read as a delete of any token of its key, since ignoring an invalidation would keep a token
 * another process refused. The problem never quotes the event, which a broken store may have
 * filled with anything.
 */
export function checkEvent(value: unknown): CheckedEvent {
  if (typeof value !== 'object' || value === null)
    return { problem: 'the store sent a change event that is not an object' }
  const { type, key, tokenId } = value as { type?: unknown; key?: unknown; tokenId?: unknown }
  if (type === 'clear') return { event: { type: 'clear' } }
  if (!KEYED_TYPES.has(type)) return { problem: 'the store sent a change event of an unknown type' }
  if (typeof key !== 'string') return { problem: `the store sent a ${String(type)} event without a key` }
  if (type === 'unlock') return { event: { type, key } }
  if (type === 'set') return { event: { type, key, tokenId: typeof tokenId === 'string' ? tokenId : '' } }
  if (tokenId === undefined || typeof tokenId === 'string') return { event: { type: 'delete', key, tokenId } }
  return {
    event: { type: 'delete', key, tokenId: undefined },
    problem: 'the store sent a delete event whose tokenId is not a string: read as a delete of any token',
  }
}

/**
 * The message of a store error as a `storeError` event may carry it: a third-party store's error
 * may quote what it was given (a record, a token), so every secret of the call (`secrets`) and
 * anything shaped like a credential is removed, control characters are blanked and the text is
 * cut to 500 characters. An error whose message cannot be read is `store failure`.
 */
export function storeErrorMessage(error: unknown, secrets?: SecretSet): string {
  let message: unknown
  try {
    message = error instanceof Error ? error.message : undefined
  } catch {
    message = undefined
  }
  return typeof message === 'string' ? scrubText(message, secrets, 500, true) : 'store failure'
}

/** A store's `get` answer, checked: anything but a well-formed record or undefined is a store error. */
export function checkRecord(value: unknown): StoreRecord | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object') throw new TypeError('the store returned something other than a record')
  const record = value as Partial<StoreRecord>
  if (
    typeof record.tokenId !== 'string' ||
    typeof record.payload !== 'string' ||
    typeof record.expiresAt !== 'number' ||
    !Number.isFinite(record.expiresAt) ||
    (record.remainingMs !== undefined &&
      (typeof record.remainingMs !== 'number' || Number.isNaN(record.remainingMs)))
  ) {
    throw new TypeError('the store returned a malformed record (tokenId, expiresAt, payload, remainingMs)')
  }
  return record as StoreRecord
}

/** A store's `acquireLock` answer, checked: a lock must have a `release` function. */
export function checkLock(value: unknown): StoreLock | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object' || typeof (value as Partial<StoreLock>).release !== 'function') {
    throw new TypeError('the store returned a lock without a release function')
  }
  return value as StoreLock
}

/**
 * When a stored token expires on this process's clock. A store that measured the record's
 * remaining time (Redis `PTTL`) is believed over `expiresAt`, which the writer's clock dated:
 * clocks of different machines disagree, the store's countdown does not.
 */
export function localExpiry(record: StoreRecord, now: number): number {
  const remaining = record.remainingMs
  return remaining === undefined ? record.expiresAt : now + Math.min(remaining, Number.MAX_SAFE_INTEGER)
}

/** `token` with its instants moved by `shiftMs` (re-dated onto this process's clock). */
export function redate(token: AccessToken, shiftMs: number): AccessToken {
  if (shiftMs === 0) return token
  return new AccessToken({
    value: token.value,
    type: token.type,
    scopes: token.scopes,
    requestedScopes: token.requestedScopes,
    issuedAt: token.issuedAt + shiftMs,
    expiresAt: token.expiresAt + shiftMs,
    refreshAt: token.refreshAt === undefined ? undefined : token.refreshAt + shiftMs,
    extra: token.extra,
  })
}

/** How many refused token ids are remembered per key, and for how many keys at most. */
const IDS_PER_KEY = 4
const MAX_KEYS = 10_000

/**
 * Token ids refused for a key (invalidated here or anywhere in the fleet): a store read skips
 * them, so a flight that read a token just before another process invalidated it does not
 * adopt it. Bounded: the last few ids per key, for the most recently refused keys.
 */
export class RefusedIds {
  readonly #byKey = new BoundedMap<string, string[]>(MAX_KEYS)

  remember(key: string, id: string): void {
    let ids = this.#byKey.get(key)
    if (ids === undefined) this.#byKey.set(key, (ids = []))
    if (ids.includes(id)) return
    ids.push(id)
    if (ids.length > IDS_PER_KEY) ids.shift()
  }

  has(key: string, id: string): boolean {
    return this.#byKey.peek(key)?.includes(id) === true
  }
}
