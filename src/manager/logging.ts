import type { ManagerEvents } from './events.js'

/** A log method: pino's, winston's and `console`'s all fit. */
export type LogMethod = (...args: never[]) => unknown

/**
 * Any logger with `debug`, `info`, `warn` and `error` methods: pino, winston, bunyan, `console`.
 * A pino logger (recognised by `Symbol.for('pino.serializers')`) is called pino's way,
 * `logger.warn(fields, message)`; any other logger `logger.warn(message, fields)`.
 *
 * @example
 * ```ts
 * const tokens = new TokenManager({ logger: console }) // or pino(), a winston logger, ...
 * ```
 */
export interface TokenkeeperLogger {
  /** Renewals and callers failed fast (summarised). */
  readonly debug: LogMethod
  /** The store working again after failing. */
  readonly info: LogMethod
  /** Failed renewals and a failing store. */
  readonly warn: LogMethod
  /** Required (checked at construction) as every common logger has it; tokenkeeper writes nothing at this level. */
  readonly error: LogMethod
}

/** The fields of one log line: event data only, never a token or secret. */
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>

type Level = 'debug' | 'info' | 'warn'

/** Keys with a remembered failure kept for fail-fast summaries; more are forgotten oldest first. */
const MAX_TRACKED_KEYS = 1_000

interface FailFastTally {
  retryAt: number
  suppressed: number
}

/** Checks the `logger` option at construction: a caller mistake is a TypeError, not a silent no-op. */
export function checkLogger(logger: unknown): asserts logger is TokenkeeperLogger {
  const candidate = logger as Partial<Record<string, unknown>> | null
  for (const level of ['debug', 'info', 'warn', 'error'])
    if (typeof candidate?.[level] !== 'function')
      throw new TypeError(
        `TokenManager: logger must have debug, info, warn and error methods (${level} is missing)`,
      )
}

/**
 * Subscribes `logger` to a manager's own events. Renewals are `debug`, failures `warn`, callers
 * failed fast `debug` (the first per backoff window, then a count), the store failing `warn` once
 * until it recovers (`info`). Only refresh, fail-fast, store and invalidation events are
 * listened to: a cache hit logs nothing and costs nothing more. Lines carry the key (secret-free
 * by design), codes and error messages (scrubbed), never a token.
 */
export function subscribeLogger(
  manager: Pick<ManagerEvents, 'on'>,
  logger: TokenkeeperLogger,
  now: () => number,
): void {
  const pinoStyle = Symbol.for('pino.serializers') in logger
  const log = (level: Level, message: string, fields: LogFields): void => {
    const method = logger[level] as (...args: unknown[]) => unknown
    try {
      if (pinoStyle) method.call(logger, { tokenkeeper: fields }, message)
      else method.call(logger, message, fields)
    } catch {
      // A logger that throws must not break a refresh.
    }
  }

  const failFast = new Map<string, FailFastTally>()
  const summarise = (key: string): void => {
    const tally = failFast.get(key)
    if (tally === undefined) return
    failFast.delete(key)
    if (tally.suppressed > 0)
      log('debug', `tokenkeeper: ${tally.suppressed} more callers for ${key} were failed fast`, {
        event: 'failFast',
        key,
        count: tally.suppressed,
      })
  }

  // The store: degraded at its first error, recovered when a refresh that started after the last
  // error ends with no store error of its own (every refresh with a store reads it first).
  let storeDegradedAt: number | undefined
  let storeErrorsWhileDegraded = 0
  let lastStoreErrorSeq = 0
  let seq = 0
  const refreshStartedSeq = new Map<string, number>()

  manager.on('refreshStart', (event) => {
    refreshStartedSeq.set(event.key, ++seq)
  })
  manager.on('refreshSuccess', (event) => {
    summarise(event.key)
    const started = refreshStartedSeq.get(event.key)
    refreshStartedSeq.delete(event.key)
    log(
      'debug',
      `tokenkeeper: ${event.mode === 'background' ? 'renewed' : 'obtained'} a token for ${event.key} in ${event.durationMs} ms (${event.origin})`,
      {
        event: 'refreshSuccess',
        key: event.key,
        mode: event.mode,
        origin: event.origin,
        durationMs: event.durationMs,
        expiresAt: event.expiresAt,
      },
    )
    if (event.binding?.bound === false) {
      // RFC 9449: a Bearer answer to a request with a DPoP proof. Worth a look, not an error.
      log(
        'warn',
        `tokenkeeper: the token endpoint answered a bearer token to a DPoP request for ${event.key}; it is used as a bearer token (requireDpopBinding makes this an error)`,
        { event: 'refreshSuccess', key: event.key, dpop: 'bearer-answer', jkt: event.binding.jkt },
      )
    }
    if (storeDegradedAt !== undefined && started !== undefined && started > lastStoreErrorSeq) {
      const downMs = now() - storeDegradedAt
      log(
        'info',
        `tokenkeeper: the token store answers again after ${storeErrorsWhileDegraded} errors in ${downMs} ms`,
        {
          event: 'storeRecovered',
          errors: storeErrorsWhileDegraded,
          downMs,
        },
      )
      storeDegradedAt = undefined
      storeErrorsWhileDegraded = 0
    }
  })
  manager.on('refreshFailure', (event) => {
    summarise(event.key)
    refreshStartedSeq.delete(event.key)
    const serving = event.servingCached ? 'the cached token is served meanwhile' : 'no valid token to serve'
    log(
      'warn',
      `tokenkeeper: ${event.mode} token refresh for ${event.key} failed: ${event.code}: ${event.message} (${event.retryable ? 'retryable' : 'not retryable'}; next attempt in ${Math.max(0, event.retryAt - now())} ms; ${serving})`,
      {
        event: 'refreshFailure',
        key: event.key,
        mode: event.mode,
        code: event.code,
        message: event.message,
        retryable: event.retryable,
        retryAt: event.retryAt,
        servingCached: event.servingCached,
        durationMs: event.durationMs,
      },
    )
  })
  manager.on('failFast', (event) => {
    const tally = failFast.get(event.key)
    if (tally !== undefined && tally.retryAt === event.retryAt) {
      tally.suppressed++
      return
    }
    if (tally !== undefined) summarise(event.key)
    failFast.set(event.key, { retryAt: event.retryAt, suppressed: 0 })
    if (failFast.size > MAX_TRACKED_KEYS) failFast.delete(failFast.keys().next().value as string)
    log(
      'debug',
      `tokenkeeper: failing fast for ${event.key} with ${event.code} for ${Math.max(0, event.retryAt - now())} ms more (backing off; later callers are counted)`,
      { event: 'failFast', key: event.key, code: event.code, retryAt: event.retryAt },
    )
  })
  manager.on('storeError', (event) => {
    lastStoreErrorSeq = ++seq
    storeErrorsWhileDegraded++
    if (storeDegradedAt !== undefined) return
    storeDegradedAt = now()
    log(
      'warn',
      `tokenkeeper: the token store failed (${event.operation}${event.key === undefined ? '' : ` for ${event.key}`}: ${event.message}); carrying on with this process's memory until it answers again`,
      { event: 'storeError', key: event.key, operation: event.operation, message: event.message },
    )
  })
  manager.on('invalidate', (event) => {
    if (event.removed)
      log('debug', `tokenkeeper: invalidated the token for ${event.key} (${event.origin})`, {
        event: 'invalidate',
        key: event.key,
        origin: event.origin,
      })
  })
}
