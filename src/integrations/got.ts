/**
 * `tokenkeeper/got`: {@link gotTokens}, hooks for `got.extend()` (got 14) that send the
 * manager's tokens by route and renew once on a 401. See `docs/INTEGRATIONS.md`.
 *
 * @packageDocumentation
 * @module tokenkeeper/got
 */
import type {
  AfterResponseHook,
  BeforeErrorHook,
  BeforeRedirectHook,
  BeforeRequestHook,
  Options,
  RequestError,
} from 'got'
import { InsufficientScopeError } from '../errors.js'
import type { Authorization, Authorizer } from '../http/authorizer.js'
import { isReplayableBody } from '../manager/fetch.js'
import { sameOrigin } from '../http/redirect.js'
import type { TokenManager } from '../manager/manager.js'
import { REDACTED, SecretSet } from '../secrets.js'
import type { TokenSource } from '../sources/types.js'
import { authorizerCache, sourceChooser, type SourceChooser, type SourceRoutes } from './routes.js'

export type { RouteRequest, SourceChooser, SourceRoutes } from './routes.js'

/** The hooks to pass to `got.extend()`. */
export interface GotTokenHooks {
  /** got's `hooks` option; `got.extend()` appends them to the instance's own hooks. */
  readonly hooks: {
    /** Sets `Authorization` for the request's source (a request with its own is left alone). */
    readonly beforeRequest: BeforeRequestHook[]
    /** On a redirect off the origin the token was asked for, drops it (and the DPoP proof) for the rest of the request. */
    readonly beforeRedirect: BeforeRedirectHook[]
    /** On a 401, invalidates the token that was sent and retries once; on a 403 `insufficient_scope`, rejects. */
    readonly afterResponse: AfterResponseHook[]
    /** Replaces the token with `[redacted]` in the options an error keeps, and unwraps `InsufficientScopeError`. */
    readonly beforeError: BeforeErrorHook[]
  }
}

/**
 * What one request sent, kept in `options.context` so that it follows the request into the
 * copies of its options got makes for a retry. Private fields: `JSON.stringify` and
 * `util.inspect` of the options show no token.
 */
class Sent {
  readonly #authorizer: Authorizer
  #authorization: Authorization
  retried = false
  /** The origin of the request the token was asked for. */
  readonly origin: URL
  /** Set once a redirect left that origin: no hop after it carries the token. */
  offOrigin = false

  constructor(authorizer: Authorizer, authorization: Authorization, url: URL) {
    this.#authorizer = authorizer
    this.#authorization = authorization
    this.origin = new URL(url.origin)
  }
  get authorizer(): Authorizer {
    return this.#authorizer
  }
  get authorization(): Authorization {
    return this.#authorization
  }
  set authorization(authorization: Authorization) {
    this.#authorization = authorization
  }
}

/** The `options.context` key of the request's {@link Sent}. */
const CONTEXT_KEY = 'tokenkeeper'

function sentOf(options: Pick<Options, 'context'> | undefined): Sent | undefined {
  const value = options?.context[CONTEXT_KEY]
  return value instanceof Sent ? value : undefined
}

function urlOf(options: Pick<Options, 'url'>): URL | undefined {
  const url = options.url
  if (url === undefined) return undefined
  return typeof url === 'string' ? new URL(url) : url
}

function firstValue(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null
}

/** Replaces the token in got's options (kept in `response.request.options` and `error.options`). */
function redact(options: Pick<Options, 'headers'> | undefined, sent: Sent | undefined): void {
  if (options === undefined || sent === undefined) return
  const headers = options.headers as Record<string, unknown>
  if (headers['authorization'] === sent.authorization.headers['authorization'])
    headers['authorization'] = REDACTED
  const proof = sent.authorization.headers['dpop']
  if (proof !== undefined && headers['dpop'] === proof) headers['dpop'] = REDACTED
}

/**
 * got hooks that send tokens (`got.extend(gotTokens(tokens, routes))`): each request whose URL
 * `routes` covers gets `Authorization` for its source; a 401 invalidates exactly the token that
 * was sent (compare-and-delete: 50 concurrent 401s cause one token request) and the request is
 * sent once more, through `retryWithMergedOptions`, with a renewed token when its body can be sent
 * again (none, a string, a buffer, `json`, `form`); a 403 `insufficient_scope` rejects with
 * `InsufficientScopeError`. A request that already carries its own `Authorization` is left
 * alone, and the token is replaced by `[redacted]` in the options got keeps on responses and
 * errors. Promise API only (got runs no `afterResponse` hooks for streams).
 *
 * @example
 * ```ts
 * import got from 'got'
 * import { gotTokens } from 'tokenkeeper/got'
 * const api = got.extend({ prefixUrl: 'https://api.example/v1' }, gotTokens(tokens, source))
 * const things = await api.get('things').json()
 * ```
 */
