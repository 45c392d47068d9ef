import type { HoldHandle } from './types.js'

/** Token requests wait on a gate until it is released (`server.hold()`). @internal */
export class Gate implements HoldHandle {
  #waiters: (() => void)[] = []
  #released = false

  get waiting(): number {
    return this.#waiters.length
  }

  get released(): boolean {
    return this.#released
  }

  wait(): Promise<void> {
    if (this.#released) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  release(): void {
    this.#released = true
    const waiters = this.#waiters
    this.#waiters = []
    for (const resolve of waiters) resolve()
  }
}

interface ArrivalWaiter {
  readonly count: number
  readonly resolve: () => void
  readonly reject: (error: Error) => void
}

/** Promises that resolve once a number of token requests has arrived (`server.waitForRequests()`). @internal */
export class ArrivalWaiters {
  readonly #waiters = new Set<ArrivalWaiter>()
  #closed = false

  /** Resolves once `arrived()` reports at least `count`; rejects after `timeoutMs` (real time) or on close. */
  wait(count: number, arrived: () => number, timeoutMs: number): Promise<void> {
    if (!Number.isFinite(count)) return Promise.reject(new TypeError('waitForRequests: count must be finite'))
    if (arrived() >= count) return Promise.resolve()
    if (this.#closed) return Promise.reject(new Error('token server closed'))
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        const message = `waitForRequests: ${arrived()} of ${count} token requests arrived in ${timeoutMs} ms`
        reject(new Error(message))
      }, timeoutMs)
      timer.unref()
      const waiter: ArrivalWaiter = {
        count,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      }
      this.#waiters.add(waiter)
    })
  }

  /** Called synchronously on each arrival with the new total. */
  notify(total: number): void {
    for (const waiter of this.#waiters) {
      if (total >= waiter.count) {
        this.#waiters.delete(waiter)
        waiter.resolve()
      }
    }
  }

  close(): void {
    this.#closed = true
    for (const waiter of this.#waiters) waiter.reject(new Error('token server closed'))
    this.#waiters.clear()
  }
}
