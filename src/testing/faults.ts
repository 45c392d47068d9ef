/**
 * A misbehaviour of the token endpoint, for testing how a client copes. Faults apply to token
 * requests only (never to the resource endpoint). Queue one with `server.inject()` or make it
 * standing with `server.setFault()`.
 *
 * Kinds that still issue a real token: `latency`, `slow-body`, `token`. All others answer without
 * issuing one and count as failures in `server.stats()`.
 *
 * @example
 * ```ts
 * import type { TokenServerFault } from 'tokenkeeper/testing'
 * const outage: TokenServerFault = { kind: 'status', status: 503, retryAfter: 30 }
 * const badGrant: TokenServerFault = { kind: 'status', status: 400, error: 'invalid_grant' }
 * ```
 */
export type TokenServerFault =
  /** Waits `ms` (real time) before handling the request normally. */
  | {
      /** Names the fault. */
      readonly kind: 'latency'
      /** The delay, in milliseconds of real time. */
      readonly ms: number
    }
  /**
   * Answers with `status`. With `error`, the body is an RFC 6749 §5.2 error object; otherwise
   * `body` (default: empty). `retryAfter` is sent as `Retry-After` (seconds or an HTTP-date).
   */
  | {
      /** Names the fault. */
      readonly kind: 'status'
      /** The HTTP status to answer with, 100 to 599. */
      readonly status: number
      /** The OAuth `error` code of the error object, e.g. `invalid_client`. */
      readonly error?: string
      /** The error object's `error_description`. */
      readonly errorDescription?: string
      /** The error object's `error_uri`. */
      readonly errorUri?: string
      /** Sent as `Retry-After`: a number of seconds or an HTTP-date. */
      readonly retryAfter?: number | string
      /** The body when there is no `error`. Default: empty. */
      readonly body?: string
      /** The `Content-Type` of `body`. Default `text/plain; charset=utf-8`. */
      readonly contentType?: string
      /** Extra response headers, e.g. `{ 'www-authenticate': 'Basic' }`. */
      readonly headers?: Readonly<Record<string, string>>
    }
  /** Never answers; the socket stays open until the client gives up or the server closes. */
  | {
      /** Names the fault. */
      readonly kind: 'hang'
    }
  /** An HTML error page, as a proxy or load balancer would send (default status 502). */
  | {
      /** Names the fault. */
      readonly kind: 'html'
      /** The HTTP status. Default 502. */
      readonly status?: number
    }
  /** An arbitrary raw body (default status 200, content type `application/json`). */
  | {
      /** Names the fault. */
      readonly kind: 'body'
      /** The body, sent as it is. */
      readonly body: string
      /** The HTTP status. Default 200. */
      readonly status?: number
      /** The `Content-Type`. Default `application/json`. */
      readonly contentType?: string
    }
  /** Any JSON value as the body (default status 200), e.g. a token response missing `access_token`. */
  | {
      /** Names the fault. */
      readonly kind: 'json'
      /** The value, sent as `JSON.stringify(json)`. */
      readonly json: unknown
      /** The HTTP status. Default 200. */
      readonly status?: number
    }
  /** Destroys the connection (TCP reset) without any response. */
  | {
      /** Names the fault. */
      readonly kind: 'reset'
    }
  /** A redirect to `location` (default status 302); a token client must not follow it. */
  | {
      /** Names the fault. */
      readonly kind: 'redirect'
      /** The `Location` header; not empty. */
      readonly location: string
      /** The redirect status. Default 302. */
      readonly status?: 301 | 302 | 307 | 308
    }
  /**
   * A 200 JSON-looking body of exactly `bytes` bytes, streamed with backpressure. Chunked by
   * default; `declareLength: true` sends `Content-Length` up front.
   */
  | {
      /** Names the fault. */
      readonly kind: 'huge'
      /** The body's size in bytes. */
      readonly bytes: number
      /** Send `Content-Length: bytes` up front instead of a chunked body. Default false. */
      readonly declareLength?: boolean
    }
  /** Issues a real token, sends the headers at once, then drips the body out over `ms` (real time). */
  | {
      /** Names the fault. */
      readonly kind: 'slow-body'
      /** How long the body takes to arrive, in milliseconds of real time. */
      readonly ms: number
    }
  /**
   * Issues a real token but overrides fields of the response. `null` omits a field; a string is
   * sent as a JSON string (e.g. `expiresIn: '3600'`). A numeric `expiresIn` also sets the server's
   * own expiry bookkeeping.
   */
  | {
      /** Names the fault. */
      readonly kind: 'token'
      /** The `expires_in` sent (seconds). */
      readonly expiresIn?: number | string | null
      /** The `refresh_in` sent (seconds). */
      readonly refreshIn?: number | string | null
      /** The `token_type` sent. */
      readonly tokenType?: string
      /** The `scope` sent. */
      readonly scope?: string | null
      /** The RFC 8693 §2.2.1 `issued_token_type` of a token-exchange answer (`null` omits it). */
      readonly issuedTokenType?: string | null
    }

