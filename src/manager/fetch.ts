import {
  isDpopNonceChallenge,
  PRESENTS_CERTIFICATE,
  type Authorizer,
  type ResourceResponse,
} from '../http/authorizer.js'

export { parseBearerChallenge, type RefusalMemory, type TokenProvider } from '../http/authorizer.js'

/** Options of `tokens.fetch(source, options)`. */
export interface AuthorizedFetchOptions {
  /** The `fetch` that sends API requests. Default: the global `fetch`. */
  readonly fetch?: typeof globalThis.fetch
}

/** Whether a request body can be sent a second time (a stream cannot). */
export function isReplayableBody(body: unknown): boolean {
  if (body === undefined || body === null) return true
  if (typeof body === 'string' || body instanceof URLSearchParams || body instanceof ArrayBuffer) return true
  if (ArrayBuffer.isView(body) || body instanceof Blob || body instanceof FormData) return true
  return false
}

/**
 * Builds the fetch behind `tokens.fetch(source)`: every request carries the headers of
 * {@link Authorizer.authorize} (with DPoP, a fresh proof each time), and every answer goes
 * through {@link Authorizer.afterResponse} (on 401: invalidate the token sent, renew, retry once
 * when the body can be replayed; on a resource's DPoP nonce demand: once more with its nonce; on
 * 403 `insufficient_scope`: {@link InsufficientScopeError}).
 */
export function authorizedFetch(
  authorizer: Authorizer,
  options: AuthorizedFetchOptions,
  certificate?: { readonly fetch: typeof globalThis.fetch },
): typeof globalThis.fetch {
  const send = certificate?.fetch ?? options.fetch ?? globalThis.fetch
  const viaGlobal = certificate === undefined && options.fetch === undefined
  const presents = certificate !== undefined
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    // A URL and options (the common call) sent through the global fetch go as they are, with the
    // headers added: no Request is built and none is cloned for a retry, which on the hot path
    // of every API call costs more than the token lookup. An injected fetch gets a Request, as
    // it always has (one that reads only its first argument must still see the token), and so
    // do a Request and a FormData body (each encoding of one draws a new boundary, and a retry
    // must send the same bytes).
    const direct = viaGlobal && !(input instanceof Request) && !(init?.body instanceof FormData)
    const replayable = direct
      ? isReplayableBody(init?.body)
      : init?.body === undefined || isReplayableBody(init.body)
    let request = direct ? undefined : new Request(input, init)
    const spare = request !== undefined && replayable ? request.clone() : undefined
    const target = direct
      ? { method: normalizeMethod(init?.method), url: new URL(String(input)).href }
      : { method: (request as Request).method, url: (request as Request).url }
    const signal = direct ? (init?.signal ?? undefined) : (request as Request).signal
    // At most one retry with a renewed token and one with a resource's DPoP nonce.
    let retried = false
    let nonceRetried = false
    for (;;) {
      const sent = await authorizer.authorize(target, {
        signal,
        [PRESENTS_CERTIFICATE]: presents,
      })
      let response: Response
      if (request === undefined) {
        const headers = new Headers(init?.headers)
        for (const [name, value] of Object.entries(sent.headers)) headers.set(name, value)
        response = await send(input, { ...init, headers })
      } else {
        for (const [name, value] of Object.entries(sent.headers)) request.headers.set(name, value)
        response = await send(request)
      }
      const answer: ResourceResponse = {
        status: response.status,
        wwwAuthenticate: response.headers.get('www-authenticate'),
        dpopNonce: response.headers.get('dpop-nonce'),
      }
      const nonceDemand = sent.headers['dpop'] !== undefined && isDpopNonceChallenge(answer)
      const next = await authorizer
        .afterResponse(target, sent, answer, { retried, nonceRetried, replayable })
        .catch(async (error: unknown) => {
          await response.body?.cancel().catch(() => undefined)
          throw error
        })
      if (next === 'return' || !replayable) return response
      await response.body?.cancel().catch(() => undefined)
      if (nonceDemand) nonceRetried = true
      else retried = true
      if (spare !== undefined) request = spare.clone()
    }
  }
}

/** The fetch standard's method normalisation: the six standard methods in upper case, others as given. */
function normalizeMethod(method: string | undefined): string {
  if (method === undefined) return 'GET'
  const upper = method.toUpperCase()
  return STANDARD_METHODS.has(upper) ? upper : method
}

const STANDARD_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'])
