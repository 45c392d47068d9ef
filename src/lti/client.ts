import { deadline, pause } from '../abort.js'
import { systemClock, wallTime, type Clock } from '../clock.js'
import { isTokenkeeperError, TokenkeeperError } from '../errors.js'
import { parseRetryAfter } from '../http/retry-after.js'
import { readCapped, transportCode } from '../http/token-request.js'
import type { TokenManager } from '../manager/manager.js'
import { safeCause, SecretSet } from '../secrets.js'
import type { TokenSource } from '../sources/types.js'
import { LtiServiceError } from './errors.js'
import { checkSameHost, parseLinkHeader, type WebLink } from './links.js'
import type { LtiSourceOptions } from './registration.js'

/**
 * Options of the grade and roster services. Every one is optional.
 *
 * @example
 * ```ts
 * import { MembershipsService, type LtiServiceOptions } from 'tokenkeeper/lti'
 * const options: LtiServiceOptions = { timeoutMs: 10_000, source: { assertionLifetimeMs: 60_000 } }
 * const roster = await MembershipsService.fromClaim(tokens, registration, claim, options)
 * ```
 */
export interface LtiServiceOptions {
  /** The `fetch` for service calls and, unless `source.fetch` is set, token requests. */
  readonly fetch?: typeof globalThis.fetch
  /**
   * Time limit of each attempt of a service call: the wait for a token, the headers and the whole
   * body (a body that stalls ends as `TIMEOUT`). On the service clock. Default 30 s.
   */
  readonly timeoutMs?: number
  /** Cap on each service response body. Default 16 MiB. */
  readonly maxResponseBytes?: number
  /**
   * The most pages one paged read (line items, results, members, differences) follows: a
   * platform whose `next` links never end fails with `INVALID_SERVICE_RESPONSE` after this many
   * pages instead of being read for ever. Default 100 000.
   */
  readonly maxPages?: number
  /** The clock of score timestamps and token requests. Default: the system clock. */
  readonly clock?: Clock
  /** Ends the wait for the token `fromClaim` / `withEndpoint` resolve to check its scopes. */
  readonly signal?: AbortSignal
  /** Options of the token requests (assertion lifetime, token request timeout, ...). */
  readonly source?: LtiSourceOptions
  /**
   * Retries of service calls (reads, PUT, DELETE, score posts) on 429, 503, Canvas's rate-limit
   * 403, network errors and timeouts; `false` turns them off. Default: 5 attempts, backoff from
   * 500 ms with full jitter, capped at 30 s.
   */
  readonly retry?: LtiRetryOptions | false
}

/**
 * Options of one service call.
 *
 * @example
 * ```ts
 * await grades.postScore(score, { signal: AbortSignal.timeout(5_000) })
 * ```
 */
export interface CallOptions {
  /** Ends this call (and the wait for its token) with the signal's reason. */
  readonly signal?: AbortSignal
}

const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
const DEFAULT_MAX_PAGES = 100_000

/** Checks the numeric service options. @internal */
export function checkServiceOptions(options: LtiServiceOptions, what: string): void {
  for (const name of ['timeoutMs', 'maxResponseBytes'] as const) {
    const value = options[name]
    if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
      throw new TypeError(`${what}: ${name} must be a positive number`)
    }
  }
  if (options.maxPages !== undefined && (!Number.isSafeInteger(options.maxPages) || options.maxPages < 1)) {
    throw new TypeError(`${what}: maxPages must be a positive integer`)
  }
  retryPolicyOf(options.retry, what)
}

/** The source options a service passes on: its clock and fetch unless set there. @internal */
export function sourceOptionsOf(options: LtiServiceOptions): LtiSourceOptions {
  return {
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    ...options.source,
  }
}

/**
 * Retries of service calls (see `docs/LTI.md`, "Retries"). Reads (GET), idempotent writes (PUT,
 * DELETE) and score posts are retried on 429, 503, Canvas's rate-limit 403, network errors and
 * timeouts, with exponential backoff and full jitter, honouring `Retry-After`.
 *
 * @example
 * ```ts
 * import type { LtiRetryOptions } from 'tokenkeeper/lti'
 * const retry: LtiRetryOptions = { attempts: 6, baseDelayMs: 250, onRetry: (e) => console.warn(e.code, e.delayMs) }
 * ```
 */
