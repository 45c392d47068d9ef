import { whenAborted } from '../../abort.js'
import type { Clock, Timer } from '../../clock.js'
import type { StoreRecord, StoreWaitOptions } from '../types.js'

/** What {@link waitForUpdate} needs from the store. */
export interface WaitHost {
  readonly clock: Clock
  readonly pollIntervalMs: number
  isClosed(): boolean
  /** Calls `wake` on a pub/sub notification for `key` (set, delete, unlock, clear). Returns an unregister. */
  onWake(key: string, wake: () => void): () => void
  /** The record and the lock's remaining time in ms (-2: no lock, -1: a lock without expiry). */
  peek(key: string): Promise<{ readonly record: StoreRecord | undefined; readonly lockTtlMs: number }>
  read(key: string): Promise<StoreRecord | undefined>
}

/**
 * Waits until `key` changes, its lock is released or expires, or `timeoutMs` passes, then
 * resolves with the stored record. Wakes on pub/sub notifications; polls (one `EVALSHA` of the
 * value and the lock's PTTL) as a fallback for lost notifications and dead lock holders.
 *
 * Registers for notifications before the first look, so a write between the caller's read and
 * this wait is never missed; returns at once when the record's token id differs from
 * `knownTokenId`. `lockWasHeld` (the caller just failed to take the lock) makes an absent lock
 * at the first look count as released.
 */
export function waitForUpdate(
  host: WaitHost,
  key: string,
  options: StoreWaitOptions,
  lockWasHeld: boolean,
): Promise<StoreRecord | undefined> {
  const { knownTokenId, signal } = options
  return new Promise<StoreRecord | undefined>((resolve, reject) => {
    let done = false
    let lockSeen = lockWasHeld
    let poll: Timer | undefined
    let stopAbort = (): void => undefined
    const cleanup = (): void => {
      done = true
      unregister()
      deadline.cancel()
      poll?.cancel()
      stopAbort()
    }
    const settle = (record: StoreRecord | undefined): void => {
      if (done) return
      cleanup()
      resolve(record)
    }
    const fail = (error: Error): void => {
      if (done) return
      cleanup()
      reject(error)
    }
    /** Woken, timed out or aborted: resolve with what the store holds now. */
    function finish(): void {
      if (done) return
      cleanup()
      if (host.isClosed()) return resolve(undefined)
      host.read(key).then(resolve, reject)
    }
    const check = (): void => {
      poll = undefined
      host.peek(key).then(({ record, lockTtlMs }) => {
        if (done) return
        if (record?.tokenId !== knownTokenId) return settle(record)
        const held = lockTtlMs !== -2
        if (!held && lockSeen) return settle(record)
        if (held) lockSeen = true
        const delay = lockTtlMs >= 0 ? Math.min(host.pollIntervalMs, lockTtlMs + 1) : host.pollIntervalMs
        poll = host.clock.setTimer(check, delay)
      }, fail)
    }
    const unregister = host.onWake(key, finish)
    const deadline = host.clock.setTimer(finish, Math.max(0, options.timeoutMs))
    if (signal?.aborted === true || host.isClosed()) return finish()
    // One shared listener per signal, however many keys wait on the manager's closing signal.
    if (signal !== undefined) stopAbort = whenAborted(signal, finish)
    check()
  })
}
