import { pause, whenAborted } from '../abort.js'
import type { Clock } from '../clock.js'
import type { RateInfo } from './client.js'
import {
  allowedConcurrency,
  answered,
  initialPacing,
  startDelayMs,
  started,
  type PacingState,
} from './rate-limit.js'

/**
 * What bulk calls (`postScores`, `syncRosters`) have in common: a concurrency ceiling, the
 * caller's signal, and progress.
 *
 * @example
 * ```ts
 * import type { BulkOptions } from 'tokenkeeper/lti'
 * const options: BulkOptions = { concurrency: 8, signal: AbortSignal.timeout(600_000) }
 * ```
 */
export interface BulkOptions {
  /**
   * The most calls in progress at once; the pacing keeps fewer while the platform's budget runs
   * low or it throttles (see `docs/LTI.md`, "Rate limits"). An integer from 1 to 64. Default 8.
   */
  readonly concurrency?: number
  /**
   * Ends the run: nothing more is read or sent, calls in progress end with the signal's reason
   * (listed as failed), and the run resolves with `aborted: true`.
   */
  readonly signal?: AbortSignal
}

const DEFAULT_CONCURRENCY = 8
const MAX_CONCURRENCY = 64
/** Items read ahead while the ones before them of the same key are in progress. */
const MAX_WAITING = 10_000