export interface LtiRetryOptions {
  /** Attempts in all, the first included: 1 turns retries off. Default 5. */
  readonly attempts?: number
  /**
   * Attempt n (1 for the first) that failed is followed by a wait drawn uniformly from
   * `[0, min(maxDelayMs, baseDelayMs × 2^(n-1)))` (full jitter). Default 500.
   */
  readonly baseDelayMs?: number
  /** Cap of a backoff wait. A `Retry-After` longer than this ends the retries (the error is thrown). Default 30 000. */
  readonly maxDelayMs?: number
  /** Also retry creating a line item (a POST: a retry after a lost answer may create a second one). Default false. */
  readonly lineItemCreation?: boolean
  /** Randomness of the jitter, in [0, 1). Default `Math.random`. */
  readonly random?: () => number
  /** Called before each wait for a retry. */
  readonly onRetry?: (event: LtiRetryEvent) => void
}

/**
 * A service call that failed and will be retried after `delayMs`.
 *
 * @example
 * ```ts
 * const onRetry = (event: LtiRetryEvent) => console.warn(`${event.method} ${event.endpoint}: ${event.code}, again in ${event.delayMs} ms`)
 * ```
 */
export interface LtiRetryEvent {
  /** The HTTP method of the call, e.g. `POST`. */
  readonly method: string
  /** The URL without its query string. */
  readonly endpoint: string
  /** The attempt that failed (1 for the first). */
  readonly attempt: number
  /** How long the retry waits. */
  readonly delayMs: number
  /** The code of the failure (`SERVICE_REQUEST_FAILED`, `TIMEOUT`, `CONNECTION_RESET`, ...). */
  readonly code: string
  /** The HTTP status, when there was an answer. */
  readonly status: number | undefined
  /** A rate-limit answer: 429, or Canvas's 403 `Rate Limit Exceeded`. */
  readonly throttled: boolean
}

/** What a platform said about its rate limit on one answer (Canvas's headers). @internal */
export interface RateInfo {
  /** The HTTP status; 0 when the attempt ended without an answer (network error, timeout). */
  readonly status: number
  /** `Retry-After`, when sent. */
  readonly retryAfterMs: number | undefined
  /** `X-Rate-Limit-Remaining`, when sent. */
  readonly remaining: number | undefined
  /** `X-Request-Cost`, when sent. */
  readonly cost: number | undefined
  readonly throttled: boolean
}

/** One service request. @internal */
export interface ServiceRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  readonly url: URL
  readonly accept?: string
  readonly contentType?: string
  /** The body, or a function building it for each attempt (a score gets a new timestamp). */
  readonly body?: string | ((attempt: number) => string)
  readonly signal?: AbortSignal | undefined
  /** Read the body as JSON (`undefined` for a 204), or discard it. Default `none`. */
  readonly read?: 'json' | 'none'
  /** Whether this request may be sent again (idempotent, or opted in). */
  readonly retry?: boolean
  /** Asked before a retry is sent; `false` drops it (a newer score was posted meanwhile). */
  readonly beforeRetry?: () => boolean
  readonly onRetry?: (event: LtiRetryEvent) => void
  /** Awaited before each attempt is sent (bulk calls pace their requests here); may reject with the signal's reason. */
  readonly pace?: () => Promise<void>
  /** Called when each attempt ends, with or without an answer. */
  readonly onAnswer?: (info: RateInfo) => void
}

/** A 2xx answer, its body read. @internal */
export interface ServiceAnswer {
  readonly status: number
  readonly headers: Headers
  readonly json: unknown
  readonly attempts: number
  /** True when a retry was dropped by `beforeRetry` (nothing more was sent); `error` is the last failure. */
  readonly superseded: boolean
  readonly error?: TokenkeeperError
}

/** A page of a paged GET. @internal */
export interface Page {
  readonly url: URL
  readonly json: unknown
  readonly links: readonly WebLink[]
  /**
   * The `next` link, checked and resolved; undefined on the last page, and when the link was
   * refused (the generator then throws right after yielding this page).
   */
  readonly next: URL | undefined
}

const describe = (url: URL): string => `${url.host}${url.pathname}`

