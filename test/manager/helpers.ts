import {
  AccessToken,
  TokenkeeperError,
  tokenSource,
  type TokenManagerEvents,
  type TokenSource,
  type TokenManager,
} from '../../src/index.js'
import { afterEach } from 'vitest'
import { CHANNEL_NAMES, TokenManager as Manager } from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import type { Clock } from '../../src/clock.js'

/** Lets promises and microtasks settle (a few turns of the event loop, no wall-clock wait). */
export async function flush(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

/** Builds an AccessToken with millisecond-exact times. */
export function makeToken(
  value: string,
  issuedAt: number,
  lifetimeMs: number,
  refreshInMs?: number,
): AccessToken {
  return new AccessToken({
    value,
    type: 'Bearer',
    scopes: [],
    issuedAt,
    expiresAt: issuedAt + lifetimeMs,
    refreshAt: refreshInMs === undefined ? undefined : issuedAt + refreshInMs,
  })
}

/** One token request made to a {@link HeldSource}, waiting for the test to answer it. */
export interface PendingFetch {
  /** `clock.now()` when the request started: the token's issuedAt. */
  readonly startedAt: number
  readonly signal: AbortSignal | undefined
  /** Answers with a token of `lifetimeMs` issued at `startedAt` (value generated when omitted). */
  succeed(lifetimeMs: number, options?: { value?: string; refreshInMs?: number }): AccessToken
  /** Answers with this exact token. */
  resolveWith(token: AccessToken | Record<string, unknown>): void
  fail(error: unknown): void
  readonly settled: boolean
}

/** A token source whose every request waits until the test answers it. */
export interface HeldSource {
  readonly source: TokenSource
  /** Every request made so far, in order. */
  readonly fetches: PendingFetch[]
  /** Requests not answered yet. */
  pending(): PendingFetch[]
  /** The latest request (throws when there is none). */
  last(): PendingFetch
}

let counter = 0

/** A unique, recognisable token value (so a leak test can search for it). */
export function tokenValue(prefix = 'tok'): string {
  counter++
  return `${prefix}-SECRET-${counter}-${Math.random().toString(36).slice(2, 10)}`
}

/**
 * A held fetch is answered when the test says so: its time limit (`timeoutMs`, on the manager's
 * clock) is a week, longer than any test moves the clock while a fetch is held.
 */
const HELD_TIMEOUT_MS = 7 * 24 * 3_600_000

/**
 * `options.ignoreAbort`: the function does not listen to its signal (like a user function that
 * forgets to); by default a request rejects with the signal's reason when it aborts, as `fetch` does.
 */
export function heldSource(key: string, options: { ignoreAbort?: boolean } = {}): HeldSource {
  const fetches: PendingFetch[] = []
  const source = tokenSource(
    key,
    ({ signal, clock }) => {
      const startedAt = clock.now()
      return new Promise<AccessToken | Record<string, unknown>>((resolve, reject) => {
        let settled = false
        let stopListening = (): void => {}
        const fetch: PendingFetch = {
          startedAt,
          signal,
          succeed(lifetimeMs, options = {}) {
            const token = makeToken(
              options.value ?? tokenValue(key),
              startedAt,
              lifetimeMs,
              options.refreshInMs,
            )
            this.resolveWith(token)
            return token
          },
          resolveWith(token) {
            if (settled) throw new Error('this fetch was already answered')
            settled = true
            stopListening()
            resolve(token)
          },
          fail(error) {
            if (settled) throw new Error('this fetch was already answered')
            settled = true
            stopListening()
            // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes the test's error (or an abort reason) through unchanged
            reject(error)
          },
          get settled() {
            return settled
          },
        }
        fetches.push(fetch)
        if (options.ignoreAbort !== true && signal !== undefined) {
          const onAbort = () => {
            if (!settled) fetch.fail(signal.reason)
          }
          if (signal.aborted) onAbort()
          else {
            signal.addEventListener('abort', onAbort, { once: true })
            stopListening = () => signal.removeEventListener('abort', onAbort)
          }
        }
      })
    },
    { timeoutMs: HELD_TIMEOUT_MS },
  )
  return {
    source,
    fetches,
    pending: () => fetches.filter((f) => !f.settled),
    last() {
      const fetch = fetches.at(-1)
      if (fetch === undefined) throw new Error(`no fetch was made for ${key}`)
      return fetch
    },
  }
}

/** A source that answers at once with a fresh token of `lifetimeMs`, counting its calls. */
export function instantSource(
  key: string,
  lifetimeMs: number,
): { source: TokenSource; calls: () => number; tokens: AccessToken[] } {
  const tokens: AccessToken[] = []
  const source = tokenSource(key, ({ clock }) => {
    const token = makeToken(tokenValue(key), clock.now(), lifetimeMs)
    tokens.push(token)
    return token
  })
  return { source, calls: () => tokens.length, tokens }
}

export function transientError(retryAfterMs?: number): TokenkeeperError {
  return new TokenkeeperError('SERVER_ERROR', 'token endpoint answered 503', {
    retryable: true,
    status: 503,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  })
}

export function permanentError(): TokenkeeperError {
  return new TokenkeeperError('OAUTH_ERROR', 'token endpoint refused the client: invalid_client', {
    retryable: false,
    status: 401,
  })
}

/** Records every event a manager emits (each name in CHANNEL_NAMES), by name. */
export function recordEvents(manager: TokenManager): {
  readonly [K in keyof TokenManagerEvents]: TokenManagerEvents[K][0][]
} {
  const names = Object.keys(CHANNEL_NAMES) as (keyof TokenManagerEvents)[]
  const record = Object.fromEntries(names.map((name) => [name, [] as unknown[]])) as {
    [K in keyof TokenManagerEvents]: TokenManagerEvents[K][0][]
  }
  const emitter = manager
  for (const name of names) {
    emitter.on(name, (event: unknown) => {
      ;(record[name] as unknown[]).push(event)
    })
  }
  return record
}

/** A clock whose timers are kept in a list the test fires by hand (for checks on scheduling). */
export interface ManualClock extends Clock {
  time: number
  readonly timers: { readonly at: number; readonly callback: () => void; cancelled: boolean }[]
}

export function manualClock(start = 1_000_000): ManualClock {
  const clock: ManualClock = {
    time: start,
    timers: [],
    now: () => clock.time,
    setTimer(callback, delayMs) {
      const timer = { at: clock.time + delayMs, callback, cancelled: false }
      clock.timers.push(timer)
      return {
        cancel: () => {
          timer.cancelled = true
        },
      }
    },
  }
  return clock
}

/** Settles `promise` into a tagged result without throwing, for assertions. */
export function settle<T>(promise: Promise<T>): {
  readonly result: () =>
    { status: 'pending' } | { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: unknown }
} {
  let state:
    { status: 'pending' } | { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: unknown } = {
    status: 'pending',
  }
  promise.then(
    (value) => {
      state = { status: 'fulfilled', value }
    },
    (reason: unknown) => {
      state = { status: 'rejected', reason }
    },
  )
  return { result: () => state }
}

const managers: Manager[] = []

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()))
})

/** Closes these managers after the current test. */
export function closeAfterTest(...made: Manager[]): void {
  managers.push(...made)
}

/**
 * A manager on a test clock with random 0.5, closed after the test. With 0.5: refreshAt at 80 %
 * of the lifetime, and backoff = round(step × 0.55): attempt 1 → 138 ms, 2 → 275 ms, 3 → 550 ms.
 */
export function manager(options: ConstructorParameters<typeof Manager>[0] = {}) {
  const clock = createTestClock()
  const tokens = new Manager({ clock, random: () => 0.5, ...options })
  closeAfterTest(tokens)
  return { tokens, clock, start: clock.now() }
}