/**
 * A queued fault. `remove()` takes it out of the queue; `remaining` is how many more token
 * requests it will apply to.
 *
 * @example
 * ```ts
 * import { startTokenServer } from 'tokenkeeper/testing'
 * await using server = await startTokenServer({ clients: [{ clientId: 'a', clientSecret: 's' }] })
 * const fault = server.inject({ kind: 'status', status: 503 }, { times: Infinity })
 * fault.remove()
 * ```
 */
export interface FaultHandle {
  /** Takes the fault out of the queue; requests already given it are not affected. */
  remove(): void
  /** How many more token requests the fault will apply to (`Infinity` for an endless one). */
  readonly remaining: number
}

interface QueuedFault<F, R> {
  readonly fault: F
  /** Which requests it applies to; every one when absent. */
  readonly match: ((request: R) => boolean) | undefined
  remaining: number
}

/** Throws a `TypeError` for a fault that cannot be served. @internal */
export function validateFault(fault: TokenServerFault): void {
  const fail = (why: string): never => {
    throw new TypeError(`tokenkeeper/testing: invalid '${fault.kind}' fault: ${why}`)
  }
  const checkStatus = (status: number | undefined): void => {
    if (status !== undefined && (!Number.isInteger(status) || status < 100 || status > 599)) {
      fail('status must be an integer HTTP status (100-599)')
    }
  }
  switch (fault.kind) {
    case 'latency':
    case 'slow-body':
      if (!Number.isFinite(fault.ms) || fault.ms < 0) fail('ms must be a finite, non-negative number')
      return
    case 'status':
      return checkStatus(fault.status)
    case 'html':
    case 'body':
    case 'json':
      return checkStatus(fault.status)
    case 'redirect':
      checkStatus(fault.status)
      if (fault.location.length === 0) fail('location must not be empty')
      return
    case 'huge':
      if (!Number.isSafeInteger(fault.bytes) || fault.bytes < 0) fail('bytes must be a non-negative integer')
      return
    case 'hang':
    case 'reset':
    case 'token':
      return
    default:
      fail('unknown kind')
  }
}

/**
 * The fault schedule: one-shot faults in FIFO order first (the first that matches the request),
 * then the standing fault. `next()` is synchronous so faults are assigned in arrival order. The
 * token server's faults are `FaultQueue<TokenServerFault>`; the LTI platform's service faults
 * use the same queue with their own check and a request to match. @internal
 */
export class FaultQueue<F = TokenServerFault, R = void> {
  readonly #queue: QueuedFault<F, R>[] = []
  #standing: F | undefined
  readonly #check: (fault: F) => void
  readonly #what: string

  /** `check` throws a `TypeError` for a fault that cannot be served; `what` names the call in errors. */
  constructor(check: (fault: F) => void, what: string) {
    this.#check = check
    this.#what = what
  }

  inject(fault: F, times: number, match?: (request: R) => boolean): FaultHandle {
    this.#check(fault)
    if (!(times === Infinity || (Number.isSafeInteger(times) && times >= 1))) {
      throw new TypeError(`tokenkeeper/testing: ${this.#what} times must be a positive integer or Infinity`)
    }
    if (match !== undefined && typeof match !== 'function')
      throw new TypeError(`tokenkeeper/testing: ${this.#what} match must be a function`)
    const entry: QueuedFault<F, R> = { fault, match, remaining: times }
    this.#queue.push(entry)
    const queue = this.#queue
    return {
      remove() {
        const index = queue.indexOf(entry)
        if (index !== -1) queue.splice(index, 1)
        entry.remaining = 0
      },
      get remaining() {
        return entry.remaining
      },
    }
  }

  setStanding(fault: F | undefined): void {
    if (fault !== undefined) this.#check(fault)
    this.#standing = fault
  }

  clear(): void {
    for (const entry of this.#queue) entry.remaining = 0
    this.#queue.length = 0
    this.#standing = undefined
  }

  /** Consumes and returns the fault for the request that just arrived, if any. */
  next(request: R): F | undefined {
    const index = this.#queue.findIndex((entry) => entry.match === undefined || entry.match(request))
    const entry = this.#queue[index]
    if (entry !== undefined) {
      entry.remaining -= 1
      if (entry.remaining <= 0) this.#queue.splice(index, 1)
      return entry.fault
    }
    return this.#standing
  }
}
