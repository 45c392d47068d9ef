/** The manager's checks of what callers pass and of what goes wrong, as plain functions. */
import { isTokenkeeperError, TokenkeeperError } from '../errors.js'
import type { TokenSource } from '../sources/types.js'

export function closedError(): TokenkeeperError {
  return new TokenkeeperError('MANAGER_CLOSED', 'the token manager is closed', { retryable: false })
}

/**
 * What a `get` gets when the manager's injected clock fails: its `now()` threw or answered
 * something that is not a finite number, so no token's window can be told.
 */
export function clockFailedError(): TokenkeeperError {
  return new TokenkeeperError(
    'CLOCK_FAILED',
    'the token manager’s clock failed: its now() threw or answered something that is not a finite number',
    { retryable: false },
  )
}

/**
 * What callers see of a failed refresh: a tokenkeeper error as it is, anything else (a raw
 * `TokenSource` that throws a plain error, or answers with something that is not a token)
 * wrapped as `SOURCE_FAILED` with the original as `cause`.
 */
export function asTokenkeeperError(error: unknown, key: string): unknown {
  if (isTokenkeeperError(error)) return error
  return new TokenkeeperError('SOURCE_FAILED', `token source ${key} failed (its own error is error.cause)`, {
    cause: error,
    retryable: true,
  })
}

/**
 * What is wrong with something passed as a {@link TokenSource}, for plain JavaScript callers: a
 * source is the cache key and the way to fetch, and a missing key would make every such source
 * share one cached token.
 */
export function sourceMistake(source: unknown, where: string): TypeError | undefined {
  try {
    return shapeMistake(source, where)
  } catch {
    return unreadableSource(where)
  }
}

/**
 * The mistake of a source whose `key`, `fetchToken`, `resolve` or `whenKeyKnown` cannot even be
 * read (a getter that throws, a Proxy): what it threw is not passed on, a source may hold secrets.
 */
export function unreadableSource(where: string): TypeError {
  return new TypeError(
    `${where}: the source could not be read (its key, fetchToken, resolve or whenKeyKnown threw); a TokenSource's members must be plain values`,
  )
}

function shapeMistake(source: unknown, where: string): TypeError | undefined {
  const candidate = source as Partial<TokenSource> | null | undefined
  if (typeof candidate !== 'object' || candidate === null)
    return new TypeError(
      `${where}: the source must be a TokenSource object (clientCredentials(...), tokenSource(key, fn), ...)`,
    )
  if (typeof candidate.key !== 'string' || candidate.key === '') {
    return new TypeError(
      `${where}: the source has no key: a hand-written TokenSource needs a non-empty string \`key\` that names its token (two sources with the same key share one token); tokenSource(key, fn) builds one`,
    )
  }
  if (typeof candidate.fetchToken !== 'function')
    return new TypeError(`${where}: the source has no fetchToken() function`)
  return undefined
}

/** Whether `signal` has aborted (a function, so that a check before an `await` does not narrow it). */
export function aborted(signal: AbortSignal): boolean {
  return signal.aborted
}

export function checkWaitMs(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined
  // Infinity is allowed: wait until the token arrives, a non-retryable error or the signal.
  if (typeof value !== 'number' || !(value >= 0))
    throw new TypeError(`${what} must be a non-negative number of milliseconds`)
  return value
}

export function failureFacts(error: unknown): { retryable: boolean; retryAfterMs: number | undefined } {
  if (isTokenkeeperError(error)) return { retryable: error.retryable, retryAfterMs: error.retryAfterMs }
  return { retryable: true, retryAfterMs: undefined }
}
