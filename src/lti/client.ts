import { systemClock, wallTime, type Clock } from '../clock.js'
import { isTokenkeeperError, TokenkeeperError } from '../errors.js'
import { parseRetryAfter } from '../http/retry-after.js'
import { readCapped } from '../http/token-request.js'
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
  /** Timeout of each service call, including waiting for a token and reading the body. Default 30 s. */
  readonly timeoutMs?: number
  /** Cap on each service response body. Default 16 MiB. */
  readonly maxResponseBytes?: number
  /** The clock of score timestamps and token requests. Default: the system clock. */
  readonly clock?: Clock
  /** Ends the wait for the token `fromClaim` / `withEndpoint` resolve to check its scopes. */
  readonly signal?: AbortSignal
  /** Options of the token requests (assertion lifetime, token request timeout, ...). */
  readonly source?: LtiSourceOptions
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

/** Checks the numeric service options. @internal */
export function checkServiceOptions(options: LtiServiceOptions, what: string): void {
  for (const name of ['timeoutMs', 'maxResponseBytes'] as const) {
    const value = options[name]
    if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
      throw new TypeError(`${what}: ${name} must be a positive number`)
    }
  }
}

/** The source options a service passes on: its clock and fetch unless set there. @internal */
export function sourceOptionsOf(options: LtiServiceOptions): LtiSourceOptions {
  return {
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    ...options.source,
  }
}

/** One service request. @internal */
export interface ServiceRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  readonly url: URL
  readonly accept?: string
  readonly contentType?: string
  readonly body?: string
  readonly signal?: AbortSignal | undefined
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

/**
 * Sends AGS/NRPS requests through the token manager's fetch wrapper: a token from the manager
 * on every request, and on 401 the token that was sent is invalidated (compare-and-delete) and
 * the request retried once. No redirect is followed, each call has a timeout and a body cap.
 * @internal
 */
export class ServiceClient {
  readonly #send: typeof globalThis.fetch
  readonly #timeoutMs: number
  readonly #maxBytes: number
  readonly #clock: Clock

  readonly #tokens: TokenManager
  readonly #source: TokenSource

  constructor(tokens: TokenManager, source: TokenSource, options: LtiServiceOptions) {
    this.#tokens = tokens
    this.#source = source
    this.#send = tokens.fetch(source, options.fetch === undefined ? {} : { fetch: options.fetch })
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.#maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
    this.#clock = options.clock ?? systemClock
  }

  /** Sends a request; resolves to a 2xx response or throws a typed error. */
  async request(request: ServiceRequest): Promise<Response> {
    const { method, url } = request
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const signal = request.signal === undefined ? timeout : AbortSignal.any([timeout, request.signal])
    const headers: Record<string, string> = {}
    if (request.accept !== undefined) headers['accept'] = request.accept
    if (request.contentType !== undefined) headers['content-type'] = request.contentType
    let response: Response
    try {
      response = await this.#send(url.href, {
        method,
        headers,
        ...(request.body === undefined ? {} : { body: request.body }),
        redirect: 'manual',
        signal,
      })
    } catch (error) {
      if (request.signal?.aborted === true) throw request.signal.reason
      if (timeout.aborted) {
        throw new TokenkeeperError(
          'TIMEOUT',
          `${method} ${describe(url)} did not answer within ${this.#timeoutMs} ms`,
          {
            retryable: true,
          },
        )
      }
      if (isTokenkeeperError(error)) throw error
      throw new TokenkeeperError('NETWORK_ERROR', `${method} ${describe(url)} failed: network error`, {
        retryable: true,
        cause: this.#safeCause(error),
      })
    }
    if (response.status >= 200 && response.status < 300) return response
    await response.body?.cancel().catch(() => undefined)
    const status = response.status
    if (status >= 300 && status < 400) {
      throw new TokenkeeperError(
        'REDIRECT_REJECTED',
        `${method} ${describe(url)} answered ${status}; service calls never follow redirects`,
        { status, retryable: false },
      )
    }
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), wallTime(this.#clock))
    throw new LtiServiceError(
      `${method} ${describe(url)} answered ${status}`,
      method,
      `${url.origin}${url.pathname}`,
      {
        status,
        retryable: status === 408 || status === 429 || status >= 500,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      },
    )
  }

  /** Reads a JSON body (capped), or throws `INVALID_SERVICE_RESPONSE`. */
  async json(response: Response, request: ServiceRequest): Promise<unknown> {
    const where = `${request.method} ${describe(request.url)}`
    let text: string
    try {
      text = await this.#read(response, where)
    } catch (error) {
      if (request.signal?.aborted === true) throw request.signal.reason
      if (isTokenkeeperError(error)) throw error
      throw new TokenkeeperError('NETWORK_ERROR', `${where} failed while reading the response`, {
        retryable: true,
        cause: this.#safeCause(error),
      })
    }
    try {
      return JSON.parse(text) as unknown
    } catch {
      throw new TokenkeeperError(
        'INVALID_SERVICE_RESPONSE',
        `${where} answered with a body that is not JSON`,
        {
          status: response.status,
        },
      )
    }
  }

  /**
   * GETs `first` and every page after it, following `rel="next"` exactly as given, but only to
   * https (or loopback http) URLs on one of `hosts`.
   */
  async *pages(
    first: URL,
    accept: string,
    hosts: ReadonlySet<string>,
    signal?: AbortSignal,
  ): AsyncGenerator<Page> {
    const seen = new Set<string>()
    let url: URL | undefined = first
    while (url !== undefined) {
      seen.add(url.href)
      const request: ServiceRequest = { method: 'GET', url, accept, signal }
      const response = await this.request(request)
      const json = await this.json(response, request)
      const links = parseLinkHeader(response.headers.get('link'))
      const target = links.find((link) => link.rel.includes('next'))?.target
      // A page already received is delivered; a bad next link fails before anything is sent to it.
      let next: URL | undefined
      let refusal: Error | undefined
      try {
        next = target === undefined ? undefined : checkSameHost(target, url, hosts, 'the next page link')
        if (next !== undefined && seen.has(next.href)) {
          throw new TokenkeeperError(
            'INVALID_SERVICE_RESPONSE',
            `GET ${describe(url)} links as next to a page already read (a paging loop)`,
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

  /**
   * What is kept of an injected fetch's failure: a scrubbed copy (name, message, system code),
   * never the error itself, which an HTTP client adapter fills with the request and its
   * `Authorization` header. The token the manager holds for the source is scrubbed in every
   * encoding, and so is anything shaped like a credential.
   */
  #safeCause(error: unknown): Error {
    const token = this.#tokens.peek(this.#source)
    return safeCause(error, new SecretSet(token === undefined ? [] : [token.value]))
  }

  #read(response: Response, where: string): Promise<string> {
    return readCapped(response, this.#maxBytes, where)
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

/** Reads a JSON object (a line item, a membership container), or throws `INVALID_SERVICE_RESPONSE`. @internal */
export function objectOf(json: unknown, where: URL): Record<string, unknown> {
  if (typeof json === 'object' && json !== null && !Array.isArray(json))
    return json as Record<string, unknown>
  throw new TokenkeeperError(
    'INVALID_SERVICE_RESPONSE',
    `${describe(where)} answered with a body that is not an object`,
  )
}