const DEFAULT_ATTEMPTS = 5
const DEFAULT_BASE_DELAY_MS = 500
const DEFAULT_MAX_DELAY_MS = 30_000
/** How much of a 403 body is read to tell Canvas's throttling from a refusal. */
const THROTTLE_SNIFF_BYTES = 4_096
const TRANSPORT_CODES: ReadonlySet<string> = new Set([
  'TIMEOUT',
  'CONNECTION_RESET',
  'CONNECTION_REFUSED',
  'NETWORK_ERROR',
])
const never = new AbortController().signal
/** What an attempt answers when `beforeRetry` dropped it after the pacing wait: nothing was sent. */
const DROPPED: unique symbol = Symbol('dropped')
/** Read through a call, so that a check made before an `await` does not narrow it. */
const isAborted = (signal: AbortSignal): boolean => signal.aborted

interface RetryPolicy {
  readonly attempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  readonly lineItemCreation: boolean
  readonly random: () => number
  readonly onRetry: ((event: LtiRetryEvent) => void) | undefined
}

/** Checks and completes the retry options. @internal */
export function retryPolicyOf(retry: LtiRetryOptions | false | undefined, what: string): RetryPolicy {
  if (retry === false) retry = { attempts: 1 }
  if (typeof retry !== 'object' && retry !== undefined) {
    throw new TypeError(`${what}: retry must be an object or false`)
  }
  const attempts = retry?.attempts ?? DEFAULT_ATTEMPTS
  if (!Number.isSafeInteger(attempts) || attempts < 1 || attempts > 100) {
    throw new TypeError(`${what}: retry.attempts must be an integer from 1 to 100`)
  }
  for (const name of ['baseDelayMs', 'maxDelayMs'] as const) {
    const value = retry?.[name]
    if (value !== undefined && (!Number.isFinite(value) || value < 0)) {
      throw new TypeError(`${what}: retry.${name} must be a finite, non-negative number`)
    }
  }
  for (const name of ['random', 'onRetry'] as const) {
    if (retry?.[name] !== undefined && typeof retry[name] !== 'function') {
      throw new TypeError(`${what}: retry.${name} must be a function`)
    }
  }
  return {
    attempts,
    baseDelayMs: retry?.baseDelayMs ?? DEFAULT_BASE_DELAY_MS,
    maxDelayMs: retry?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
    lineItemCreation: retry?.lineItemCreation === true,
    random: retry?.random ?? Math.random,
    onRetry: retry?.onRetry,
  }
}

/** Whether a failure may be retried, and what it said of its timing. */
function retryableFailure(
  error: unknown,
): { readonly throttled: boolean; readonly retryAfterMs: number | undefined } | undefined {
  if (error instanceof LtiServiceError) {
    if (error.status === 429 || error.status === 503 || error.throttled) {
      return { throttled: error.throttled, retryAfterMs: error.retryAfterMs }
    }
    return undefined
  }
  if (isTokenkeeperError(error) && TRANSPORT_CODES.has(error.code)) {
    return { throttled: false, retryAfterMs: undefined }
  }
  return undefined
}

/** Passes what an attempt learnt to the request's hook; a hook's failure must not change the call. */
/** What an attempt that got no answer (dropped, network error, timeout) tells the pacing. */
const NO_ANSWER: RateInfo = Object.freeze({
  status: 0,
  retryAfterMs: undefined,
  remaining: undefined,
  cost: undefined,
  throttled: false,
})

function tell(request: ServiceRequest, info: RateInfo): void {
  try {
    request.onAnswer?.(info)
  } catch {
    // ignored
  }
}

function headerNumber(headers: Headers, name: string): number | undefined {
  const value = headers.get(name)
  if (value === null) return undefined
  const number = Number.parseFloat(value)
  return Number.isFinite(number) ? number : undefined
}

/** Reads at most `maxBytes` of a body as text and discards the rest. */
async function readPrefix(response: Response, maxBytes: number): Promise<string> {
  if (response.body === null) return ''
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  while (total < maxBytes) {
    const { done, value } = await reader.read()
    if (done) break
    chunks.push(value)
    total += value.byteLength
  }
  await reader.cancel().catch(() => undefined)
  return new TextDecoder().decode(Buffer.concat(chunks, total)).slice(0, maxBytes)
}

