/**
 * Settles like `promise`, or rejects with `signal.reason` as soon as the signal aborts. The
 * underlying promise goes on: this ends one caller's wait, never the shared work.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes the shared failure through unchanged
        reject(error)
      },
    )
  })
}

/** Waits `delayMs` on `schedule` (an injectable timer), or less if `signal` aborts. Never rejects. */
export function pause(
  schedule: (callback: () => void, delayMs: number) => { cancel(): void },
  delayMs: number,
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = (): void => {
      timer.cancel()
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = schedule(done, delayMs)
    signal.addEventListener('abort', done, { once: true })
  })
}
