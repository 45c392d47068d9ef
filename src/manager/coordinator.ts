import type { Clock } from '../clock.js'
import type { StoreErrorEvent } from './events.js'
import type { StoreLock, StoreRecord, TokenStore } from '../stores/types.js'
import { AccessToken } from '../token/access-token.js'
import { deserializeToken, serializeToken, tokenId } from '../token/serialize.js'
import { CallAbandoned, pause, withinDeadline } from '../abort.js'
import { computeWindows, type RefreshPolicy } from './policy.js'

/** What the coordinator needs from its manager. */
export interface CoordinatorOptions {
  readonly clock: Clock
  readonly policy: RefreshPolicy
  readonly random: () => number
  /** How long a fetch lock lives; also how long a loser waits before it fetches itself. */
  readonly lockTtlMs: number
  /** The longest a store call may take (a wait: its own timeout plus this). */
  readonly storeTimeoutMs: number
  /** Aborted when the manager closes: ends every wait and every store call. */
  readonly signal: AbortSignal
  readonly onError: (key: string, operation: StoreErrorEvent['operation'], error: unknown) => void
  /**
   * Called when this process stopped waiting for another one's fetch lock: `store` when the other
   * process's token arrived, `fetch` when this process went on to fetch itself (the holder died,
   * failed twice, or the wait ran out).
   */
  readonly onLockWait?: (key: string, waitedMs: number, outcome: 'store' | 'fetch') => void
}

/** A store's `get` answer, checked: anything but a well-formed record or undefined is a store error. */
function checkRecord(value: unknown): StoreRecord | undefined {
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
function redate(token: AccessToken, shiftMs: number): AccessToken {
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

/** A store's `acquireLock` answer, checked: a lock must have a `release` function. */
function checkLock(value: unknown): StoreLock | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object' || typeof (value as Partial<StoreLock>).release !== 'function') {
    throw new TypeError('the store returned a lock without a release function')
  }
  return value as StoreLock
}

/** Poll interval for stores that can lock but cannot notify. */
const POLL_MS = 50

const FAILED = Symbol('store call failed')

interface Read {
  readonly token?: AccessToken
  readonly tokenId?: string
}

/**
 * The store side of a refresh: read the shared store first, and when a fetch is needed take the
 * store's per-key lock so that one process fetches for all; losers wait for the winner's token,
 * re-read, and take over once the lock has expired. Every store failure counts as a miss and
 * ends in a direct fetch, so a broken store never fails a `get`.
 */
export class StoreCoordinator {
  readonly #store: TokenStore
  readonly #options: CoordinatorOptions

  constructor(store: TokenStore, options: CoordinatorOptions) {
    this.#store = store
    this.#options = options
  }

