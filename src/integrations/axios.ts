/**
 * `tokenkeeper/axios`: {@link attachTokens} sends the manager's tokens with every request of an
 * axios 1.x instance and renews once on a 401. Imports only axios' types: bring your own axios.
 * See `docs/INTEGRATIONS.md`.
 *
 * @packageDocumentation
 * @module tokenkeeper/axios
 */
import type { AxiosError, AxiosInstance, AxiosResponse, InternalAxiosRequestConfig } from 'axios'
import { isReplayableBody } from '../manager/fetch.js'
import { sameOrigin } from '../http/redirect.js'
import type { Authorization, Authorizer } from '../http/authorizer.js'
import { authorizerCache } from './routes.js'
import type { TokenManager } from '../manager/manager.js'
import { REDACTED, SecretSet } from '../secrets.js'
import type { TokenSource } from '../sources/types.js'

/** Chooses the source for a request, or `undefined` to send it without a token. */
export type AxiosSourceChooser = (config: InternalAxiosRequestConfig) => TokenSource | undefined

interface Sent {
  readonly authorizer: Authorizer
  readonly authorization: Authorization
  readonly retried: boolean
  /** Set by the redirect guard once a hop was sent without the token. */
  readonly redirect: { withoutToken: boolean }
}

type BeforeRedirect = NonNullable<InternalAxiosRequestConfig['beforeRedirect']>

/** The caller's own `beforeRedirect`, kept on the guard that wraps it (axios copies config into a retry's). */
const CALLER_HOOK = Symbol('tokenkeeper.callerBeforeRedirect')

/**
 * A `beforeRedirect` (run by axios' redirect handling in Node for every hop, after the caller's
 * own) that keeps the credentials on their origin: a hop to another origin (scheme, host or port:
 * axios' own check keeps them on a subdomain, and follow-redirects on an http → https change),
 * and every hop after it, goes without `Authorization` and `DPoP`. A DPoP request goes on without
 * them after any redirect: its proof names the old URL, and no new one can be signed in this
 * synchronous hook. The answer of such a hop invalidates nothing.
 */
function redirectGuard(
  config: InternalAxiosRequestConfig,
  url: string,
  authorization: Authorization,
  state: { withoutToken: boolean },
): BeforeRedirect {
  const existing = config.beforeRedirect as (BeforeRedirect & { [CALLER_HOOK]?: BeforeRedirect }) | undefined
  const caller = existing?.[CALLER_HOOK] ?? existing
  const origin = new URL(url)
  const bound = authorization.headers['dpop'] !== undefined
  const guard: BeforeRedirect = (options, responseDetails, requestDetails) => {
    caller?.(options, responseDetails, requestDetails)
    let next: URL | undefined
    try {
      next = new URL(String(options['href']))
    } catch {
      next = undefined
    }
    if (bound || next === undefined || !sameOrigin(next, origin)) state.withoutToken = true
    if (!state.withoutToken) return
    const headers = options['headers'] as Record<string, unknown> | undefined
    for (const name of Object.keys(headers ?? {})) {
      const lower = name.toLowerCase()
      if (lower === 'authorization' || lower === 'dpop') delete headers![name]
    }
  }
  return Object.assign(guard, caller === undefined ? {} : { [CALLER_HOOK]: caller })
}

/** Marks the config of a retry; axios copies config keys into the config of a new request. */
const RETRY_MARK = 'tokenkeeperRetry'

/** The config of the one retry of a request. */
function retryOf(config: InternalAxiosRequestConfig): InternalAxiosRequestConfig {
  const retry: InternalAxiosRequestConfig & Record<string, unknown> = { ...config }
  retry[RETRY_MARK] = true
  return retry
}

function isRetry(config: InternalAxiosRequestConfig): boolean {
  return (config as unknown as Record<string, unknown>)[RETRY_MARK] === true
}

function absoluteUrl(config: InternalAxiosRequestConfig): string {
  const url = config.url ?? ''
  if (/^[a-z][a-z\d+.-]*:/i.test(url) || config.baseURL === undefined) return url
  return `${config.baseURL.replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}`
}

/**
 * Keeps a token out of what axios hands back, in one pass over an answer or an error (and the
 * response it holds): axios copies the request headers into `config`, its `request` holds the
 * raw header block, and a resource may echo the token in `WWW-Authenticate`. The header is
 * replaced by a marker, `request` is made non-enumerable (so `util.inspect` and
 * `JSON.stringify` do not show it), and the token is scrubbed, in every encoding
 * (`src/secrets.ts`), from the response headers and the error message.
 */