/** Checks the bulk options. @internal */
export function checkBulkOptions(options: BulkOptions, what: string): number {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${what}: options must be an object`)
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new TypeError(`${what}: concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`)
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError(`${what}: signal must be an AbortSignal`)
  }
  return concurrency
}

/** Whether a value can be iterated by a bulk call. @internal */
export function checkIterable(items: unknown, what: string): void {
  const iterable =
    typeof items === 'object' && items !== null && (Symbol.iterator in items || Symbol.asyncIterator in items)
  if (!iterable) throw new TypeError(`${what}: an array, iterable or async iterable is required`)
}

/**
 * The thin shell around the pacing state of one bulk run: requests wait in `pace()` until the
 * state lets them start, and each attempt's end updates it. @internal
 */
export class Pacer {
  #state: PacingState
  #inFlight = 0
  #waiting = 0
  #throttled = 0
  readonly #clock: Clock
  readonly #signal: AbortSignal
  readonly #maxWaitMs: number
  /** Told when the allowed concurrency may have changed (the pool sets it). */
  changed: () => void = () => undefined

  /**
   * `maxWaitMs` bounds each wait in {@link Pacer.pace} (the retry policy's `maxDelayMs`): a
   * `Retry-After` beyond it holds nothing (the call that got it fails at once, as a single call
   * does), and no estimate of the budget holds a request longer, so a platform whose budget
   * never refills, or whose headers make no sense, cannot stall a run for ever.
   */
  constructor(maxConcurrency: number, clock: Clock, signal: AbortSignal, maxWaitMs: number) {
    this.#state = initialPacing(maxConcurrency)
    this.#clock = clock
    this.#signal = signal
    this.#maxWaitMs = maxWaitMs
  }

  /** Items that may be in progress now. */
  get allowed(): number {
    return allowedConcurrency(this.#state)
  }

  /** Items waiting for a retry: they do not count against `allowed` while they wait. */
  get waiting(): number {
    return this.#waiting
  }

  /**
   * The hooks of one item's calls: pacing before each attempt, what each answer said, and the
   * waits for a retry (counted by `waiting`). `release()` when the item is done; `sent` tells
   * whether any of its attempts got past the pacing (an item aborted before that sent nothing).
   */
  hooks(onRetry: () => void): {
    readonly pace: () => Promise<void>
    readonly onAnswer: (info: RateInfo) => void
    readonly onRetry: () => void
    readonly sent: boolean
    release(): void
  } {
    let waiting = false
    let sent = false
    const resume = (): void => {
      if (!waiting) return
      waiting = false
      this.#waiting -= 1
    }
    return {
      pace: async () => {
        resume()
        await this.pace()
        sent = true
      },
      get sent() {
        return sent
      },
      onAnswer: this.onAnswer,
      onRetry: () => {
        if (!waiting) {
          waiting = true
          this.#waiting += 1
          this.changed()
        }
        onRetry()
      },
      release: resume,
    }
  }

  /** The ceiling the caller gave. */
  get maxConcurrency(): number {
    return this.#state.maxConcurrency
  }

  /** Throttled answers received (429, Canvas's rate-limit 403). */
  get throttled(): number {
    return this.#throttled
  }

  /** Waits until a request may start, at most `maxWaitMs`; rejects with the signal's reason. */
  readonly pace = async (): Promise<void> => {
    const schedule = (callback: () => void, ms: number): { cancel(): void } =>
      this.#clock.setTimer(callback, ms)
    const until = this.#clock.now() + this.#maxWaitMs
    for (;;) {
      if (this.#signal.aborted) throw this.#signal.reason
      const now = this.#clock.now()
      const delayMs = Math.min(startDelayMs(this.#state, now), until - now)
      if (!(delayMs > 0)) break
      await pause(schedule, delayMs, this.#signal)
    }
    this.#state = started(this.#state, this.#clock.now())
    this.#inFlight += 1
  }

  /** Each attempt's end. */
  readonly onAnswer = (info: RateInfo): void => {
    if (info.throttled) this.#throttled += 1
    // A Retry-After beyond what the caller waits for holds nothing: its call fails at once.
    const retryAfterMs =
      info.retryAfterMs !== undefined && info.retryAfterMs > this.#maxWaitMs ? undefined : info.retryAfterMs
    this.#state = answered(this.#state, {
      ...info,
      retryAfterMs,
      at: this.#clock.now(),
      inFlight: this.#inFlight,
    })
    this.#inFlight = Math.max(0, this.#inFlight - 1)
    this.changed()
  }
}

interface Entry<T> {
  readonly item: T
  readonly index: number
  readonly key: string | undefined
}

/** How a pool run ended. @internal */
export interface PoolEnd<T> {
  /** Items read from the source (for an array: all of them). */
  readonly read: number
  /** Items read but never started (the run was aborted), in input order. */
  readonly notStarted: readonly { readonly item: T; readonly index: number }[]
}

/**
 * Runs `run` on every item of `items` (an iterable or async iterable, read lazily), at most
 * `pacer.allowed` at once, items of the same `key` one after another in input order. `run` must not
 * reject. Resolves when every started item has finished; rejects with the source's error (after
 * the items in progress have finished) when reading it fails. @internal
 */
export async function runPool<T>(
  items: Iterable<T> | AsyncIterable<T>,
  options: {
    readonly keyOf: (item: T) => string | undefined
    readonly run: (item: T, index: number) => Promise<void>
    readonly pacer: Pacer
    readonly signal: AbortSignal
  },
): Promise<PoolEnd<T>> {
  const { keyOf, run, pacer, signal } = options
  const iterator: AsyncIterator<T> | Iterator<T> =
    Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]()
  const ready: Entry<T>[] = []
  const waiting = new Map<string, Entry<T>[]>()
  const busy = new Set<string>()
  const running = new Set<Promise<void>>()
  let waitingCount = 0
  let read = 0
  let exhausted = false
  let wake: (() => void) | undefined
  const changed = (): void => {
    const resolve = wake
    wake = undefined
    resolve?.()
  }
  const nextChange = (): Promise<void> => new Promise<void>((resolve) => (wake = resolve))
  pacer.changed = changed
  const stopWatching = whenAborted(signal, changed)
  // A bulk run may wait on unref'd timers only (pacing, Retry-After): keep the process alive.
  const keepAlive = setInterval(() => undefined, 2 ** 30)
  const launch = (entry: Entry<T>): void => {
    if (entry.key !== undefined) busy.add(entry.key)
    const task = run(entry.item, entry.index).finally(() => {
      running.delete(task)
      const successor = entry.key === undefined ? undefined : waiting.get(entry.key)?.shift()
      if (successor !== undefined) {
        waitingCount -= 1
        ready.push(successor) // the key stays busy: its next item goes before any read later
        if (waiting.get(entry.key!)?.length === 0) waiting.delete(entry.key!)
      } else if (entry.key !== undefined) busy.delete(entry.key)
      changed()
    })
    running.add(task)
  }
  let failure: { readonly error: unknown } | undefined
  try {
    while (!signal.aborted) {
      // Items waiting for a retry leave their place to others, up to twice the ceiling in all.
      if (running.size - pacer.waiting >= pacer.allowed || running.size >= 2 * pacer.maxConcurrency) {
        await nextChange()
        continue
      }
      let entry = ready.shift()
      if (entry === undefined) {
        if (exhausted || waitingCount >= MAX_WAITING) {
          if (running.size === 0 && ready.length === 0) break
          await nextChange()
          continue
        }
        let next: IteratorResult<T>
        try {
          next = await iterator.next()
        } catch (error) {
          failure = { error }
          exhausted = true
          continue
        }
        if (next.done === true) {
          exhausted = true
          continue
        }
        entry = { item: next.value, index: read, key: keyOf(next.value) }
        read += 1
        if (signal.aborted) {
          ready.push(entry) // read while the run was being aborted: not started
          continue
        }
        if (entry.key !== undefined && busy.has(entry.key)) {
          const queue = waiting.get(entry.key) ?? []
          queue.push(entry)
          waiting.set(entry.key, queue)
          waitingCount += 1
          continue
        }
      }
      launch(entry)
    }
    await Promise.all(running)
  } finally {
    stopWatching()
    clearInterval(keepAlive)
    if (!exhausted) await Promise.resolve(iterator.return?.()).catch(() => undefined)
  }
  if (failure !== undefined) throw failure.error
  const notStarted = [...ready, ...[...waiting.values()].flat()].map(({ item, index }) => ({ item, index }))
  // An aborted array is accounted for to its end; an iterable is not read further.
  if (Array.isArray(items)) {
    for (let index = read; index < items.length; index++) notStarted.push({ item: items[index] as T, index })
    read = items.length
  }
  return { read, notStarted: notStarted.sort((a, b) => a.index - b.index) }
}
