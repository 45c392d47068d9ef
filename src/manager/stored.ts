import type { StoreLock, StoreRecord } from '../stores/types.js'
import { BoundedMap } from '../bounded.js'
import { AccessToken } from '../token/access-token.js'

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
