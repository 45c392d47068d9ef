/**
 * Every way a token endpoint can misbehave, one row each, served by a real `node:http` server on
 * 127.0.0.1 and fetched through `clientCredentials(...).fetchToken()`. Each row asserts the exact
 * error (class, code, retryable, status, Retry-After) and that no secret, token or body reaches
 * the error's message, `util.inspect` or `JSON.stringify`.
 *
 * docs/ERRORS.md lists the same rows; a test below keeps the two in sync.
 */
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { inspect } from 'node:util'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  AccessToken,
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  DEFAULT_LIFETIME_MS,
  isOAuthError,
  isTokenkeeperError,
  OAuthError,
  systemClock,
  TokenkeeperError,
  type ClientCredentialsOptions,
  type Clock,
  type FetchLike,
  type TokenkeeperErrorCode,
} from '../../src/index.js'
import { closedPort, formFields, startLocalServer, type LocalServer } from './local-server.js'

export const SECRET = 'SECRET-must-not-leak-123'
export const TOKEN = 'TOKEN-must-not-leak-456'
/** Put in every response body, so that a body copied into an error is caught. */
export const BODY_MARKER = 'BODY-must-not-leak-789'
const CLIENT_ID = 'wire-client'
/** The Basic credentials the client sends: also a secret. */
const BASIC = Buffer.from(`${CLIENT_ID}:${SECRET}`).toString('base64')
const SCOPES = ['write', 'read']
/** Secrets with characters that encoders other than the library's write differently. */
const SLASH_SECRET = 'svc/SECRET+must/not-leak'
const TILDE_SECRET = 'svc~SECRET*must!not-leak'
/** `TILDE_SECRET` as Python's `urllib.parse.quote(secret, safe='')` writes it. */
const PYTHON_QUOTED_SECRET = 'svc~SECRET%2Amust%21not-leak'
const QUOTED_SECRET = 'pa"SECRET\\must-not-leak'

/** A whole second, close to the real time, so HTTP-dates (second precision) compare exactly. */
const NOW = Math.floor(Date.now() / 1000) * 1000
let now = NOW
/** The injected clock: `now()` is controlled by the tests; timers are real. */
const clock: Clock = {
  now: () => now,
  setTimer: (callback, delayMs) => systemClock.setTimer(callback, delayMs),
}

type Serve = (req: IncomingMessage, res: ServerResponse, body: string) => void

/** A response the server sends as is. */
interface CannedResponse {
  readonly status: number
  readonly body: string
  readonly headers?: Readonly<Record<string, string>>
  /** false: no `Date` header. */
  readonly sendDate?: boolean
}

interface ExpectedFailure {
  readonly code: TokenkeeperErrorCode
  readonly retryable: boolean
  /** The HTTP status on the error; undefined when no response was received. */
  readonly status: number | undefined
  /** Undefined: the error must have no `retryAfterMs`. */
  readonly retryAfterMs?: number
  /** Present exactly when the error must be an {@link OAuthError}. */
  readonly oauth?: {
    readonly error: string
    readonly error_description?: string | undefined
    readonly error_uri?: string
    readonly clockSkewSuspected?: boolean
    readonly headers?: Readonly<Record<string, string>>
  }
  readonly message?: RegExp
  readonly notMessage?: RegExp
}

export interface BadResponseRow {
  /** What the endpoint does wrong (the same words are in docs/ERRORS.md). */
  readonly name: string
  /** A canned response. */
  readonly response?: CannedResponse
  /** Or a custom behaviour (hang, reset, stream...). */
  readonly serve?: Serve
  /** Or no server at all: a port that refuses, or an insecure URL refused at construction. */
  readonly endpoint?: 'refused' | 'insecure'
  readonly options?: Partial<ClientCredentialsOptions>
  /** A path the client must never request (redirect targets). */
  readonly neverRequested?: string
  readonly expected: ExpectedFailure
}

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' }

function json(status: number, value: unknown, headers: Record<string, string> = {}): CannedResponse {
  return { status, body: JSON.stringify(value), headers: { ...JSON_HEADERS, ...headers } }
}

function text(
  status: number,
  body: string,
  contentType: string | undefined = 'text/plain',
  headers: Record<string, string> = {},
): CannedResponse {
  return {
    status,
    body,
    headers: { ...(contentType === undefined ? {} : { 'content-type': contentType }), ...headers },
  }
}

/** A 200 token response with some fields changed (undefined removes a field). */
function token(fields: Record<string, unknown>, status = 200): CannedResponse {
  return json(status, {
    access_token: TOKEN,
    token_type: 'Bearer',
    expires_in: 3600,
    trace_id: BODY_MARKER,
    ...fields,
  })
}

/** An RFC 6749 §5.2 error response. */
function oauth(
  status: number,
  error: unknown,
  description?: string,
  headers: Record<string, string> = {},
  more: Record<string, unknown> = {},
): CannedResponse {
  return json(status, { error, error_description: description, ...more, trace_id: BODY_MARKER }, headers)
}

function fails(
  code: TokenkeeperErrorCode,
  retryable: boolean,
  status: number | undefined,
  more: Omit<ExpectedFailure, 'code' | 'retryable' | 'status'> = {},
): ExpectedFailure {
  return { code, retryable, status, ...more }
}

/** A token response of exactly `bytes` bytes. */
function tokenOfSize(bytes: number): string {
  const base = JSON.stringify({ access_token: TOKEN, token_type: 'Bearer', expires_in: 3600, padding: '' })
  return JSON.stringify({
    access_token: TOKEN,
    token_type: 'Bearer',
    expires_in: 3600,
    padding: 'x'.repeat(bytes - base.length),
  })
}

const CAP = 1024
const TOKEN_JSON = JSON.stringify({ access_token: TOKEN, token_type: 'Bearer', expires_in: 3600 })
const HTML_PAGE = `<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>${BODY_MARKER}</form></body></html>`
const PROXY_502 = `<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx ${BODY_MARKER}</center></body></html>`

function redirect(status: number, location: string): Serve {
  return (_req, res) => {
    res.writeHead(status, { location, 'content-type': 'text/plain' })
    res.end(`moved ${BODY_MARKER}`)
  }
}

const hang: Serve = () => undefined

/** An injected fetch that follows redirects whatever it is asked, as some adapters do. */
const followingFetch: FetchLike = (url, init) => fetch(url, { ...init, redirect: 'follow' })

