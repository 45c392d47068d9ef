import { inspect } from 'node:util'
import { deadline, raceAbort } from '../abort.js'
import { systemClock, type Clock } from '../clock.js'
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../http/token-request.js'
import { isTokenkeeperError, TokenkeeperError } from '../errors.js'
import { AccessToken } from '../token/access-token.js'
import { parseTokenResponse } from '../token/parse.js'
import { wrappedKey } from './cache-key.js'
import type { FetchTokenOptions, TokenSource } from './types.js'

/** What a user function given to {@link tokenSource} receives. */
export interface TokenFunctionContext {
  /** Aborted when `timeoutMs` passes or the caller's request ends (`close()`, its signal); pass it to `fetch`. */
  readonly signal: AbortSignal | undefined
  /** The clock of the caller; `now()` is the instant to measure `expires_in` from. */
  readonly clock: Clock
}

/**
 * What a user function may return: an {@link AccessToken}, or a raw RFC 6749 §5.1 response
 * object (`{ access_token, expires_in, ... }`) that tokenkeeper validates like any other.
 */
export type TokenFunctionResult = AccessToken | Readonly<Record<string, unknown>>

/** A user function that obtains one token. */
export type TokenFunction = (
  context: TokenFunctionContext,
) => Promise<TokenFunctionResult> | TokenFunctionResult

/** Options of {@link tokenSource}. */
export interface TokenSourceOptions {
  /**
   * How long one call of the function may take, on the clock of the call (the manager's); its
   * `signal` aborts then, and the call fails with `TIMEOUT` even if the function ignores the
   * signal. Default 10 s.
   */
  readonly timeoutMs?: number
}

class FunctionSource implements TokenSource {
  readonly key: string
  readonly #fn: TokenFunction
  readonly #timeoutMs: number

  constructor(key: string, fn: TokenFunction, options: TokenSourceOptions) {
    if (typeof key !== 'string' || key.length === 0) {
      throw new TypeError('tokenSource: key must be a non-empty string')
    }
    if (typeof fn !== 'function') throw new TypeError('tokenSource: the second argument must be a function')
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new TypeError('tokenSource: timeoutMs must be a positive number of milliseconds')
    }
    this.key = wrappedKey('fn', key)
    this.#fn = fn
    this.#timeoutMs = timeoutMs
  }

  async fetchToken(options?: FetchTokenOptions): Promise<AccessToken> {
    const clock = options?.clock ?? systemClock
    const issuedAt = clock.now()
    const limit = deadline(this.#timeoutMs, (callback, ms) => clock.setTimer(callback, ms), options?.signal)
    const signal = limit.signal
    let result: TokenFunctionResult
    try {
      result = await raceAbort(
        Promise.resolve().then(() => this.#fn({ signal, clock })),
        signal,
      )
    } catch (error) {
      if (options?.signal?.aborted === true) throw options.signal.reason
      if (limit.timedOut) {
        throw new TokenkeeperError(
          'TIMEOUT',
          `token source ${this.key} did not answer within ${this.#timeoutMs} ms`,
          {
            retryable: true,
          },
        )
      }
      if (isTokenkeeperError(error)) throw error
      throw new TokenkeeperError(
        'SOURCE_FAILED',
        `token source ${this.key} failed (its own error is error.cause)`,
        {
          cause: error,
          retryable: true,
        },
      )
    } finally {
      limit.dispose()
    }
    if (result instanceof AccessToken) return result
    return parseTokenResponse(result, { issuedAt, endpoint: `token source ${this.key}` })
  }

  toJSON(): Record<string, string> {
    return { kind: 'tokenSource', key: this.key }
  }

  [inspect.custom](): string {
    return `TokenSource ${inspect(this.toJSON())}`
  }
}

/**
 * Wraps any function that obtains a token as a {@link TokenSource}. `key` must name everything
 * that changes the token (and no secret); the source's key is `fn|` and `key` as given, not
 * escaped.
 *
 * The key is the caller's namespace: two sources with the same `key` share their tokens, in
 * memory and in a shared store, whatever their functions. It can never be a built-in source's
 * key (none starts with `fn|`). A `key` built from parts must keep them apart itself:
 * `` `vault:${tenant}:${api}` `` is one key for tenant `a:b`, api `c` and tenant `a`, api `b:c`,
 * so a part that comes from outside the program (a tenant named in a request, a token's claims)
 * must be delimited, for example with `encodeURIComponent(part)`.
 *
 * @example
 * ```ts
 * import { tokenSource } from 'tokenkeeper'
 * const source = tokenSource('vault:billing-api', async ({ signal }) => {
 *   const res = await fetch('https://vault.internal/token', { signal })
 *   return (await res.json()) as Record<string, unknown> // { access_token, expires_in }
 * })
 * ```
 */
export function tokenSource(key: string, fn: TokenFunction, options: TokenSourceOptions = {}): TokenSource {
  return new FunctionSource(key, fn, options)
}