/**
 * Sends AGS/NRPS requests through the token manager's fetch wrapper: a token from the manager
 * on every request, and on 401 the token that was sent is invalidated (compare-and-delete) and
 * the request retried once. No redirect is followed; each attempt has a time limit that covers
 * the wait for a token, the headers and the whole body, and a body cap. Requests marked
 * `retry` are sent again on 429, 503, Canvas's rate-limit 403, network errors and timeouts.
 * @internal
 */
export class ServiceClient {
  readonly #send: typeof globalThis.fetch
  readonly #timeoutMs: number
  readonly #maxBytes: number
  readonly #maxPages: number
  readonly #clock: Clock
  readonly #retry: RetryPolicy
  readonly #tokens: TokenManager
  readonly #source: TokenSource

  constructor(tokens: TokenManager, source: TokenSource, options: LtiServiceOptions) {
    this.#tokens = tokens
    this.#source = source
    this.#send = tokens.fetch(source, options.fetch === undefined ? {} : { fetch: options.fetch })
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.#maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
    this.#maxPages = options.maxPages ?? DEFAULT_MAX_PAGES
    this.#clock = options.clock ?? systemClock
    this.#retry = retryPolicyOf(options.retry, 'tokenkeeper/lti')
  }

  /** The service clock. */
  get clock(): Clock {
    return this.#clock
  }

  /**
   * The longest wait the retry policy accepts (`retry.maxDelayMs`): a bulk run's pacing never
   * holds a request longer than this, nor for a `Retry-After` beyond it.
   */
  get maxDelayMs(): number {
    return this.#retry.maxDelayMs
  }

  /** Whether creating a line item may be retried (opted in). */
  get retriesLineItemCreation(): boolean {
    return this.#retry.lineItemCreation
  }

