import { deadline, raceAbort } from '../abort.js'
import { wallTime, type Clock } from '../clock.js'
import { OAuthError, TokenkeeperError, type TokenkeeperErrorCode } from '../errors.js'
import { parseRetryAfter } from './retry-after.js'
import { causeChain, safeCause, scrubText, SecretSet } from '../secrets.js'
import { describeEndpoint, writtenHost } from './url.js'

/**
 * The subset of the WHATWG `fetch` signature tokenkeeper uses; inject your own for proxies. It
 * must honour `redirect: 'manual'`: an answer it got by following a redirect is refused
 * (`REDIRECT_REJECTED`, seen through `response.redirected`).
 */
export type FetchLike = (input: string | URL, init: RequestInit) => Promise<Response>

/** Default cap on a token response body: 256 KiB, far above any real token response. */
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024
/** Default timeout of one token request, including reading the body: 10 s. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/** One POST to a token endpoint. */
export interface TokenRequest {
  readonly url: URL
  readonly body: URLSearchParams
  readonly headers?: Readonly<Record<string, string>>
  readonly fetch?: FetchLike | undefined
  readonly timeoutMs?: number | undefined
  readonly maxResponseBytes?: number | undefined
  readonly signal?: AbortSignal | undefined
  /** The clock of `sentAt`, of the calendar times compared with the server's, and of the `timeoutMs` deadline. */
  readonly clock: Clock
  /**
   * Strings that must never appear in an error (secret, Basic credentials, assertion), removed
   * in every encoding from server text and transport errors (see `src/secrets.ts`). The values
   * of `headers`, the query values of `url` and the form body's credential fields are added.
   */
  readonly secrets?: readonly string[]
  /**
   * Whether the request carried a signed assertion (client assertion or JWT-bearer grant). Then
   * a refusal from a server whose clock (`Date`) differs from ours is reported as clock skew even
   * when the server hides its reason.
   */
  readonly sentAssertion?: boolean
  /** Sees the headers of every response, before its status is looked at (DPoP nonces). */
  readonly onResponse?: ((headers: Headers) => void) | undefined
}

/** A successful (2xx) token endpoint answer, parsed as JSON. */
export interface TokenHttpResult {
  readonly json: unknown
  /** When the request was sent (epoch ms): the instant `expires_in` is measured from. */
  readonly sentAt: number
  readonly status: number
}

/** Form fields whose values are always secret, whoever set them. */
const SECRET_FIELDS = [
  'client_secret',
  'client_assertion',
  'assertion',
  'subject_token',
  'actor_token',
  'refresh_token',
  'code_verifier',
  'password',
]

/**
 * Every secret of one request: those it names, its header values, the query values of its URL
 * and its credential form fields.
 */
function secretsOf(request: TokenRequest): SecretSet {
  const secrets = new SecretSet(request.secrets).addUrl(request.url)
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    // An authorization header's credentials, without the scheme (which stays readable).
    secrets.add(/^(proxy-)?authorization$/i.test(name) ? value.replace(/^\S+\s+/, '') : value)
  }
  for (const field of SECRET_FIELDS) for (const value of request.body.getAll(field)) secrets.add(value)
  return secrets
}

const RETRYABLE_OAUTH_ERRORS = new Set(['temporarily_unavailable', 'server_error', 'slow_down'])
const TIME_CLAIM_HINT = /\b(iat|exp|nbf|clock|skew|expired|not yet valid|future|issued|time)\b/i
const SKEW_REPORT_THRESHOLD_MS = 30_000

/** The code and a scrubbed detail of a transport failure. @internal */
export function transportCode(
  error: unknown,
  secrets: SecretSet,
): { code: TokenkeeperErrorCode; detail: string } {
  let reason: string | undefined
  for (const { code, message } of causeChain(error)) {
    if (code === 'ECONNREFUSED') return { code: 'CONNECTION_REFUSED', detail: 'connection refused' }
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') {
      return { code: 'CONNECTION_RESET', detail: 'connection reset' }
    }
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') {
      return { code: 'TIMEOUT', detail: 'timed out' }
    }
    if (typeof code === 'string' && /^E[A-Z0-9_]{1,63}$/.test(code))
      return { code: 'NETWORK_ERROR', detail: code }
    // The innermost message says why (undici's outer one is only "fetch failed").
    if (typeof message === 'string' && message !== '' && message !== 'fetch failed') reason = message
  }
  const why = reason === undefined ? '' : ` (${scrubText(reason, secrets, 120, true)})`
  return { code: 'NETWORK_ERROR', detail: `network error${why}` }
}