function redact(holder: AxiosResponse | AxiosError, authorization: Authorization | undefined): void {
  const token = authorization?.token
  const proof = authorization?.headers['dpop']
  const secrets = new SecretSet([
    ...(token === undefined ? [] : [token.value, token.authorization]),
    ...(proof === undefined ? [] : [proof]),
  ])
  const error = 'isAxiosError' in holder ? holder : undefined
  const response = error === undefined ? (holder as AxiosResponse) : error.response
  for (const part of [holder, response]) {
    if (part === undefined) continue
    const headers = part.config?.headers
    if (headers?.has('authorization') === true) headers.set('authorization', REDACTED)
    // A DPoP proof is a credential too (for a short time).
    if (proof !== undefined && headers?.has('dpop') === true) headers.set('dpop', REDACTED)
    if ('request' in part) Object.defineProperty(part, 'request', { value: part.request, enumerable: false })
  }
  const headers = response?.headers as Record<string, unknown> | undefined
  if (headers !== undefined) {
    for (const name of ['www-authenticate', 'authentication-info', 'location']) {
      const value = headers[name]
      if (typeof value === 'string') headers[name] = secrets.scrub(value)
    }
  }
  if (error !== undefined && typeof error.message === 'string') error.message = secrets.scrub(error.message)
}

/**
 * Attaches tokens to an axios instance: every request gets the `Authorization` header for its
 * source, a 401 invalidates exactly the token that was sent (compare-and-delete: 50 concurrent
 * 401s cause one token request) and the request is sent once more with a renewed token when its
 * body can be replayed; a 403 `insufficient_scope` rejects with `InsufficientScopeError`. The
 * token never stays in `response.config`, `error.config` or an enumerable `request`. Returns a
 * function that detaches the interceptors.
 *
 * @example
 * ```ts
 * import axios from 'axios'
 * import { attachTokens } from 'tokenkeeper/axios'
 * const api = axios.create({ baseURL: 'https://api.example/v1' })
 * attachTokens(api, tokens, source)
 * const { data } = await api.get('/things')
 * ```
 */
export function attachTokens(
  instance: AxiosInstance,
  tokens: TokenManager,
  source: TokenSource | AxiosSourceChooser,
): () => void {
  const choose: AxiosSourceChooser = typeof source === 'function' ? source : () => source
  const sent = new WeakMap<InternalAxiosRequestConfig, Sent>()

  const authorizerFor = authorizerCache(tokens)

  const onRequest = async (config: InternalAxiosRequestConfig): Promise<InternalAxiosRequestConfig> => {
    const chosen = choose(config)
    if (chosen === undefined) return config
    const authorizer = authorizerFor(chosen)
    const request = { method: config.method ?? 'get', url: absoluteUrl(config) }
    const authorization = await authorizer.authorize(request, {
      signal: config.signal instanceof AbortSignal ? config.signal : undefined,
    })
    for (const [name, value] of Object.entries(authorization.headers)) config.headers.set(name, value)
    const redirect = { withoutToken: false }
    config.beforeRedirect = redirectGuard(config, request.url, authorization, redirect)
    sent.set(config, { authorizer, authorization, retried: isRetry(config), redirect })
    return config
  }

  const recordOf = (config: InternalAxiosRequestConfig | undefined): Sent | undefined => {
    const record = config === undefined ? undefined : sent.get(config)
    if (config !== undefined) sent.delete(config)
    return record
  }

  const settle = async (
    record: Sent | undefined,
    config: InternalAxiosRequestConfig | undefined,
    status: number | undefined,
    wwwAuthenticate: unknown,
    dpopNonce: unknown,
  ): Promise<'retry' | 'return'> => {
    if (config === undefined || record === undefined || status === undefined) return 'return'
    // The answer of a hop that carried no token says nothing about the token.
    if (record.redirect.withoutToken) return 'return'
    const next = await record.authorizer.afterResponse(
      { method: config.method ?? 'get', url: absoluteUrl(config) },
      record.authorization,
      {
        status,
        wwwAuthenticate: typeof wwwAuthenticate === 'string' ? wwwAuthenticate : null,
        dpopNonce: typeof dpopNonce === 'string' ? dpopNonce : null,
      },
      { retried: record.retried, replayable: isReplayableBody(config.data) },
    )
    return next
  }

  const onFulfilled = async (response: AxiosResponse): Promise<AxiosResponse> => {
    const record = recordOf(response.config)
    let next: 'retry' | 'return' = 'return'
    try {
      next = await settle(
        record,
        response.config,
        response.status,
        response.headers['www-authenticate'],
        response.headers['dpop-nonce'],
      )
    } finally {
      if (next === 'return') redact(response, record?.authorization)
    }
    return next === 'retry' ? instance.request(retryOf(response.config)) : response
  }

  const onRejected = async (error: AxiosError): Promise<AxiosResponse> => {
    const record = recordOf(error.config)
    let next: 'retry' | 'return' = 'return'
    try {
      next = await settle(
        record,
        error.config,
        error.response?.status,
        error.response?.headers['www-authenticate'],
        error.response?.headers['dpop-nonce'],
      )
    } finally {
      // Once, whether the answer is returned, rejected, or refused as insufficient_scope.
      if (next === 'return') redact(error, record?.authorization)
    }
    if (next === 'retry' && error.config !== undefined) return instance.request(retryOf(error.config))
    throw error
  }

  const requestId = instance.interceptors.request.use(onRequest)
  const responseId = instance.interceptors.response.use(onFulfilled, onRejected)
  return () => {
    instance.interceptors.request.eject(requestId)
    instance.interceptors.response.eject(responseId)
  }
}