  /** Sends a request (retrying it when allowed); resolves to a 2xx answer or throws a typed error. */
  async call(request: ServiceRequest): Promise<ServiceAnswer> {
    const policy = this.#retry
    const attempts = request.retry === true ? policy.attempts : 1
    let last: TokenkeeperError | undefined
    const dropped = (sent: number): ServiceAnswer => ({
      status: 0,
      headers: new Headers(),
      json: undefined,
      attempts: sent,
      superseded: true,
      ...(last === undefined ? {} : { error: last }),
    })
    for (let attempt = 1; ; attempt++) {
      try {
        const answer = await this.#attempt(request, attempt)
        // Dropped after the pacing wait: a newer score was posted while it waited (nothing sent).
        if (answer === DROPPED) return dropped(attempt - 1)
        return { ...answer, attempts: attempt, superseded: false }
      } catch (error) {
        if (attempt >= attempts || request.signal?.aborted === true) throw error
        const failure = retryableFailure(error)
        if (failure === undefined) throw error
        const backoff = policy.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
        const { retryAfterMs } = failure
        if (retryAfterMs !== undefined && retryAfterMs > policy.maxDelayMs) throw error
        const delayMs = Math.round(retryAfterMs === undefined ? backoff : Math.max(retryAfterMs, backoff))
        const typed = error as TokenkeeperError
        last = typed
        const event: LtiRetryEvent = {
          method: request.method,
          endpoint: `${request.url.origin}${request.url.pathname}`,
          attempt,
          delayMs,
          code: typed.code,
          status: typed.status,
          throttled: failure.throttled,
        }
        for (const hook of [policy.onRetry, request.onRetry]) {
          try {
            hook?.(event)
          } catch {
            // a hook's failure must not change the call
          }
        }
        const signal = request.signal ?? never
        await pause((callback, ms) => this.#clock.setTimer(callback, ms), delayMs, signal)
        if (isAborted(signal)) throw signal.reason
        if (request.beforeRetry?.() === false) return dropped(attempt)
      }
    }
  }

  async #attempt(
    request: ServiceRequest,
    attempt: number,
  ): Promise<Omit<ServiceAnswer, 'attempts' | 'superseded'> | typeof DROPPED> {
    const { method, url } = request
    const where = `${method} ${describe(url)}`
    if (request.pace !== undefined) {
      await request.pace()
      // The pacing may have held this retry for long: ask again just before it is stamped and sent.
      if (attempt > 1 && request.beforeRetry?.() === false) {
        tell(request, NO_ANSWER)
        return DROPPED
      }
    }
    // A per-call time limit on the service clock (so tests drive it), linked to the caller's signal.
    const clock = this.#clock
    const limit = deadline(this.#timeoutMs, (callback, ms) => clock.setTimer(callback, ms), request.signal)
    const headers: Record<string, string> = {}
    if (request.accept !== undefined) headers['accept'] = request.accept
    if (request.contentType !== undefined) headers['content-type'] = request.contentType
    const body = typeof request.body === 'function' ? request.body(attempt) : request.body
    let response: Response
    let text: string | undefined
    let throttled = false
    try {
      response = await this.#send(url.href, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        redirect: 'manual',
        signal: limit.signal,
      })
      if (response.redirected) {
        // An injected fetch that follows redirects despite `redirect: 'manual'`: the answer is
        // another URL's (the final URL is not shown: its host is lowercased, past scrubbing).
        await response.body?.cancel().catch(() => undefined)
        throw new TokenkeeperError(
          'REDIRECT_REJECTED',
          `${where} was answered from another URL: the injected fetch followed a redirect; service calls never follow redirects (pass its redirect: 'manual' on)`,
          { status: response.status, retryable: false },
        )
      }
      const status = response.status
      if (status >= 200 && status < 300) {
        if (request.read === 'json' && status !== 204)
          text = await readCapped(response, this.#maxBytes, where)
        else await response.body?.cancel().catch(() => undefined)
      } else if (status === 403) {
        // Canvas throttles with `403 Forbidden (Rate Limit Exceeded)`; a plain 403 is a refusal.
        const remaining = headerNumber(response.headers, 'x-rate-limit-remaining')
        const page = await readPrefix(response, THROTTLE_SNIFF_BYTES)
        throttled = /rate limit exceeded/i.test(page) || (remaining !== undefined && remaining <= 0)
      } else {
        throttled = status === 429
        await response.body?.cancel().catch(() => undefined)
      }
    } catch (error) {
      const failure = this.#transportFailure(error, request, limit.timedOut)
      tell(request, NO_ANSWER)
      throw failure
    } finally {
      limit.dispose()
    }
    const status = response.status
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), wallTime(this.#clock))
    tell(request, {
      status,
      retryAfterMs,
      remaining: headerNumber(response.headers, 'x-rate-limit-remaining'),
      cost: headerNumber(response.headers, 'x-request-cost'),
      throttled,
    })
    if (status >= 200 && status < 300) {
      return {
        status,
        headers: response.headers,
        json: text === undefined ? undefined : parseJson(text, where, status),
      }
    }
    if (status >= 300 && status < 400) {
      throw new TokenkeeperError(
        'REDIRECT_REJECTED',
        `${where} answered ${status}; service calls never follow redirects`,
        { status, retryable: false },
      )
    }
    throw new LtiServiceError(
      `${where} answered ${status}${throttled ? ' (rate limit exceeded)' : ''}`,
      method,
      `${url.origin}${url.pathname}`,
      {
        status,
        retryable: throttled || status === 408 || status === 429 || status >= 500,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      },
      throttled,
    )
  }