/** The headers an error keeps, each scrubbed (a server may echo a credential in `WWW-Authenticate`). */
function headerRecord(headers: Headers, secrets: SecretSet): Record<string, string> {
  const record: Record<string, string> = {}
  for (const name of ['content-type', 'retry-after', 'date', 'www-authenticate', 'location']) {
    const value = headers.get(name)
    if (value !== null) record[name] = scrubText(value, secrets, 1000)
  }
  return record
}

/**
 * Reads a response body as UTF-8, refusing (typed `RESPONSE_TOO_LARGE`, not retryable) a body
 * declared or streamed larger than `maxBytes`; the rest of such a body is never read. @internal
 */
export async function readCapped(response: Response, maxBytes: number, endpoint: string): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN)
  const tooLarge = (): TokenkeeperError =>
    new TokenkeeperError('RESPONSE_TOO_LARGE', `${endpoint} sent a response larger than ${maxBytes} bytes`, {
      status: response.status,
      retryable: false,
    })
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined)
    throw tooLarge()
  }
  if (response.body === null) return ''
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined)
      throw tooLarge()
    }
    chunks.push(value)
  }
  return new TextDecoder().decode(Buffer.concat(chunks, total))
}

function looksLikeHtml(text: string, contentType: string): boolean {
  return /html/i.test(contentType) || /^\s*</.test(text)
}

function oauthErrorFrom(
  parsed: Record<string, unknown>,
  response: Response,
  endpoint: string,
  request: TokenRequest,
  receivedAt: number,
): OAuthError {
  const secrets = secretsOf(request)
  const error = scrubText(String(parsed['error']), secrets, 64) || 'unknown_error'
  const description =
    typeof parsed['error_description'] === 'string'
      ? scrubText(parsed['error_description'], secrets)
      : undefined
  const uri =
    typeof parsed['error_uri'] === 'string' ? scrubText(parsed['error_uri'], secrets, 500) : undefined
  const status = response.status
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), receivedAt)
  const serverDate = Date.parse(response.headers.get('date') ?? '')
  const skewMs = Number.isNaN(serverDate) ? 0 : serverDate - receivedAt
  const skewed = Math.abs(skewMs) >= SKEW_REPORT_THRESHOLD_MS
  const clockSkewSuspected =
    (error === 'invalid_grant' || error === 'invalid_client' || error === 'invalid_request') &&
    ((description !== undefined && TIME_CLAIM_HINT.test(description)) ||
      (request.sentAssertion === true && skewed))
  let message = `${endpoint} refused the token request: ${error}`
  if (description !== undefined) message += ` (${description})`
  if (clockSkewSuspected) {
    message += '; the endpoint may have rejected a time claim (iat/exp) of the assertion'
    if (skewed) {
      message += `: this machine's clock is about ${Math.round(Math.abs(skewMs) / 1000)} s ${
        skewMs > 0 ? 'behind' : 'ahead of'
      } the token endpoint's`
    }
    message += '; check the clock (NTP) of this machine'
  }
  return new OAuthError({ error, error_description: description, error_uri: uri }, message, {
    status,
    retryable: status === 429 || status >= 500 || RETRYABLE_OAUTH_ERRORS.has(error),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    response: { status, headers: headerRecord(response.headers, secrets) },
    clockSkewSuspected,
  })
}

/**
 * The typed error of a non-2xx answer without an OAuth error body: `RATE_LIMITED` (429),
 * `SERVER_ERROR` (5xx), else `UNEXPECTED_STATUS`, with `Retry-After`. `hint` is added to a 404
 * or 405 message. @internal
 */