export function gotTokens(
  tokens: TokenManager,
  routes: SourceRoutes | SourceChooser | TokenSource,
): GotTokenHooks {
  const choose = sourceChooser(routes, 'gotTokens')
  const authorizerFor = authorizerCache(tokens)

  const beforeRequest: BeforeRequestHook = async (options) => {
    const url = urlOf(options)
    if (url === undefined) return
    const headers = options.headers as Record<string, unknown>
    const record = sentOf(options)
    if (record?.offOrigin === true) return
    const current = headers['authorization']
    const ours =
      current === undefined ||
      current === REDACTED ||
      (record !== undefined && current === record.authorization.headers['authorization'])
    if (!ours) return
    // A proof is for one request: a retry signs a new one (or, for a Bearer token, sends none).
    if (record?.authorization.headers['dpop'] !== undefined) delete headers['dpop']
    const source = choose({ method: options.method, url })
    if (source === undefined) {
      if (current !== undefined) delete headers['authorization']
      return
    }
    const authorizer = record?.authorizer ?? authorizerFor(source)
    const signal = options.signal as unknown
    const authorization = await authorizer.authorize(
      { method: options.method, url },
      { signal: signal instanceof AbortSignal ? signal : undefined },
    )
    for (const [name, value] of Object.entries(authorization.headers)) headers[name] = value
    if (record === undefined) options.context[CONTEXT_KEY] = new Sent(authorizer, authorization, url)
    else record.authorization = authorization
  }

  // got drops Authorization when a redirect changes host or port, not scheme (https → http),
  // and never drops DPoP; and beforeRequest runs again for the new URL.
  const beforeRedirect: BeforeRedirectHook = (options) => {
    const record = sentOf(options)
    const url = urlOf(options)
    if (record === undefined || url === undefined) return
    if (!sameOrigin(url, record.origin)) record.offOrigin = true
    if (!record.offOrigin) return
    const headers = options.headers as Record<string, unknown>
    if (headers['authorization'] === record.authorization.headers['authorization'])
      delete headers['authorization']
    if (record.authorization.headers['dpop'] !== undefined) delete headers['dpop']
  }

  const afterResponse: AfterResponseHook = async (response, retryWithMergedOptions) => {
    const options = response.request.options
    const record = sentOf(options)
    const url = urlOf(options)
    if (record === undefined || url === undefined) return response
    // The answer of a hop that carried no token says nothing about the token.
    if (record.offOrigin) return response
    const wwwAuthenticate = response.headers['www-authenticate']
    let next: 'retry' | 'return' = 'return'
    try {
      next = await record.authorizer.afterResponse(
        { method: options.method, url },
        record.authorization,
        {
          status: response.statusCode,
          wwwAuthenticate: wwwAuthenticate ?? null,
          dpopNonce: firstValue(response.headers['dpop-nonce']),
        },
        { retried: record.retried, replayable: isReplayableBody(options.body) },
      )
    } finally {
      if (next === 'return') {
        redact(options, record)
        if (typeof wwwAuthenticate === 'string') {
          response.headers['www-authenticate'] = new SecretSet([
            record.authorization.token.value,
            ...(record.authorization.headers['dpop'] === undefined
              ? []
              : [record.authorization.headers['dpop']]),
          ]).scrub(wwwAuthenticate)
        }
      }
    }
    if (next === 'return') return response
    record.retried = true
    // preserveHooks: this hook must see the answer to the retry too (got drops it otherwise).
    return retryWithMergedOptions({ preserveHooks: true })
  }

  const beforeError: BeforeErrorHook = (error: RequestError) => {
    redact(error.options, sentOf(error.options))
    // got wraps what a hook throws; the scope refusal is ours to hand back as it is.
    if (error.cause instanceof InsufficientScopeError) return error.cause
    return error
  }

  return {
    hooks: {
      beforeRequest: [beforeRequest],
      beforeRedirect: [beforeRedirect],
      afterResponse: [afterResponse],
      beforeError: [beforeError],
    },
  }
}