  /** The typed error of a failure before the answer was complete. */
  #transportFailure(error: unknown, request: ServiceRequest, timedOut: boolean): unknown {
    const where = `${request.method} ${describe(request.url)}`
    if (request.signal?.aborted === true) return request.signal.reason
    if (timedOut) {
      return new TokenkeeperError(
        'TIMEOUT',
        `${where} did not answer completely within ${this.#timeoutMs} ms`,
        {
          retryable: true,
        },
      )
    }
    if (isTokenkeeperError(error)) return error
    const secrets = this.#secrets()
    const { code, detail } = transportCode(error, secrets)
    return new TokenkeeperError(code, `${where} failed: ${detail}`, {
      retryable: true,
      cause: safeCause(error, secrets),
    })
  }

  /**
   * What a kept failure is scrubbed of: the token the manager holds for the source, in every
   * encoding (an injected fetch's failure may carry the request and its `Authorization` header;
   * only a scrubbed copy of it is kept as `cause`), and anything shaped like a credential.
   */
  #secrets(): SecretSet {
    const token = this.#tokens.peek(this.#source)
    return new SecretSet(token === undefined ? [] : [token.value])
  }

  /**
   * GETs `first` and every page after it, following `rel="next"` exactly as given, but only to
   * https (or loopback http) URLs on one of `hosts`. Each page is retried on its own.
   */
  async *pages(
    first: URL,
    accept: string,
    hosts: ReadonlySet<string>,
    signal?: AbortSignal,
    hooks: Pick<ServiceRequest, 'onRetry' | 'onAnswer' | 'pace'> = {},
  ): AsyncGenerator<Page> {
    // Pages already asked for, without their fragment (never sent: `#a` and `#b` are one page).
    const seen = new Set<string>()
    const pageOf = (page: URL): string => page.href.replace(/#.*$/s, '')
    let url: URL | undefined = first
    let count = 0
    while (url !== undefined) {
      seen.add(pageOf(url))
      count += 1
      const answer = await this.call({
        method: 'GET',
        url,
        accept,
        signal,
        read: 'json',
        retry: true,
        ...hooks,
      })
      const json = answer.json
      const links = parseLinkHeader(answer.headers.get('link'))
      const target = links.find((link) => link.rel.includes('next'))?.target
      // A page already received is delivered; a bad next link fails before anything is sent to it.
      let next: URL | undefined
      let refusal: Error | undefined
      try {
        next = target === undefined ? undefined : checkSameHost(target, url, hosts, 'the next page link')
        if (next !== undefined && seen.has(pageOf(next))) {
          throw new TokenkeeperError(
            'INVALID_SERVICE_RESPONSE',
            `GET ${describe(url)} links as next to a page already read (a paging loop)`,
          )
        }
        if (next !== undefined && count >= this.#maxPages) {
          throw new TokenkeeperError(
            'INVALID_SERVICE_RESPONSE',
            `GET ${describe(first)} links to more than ${this.#maxPages} pages (maxPages); paging stopped`,
          )
        }
      } catch (error) {
        next = undefined
        refusal = error as Error
      }
      yield { url, json, links, next }
      if (refusal !== undefined) throw refusal
      url = next
    }
  }
}

function parseJson(text: string, where: string, status: number): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    // The parser's message quotes the body: never kept.
    throw new TokenkeeperError('INVALID_SERVICE_RESPONSE', `${where} answered with a body that is not JSON`, {
      status,
    })
  }
}

/** Reads a JSON array (a container body), or throws `INVALID_SERVICE_RESPONSE`. @internal */
export function arrayOf(json: unknown, where: URL): readonly unknown[] {
  if (Array.isArray(json)) return json
  throw new TokenkeeperError(
    'INVALID_SERVICE_RESPONSE',
    `GET ${describe(where)} answered with a body that is not an array`,
  )
}

/**
 * Checks every entry of a container page with `why` (which names what is wrong, or returns
 * `undefined` for a good entry) and throws `INVALID_SERVICE_RESPONSE` for the first bad one,
 * named by its index, never by its content. @internal
 */
export function checkEntries(
  entries: readonly unknown[],
  where: URL,
  what: string,
  why: (entry: Record<string, unknown>) => string | undefined,
): void {
  for (const [index, entry] of entries.entries()) {
    const problem =
      typeof entry !== 'object' || entry === null || Array.isArray(entry)
        ? 'that is not an object'
        : why(entry as Record<string, unknown>)
    if (problem !== undefined) {
      throw new TokenkeeperError(
        'INVALID_SERVICE_RESPONSE',
        `GET ${describe(where)} answered with ${what} ${index} ${problem}`,
      )
    }
  }
}

/** Reads a JSON object (a line item, a membership container), or throws `INVALID_SERVICE_RESPONSE`. @internal */
export function objectOf(json: unknown, where: URL): Record<string, unknown> {
  if (typeof json === 'object' && json !== null && !Array.isArray(json))
    return json as Record<string, unknown>
  throw new TokenkeeperError(
    'INVALID_SERVICE_RESPONSE',
    `${describe(where)} answered with a body that is not an object`,
  )
}