export function statusError(
  response: Response,
  text: string,
  endpoint: string,
  receivedAt: number,
  hint404 = '; is the token URL right?',
): TokenkeeperError {
  const status = response.status
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), receivedAt)
  const html = looksLikeHtml(text, response.headers.get('content-type') ?? '') ? ' (an HTML page)' : ''
  const options = { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }
  if (status === 429) {
    return new TokenkeeperError('RATE_LIMITED', `${endpoint} answered 429 Too Many Requests${html}`, {
      ...options,
      retryable: true,
    })
  }
  if (status >= 500) {
    return new TokenkeeperError('SERVER_ERROR', `${endpoint} answered ${status}${html}`, {
      ...options,
      retryable: true,
    })
  }
  const hint = status === 404 || status === 405 ? hint404 : ''
  return new TokenkeeperError('UNEXPECTED_STATUS', `${endpoint} answered ${status}${html}${hint}`, {
    ...options,
    retryable: status === 408,
  })
}

/** One HTTP request under the token-request rules. @internal */
export interface HttpExchange {
  readonly method: 'GET' | 'POST'
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string | undefined
  readonly fetch?: FetchLike | undefined
  readonly timeoutMs?: number | undefined
  readonly maxResponseBytes?: number | undefined
  readonly signal?: AbortSignal | undefined
  /** The clock of `sentAt` and of the `timeoutMs` deadline (a test clock drives the timeout). */
  readonly clock: Clock
  /** Every secret of the request, scrubbed from transport errors. */
  readonly secrets: SecretSet
  /** How messages name the endpoint, e.g. `POST idp.example/oauth/token`. */
  readonly endpoint: string
  /** What the request is, for the redirect message: `token requests`, `discovery requests`. */
  readonly kind: string
  /** Sees the headers of every response, before its status is looked at (DPoP nonces). */
  readonly onResponse?: ((headers: Headers) => void) | undefined
}

/** The answer to an {@link HttpExchange}: the response (body read) and its text. @internal */
export interface HttpAnswer {
  readonly response: Response
  readonly text: string
  /** When the request was sent (`clock.now()`). */
  readonly sentAt: number
}

/**
 * Sends one request with the rules every request to an authorization server follows: never
 * follows a redirect (typed `REDIRECT_REJECTED`, also for an answer an injected fetch got by
 * following one), stops after `timeoutMs` on `request.clock` with
 * the body included (`TIMEOUT`), reads at most `maxResponseBytes` (`RESPONSE_TOO_LARGE`, or the status error of an
 * oversized 5xx/429 page), and types transport failures without any secret. A caller's `signal`
 * rejects with its own reason. Shared by token requests and discovery. @internal
 */
export async function sendHttp(request: HttpExchange): Promise<HttpAnswer> {
  const endpoint = request.endpoint
  const timeoutMs = request.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
  const clock = request.clock
  const limit = deadline(timeoutMs, (callback, ms) => clock.setTimer(callback, ms), request.signal)
  const signal = limit.signal
  const doFetch: FetchLike = request.fetch ?? fetch
  const sentAt = clock.now()

  const transportFailure = (error: unknown): unknown => {
    if (request.signal?.aborted === true) return request.signal.reason
    if (limit.timedOut) {
      return new TokenkeeperError('TIMEOUT', `${endpoint} did not answer within ${timeoutMs} ms`, {
        retryable: true,
      })
    }
    if (error instanceof TokenkeeperError) return error
    const { code, detail } = transportCode(error, request.secrets)
    return new TokenkeeperError(code, `${endpoint} failed: ${detail}`, {
      retryable: true,
      cause: safeCause(error, request.secrets),
    })
  }

  try {
    // Raced against the deadline: an injected fetch that ignores its signal (or a body stream
    // that never ends) still ends at `timeoutMs`, so no request, discovery included, hangs.
    const response = await raceAbort(
      doFetch(request.url, {
        method: request.method,
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: request.body }),
        redirect: 'manual',
        signal,
      }),
      signal,
    )
    request.onResponse?.(response.headers)
    if (response.redirected) {
      // An injected fetch that follows redirects despite `redirect: 'manual'`: the request went
      // on to another URL (with a form body's credentials); its answer is not this endpoint's.
      // The final URL is not shown: fetch lowercases its host, so a secret echoed there would
      // escape the scrubbing.
      await response.body?.cancel().catch(() => undefined)
      let where = 'another URL'
      try {
        if (new URL(response.url).origin !== request.url.origin) where = 'another origin'
      } catch {
        // an unreadable final URL is still a redirect
      }
      throw new TokenkeeperError(
        'REDIRECT_REJECTED',
        `${endpoint} was answered from ${where}: the injected fetch followed a redirect; ${request.kind} never follow redirects (pass its redirect: 'manual' on)`,
        { status: response.status, retryable: false },
      )
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel().catch(() => undefined)
      let target = 'elsewhere'
      const location = response.headers.get('location') ?? ''
      try {
        target = scrubText(writtenHost(location) ?? new URL(location, request.url).host, request.secrets, 200)
      } catch {
        // an unreadable Location is still a redirect
      }
      throw new TokenkeeperError(
        'REDIRECT_REJECTED',
        `${endpoint} answered ${response.status} redirecting to ${target}; ${request.kind} never follow redirects`,
        { status: response.status, retryable: false },
      )
    }
    try {
      const text = await raceAbort(
        readCapped(response, request.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, endpoint),
        signal,
      )
      return { response, text, sentAt }
    } catch (error) {
      // An oversized 5xx or 429 page is still a transient failure, with its Retry-After.
      const failed = response.status < 200 || response.status >= 300
      if (failed && error instanceof TokenkeeperError && error.code === 'RESPONSE_TOO_LARGE') {
        throw statusError(response, '', endpoint, wallTime(request.clock))
      }
      throw error
    }
  } catch (error) {
    throw transportFailure(error)
  } finally {
    limit.dispose()
  }
}

