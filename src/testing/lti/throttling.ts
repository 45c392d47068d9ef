import type { ServerResponse } from 'node:http'
import type { PlannedResponse } from '../http.js'

/**
 * Canvas-style request-cost throttling of the test platform's services (a leaky bucket, as
 * Canvas's `RequestThrottle` does it). Each request puts its `preflightPenalty` into the
 * bucket when it arrives, and its `cost` instead of the penalty when it has been answered; the
 * bucket leaks `refillPerSecond` units per second (platform clock). A request that arrives when
 * its penalty would take the bucket above `budget` is throttled (costs nothing). Every service
 * answer carries `X-Request-Cost` and `X-Rate-Limit-Remaining` (`budget` − what the bucket
 * holds).
 *
 * Canvas's own numbers: `budget` 700 (the high water mark), `refillPerSecond` 10, a
 * `preflightPenalty` of 50, a cost of the request's CPU and database time in seconds.
 *
 * @example
 * ```ts
 * import type { LtiRateLimit } from 'tokenkeeper/testing'
 * const canvas: LtiRateLimit = { budget: 700, refillPerSecond: 10, preflightPenalty: 50, cost: 1.5 }
 * const newerCanvas: LtiRateLimit = { budget: 100, refillPerSecond: 50, throttleStatus: 429, retryAfterSeconds: 1 }
 * ```
 */
export interface LtiRateLimit {
  /** What the bucket holds at most before requests are throttled (Canvas: 700). */
  readonly budget: number
  /** Units leaked per second (Canvas: 10). */
  readonly refillPerSecond: number
  /** Cost of each request answered: a number, or one per request. Default 1. */
  readonly cost?: number | ((request: { readonly method: string; readonly path: string }) => number)
  /** Held in the bucket while a request is in progress (Canvas: 50). Default 0. */
  readonly preflightPenalty?: number
  /**
   * How a throttled request is answered: `403` with the body `403 Forbidden (Rate Limit
   * Exceeded)` as Canvas does (default), or `429` (newer Canvas, most other APIs).
   */
  readonly throttleStatus?: 403 | 429
  /** Sent as `Retry-After` on throttled answers. Default: none (Canvas sends none). */
  readonly retryAfterSeconds?: number
}

/**
 * A misbehaviour of the test platform's AGS and NRPS services, for testing a job's retries.
 * Queue it with `platform.injectServiceFault()` (e.g. `{ times: 20 }` for a burst) or make it
 * standing with `platform.setServiceFault()`.
 *
 * @example
 * ```ts
 * import type { LtiServiceFault } from 'tokenkeeper/testing'
 * const outage: LtiServiceFault = { kind: 'unavailable', retryAfterSeconds: 2 }
 * const stall: LtiServiceFault = { kind: 'stall' }
 * ```
 */
export type LtiServiceFault =
  /** `503 Service Unavailable`, with `Retry-After` when `retryAfterSeconds` is given. Nothing is applied. */
  | {
      /** A 503 burst. */
      readonly kind: 'unavailable'
      /** Sent as `Retry-After`, in seconds; no header when absent. */
      readonly retryAfterSeconds?: number
    }
  /** A throttled answer as `rateLimit` sends it (`403 Forbidden (Rate Limit Exceeded)` by default). Nothing is applied. */
  | {
      /** A throttled answer. */
      readonly kind: 'throttle'
      /** `403` (Canvas, the default) or `429`. */
      readonly status?: 403 | 429
      /** Sent as `Retry-After`, in seconds; no header when absent. */
      readonly retryAfterSeconds?: number
    }
  /**
   * The request is applied (a score is recorded), then the answer stalls: an answer with a body
   * sends its status, headers and half of the body, then nothing more; one without a body (a
   * score's 204) is never sent. The connection stays open until the client gives up.
   */
  | {
      /** Applied, then the answer stalls. */
      readonly kind: 'stall'
    }

/** Where a service fault applies. @internal */
export interface ServiceFaultMatch {
  readonly method: string
  readonly path: string
}

/** Throws a `TypeError` for a fault or rate limit that cannot be served. @internal */
export function checkServiceFault(fault: LtiServiceFault): void {
  const fail = (why: string): never => {
    throw new TypeError(`tokenkeeper/testing: invalid service fault: ${why}`)
  }
  if (typeof fault !== 'object' || fault === null) fail('a fault object is required')
  if (!['unavailable', 'throttle', 'stall'].includes(fault.kind)) fail(`unknown kind '${String(fault.kind)}'`)
  if ('retryAfterSeconds' in fault && fault.retryAfterSeconds !== undefined) {
    if (!Number.isFinite(fault.retryAfterSeconds) || fault.retryAfterSeconds < 0)
      fail('retryAfterSeconds must be a finite, non-negative number')
  }
  if (fault.kind === 'throttle' && fault.status !== undefined && fault.status !== 403 && fault.status !== 429)
    fail('status must be 403 or 429')
}