  async obtain(
    key: string,
    current: AccessToken | undefined,
    rejected: readonly string[] | undefined,
    fetchToken: () => Promise<AccessToken>,
  ): Promise<{ token: AccessToken; origin: 'fetch' | 'store' }> {
    const store = this.#store
    const { clock, lockTtlMs, signal } = this.#options
    const first = await this.#read(key, current, rejected)
    if (first.token !== undefined) return { token: first.token, origin: 'store' }
    if (store.acquireLock === undefined) return this.#fetchAndWrite(key, fetchToken)
    const acquire = store.acquireLock.bind(store)
    const startedAt = clock.now()
    let deadline = startedAt + lockTtlMs
    let known = first.tokenId
    // Wake-ups by a released or expired lock that brought no token: a holder failed or died.
    let emptyReleases = 0
    // When this process began waiting for another one's lock (undefined: it has not waited).
    let waitingSince: number | undefined
    const endWait = (outcome: 'store' | 'fetch'): void => {
      if (waitingSince === undefined) return
      this.#options.onLockWait?.(key, Math.max(0, clock.now() - waitingSince), outcome)
      waitingSince = undefined
    }
    for (;;) {
      const lock = await this.#call(
        key,
        'lock',
        async () => checkLock(await acquire(key, { ttlMs: lockTtlMs })),
        FAILED,
      )
      if (lock === FAILED) {
        endWait('fetch')
        return this.#fetchAndWrite(key, fetchToken)
      }
      if (lock !== undefined) {
        try {
          const again = await this.#read(key, current, rejected)
          if (again.token !== undefined) {
            endWait('store')
            return { token: again.token, origin: 'store' }
          }
          endWait('fetch')
          return await this.#fetchAndWrite(key, fetchToken)
        } finally {
          await this.#call(key, 'unlock', () => lock.release(), undefined)
        }
      }
      waitingSince ??= clock.now()
      // Someone else holds the lock again after two holders ended without a token: the token
      // endpoint is failing. Ask it once from here too instead of queueing behind each holder in
      // turn, so every waiter gets its answer within about three requests, not one per process.
      if (emptyReleases >= 2) {
        endWait('fetch')
        return this.#fetchAndWrite(key, fetchToken)
      }
      // Someone else holds the lock. Whoever it is, that lock ends within lockTtlMs from now, so
      // waiting that long (plus a little) lets this process take over from a holder that died
      // instead of fetching beside the others; never past twice the TTL from the start.
      deadline = Math.max(deadline, Math.min(startedAt + 2 * lockTtlMs, clock.now() + lockTtlMs + 250))
      const remaining = deadline - clock.now()
      if (remaining <= 0 || signal.aborted) {
        endWait('fetch')
        return this.#fetchAndWrite(key, fetchToken)
      }
      const woken = await this.#waitForChange(key, known, remaining)
      const after = await this.#read(key, current, rejected)
      if (after.token !== undefined) {
        endWait('store')
        return { token: after.token, origin: 'store' }
      }
      if (woken && clock.now() < deadline) emptyReleases++
      known = after.tokenId
    }
  }

  /**
   * Waits for a write or a lock release on `key`. True when the store's `waitForUpdate` answered
   * (a write, a release, or its timeout); false after a plain poll interval, which says nothing.
   */
  async #waitForChange(key: string, knownTokenId: string | undefined, remainingMs: number): Promise<boolean> {
    const { clock, signal } = this.#options
    const schedule = clock.setTimer.bind(clock)
    const store = this.#store
    if (store.waitForUpdate === undefined) {
      await pause(schedule, Math.min(remainingMs, POLL_MS), signal)
      return false
    }
    const wait = store.waitForUpdate.bind(store)
    const result = await this.#call(
      key,
      'wait',
      () => wait(key, { timeoutMs: remainingMs, knownTokenId, signal }),
      FAILED,
      remainingMs,
    )
    if (result !== FAILED) return true
    await pause(schedule, Math.min(remainingMs, POLL_MS), signal)
    return false
  }

  /** A token from the store that this process may adopt: not rejected, newer than ours, not due. */
  async #read(
    key: string,
    current: AccessToken | undefined,
    rejected: readonly string[] | undefined,
  ): Promise<Read> {
    const store = this.#store
    const record = await this.#call<StoreRecord | undefined>(
      key,
      'get',
      async () => checkRecord(await store.get(key)),
      undefined,
    )
    if (record === undefined) return {}
    const id = record.tokenId
    const { policy, random, clock } = this.#options
    const now = clock.now()
    const expiresAt = localExpiry(record, now)
    if (rejected?.includes(id) === true || now >= expiresAt) return { tokenId: id }
    if (current !== undefined && expiresAt <= current.expiresAt) return { tokenId: id }
    let token: AccessToken
    try {
      const stored = deserializeToken(record.payload)
      token = redate(stored, expiresAt - stored.expiresAt)
    } catch (error) {
      this.#options.onError(key, 'get', error)
      return { tokenId: id }
    }
    if (now >= computeWindows(token, policy, random).mustRefreshAt) return { tokenId: id }
    return { token, tokenId: id }
  }

  async #fetchAndWrite(
    key: string,
    fetchToken: () => Promise<AccessToken>,
  ): Promise<{ token: AccessToken; origin: 'fetch' }> {
    const token = await fetchToken()
    const ttlMs = token.expiresAt - this.#options.clock.now()
    if (ttlMs > 0) {
      const store = this.#store
      // Serialising is part of the store write: a token it cannot encode (say, a vendor field
      // nested too deep for JSON) is a store error and stays in memory only, never a failed get.
      await this.#call(
        key,
        'set',
        () => {
          const record: StoreRecord = {
            tokenId: tokenId(token),
            expiresAt: token.expiresAt,
            payload: serializeToken(token),
          }
          return store.set(key, record, { ttlMs })
        },
        false,
      )
    }
    return { token, origin: 'fetch' }
  }

  /**
   * One store call, bounded: it fails (an error event, then `fallback`) when it throws or rejects,
   * takes longer than `storeTimeoutMs` (plus `extraMs` for a wait), and ends at once, without an
   * event, when the manager closes. A store that never answers is a miss, never a hung `get`.
   */
  async #call<T, F = T>(
    key: string,
    operation: StoreErrorEvent['operation'],
    call: () => Promise<T>,
    fallback: F,
    extraMs = 0,
  ): Promise<T | F> {
    const { clock, storeTimeoutMs, signal } = this.#options
    try {
      return await withinDeadline(call, storeTimeoutMs + extraMs, clock.setTimer.bind(clock), signal)
    } catch (error) {
      if (!(error instanceof CallAbandoned && error.reason === 'aborted')) {
        this.#options.onError(key, operation, error)
      }
      return fallback
    }
  }
}