/**
 * The JSON of a 2xx body, or a typed error: `HTML_RESPONSE` for an HTML page (a login page, a
 * proxy's error page), `INVALID_JSON` for anything else that does not parse. The parser's
 * message quotes the body, so it is never kept. @internal
 */
export function jsonOf(response: Response, text: string, endpoint: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    if (looksLikeHtml(text, response.headers.get('content-type') ?? '')) {
      throw new TokenkeeperError(
        'HTML_RESPONSE',
        `${endpoint} answered ${response.status} with an HTML page, not JSON`,
        { status: response.status, retryable: false },
      )
    }
    throw new TokenkeeperError(
      'INVALID_JSON',
      `${endpoint} answered ${response.status} with a body that is not JSON`,
      { status: response.status, retryable: false },
    )
  }
}

/**
 * Sends one token request and returns the parsed JSON of a 2xx answer, or throws a typed
 * {@link TokenkeeperError}. Never follows a redirect, stops after `timeoutMs` (body included),
 * reads at most `maxResponseBytes`, and keeps no part of a response body in any error.
 * A caller's `signal` rejects with its own reason.
 */
export async function postTokenRequest(request: TokenRequest): Promise<TokenHttpResult> {
  const endpoint = describeEndpoint(request.url)
  const { response, text, sentAt } = await sendHttp({
    method: 'POST',
    url: request.url,
    headers: {
      'content-type': 'application/x-www-form-urlencoded;charset=UTF-8',
      accept: 'application/json',
      ...request.headers,
    },
    body: request.body.toString(),
    fetch: request.fetch,
    timeoutMs: request.timeoutMs,
    maxResponseBytes: request.maxResponseBytes,
    signal: request.signal,
    clock: request.clock,
    secrets: secretsOf(request),
    endpoint,
    kind: 'token requests',
    onResponse: request.onResponse,
  })

  // Calendar time: it is compared with the server's `Date` and HTTP-date `Retry-After`.
  const receivedAt = wallTime(request.clock)
  let parsed: unknown
  let parsedOk = false
  try {
    parsed = JSON.parse(text)
    parsedOk = true
  } catch {
    // decided below; the parser's message quotes the body, so it is never kept
  }

  if (response.status < 200 || response.status >= 300) {
    if (
      parsedOk &&
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as { error?: unknown }).error === 'string'
    ) {
      throw oauthErrorFrom(parsed as Record<string, unknown>, response, endpoint, request, receivedAt)
    }
    throw statusError(response, text, endpoint, receivedAt)
  }
  if (
    parsedOk &&
    typeof parsed === 'object' &&
    parsed !== null &&
    typeof (parsed as { error?: unknown }).error === 'string' &&
    (parsed as { access_token?: unknown }).access_token === undefined
  ) {
    // Some servers send an RFC 6749 §5.2 error body with status 200.
    throw oauthErrorFrom(parsed as Record<string, unknown>, response, endpoint, request, receivedAt)
  }
  if (!parsedOk) jsonOf(response, text, endpoint)
  return { json: parsed, sentAt, status: response.status }
}
