/**
 * Abort handling shared by many waiters. Each signal gets at most one listener from tokenkeeper,
 * however many callers wait on it (a process-wide shutdown signal passed to thousands of
 * `get` calls must not trip Node's listener-leak warning), and the listener goes away when the
 * last waiter settles.
 */
const waitersBySignal = new WeakMap<AbortSignal, Set<() => void>>()

function onAbort(this: AbortSignal): void {
  const waiters = waitersBySignal.get(this)
  waitersBySignal.delete(this)
  if (waiters !== undefined) for (const wake of waiters) wake()
}

/** Calls `wake` once when `signal` aborts; returns a function that cancels that. */
export function whenAborted(signal: AbortSignal, wake: () => void): () => void {
  let waiters = waitersBySignal.get(signal)
  if (waiters === undefined) {
    waiters = new Set()
    waitersBySignal.set(signal, waiters)
    signal.addEventListener('abort', onAbort, { once: true })
  }
  waiters.add(wake)
  return () => {
    const current = waitersBySignal.get(signal)
    if (current === undefined || !current.delete(wake) || current.size > 0) return
    waitersBySignal.delete(signal)
    signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Settles like `promise`, or rejects with `signal.reason` as soon as the signal aborts. The
 * underlying promise goes on: this ends one caller's wait, never the shared work.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      promise.catch(() => undefined)
      reject(signal.reason as Error)
      return
    }
    const cancel = whenAborted(signal, () => reject(signal.reason as Error))
    promise.then(
      (value) => {
        cancel()
        resolve(value)
      },
      (error: unknown) => {
        cancel()
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes the shared failure through unchanged
        reject(error)
      },
    )
  })
}

/**
 * An injectable timer: runs `callback` once after `delayMs` and returns a handle that stops it.
 * A clock's `setTimer`, bound: `clock.setTimer.bind(clock)` (see `src/clock.ts`).
 */
export type Schedule = (callback: () => void, delayMs: number) => { cancel(): void }

/** Waits `delayMs` on `schedule` (an injectable timer), or less if `signal` aborts. Never rejects. */
export function pause(schedule: Schedule, delayMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const handles: { timer?: { cancel(): void }; cancel?: () => void } = {}
    const done = (): void => {
      handles.timer?.cancel()
      handles.cancel?.()
      resolve()
    }
    handles.cancel = whenAborted(signal, done)
    handles.timer = schedule(done, delayMs)
  })
}

/** A time limit for one request, linked to an optional outer signal. */
export interface Deadline {
  /** Aborts when the time is up or the outer signal aborts, whichever comes first. */
  readonly signal: AbortSignal
  /** True once the time limit (not the outer signal) has aborted `signal`. */
  readonly timedOut: boolean
  /** Stops the timer and detaches from the outer signal. Call it when the request is over. */
  dispose(): void
}

/**
 * One `AbortController` per request, timed on `schedule` (an injectable timer: the caller's
 * clock, so a test clock drives every request timeout; the system clock's timer is unref'd, so a
 * pending deadline never keeps a process alive), with at most one shared listener on `parent`.
 * Unlike `AbortSignal.any([AbortSignal.timeout(ms), parent])`, it leaves nothing behind once
 * disposed, so a long-lived manager signal does not collect one entry per request.
 */
export function deadline(timeoutMs: number, schedule: Schedule, parent?: AbortSignal): Deadline {
  const controller = new AbortController()
  let timedOut = false
  let detach: () => void = () => undefined
  if (parent?.aborted === true) {
    controller.abort(parent.reason)
    return { signal: controller.signal, timedOut: false, dispose: () => undefined }
  }
  const timer = schedule(() => {
    timedOut = true
    detach()
    controller.abort(new DOMException('The operation timed out.', 'TimeoutError'))
  }, timeoutMs)
  if (parent !== undefined) {
    detach = whenAborted(parent, () => {
      timer.cancel()
      controller.abort(parent.reason)
    })
  }
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut
    },
    dispose() {
      timer.cancel()
      detach()
    },
  }
}

/** Why {@link withinDeadline} gave up on a call: it took too long, or `signal` aborted first. */
export class CallAbandoned extends Error {
  /** `timeout`: the deadline passed; `aborted`: the signal aborted first. */
  readonly reason: 'timeout' | 'aborted'
  constructor(reason: 'timeout' | 'aborted', message: string) {
    super(message)
    this.name = 'CallAbandoned'
    this.reason = reason
  }
}

/**
 * Runs `call` and settles like it, unless it takes longer than `timeoutMs` on `schedule` (an
 * injectable timer) or `signal` aborts first: then rejects with {@link CallAbandoned}, and the
 * call's own result, whenever it comes, is ignored. A `call` that throws synchronously or returns
 * a plain value is handled like a rejected or resolved promise.
 */
export function withinDeadline<T>(
  call: () => T | PromiseLike<T>,
  timeoutMs: number,
  schedule: Schedule,
  signal?: AbortSignal,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new CallAbandoned('aborted', 'abandoned: the operation was aborted'))
      return
    }
    let result: PromiseLike<T> | T
    try {
      result = call()
    } catch (error) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes the call's own failure through unchanged
      reject(error)
      return
    }
    let settled = false
    const handles: { timer?: { cancel(): void }; cancel?: () => void } = {}
    const finish = (): boolean => {
      if (settled) return false
      settled = true
      handles.timer?.cancel()
      handles.cancel?.()
      return true
    }
    handles.timer = schedule(() => {
      if (finish()) reject(new CallAbandoned('timeout', `no answer within ${timeoutMs} ms`))
    }, timeoutMs)
    if (signal !== undefined) {
      handles.cancel = whenAborted(signal, () => {
        if (finish()) reject(new CallAbandoned('aborted', 'abandoned: the operation was aborted'))
      })
    }
    Promise.resolve(result).then(
      (value) => {
        if (finish()) resolve(value)
      },
      (error: unknown) => {
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes the call's own failure through unchanged
        if (finish()) reject(error)
      },
    )
  })
}
