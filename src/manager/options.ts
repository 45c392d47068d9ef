/** The options and counters of a {@link TokenManager}: what a user configures and reads, and the checks of what they configure. */
import type { Clock } from '../clock.js'
import type { AccessToken } from '../token/access-token.js'
import type { TokenStore } from '../stores/types.js'
import type { TokenkeeperLogger } from './logging.js'
import { checkWaitMs } from './checks.js'
import {
  checkPolicy,
  DEFAULT_BACKOFF_POLICY,
  DEFAULT_REFRESH_POLICY,
  type BackoffPolicy,
  type RefreshPolicy,
} from './policy.js'

/** Options of {@link TokenManager}. Every one is optional. */
export interface TokenManagerOptions extends Partial<RefreshPolicy>, Partial<BackoffPolicy> {
  /**
   * Where tokens are shared beyond this manager's own memory (for example `redisStore(...)`).
   * Default: none; tokens live in this manager's bounded memory only.
   */
  readonly store?: TokenStore
  /** Most keys kept in memory; the least recently used go first. Default 10,000. */
  readonly maxEntries?: number
  /**
   * Time and timers. Default: the system clock. Tests inject `createTestClock()`. A clock
   * without `now()` and `setTimer()`, or whose `now()` is not a finite number at construction,
   * is a `TypeError`. A clock stepped back is read as going on from where it was (a token never
   * outlives its real lifetime); a `get` on a clock whose `now()` throws or answers anything but
   * a finite number rejects with `CLOCK_FAILED`, and `peek` answers `undefined`.
   */
  readonly clock?: Clock
  /**
   * Random numbers in [0, 1) for jitter. Default `Math.random`. A draw outside the range is
   * read as its nearest end; one that is not a number, or a call that throws, as 0.
   */
  readonly random?: () => number
  /**
   * Renew recently used tokens by timer at their refresh point, even with no calls. `true`
   * means keys used within the last 15 minutes; `{ idleMs }` sets that span.
   */
  readonly proactive?:
    | boolean
    | {
        /** Keys used within this many milliseconds are renewed by timer. Default 15 minutes. */
        readonly idleMs?: number
      }
  /** How long a fleet-wide fetch lock lives (a dead holder blocks others no longer). Default 15 s. */
  readonly lockTtlMs?: number
  /**
   * The longest one store call may take; a call that takes longer counts as a store error (a
   * miss). A lock wait gets its own wait time plus this. Measured on `clock`. Default 5 s.
   */
  readonly storeTimeoutMs?: number
  /**
   * How long a caller may wait through an outage instead of failing at once. With 0 (the
   * default, right for request handlers) a call that finds no servable token during a backoff
   * window gets the remembered error at once. With a positive value (batch jobs) such a call
   * waits for the manager's next attempt, joins it, and keeps waiting through retryable
   * failures until a token arrives, a non-retryable error, `close()`, its `signal`, or until
   * the next attempt would start later than this many milliseconds after the call: then it
   * gets the last error. Waiting makes no extra token requests: every waiter joins the one
   * attempt the backoff schedule allows. Per call: {@link GetTokenOptions.waitForRecoveryMs}.
   */
  readonly waitForRecoveryMs?: number
  /**
   * A logger (pino, winston, `console`, any object with `debug`/`info`/`warn`/`error`) for
   * renewals (`debug`), failures (`warn`), callers failed fast (`debug`, summarised), the store
   * failing (`warn`) and recovering (`info`). Lines carry keys and error codes, never a token or
   * secret. Cache hits log nothing. Default: none. See `docs/INTEGRATIONS.md#logging`.
   */
  readonly logger?: TokenkeeperLogger
}

/** Options of {@link TokenManager.get}. */
export interface GetTokenOptions {
  /** Ends this caller's wait only; the shared token request goes on for the others. */
  readonly signal?: AbortSignal | undefined
  /**
   * For this call, the manager's {@link TokenManagerOptions.waitForRecoveryMs}: how long to
   * wait through an outage for a later attempt instead of failing at once (0: fail at once).
   */
  readonly waitForRecoveryMs?: number | undefined
}

/** Options of {@link TokenManager.invalidate}. */
export interface InvalidateOptions {
  /** Drop the cached token only if it is this one (compare-and-delete). Default: whatever is cached. */
  readonly token?: AccessToken | string | undefined
}