export const BAD_RESPONSES: readonly BadResponseRow[] = [
  // RFC 6749 §5.2 error responses
  {
    name: 'invalid_client, 401 with WWW-Authenticate',
    response: oauth(401, 'invalid_client', 'Client authentication failed', {
      'www-authenticate': 'Basic realm="token"',
    }),
    expected: fails('OAUTH_ERROR', false, 401, {
      oauth: {
        error: 'invalid_client',
        error_description: 'Client authentication failed',
        clockSkewSuspected: false,
        headers: { 'www-authenticate': 'Basic realm="token"' },
      },
      message: /refused the token request: invalid_client \(Client authentication failed\)/,
      notMessage: /clock/,
    }),
  },
  {
    name: 'invalid_grant, 400',
    response: oauth(400, 'invalid_grant', 'The grant is not valid'),
    expected: fails('OAUTH_ERROR', false, 400, {
      oauth: {
        error: 'invalid_grant',
        error_description: 'The grant is not valid',
        clockSkewSuspected: false,
      },
    }),
  },
  {
    name: 'invalid_scope, 400',
    response: oauth(400, 'invalid_scope', 'Scope write is not allowed'),
    expected: fails('OAUTH_ERROR', false, 400, { oauth: { error: 'invalid_scope' } }),
  },
  {
    name: 'unauthorized_client, 400',
    response: oauth(400, 'unauthorized_client'),
    expected: fails('OAUTH_ERROR', false, 400, {
      oauth: { error: 'unauthorized_client', error_description: undefined },
    }),
  },
  {
    name: 'unsupported_grant_type, 400',
    response: oauth(400, 'unsupported_grant_type', 'client_credentials is not enabled'),
    expected: fails('OAUTH_ERROR', false, 400, { oauth: { error: 'unsupported_grant_type' } }),
  },
  {
    name: 'invalid_request, 400',
    response: oauth(400, 'invalid_request', 'Missing parameter'),
    expected: fails('OAUTH_ERROR', false, 400, { oauth: { error: 'invalid_request' } }),
  },
  {
    name: 'unknown error code, 400',
    response: oauth(400, 'vendor_specific_error', 'Something odd'),
    expected: fails('OAUTH_ERROR', false, 400, { oauth: { error: 'vendor_specific_error' } }),
  },
  {
    name: 'temporarily_unavailable, 503',
    response: oauth(503, 'temporarily_unavailable', 'Down for maintenance'),
    expected: fails('OAUTH_ERROR', true, 503, { oauth: { error: 'temporarily_unavailable' } }),
  },
  {
    name: 'server_error, 500',
    response: oauth(500, 'server_error'),
    expected: fails('OAUTH_ERROR', true, 500, { oauth: { error: 'server_error' } }),
  },
  {
    name: 'slow_down, 400',
    response: oauth(400, 'slow_down'),
    expected: fails('OAUTH_ERROR', true, 400, { oauth: { error: 'slow_down' } }),
  },
  {
    name: 'OAuth error body, 429 with Retry-After: 30',
    response: oauth(429, 'too_many_requests', 'Slow down', { 'retry-after': '30' }),
    expected: fails('OAUTH_ERROR', true, 429, {
      retryAfterMs: 30_000,
      oauth: { error: 'too_many_requests', headers: { 'retry-after': '30' } },
    }),
  },
  {
    name: 'invalid_client error body with status 200',
    response: oauth(200, 'invalid_client', 'Bad credentials'),
    expected: fails('OAUTH_ERROR', false, 200, { oauth: { error: 'invalid_client' } }),
  },
  {
    name: 'invalid_scope with error_uri',
    response: oauth(
      400,
      'invalid_scope',
      'See the docs',
      {},
      { error_uri: 'https://idp.example/docs/scopes' },
    ),
    expected: fails('OAUTH_ERROR', false, 400, {
      oauth: { error: 'invalid_scope', error_uri: 'https://idp.example/docs/scopes' },
    }),
  },
  {
    name: 'error that is not a string, 400',
    response: oauth(400, 42, 'numeric error'),
    expected: fails('UNEXPECTED_STATUS', false, 400),
  },
  {
    name: 'error_description echoes the client secret and Basic credentials',
    response: oauth(401, 'invalid_client', `secret ${SECRET} in Basic ${BASIC} is wrong`),
    expected: fails('OAUTH_ERROR', false, 401, {
      oauth: { error: 'invalid_client', error_description: 'secret [redacted] in Basic [redacted] is wrong' },
      message: /secret \[redacted\] in Basic \[redacted\] is wrong/,
    }),
  },
  {
    name: 'invalid_grant: iat in the future, no Date header',
    response: { ...oauth(400, 'invalid_grant', 'iat is in the future'), sendDate: false },
    expected: fails('OAUTH_ERROR', false, 400, {
      oauth: { error: 'invalid_grant', clockSkewSuspected: true },
      message: /check the clock/,
      notMessage: /\d+ s (behind|ahead)/,
    }),
  },
  {
    name: 'invalid_client: iat in the future, server Date 10 minutes ahead',
    response: oauth(400, 'invalid_client', 'client assertion iat is in the future', {
      date: new Date(NOW + 600_000).toUTCString(),
    }),
    expected: fails('OAUTH_ERROR', false, 400, {
      oauth: { error: 'invalid_client', clockSkewSuspected: true },
      message: /this machine's clock is about 600 s behind the token endpoint's; check the clock/,
    }),
  },
  {
    name: 'invalid_grant: assertion expired, server Date 10 minutes behind',
    response: oauth(400, 'invalid_grant', 'the assertion has expired', {
      date: new Date(NOW - 600_000).toUTCString(),
    }),
    expected: fails('OAUTH_ERROR', false, 400, {
      oauth: { error: 'invalid_grant', clockSkewSuspected: true },
      message: /this machine's clock is about 600 s ahead of the token endpoint's/,
    }),
  },
  {
    name: 'invalid_scope mentioning time: no clock hint',
    response: oauth(400, 'invalid_scope', 'scope is not available at this time'),
    expected: fails('OAUTH_ERROR', false, 400, {
      oauth: { error: 'invalid_scope', clockSkewSuspected: false },
      notMessage: /clock/,
    }),
  },

  // Bodies that are not a JSON token response
  {
    name: 'non-JSON text body, 200',
    response: text(200, `access_token=${TOKEN}&trace=${BODY_MARKER}`),
    expected: fails('INVALID_JSON', false, 200),
  },
  {
    name: 'truncated JSON, 200',
    response: text(200, `{"access_token":"${TOKEN}","trace":"${BODY_MARKER}"`, 'application/json'),
    expected: fails('INVALID_JSON', false, 200),
  },
  {
    name: 'empty body, 200',
    response: text(200, '', 'application/json'),
    expected: fails('INVALID_JSON', false, 200),
  },
  {
    name: 'HTML login page, 200',
    response: text(200, HTML_PAGE, 'text/html; charset=utf-8'),
    expected: fails('HTML_RESPONSE', false, 200, { message: /HTML page/ }),
  },
  {
    name: 'HTML page without content-type, 200',
    response: text(200, HTML_PAGE, undefined),
    expected: fails('HTML_RESPONSE', false, 200),
  },
  {
    name: 'HTML 502 Bad Gateway from a proxy',
    response: text(502, PROXY_502, 'text/html'),
    expected: fails('SERVER_ERROR', true, 502, { message: /answered 502 \(an HTML page\)/ }),
  },
  {
    name: 'JSON array',
    response: json(200, [TOKEN, BODY_MARKER]),
    expected: fails('RESPONSE_NOT_OBJECT', false, 200, { message: /array/ }),
  },
  {
    name: 'JSON string',
    response: json(200, `${TOKEN} ${BODY_MARKER}`),
    expected: fails('RESPONSE_NOT_OBJECT', false, 200),
  },
  { name: 'JSON null', response: json(200, null), expected: fails('RESPONSE_NOT_OBJECT', false, 200) },
  { name: 'JSON number', response: json(200, 42), expected: fails('RESPONSE_NOT_OBJECT', false, 200) },

  // access_token
  {
    name: 'missing access_token',
    response: token({ access_token: undefined }),
    expected: fails('MISSING_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token null',
    response: token({ access_token: null }),
    expected: fails('MISSING_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token a number',
    response: token({ access_token: 123456789 }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token an object',
    response: token({ access_token: { value: TOKEN } }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token empty',
    response: token({ access_token: '' }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with a space',
    response: token({ access_token: `${TOKEN} x` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with a newline',
    response: token({ access_token: `${TOKEN}\nx` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with U+010D U+010A (latin1 bytes CR LF)',
    response: token({ access_token: `${TOKEN}\u010d\u010ax` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with a euro sign',
    response: token({ access_token: `${TOKEN}€x` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with U+0085 (NEL)',
    response: token({ access_token: `${TOKEN}\u0085x` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with U+009B (CSI)',
    response: token({ access_token: `${TOKEN}\u009bx` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with a tab',
    response: token({ access_token: `${TOKEN}\tx` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with DEL',
    response: token({ access_token: `${TOKEN}\u007fx` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with a NUL',
    response: token({ access_token: `${TOKEN}\u0000x` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with a lone surrogate',
    response: token({ access_token: `${TOKEN}\ud800x` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with an emoji',
    response: token({ access_token: `${TOKEN}\u{1F600}x` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with U+00A0 (no-break space)',
    response: token({ access_token: `${TOKEN}\u00a0x` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'access_token with a full-width letter',
    response: token({ access_token: `${TOKEN}\uff21x` }),
    expected: fails('INVALID_ACCESS_TOKEN', false, 200),
  },
  {
    name: 'token_type with a space',
    response: token({ token_type: 'Bearer x' }),
    expected: fails('UNSUPPORTED_TOKEN_TYPE', false, 200),
  },
  {
    name: 'token_type with non-ASCII',
    response: token({ token_type: 'Bear\u010d\u010a' }),
    expected: fails('UNSUPPORTED_TOKEN_TYPE', false, 200),
  },

  // expires_in and refresh_in
  {
    name: 'expires_in negative',
    response: token({ expires_in: -1 }),
    expected: fails('INVALID_EXPIRES_IN', false, 200),
  },
  {
    name: 'expires_in "abc"',
    response: token({ expires_in: 'abc' }),
    expected: fails('INVALID_EXPIRES_IN', false, 200),
  },
  {
    name: 'expires_in negative string "-60"',
    response: token({ expires_in: '-60' }),
    expected: fails('INVALID_EXPIRES_IN', false, 200),
  },
  {
    name: 'expires_in empty string',
    response: token({ expires_in: '' }),
    expected: fails('INVALID_EXPIRES_IN', false, 200),
  },
  {
    name: 'expires_in true',
    response: token({ expires_in: true }),
    expected: fails('INVALID_EXPIRES_IN', false, 200),
  },
  {
    name: 'expires_in an object',
    response: token({ expires_in: { seconds: 3600 } }),
    expected: fails('INVALID_EXPIRES_IN', false, 200),
  },
  {
    name: 'expires_in an array',
    response: token({ expires_in: [3600] }),
    expected: fails('INVALID_EXPIRES_IN', false, 200),
  },
  {
    name: 'expires_in 1e400 (Infinity once parsed)',
    response: text(
      200,
      `{"access_token":"${TOKEN}","token_type":"Bearer","expires_in":1e400,"trace_id":"${BODY_MARKER}"}`,
      'application/json',
    ),
    expected: fails('INVALID_EXPIRES_IN', false, 200),
  },
  {
    name: 'refresh_in negative',
    response: token({ refresh_in: -5 }),
    expected: fails('INVALID_REFRESH_IN', false, 200),
  },
  {
    name: 'refresh_in "soon"',
    response: token({ refresh_in: 'soon' }),
    expected: fails('INVALID_REFRESH_IN', false, 200),
  },

  // token_type and scope
  {
    name: 'token_type "mac"',
    response: token({ token_type: 'mac' }),
    // The field is named, its value is not quoted (a server's text stays out of messages).
    expected: fails('UNSUPPORTED_TOKEN_TYPE', false, 200, { message: /token_type/, notMessage: /mac/i }),
  },
  {
    name: 'token_type "DPoP" when only Bearer is accepted',
    response: token({ token_type: 'DPoP' }),
    expected: fails('UNSUPPORTED_TOKEN_TYPE', false, 200),
  },
  {
    name: 'token_type a number',
    response: token({ token_type: 1 }),
    expected: fails('UNSUPPORTED_TOKEN_TYPE', false, 200),
  },
  {
    name: 'token_type empty',
    response: token({ token_type: '' }),
    expected: fails('UNSUPPORTED_TOKEN_TYPE', false, 200),
  },
  {
    name: 'scope an array',
    response: token({ scope: ['read', 'write'] }),
    expected: fails('INVALID_SCOPE_FIELD', false, 200, { message: /an array as scope/ }),
  },
  {
    name: 'scope a number',
    response: token({ scope: 7 }),
    expected: fails('INVALID_SCOPE_FIELD', false, 200),
  },
  {
    name: 'reduced scope with requireRequestedScopes',
    response: token({ scope: 'read' }),
    options: { requireRequestedScopes: true },
    expected: fails('SCOPE_NOT_GRANTED', false, 200, { message: /did not grant the scopes write/ }),
  },

  // Size
  {
    name: 'response over maxResponseBytes, declared Content-Length',
    response: text(200, tokenOfSize(CAP + 1), 'application/json'),
    options: { maxResponseBytes: CAP },
    expected: fails('RESPONSE_TOO_LARGE', false, 200, { message: /larger than 1024 bytes/ }),
  },
  {
    name: 'response over maxResponseBytes, chunked without length',
    serve: (_req, res) => {
      res.writeHead(200, JSON_HEADERS)
      const body = tokenOfSize(4 * CAP)
      for (let offset = 0; offset < body.length; offset += 512) res.write(body.slice(offset, offset + 512))
      res.end()
    },
    options: { maxResponseBytes: CAP },
    expected: fails('RESPONSE_TOO_LARGE', false, 200),
  },

  // HTTP statuses
  {
    name: '429 with Retry-After: 7 (seconds)',
    response: text(429, `slow down ${BODY_MARKER}`, 'text/plain', { 'retry-after': '7' }),
    expected: fails('RATE_LIMITED', true, 429, { retryAfterMs: 7_000 }),
  },
  {
    name: '429 with Retry-After as an HTTP-date 2 minutes ahead',
    response: text(429, `slow down ${BODY_MARKER}`, 'text/plain', {
      'retry-after': new Date(NOW + 120_000).toUTCString(),
    }),
    expected: fails('RATE_LIMITED', true, 429, { retryAfterMs: 120_000 }),
  },
  {
    name: '429 without Retry-After',
    response: text(429, ''),
    expected: fails('RATE_LIMITED', true, 429),
  },
  {
    name: '503 with Retry-After: 120',
    response: text(503, 'Service Unavailable', 'text/plain', { 'retry-after': '120' }),
    expected: fails('SERVER_ERROR', true, 503, { retryAfterMs: 120_000 }),
  },
  {
    name: '503 with Retry-After a date in the past',
    response: text(503, 'Service Unavailable', 'text/plain', {
      'retry-after': new Date(NOW - 60_000).toUTCString(),
    }),
    expected: fails('SERVER_ERROR', true, 503, { retryAfterMs: 0 }),
  },
  {
    name: '503 with an unreadable Retry-After',
    response: text(503, 'Service Unavailable', 'text/plain', { 'retry-after': 'soon-ish' }),
    expected: fails('SERVER_ERROR', true, 503),
  },
  {
    name: '500 plain text',
    response: text(500, `Internal Server Error ${BODY_MARKER}`),
    expected: fails('SERVER_ERROR', true, 500, { message: /answered 500$/ }),
  },
  {
    name: '504 empty body',
    response: text(504, ''),
    expected: fails('SERVER_ERROR', true, 504),
  },
  {
    name: '404 Not Found',
    response: text(404, `Not Found ${BODY_MARKER}`),
    expected: fails('UNEXPECTED_STATUS', false, 404),
  },
  {
    name: '400 non-JSON',
    response: text(400, `Bad Request ${BODY_MARKER}`),
    expected: fails('UNEXPECTED_STATUS', false, 400),
  },
  {
    name: '401 without an error body',
    response: text(401, '', 'text/plain', { 'www-authenticate': 'Basic realm="token"' }),
    expected: fails('UNEXPECTED_STATUS', false, 401),
  },
  {
    name: '403 HTML page from a firewall',
    response: text(403, HTML_PAGE, 'text/html'),
    expected: fails('UNEXPECTED_STATUS', false, 403, { message: /an HTML page/ }),
  },
  {
    name: '408 Request Timeout',
    response: text(408, ''),
    expected: fails('UNEXPECTED_STATUS', true, 408),
  },

  // Redirects are never followed
  ...[301, 302, 303, 307, 308].map((status): BadResponseRow => ({
    name: `${status} redirect`,
    serve: redirect(status, `/target/${status}`),
    neverRequested: `/target/${status}`,
    expected: fails('REDIRECT_REJECTED', false, status, { message: /never follow redirects/ }),
  })),
  {
    name: '302 redirect to another host',
    serve: redirect(302, 'https://elsewhere.example/steal'),
    expected: fails('REDIRECT_REJECTED', false, 302, { message: /redirecting to elsewhere\.example/ }),
  },

  // Transport
  {
    name: 'server never answers, timeoutMs 300',
    serve: hang,
    options: { timeoutMs: 300 },
    expected: fails('TIMEOUT', true, undefined, { message: /did not answer within 300 ms/ }),
  },
  {
    name: 'headers sent, body never finishes, timeoutMs 300',
    serve: (_req, res) => {
      res.writeHead(200, JSON_HEADERS)
      res.write(`{"access_token":"${TOKEN}","trace":"${BODY_MARKER}"`)
    },
    options: { timeoutMs: 300 },
    expected: fails('TIMEOUT', true, undefined),
  },
  {
    name: 'socket destroyed before any response',
    serve: (req) => req.socket.destroy(),
    expected: fails('CONNECTION_RESET', true, undefined),
  },
  {
    name: 'socket destroyed in the middle of the body',
    serve: (_req, res) => {
      res.writeHead(200, { ...JSON_HEADERS, 'content-length': '500' })
      res.write(`{"access_token":"${TOKEN}",`, () => res.destroy())
    },
    expected: fails('CONNECTION_RESET', true, undefined),
  },
  {
    name: 'connection refused',
    endpoint: 'refused',
    expected: fails('CONNECTION_REFUSED', true, undefined, { message: /connection refused/ }),
  },
  {
    name: 'http: tokenUrl to a non-loopback host (thrown at construction)',
    endpoint: 'insecure',
    expected: fails('INSECURE_TOKEN_URL', false, undefined, { message: /must use https/ }),
  },

  // What a token response shows (scopes, by inspect and JSON) and server text kept in errors
  {
    name: 'scope repeats the access token',
    response: token({ scope: `read ${TOKEN}` }),
    expected: fails('INVALID_SCOPE_FIELD', false, 200, { message: /access token/ }),
  },
  {
    name: 'scope with a control character (ESC)',
    response: token({ scope: 'read \u001b[2Jwrite' }),
    expected: fails('INVALID_SCOPE_FIELD', false, 200, { message: /control character/ }),
  },
  {
    name: 'scope with a bidirectional override (U+202E)',
    response: token({ scope: 'read \u202eetirw' }),
    expected: fails('INVALID_SCOPE_FIELD', false, 200),
  },
  {
    name: 'error_description with U+2028, U+2029 and a bidirectional override',
    response: oauth(400, 'invalid_request', 'one\u2028level=info two\u2029three \u202eevil\u2066'),
    expected: fails('OAUTH_ERROR', false, 400, {
      oauth: { error: 'invalid_request', error_description: 'one level=info two three  evil ' },
    }),
  },
  {
    name: 'error_description quotes a client secret with a slash JSON-escaped, as PHP writes it',
    response: oauth(401, 'invalid_client', `got {"client_secret":"${SLASH_SECRET.replace(/\//g, '\\/')}"}`),
    options: { auth: clientSecretPost(SLASH_SECRET) },
    expected: fails('OAUTH_ERROR', false, 401, {
      oauth: { error: 'invalid_client', error_description: 'got {"client_secret":"[redacted]"}' },
    }),
  },
  {
    name: 'error_description quotes the client secret percent-encoded as Python does (tilde plain, star encoded)',
    response: oauth(401, 'invalid_client', `client_secret=${PYTHON_QUOTED_SECRET} is wrong`),
    options: { auth: clientSecretPost(TILDE_SECRET) },
    expected: fails('OAUTH_ERROR', false, 401, {
      oauth: { error: 'invalid_client', error_description: 'client_secret=[redacted] is wrong' },
    }),
  },
  {
    name: 'WWW-Authenticate quotes the client secret as an escaped quoted-string',
    response: oauth(401, 'invalid_client', undefined, {
      'www-authenticate': `Basic error_description="bad ${QUOTED_SECRET.replace(/["\\]/g, '\\$&')}"`,
    }),
    options: { auth: clientSecretBasic(QUOTED_SECRET) },
    expected: fails('OAUTH_ERROR', false, 401, {
      oauth: {
        error: 'invalid_client',
        headers: { 'www-authenticate': 'Basic error_description="bad [redacted]"' },
      },
    }),
  },
  {
    name: 'gzip Content-Encoding on a body that is not gzip',
    serve: (_req, res) => {
      res.writeHead(200, { ...JSON_HEADERS, 'content-encoding': 'gzip' })
      res.end(`not gzip ${BODY_MARKER} ${TOKEN_JSON}`)
    },
    expected: fails('NETWORK_ERROR', true, undefined, { message: /network error/ }),
  },
  {
    name: 'deflate Content-Encoding on a body that is not deflate',
    serve: (_req, res) => {
      res.writeHead(200, { ...JSON_HEADERS, 'content-encoding': 'deflate' })
      res.end(`not deflate ${BODY_MARKER}`)
    },
    expected: fails('NETWORK_ERROR', true, undefined),
  },
  {
    name: 'gzip body that inflates past maxResponseBytes (a compression bomb)',
    serve: (_req, res) => {
      res.writeHead(200, { ...JSON_HEADERS, 'content-encoding': 'gzip' })
      res.end(gzipSync(tokenOfSize(100 * CAP)))
    },
    options: { maxResponseBytes: CAP },
    expected: fails('RESPONSE_TOO_LARGE', false, 200),
  },
  {
    name: 'a response header with a control character (not HTTP)',
    serve: (req) => {
      req.socket.end(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-trace: a\u001bb\r\ncontent-length: ${TOKEN_JSON.length}\r\n\r\n${TOKEN_JSON}`,
      )
    },
    expected: fails('NETWORK_ERROR', true, undefined),
  },
  {
    name: '503 with Retry-After of 10^30 seconds: clamped to 2^31 - 1 ms',
    response: text(503, 'Service Unavailable', 'text/plain', { 'retry-after': `1${'0'.repeat(30)}` }),
    expected: fails('SERVER_ERROR', true, 503, { retryAfterMs: 2_147_483_647 }),
  },
  {
    name: '429 with Retry-After a date in the year 9999: clamped to 2^31 - 1 ms',
    response: text(429, `slow down ${BODY_MARKER}`, 'text/plain', {
      'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT',
    }),
    expected: fails('RATE_LIMITED', true, 429, { retryAfterMs: 2_147_483_647 }),
  },
  {
    name: '429 with a negative Retry-After',
    response: text(429, `slow down ${BODY_MARKER}`, 'text/plain', { 'retry-after': '-30' }),
    expected: fails('RATE_LIMITED', true, 429),
  },
  {
    name: '503 with a fractional Retry-After',
    response: text(503, 'Service Unavailable', 'text/plain', { 'retry-after': '1.5' }),
    expected: fails('SERVER_ERROR', true, 503),
  },
  {
    name: 'a one-character client secret: server text is left whole (shorter than 4 is no secret)',
    response: oauth(401, 'invalid_client', 'a client secret a is not allowed'),
    options: { auth: clientSecretPost('a') },
    expected: fails('OAUTH_ERROR', false, 401, {
      oauth: { error: 'invalid_client', error_description: 'a client secret a is not allowed' },
      message: /invalid_client \(a client secret a is not allowed\)$/,
    }),
  },
  {
    name: 'an injected fetch that follows a 307 despite redirect manual',
    serve: redirect(307, '/target/307'),
    options: { fetch: followingFetch },
    expected: fails('REDIRECT_REJECTED', false, 200, {
      message: /answered from another URL: the injected fetch followed a redirect/,
    }),
  },
]

interface GoodResponseRow {
  readonly name: string
  readonly response?: CannedResponse
  readonly serve?: Serve
  readonly options?: Partial<ClientCredentialsOptions>
  readonly check: (token: AccessToken) => void
}

/** Unusual responses that must still succeed. The request is sent at `NOW`. */
export const GOOD_RESPONSES: readonly GoodResponseRow[] = [
  {
    name: 'expires_in as a numeric string "3600"',
    response: token({ expires_in: '3600' }),
    check: (t) => expect(t.expiresAt).toBe(NOW + 3_600_000),
  },
  {
    name: 'expires_in fractional 1.5',
    response: token({ expires_in: 1.5 }),
    check: (t) => expect(t.lifetimeMs).toBe(1500),
  },
  {
    name: 'expires_in 0 (accepted; already expired)',
    response: token({ expires_in: 0 }),
    check: (t) => expect(t.expiresAt).toBe(NOW),
  },
  {
    name: 'expires_in above ten years is clamped to ten years',
    response: token({ expires_in: 1e12 }),
    check: (t) => expect(t.lifetimeMs).toBe(10 * 365 * 24 * 3_600_000),
  },
  {
    name: 'missing expires_in: default lifetime of 1 hour',
    response: token({ expires_in: undefined }),
    check: (t) => expect(t.expiresAt).toBe(NOW + DEFAULT_LIFETIME_MS),
  },
  {
    name: 'expires_in null: default lifetime',
    response: token({ expires_in: null }),
    check: (t) => expect(t.lifetimeMs).toBe(3_600_000),
  },
  {
    name: 'missing expires_in with defaultLifetimeMs 120000',
    response: token({ expires_in: undefined }),
    options: { defaultLifetimeMs: 120_000 },
    check: (t) => expect(t.expiresAt).toBe(NOW + 120_000),
  },
  {
    name: 'token_type "bearer"',
    response: token({ token_type: 'bearer' }),
    check: (t) => {
      expect(t.type).toBe('Bearer')
      expect(t.authorization).toBe(`Bearer ${TOKEN}`)
    },
  },
  {
    name: 'token_type "BEARER"',
    response: token({ token_type: 'BEARER' }),
    check: (t) => expect(t.type).toBe('Bearer'),
  },
  {
    name: 'missing token_type: Bearer',
    response: token({ token_type: undefined }),
    check: (t) => expect(t.type).toBe('Bearer'),
  },
  {
    name: 'token_type "dpop" with acceptedTokenTypes DPoP',
    response: token({ token_type: 'dpop' }),
    options: { acceptedTokenTypes: ['DPoP'] },
    check: (t) => expect(t.authorization).toBe(`DPoP ${TOKEN}`),
  },
  {
    name: 'omitted scope: the requested scopes',
    response: token({}),
    check: (t) => {
      expect(t.scopes).toEqual(['read', 'write'])
      expect(t.requestedScopes).toEqual(['read', 'write'])
      expect(t.scopeReduced).toBe(false)
    },
  },
  {
    name: 'reduced scope: scopeReduced',
    response: token({ scope: 'read' }),
    check: (t) => {
      expect(t.scopes).toEqual(['read'])
      expect(t.scopeReduced).toBe(true)
      expect(t.hasScope('write')).toBe(false)
    },
  },
  {
    name: 'scope with extra spaces and duplicates',
    response: token({ scope: '  write  read read ' }),
    check: (t) => {
      expect(t.scopes).toEqual(['read', 'write'])
      expect(t.scopeReduced).toBe(false)
    },
  },
  {
    name: 'wider scope than requested',
    response: token({ scope: 'read write admin' }),
    check: (t) => {
      expect(t.scopes).toEqual(['admin', 'read', 'write'])
      expect(t.scopeReduced).toBe(false)
    },
  },
  {
    name: 'refresh_in kept as refreshAt',
    response: token({ refresh_in: 1800 }),
    check: (t) => expect(t.refreshAt).toBe(NOW + 1_800_000),
  },
  {
    name: 'refresh_in not before expires_in is ignored',
    response: token({ refresh_in: 3600 }),
    check: (t) => expect(t.refreshAt).toBeUndefined(),
  },
  {
    name: 'extra fields kept in extra, never printed',
    response: token({ id_token: 'IDTOKEN-must-not-leak-000', vendor: { tenant: 't1' } }),
    check: (t) => {
      expect(t.extra).toEqual({
        id_token: 'IDTOKEN-must-not-leak-000',
        vendor: { tenant: 't1' },
        trace_id: BODY_MARKER,
      })
      for (const shown of [inspect(t), JSON.stringify(t), String(t)]) {
        expect(shown).not.toContain('IDTOKEN-must-not-leak-000')
        expect(shown).not.toContain(BODY_MARKER)
      }
    },
  },
  {
    name: '201 Created',
    response: token({}, 201),
    check: (t) => expect(t.value).toBe(TOKEN),
  },
  {
    name: 'no content-type',
    response: text(200, TOKEN_JSON, undefined),
    check: (t) => expect(t.value).toBe(TOKEN),
  },
  {
    name: 'UTF-8 byte order mark before the JSON',
    response: text(200, `\uFEFF${TOKEN_JSON}`, 'application/json'),
    check: (t) => expect(t.value).toBe(TOKEN),
  },
  {
    name: 'response of exactly maxResponseBytes',
    response: text(200, tokenOfSize(CAP), 'application/json'),
    options: { maxResponseBytes: CAP },
    check: (t) => expect(t.value).toBe(TOKEN),
  },
  {
    name: 'chunked body in many pieces',
    serve: (_req, res) => {
      res.writeHead(200, JSON_HEADERS)
      for (const piece of TOKEN_JSON.match(/.{1,7}/g) ?? []) res.write(piece)
      res.end()
    },
    check: (t) => expect(t.value).toBe(TOKEN),
  },
  {
    name: 'answer after 200 ms: expiresAt measured from when the request was sent',
    serve: (_req, res) => {
      setTimeout(() => {
        now += 200
        res.writeHead(200, JSON_HEADERS)
        res.end(TOKEN_JSON)
      }, 200)
    },
    check: (t) => {
      expect(now).toBe(NOW + 200)
      expect(t.issuedAt).toBe(NOW)
      expect(t.expiresAt).toBe(NOW + 3600 * 1000)
    },
  },
  {
    name: 'a vendor field nested 50000 deep',
    response: text(200, TOKEN_JSON.replace(/}$/, `,"deep":${'['.repeat(50_000)}${']'.repeat(50_000)}}`)),
    check: (t) => expect(Object.keys(t.extra)).toEqual(['deep']),
  },
  {
    name: 'access_token given twice: the last one',
    response: text(200, TOKEN_JSON.replace('{', '{"access_token":"FIRST-of-two",'), 'application/json'),
    check: (t) => expect(t.value).toBe(TOKEN),
  },
  {
    name: 'a field named after the access token is not kept in extra',
    response: token({ [TOKEN]: true, [`x-${SECRET}`]: 1 }),
    check: (t) => {
      expect(t.extra).toEqual({ trace_id: BODY_MARKER })
      for (const shown of [inspect(t), JSON.stringify(t)]) expect(shown).not.toContain(SECRET)
    },
  },
  {
    name: 'a __proto__ field sets no prototype and is not kept',
    // Written out: a `__proto__` key in an object literal would set the literal's prototype.
    response: text(
      200,
      TOKEN_JSON.replace(/}$/, ',"__proto__":{"polluted":true},"constructor":1}'),
      'application/json',
    ),
    check: (t) => {
      expect(Object.getPrototypeOf(t.extra)).toBe(Object.prototype)
      expect('polluted' in t.extra).toBe(false)
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
      expect(t.extra).toEqual({ constructor: 1 })
    },
  },
]

let server: LocalServer
let refusedPort: number

function serveCanned(response: CannedResponse): Serve {
  return (_req, res) => {
    if (response.sendDate === false) res.sendDate = false
    res.writeHead(response.status, response.headers ?? {})
    res.end(response.body)
  }
}

beforeAll(async () => {
  server = await startLocalServer()
  refusedPort = await closedPort()
  BAD_RESPONSES.forEach((row, index) => {
    const serve = row.serve ?? (row.response === undefined ? undefined : serveCanned(row.response))
    if (serve !== undefined) server.route(`/case/${index}`, serve)
  })
  GOOD_RESPONSES.forEach((row, index) => {
    const serve = row.serve ?? (row.response === undefined ? undefined : serveCanned(row.response))
    if (serve !== undefined) server.route(`/good/${index}`, serve)
  })
  for (const status of [301, 302, 303, 307, 308]) server.route(`/target/${status}`, serveCanned(token({})))
})

afterAll(async () => {
  await server.close()
})

beforeEach(() => {
  now = NOW
})

function source(tokenUrl: string, options: Partial<ClientCredentialsOptions> = {}) {
  return clientCredentials({
    tokenUrl,
    clientId: CLIENT_ID,
    auth: clientSecretBasic(SECRET),
    scopes: SCOPES,
    clock,
    ...options,
  })
}

async function failureOf(row: BadResponseRow, index: number): Promise<unknown> {
  const tokenUrl =
    row.endpoint === 'refused'
      ? `http://127.0.0.1:${refusedPort}/token`
      : row.endpoint === 'insecure'
        ? 'http://idp.example/oauth/token'
        : `${server.origin}/case/${index}`
  if (row.endpoint === 'insecure') {
    try {
      source(tokenUrl, row.options)
    } catch (error) {
      return error
    }
    throw new Error('construction did not throw')
  }
  try {
    await source(tokenUrl, row.options).fetchToken()
  } catch (error) {
    return error
  }
  throw new Error('fetchToken resolved')
}

/** Everything an error shows of itself. */
function renderings(error: Error): string[] {
  return [
    error.message,
    String(error),
    inspect(error),
    inspect(error, { showHidden: true, depth: Infinity }),
    JSON.stringify(error),
  ]
}

function expectNothingLeaks(error: Error, rawBody: string | undefined): void {
  const forbidden = [SECRET, TOKEN, BASIC, BODY_MARKER]
  if (rawBody !== undefined && rawBody.length >= 12) forbidden.push(rawBody)
  for (const shown of renderings(error)) for (const value of forbidden) expect(shown).not.toContain(value)
}

describe('a misbehaving token endpoint', () => {
  it('has at least 30 distinct rows', () => {
    expect(BAD_RESPONSES.length).toBeGreaterThanOrEqual(30)
    expect(new Set(BAD_RESPONSES.map((row) => row.name)).size).toBe(BAD_RESPONSES.length)
  })

  it.each(BAD_RESPONSES.map((row, index) => [row.name, row, index] as const))(
    '%s',
    async (_name, row, index) => {
      const before = row.neverRequested === undefined ? 0 : server.hits(row.neverRequested).length
      const caught = await failureOf(row, index)
      const expected = row.expected

      expect(caught).toBeInstanceOf(TokenkeeperError)
      expect(isTokenkeeperError(caught)).toBe(true)
      const error = caught as TokenkeeperError
      expect({
        code: error.code,
        retryable: error.retryable,
        status: error.status,
        retryAfterMs: error.retryAfterMs,
      }).toEqual({
        code: expected.code,
        retryable: expected.retryable,
        status: expected.status,
        retryAfterMs: expected.retryAfterMs,
      })

      if (expected.oauth === undefined) {
        expect(error).not.toBeInstanceOf(OAuthError)
        expect(error.name).toBe('TokenkeeperError')
      } else {
        expect(error).toBeInstanceOf(OAuthError)
        expect(isOAuthError(error, expected.oauth.error)).toBe(true)
        const oauthError = error as OAuthError
        expect(oauthError.name).toBe('OAuthError')
        expect(oauthError.error).toBe(expected.oauth.error)
        if ('error_description' in expected.oauth) {
          expect(oauthError.error_description).toBe(expected.oauth.error_description)
        }
        expect(oauthError.error_uri).toBe(expected.oauth.error_uri)
        if (expected.oauth.clockSkewSuspected !== undefined) {
          expect(oauthError.clockSkewSuspected).toBe(expected.oauth.clockSkewSuspected)
        }
        expect(oauthError.response.status).toBe(expected.status)
        expect(oauthError.response.headers).toMatchObject(expected.oauth.headers ?? {})
        expect(Object.keys(oauthError)).not.toContain('response')
        expect(JSON.stringify(oauthError)).not.toContain('"response"')
      }

      if (row.endpoint === undefined)
        expect(error.message).toContain(`127.0.0.1:${server.port}/case/${index}`)
      if (expected.message !== undefined) expect(error.message).toMatch(expected.message)
      if (expected.notMessage !== undefined) expect(error.message).not.toMatch(expected.notMessage)
      expectNothingLeaks(error, row.response?.body)

      if (row.neverRequested !== undefined) {
        expect(server.hits(row.neverRequested).length).toBe(before)
        expect(server.hits(row.neverRequested)).toHaveLength(0)
      }
    },
  )
})

describe('an unusual but valid token response', () => {
  it.each(GOOD_RESPONSES.map((row, index) => [row.name, row, index] as const))(
    '%s',
    async (_name, row, index) => {
      const token = await source(`${server.origin}/good/${index}`, row.options).fetchToken()
      expect(token).toBeInstanceOf(AccessToken)
      expect(token.value).toBe(TOKEN)
      expect(token.issuedAt).toBe(NOW)
      // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- a token in a template is exactly what is tested
      for (const shown of [inspect(token), JSON.stringify(token), String(token), `${token}`]) {
        expect(shown).not.toContain(TOKEN)
      }
      row.check(token)
    },
  )
})

describe('the token request', () => {
  it('is an application/x-www-form-urlencoded POST with exactly the expected fields', async () => {
    server.route('/capture', serveCanned(token({})))
    await source(`${server.origin}/capture`, {
      audience: 'https://api.example',
      resource: ['https://r2.example', 'https://r1.example'],
      extraParams: { tenant: 't-1' },
    }).fetchToken()
    const [request] = server.hits('/capture')
    expect(request).toBeDefined()
    expect(request!.method).toBe('POST')
    expect(request!.headers['content-type']).toMatch(
      /^application\/x-www-form-urlencoded(;\s*charset=utf-8)?$/i,
    )
    expect(request!.headers['accept']).toBe('application/json')
    expect(request!.headers['authorization']).toBe(`Basic ${BASIC}`)
    expect(formFields(request!)).toEqual([
      ['grant_type', 'client_credentials'],
      ['scope', 'read write'],
      ['audience', 'https://api.example'],
      ['resource', 'https://r1.example'],
      ['resource', 'https://r2.example'],
      ['tenant', 't-1'],
    ])
    expect(request!.body).not.toContain(SECRET)
  })

  it('without scopes sends only grant_type', async () => {
    server.route('/capture-bare', serveCanned(token({})))
    await source(`${server.origin}/capture-bare`, { scopes: [] }).fetchToken()
    expect(formFields(server.hits('/capture-bare')[0]!)).toEqual([['grant_type', 'client_credentials']])
  })
})

describe("a caller's AbortSignal", () => {
  it('rejects with the signal reason, not a TokenkeeperError, while the server is silent', async () => {
    let arrived!: () => void
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve))
    server.route('/abort', () => arrived())
    const controller = new AbortController()
    const reason = new Error('caller gave up')
    const pending = source(`${server.origin}/abort`).fetchToken({ signal: controller.signal })
    await requestArrived
    controller.abort(reason)
    const caught = await pending.then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(caught).toBe(reason)
    expect(isTokenkeeperError(caught)).toBe(false)
  })

  it('rejects with the reason of an already-aborted signal', async () => {
    server.route('/abort-early', serveCanned(token({})))
    const reason = new Error('never mind')
    await expect(
      source(`${server.origin}/abort-early`).fetchToken({ signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason)
  })

  it('without a reason rejects with an AbortError DOMException', async () => {
    let arrived!: () => void
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve))
    server.route('/abort-plain', () => arrived())
    const controller = new AbortController()
    const pending = source(`${server.origin}/abort-plain`).fetchToken({ signal: controller.signal })
    await requestArrived
    controller.abort()
    const caught = await pending.then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(caught).toBeInstanceOf(DOMException)
    expect((caught as DOMException).name).toBe('AbortError')
    expect(isTokenkeeperError(caught)).toBe(false)
  })
})

describe('edge cases of error responses', () => {
  // An outage page over maxResponseBytes must not turn a transient 503 into a permanent failure.
  it('a 503 with a body over maxResponseBytes is still SERVER_ERROR, retryable, with Retry-After', async () => {
    server.route('/edge/big-503', (_req, res) => {
      res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '30' })
      res.end(`<html>${'x'.repeat(2 * CAP)}</html>`)
    })
    const error = await source(`${server.origin}/edge/big-503`, { maxResponseBytes: CAP })
      .fetchToken()
      .catch((caught: unknown) => caught)
    expect(error).toMatchObject({
      code: 'SERVER_ERROR',
      retryable: true,
      status: 503,
      retryAfterMs: 30_000,
    })
  })

  it('a malformed 201 response reports status 201', async () => {
    server.route('/edge/created', serveCanned(token({ access_token: undefined }, 201)))
    const error = await source(`${server.origin}/edge/created`)
      .fetchToken()
      .catch((caught: unknown) => caught)
    expect(error).toMatchObject({ code: 'MISSING_ACCESS_TOKEN', status: 201 })
  })

  it('an injected fetch that follows a 307 to another origin: the token from there is refused', async () => {
    // The fetch sent the form body on (a client_secret_post secret with it): nothing can take
    // that back, but the answer of another origin is never used as this endpoint's token.
    const elsewhere = await startLocalServer()
    try {
      elsewhere.route('/steal', serveCanned(token({})))
      server.route('/edge/cross-origin', redirect(307, `${elsewhere.origin}/steal`))
      const error = await source(`${server.origin}/edge/cross-origin`, {
        auth: clientSecretPost(SECRET),
        fetch: followingFetch,
      })
        .fetchToken()
        .catch((caught: unknown) => caught)
      expect(elsewhere.hits('/steal')).toHaveLength(1)
      expect(error).toMatchObject({ code: 'REDIRECT_REJECTED', retryable: false, status: 200 })
      expect((error as Error).message).toMatch(/answered from another origin/)
      expect((error as Error).message).not.toContain(String(elsewhere.port))
      expectNothingLeaks(error as Error, undefined)
    } finally {
      await elsewhere.close()
    }
  })

  // A hostile or broken endpoint must not forge log lines or bloat every log entry: RFC 6749
  // §5.2 allows no control characters in these fields.
  it('a hostile error body cannot put line breaks or kilobytes into the message', async () => {
    server.route('/edge/hostile-error', (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          error: `invalid_client\nlevel=info msg="all good"${'x'.repeat(5000)}`,
          error_description: 'bad\r\nlevel=info msg="forged"',
        }),
      )
    })
    const error = await source(`${server.origin}/edge/hostile-error`)
      .fetchToken()
      .catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(OAuthError)
    const message = (error as OAuthError).message
    expect(message).not.toMatch(/[\r\n]/)
    expect(message.length).toBeLessThan(600)
  })
})

/** The cells of the rows of the markdown table between two markers. */
function docTable(markdown: string, marker: string): string[][] {
  const start = markdown.indexOf(`<!-- ${marker}:start -->`)
  const end = markdown.indexOf(`<!-- ${marker}:end -->`)
  expect(start).toBeGreaterThanOrEqual(0)
  expect(end).toBeGreaterThan(start)
  return markdown
    .slice(start, end)
    .split('\n')
    .filter((line) => /^\|\s*\d+\s*\|/.test(line))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim().replace(/`/g, '')),
    )
}

describe('docs/ERRORS.md', () => {
  const markdown = (): string => readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8')

  it('lists every bad-response row, with the same code, retryable, status and Retry-After', () => {
    const dash = (value: number | undefined): string => (value === undefined ? '—' : String(value))
    expect(docTable(markdown(), 'bad-responses')).toEqual(
      BAD_RESPONSES.map((row, index) => [
        String(index + 1),
        row.name,
        row.expected.code + (row.expected.oauth === undefined ? '' : ` (${row.expected.oauth.error})`),
        row.expected.retryable ? 'yes' : 'no',
        dash(row.expected.status),
        dash(row.expected.retryAfterMs),
      ]),
    )
  })

  it('lists every accepted unusual response', () => {
    expect(docTable(markdown(), 'good-responses').map((cells) => cells.slice(0, 2))).toEqual(
      GOOD_RESPONSES.map((row, index) => [String(index + 1), row.name]),
    )
  })
})