/** Checks the `rateLimit` option. @internal */
export function checkRateLimit(limit: LtiRateLimit | undefined): void {
  if (limit === undefined) return
  const fail = (why: string): never => {
    throw new TypeError(`startLtiPlatform: rateLimit.${why}`)
  }
  if (typeof limit !== 'object' || limit === null)
    throw new TypeError('startLtiPlatform: rateLimit must be an object')
  if (!Number.isFinite(limit.budget) || limit.budget <= 0) fail('budget must be a positive number')
  if (!Number.isFinite(limit.refillPerSecond) || limit.refillPerSecond < 0)
    fail('refillPerSecond must be a finite, non-negative number')
  const penalty = limit.preflightPenalty ?? 0
  if (!Number.isFinite(penalty) || penalty < 0) fail('preflightPenalty must be a finite, non-negative number')
  if (typeof limit.cost === 'number' && (!Number.isFinite(limit.cost) || limit.cost < 0))
    fail('cost must be a finite, non-negative number or a function')
  if (limit.cost !== undefined && typeof limit.cost !== 'number' && typeof limit.cost !== 'function')
    fail('cost must be a finite, non-negative number or a function')
  if (limit.throttleStatus !== undefined && limit.throttleStatus !== 403 && limit.throttleStatus !== 429)
    fail('throttleStatus must be 403 or 429')
  if (
    limit.retryAfterSeconds !== undefined &&
    (!Number.isFinite(limit.retryAfterSeconds) || limit.retryAfterSeconds < 0)
  )
    fail('retryAfterSeconds must be a finite, non-negative number')
}

/** Formats a budget figure as Canvas does (a decimal number). */
const figure = (value: number): string =>
  (Math.round(value * 1000) / 1000).toFixed(3).replace(/\.?0+$/, '') || '0'

/** The leaky bucket of {@link LtiRateLimit}, on the platform clock. @internal */
export class RequestCostBucket {
  readonly #limit: LtiRateLimit
  readonly #now: () => number
  #level = 0
  #at: number

  constructor(limit: LtiRateLimit, now: () => number) {
    this.#limit = limit
    this.#now = now
    this.#at = now()
  }

  #drain(): void {
    const now = this.#now()
    if (now > this.#at)
      this.#level = Math.max(0, this.#level - ((now - this.#at) / 1000) * this.#limit.refillPerSecond)
    this.#at = Math.max(this.#at, now)
  }

  /** What is left of the budget now. */
  remaining(): number {
    this.#drain()
    return this.#limit.budget - this.#level
  }

  /** A request arrived: false when it is throttled; otherwise its penalty is held until `settle`. */
  admit(): boolean {
    this.#drain()
    const penalty = this.#limit.preflightPenalty ?? 0
    if (this.#level + penalty > this.#limit.budget || this.#level >= this.#limit.budget) return false
    this.#level += penalty
    return true
  }

  /** An admitted request was answered: its cost replaces its penalty. Returns the cost. */
  settle(request: ServiceFaultMatch): number {
    this.#drain()
    const cost = typeof this.#limit.cost === 'function' ? this.#limit.cost(request) : (this.#limit.cost ?? 1)
    this.#level = Math.max(0, this.#level + cost - (this.#limit.preflightPenalty ?? 0))
    return cost
  }

  /** The rate-limit headers of an answer that cost `cost`. */
  headers(cost: number): Record<string, string> {
    return { 'x-request-cost': figure(cost), 'x-rate-limit-remaining': figure(this.remaining()) }
  }
}

/** The answer to a throttled request. @internal */
export function throttledResponse(
  status: 403 | 429,
  headers: Readonly<Record<string, string>>,
  retryAfterSeconds: number | undefined,
): PlannedResponse {
  const extra: Record<string, string> = { ...headers }
  if (retryAfterSeconds !== undefined) extra['retry-after'] = String(retryAfterSeconds)
  if (status === 403) {
    return {
      status,
      headers: { 'content-type': 'text/plain; charset=utf-8', ...extra },
      body: '403 Forbidden (Rate Limit Exceeded)',
    }
  }
  return {
    status,
    headers: { 'content-type': 'application/json', ...extra },
    body: JSON.stringify({ errors: [{ message: 'Rate Limit Exceeded' }] }),
  }
}

/** The answer of a 503 fault. @internal */
export function unavailableResponse(retryAfterSeconds: number | undefined): PlannedResponse {
  return {
    status: 503,
    headers: {
      'content-type': 'application/json',
      ...(retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) }),
    },
    body: JSON.stringify({ error: 'service_unavailable' }),
  }
}

/** Sends the status, headers and half of the body, then nothing more. @internal */
export function stallResponse(res: ServerResponse, response: PlannedResponse): void {
  if (res.destroyed || res.headersSent) return
  if (response.body.length === 0) return // never answered
  const body = Buffer.from(response.body)
  res.writeHead(response.status, { ...response.headers, 'content-length': body.byteLength })
  res.write(body.subarray(0, Math.max(1, body.byteLength >> 1)))
}