/** Counters and gauges of a {@link TokenManager}. Contains no token or secret. */
export interface TokenManagerStats {
  /** Keys held in memory. */
  readonly entries: number
  /** Calls served from memory (fresh or advisory window). */
  readonly hits: number
  /** Calls that had to wait (cold key, or the token reached its mandatory window). */
  readonly misses: number
  /** Callers that joined a request already in flight instead of starting one. */
  readonly joined: number
  /** Token requests sent to a token source. */
  readonly fetches: number
  /** Refreshes that ended in an error. */
  readonly failures: number
  /** Callers given the remembered error at once during a backoff window. */
  readonly failFast: number
  /** Times a caller with `waitForRecoveryMs` waited for the next attempt instead of failing. */
  readonly waitedForRecovery: number
  /** Refreshes started in the background (advisory window or proactive timer). */
  readonly backgroundRefreshes: number
  /** Hits served while the key's renewal was failing. */
  readonly staleServed: number
  /** Tokens adopted from the store (fetched by another manager or process). */
  readonly storeHits: number
  /** Store operations that failed (each treated as a miss). */
  readonly storeErrors: number
  /** Refreshes running now. */
  readonly inFlight: number
}

/** The counters of {@link TokenManagerStats} a manager counts itself, where things happen. */
export type Counters = { -readonly [K in Exclude<keyof TokenManagerStats, 'entries'>]: number }

const DEFAULT_IDLE_MS = 15 * 60_000

/** A manager's options checked, with their defaults filled in (a TypeError names a bad one). */
export function resolveOptions(options: TokenManagerOptions): {
  readonly policy: RefreshPolicy & BackoffPolicy
  readonly maxEntries: number
  readonly idleMs: number | undefined
  readonly lockTtlMs: number
  readonly storeTimeoutMs: number
  readonly waitForRecoveryMs: number
} {
  const policy = { ...DEFAULT_REFRESH_POLICY, ...DEFAULT_BACKOFF_POLICY }
  for (const name of Object.keys(policy) as (keyof typeof policy)[]) {
    const value = options[name]
    if (value !== undefined) policy[name] = value
  }
  checkPolicy(policy)
  const maxEntries = options.maxEntries ?? 10_000
  if (!Number.isInteger(maxEntries) || maxEntries < 1)
    throw new TypeError('TokenManager: maxEntries must be a positive integer')
  const proactive = options.proactive
  if (
    proactive !== undefined &&
    typeof proactive !== 'boolean' &&
    (typeof proactive !== 'object' || proactive === null)
  ) {
    throw new TypeError('TokenManager: proactive must be true, false or { idleMs }')
  }
  if (options.random !== undefined && typeof options.random !== 'function')
    throw new TypeError('TokenManager: random must be a function answering numbers in [0, 1)')
  if (options.store !== undefined) checkStore(options.store)
  const idleMs =
    proactive === undefined || proactive === false
      ? undefined
      : proactive === true
        ? DEFAULT_IDLE_MS
        : (proactive.idleMs ?? DEFAULT_IDLE_MS)
  const lockTtlMs = options.lockTtlMs ?? 15_000
  if (!Number.isFinite(lockTtlMs) || lockTtlMs <= 0)
    throw new TypeError('TokenManager: lockTtlMs must be a positive number')
  if (idleMs !== undefined && !(idleMs >= 0 && Number.isFinite(idleMs))) {
    throw new TypeError('TokenManager: proactive.idleMs must be a non-negative number')
  }
  const storeTimeoutMs = options.storeTimeoutMs ?? 5_000
  if (!Number.isFinite(storeTimeoutMs) || storeTimeoutMs <= 0)
    throw new TypeError('TokenManager: storeTimeoutMs must be a positive number')
  const waitForRecoveryMs = checkWaitMs(options.waitForRecoveryMs, 'TokenManager: waitForRecoveryMs') ?? 0
  return { policy, maxEntries, idleMs, lockTtlMs, storeTimeoutMs, waitForRecoveryMs }
}

const STORE_METHODS = ['get', 'set', 'delete', 'clear'] as const
const OPTIONAL_STORE_METHODS = ['acquireLock', 'subscribe', 'close'] as const

/**
 * Checks the shape of a `store` at construction: an object with `get`, `set`, `delete` and
 * `clear` functions, and `acquireLock`, `subscribe` and `close` functions when present. What a
 * store answers later is checked on every call (a wrong answer is a `storeError` and a miss).
 */
function checkStore(store: unknown): void {
  if (typeof store !== 'object' || store === null)
    throw new TypeError(
      'TokenManager: store must be a TokenStore object (memoryStore(), redisStore(...), ...)',
    )
  const candidate = store as Record<string, unknown>
  const missing = STORE_METHODS.filter((name) => typeof candidate[name] !== 'function')
  if (missing.length > 0)
    throw new TypeError(
      `TokenManager: store must have get, set, delete and clear functions (${missing.join(', ')} missing)`,
    )
  const wrong = OPTIONAL_STORE_METHODS.filter(
    (name) => candidate[name] !== undefined && typeof candidate[name] !== 'function',
  )
  if (wrong.length > 0)
    throw new TypeError(`TokenManager: store ${wrong.join(', ')} must be a function when given`)
}
