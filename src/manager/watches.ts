import { whenAborted } from '../abort.js'
import type { Clock } from '../clock.js'

/**
 * A caller waiting for changes of one key: `changed` when any arrived since it last looked,
 * `unlocked` when one of them was a lock release (a holder ended).
 */
export interface Watch {
  changed: boolean
  unlocked: boolean
  wake: (() => void) | undefined
}

/**
 * Who waits for which key's changes, woken by the store's change events. A caller registers
 * before it tries the lock, so a change between its try and its wait is never missed: it is
 * remembered in the watch and the next wait ends at once.
 */
export class KeyWatches {
  readonly #byKey = new Map<string, Set<Watch>>()

  /** Starts watching `key`; `unwatch` when done, whatever happened. */
  watch(key: string): Watch {
    const watch: Watch = { changed: false, unlocked: false, wake: undefined }
    let watches = this.#byKey.get(key)
    if (watches === undefined) this.#byKey.set(key, (watches = new Set()))
    watches.add(watch)
    return watch
  }

  unwatch(key: string, watch: Watch): void {
    const watches = this.#byKey.get(key)
    watches?.delete(watch)
    if (watches?.size === 0) this.#byKey.delete(key)
  }

  /** `key` changed (every key, when undefined); `unlock`: its lock was released. */
  changed(key: string | undefined, unlock = false): void {
    const sets = key === undefined ? [...this.#byKey.values()] : [this.#byKey.get(key)]
    for (const watches of sets) {
      if (watches === undefined) continue
      for (const watch of watches) {
        if (unlock) watch.unlocked = true
        watch.changed = true
        watch.wake?.()
      }
    }
  }

  /**
   * Resolves once the watched key changed since the watch last looked (at once if it already
   * did), after `delayMs` on `clock`, or when `signal` aborts.
   */
  next(watch: Watch, delayMs: number, clock: Clock, signal: AbortSignal): Promise<void> {
    if (watch.changed) {
      watch.changed = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      let done = false
      const finish = (): void => {
        if (done) return
        done = true
        timer.cancel()
        stopAbort()
        watch.wake = undefined
        watch.changed = false
        resolve()
      }
      const timer = clock.setTimer(finish, delayMs)
      const stopAbort = whenAborted(signal, finish)
      watch.wake = finish
      if (signal.aborted) finish()
    })
  }
}
