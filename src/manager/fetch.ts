import {
  isDpopNonceChallenge,
  PRESENTS_CERTIFICATE,
  type Authorization,
  type Authorizer,
  type ResourceRequest,
  type ResourceResponse,
} from '../http/authorizer.js'
import {
  BODY_HEADERS,
  CROSS_ORIGIN_DROPPED_HEADERS,
  MAX_REDIRECTS,
  REDIRECT_STATUSES,
  redirectStep,
  sameOrigin,
} from '../http/redirect.js'

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
 * 403 `insufficient_scope`: {@link InsufficientScopeError}). Redirects (with the default
 * `redirect: 'follow'`) are followed here, not by the underlying fetch: a hop to the origin of
 * the request gets the token again (and a new proof for its URL), a hop to any other origin, and
 * every hop after it, gets neither (see `src/http/redirect.ts`).
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
    // The mutual-TLS transport follows no redirect; the others follow them through this wrapper.
    const follow =
      !presents && (init?.redirect ?? (input instanceof Request ? input.redirect : 'follow')) === 'follow'
    let request = direct ? undefined : new Request(input, follow ? { ...init, redirect: 'manual' } : init)
    const spare = request !== undefined && replayable ? request.clone() : undefined
    // The caller's own headers, for a redirect hop: an unsent copy has them; without one (a body
    // that cannot be sent again), those of the request sent, less the ones the token set.
    const callerHeaders = (sentRequest: Request | undefined, set: Authorization): Headers | undefined => {
      if (spare !== undefined) return spare.headers
      if (sentRequest === undefined) return undefined
      const headers = new Headers(sentRequest.headers)
      for (const name of Object.keys(set.headers)) headers.delete(name)
      return headers
    }
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
        response = await send(input, follow ? { ...init, headers, redirect: 'manual' } : { ...init, headers })
      } else {
        for (const [name, value] of Object.entries(sent.headers)) request.headers.set(name, value)
        response = await send(request)
      }
      // Most answers are no redirect: they skip the redirect loop (and its URL parsing).
      const last =
        follow && REDIRECT_STATUSES.has(response.status)
          ? await followRedirects(
              authorizer,
              send,
              { target, sent, response },
              {
                direct,
                init,
                callerHeaders: direct ? undefined : callerHeaders(request, sent),
                spare,
                signal,
              },
            )
          : { target, sent, response }
      // The answer of a hop that carried no token says nothing about the token.
      if (last.sent === undefined) return last.response
      response = last.response
      const answer: ResourceResponse = {
        status: response.status,
        wwwAuthenticate: response.headers.get('www-authenticate'),
        dpopNonce: response.headers.get('dpop-nonce'),
      }
      const nonceDemand = last.sent.headers['dpop'] !== undefined && isDpopNonceChallenge(answer)
      const next = await authorizer
        .afterResponse(last.target, last.sent, answer, { retried, nonceRetried, replayable })
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

/** One sent request and its answer; `sent` is `undefined` for a hop that carried no token. */
interface Hop {
  readonly target: ResourceRequest
  readonly sent: Authorization | undefined
  readonly response: Response
}

/** What a redirect hop is built from: the caller's request as it was given. */
interface HopSource {
  readonly direct: boolean
  readonly init: RequestInit | undefined
  /** The caller's headers of a Request (before the token was set). */
  readonly callerHeaders: Headers | undefined
  /** An unsent copy of the caller's Request, when its body can be sent again. */
  readonly spare: Request | undefined
  readonly signal: AbortSignal | undefined
}

/**
 * Follows the redirects of one attempt (the fetch standard's rules: at most 20, 303 and a
 * POST's 301/302 become a GET without a body, http(s) only): a hop to the request's origin,
 * while every hop before it stayed there, carries a token and a proof signed for its own URL; any
 * other hop carries no credentials at all (`Authorization`, `DPoP`, `Cookie`,
 * `Proxy-Authorization` are dropped). Returns the last hop.
 */
async function followRedirects(
  authorizer: Authorizer,
  send: typeof globalThis.fetch,
  first: Hop,
  from: HopSource,
): Promise<Hop> {
  const origin = new URL(first.target.url)
  let hop = first
  let method = first.target.method
  let withBody = true
  let onOrigin = true
  for (let count = 0; ; count++) {
    const current = new URL(hop.target.url)
    const step = redirectStep(hop.response.status, method, hop.response.headers.get('location'), current)
    if (step === undefined) return hop
    if (hop.sent !== undefined)
      authorizer.observe(hop.target, hop.sent, {
        status: hop.response.status,
        dpopNonce: hop.response.headers.get('dpop-nonce'),
      })
    await hop.response.body?.cancel().catch(() => undefined)
    const where = `${method} ${current.host}${current.pathname}`
    if (step === 'invalid')
      throw new TypeError(`tokens.fetch: ${where} redirected to a location that is not an http(s) URL`)
    if (count >= MAX_REDIRECTS)
      throw new TypeError(`tokens.fetch: ${where}: more than ${MAX_REDIRECTS} redirects`)
    method = step.method
    withBody &&= step.keepsBody
    onOrigin &&= sameOrigin(step.url, origin)
    const headers = new Headers(from.direct ? from.init?.headers : from.callerHeaders)
    if (!withBody) for (const name of BODY_HEADERS) headers.delete(name)
    if (!onOrigin) for (const name of CROSS_ORIGIN_DROPPED_HEADERS) headers.delete(name)
    let body: RequestInit['body']
    if (withBody) {
      if (from.direct) body = from.init?.body
      else if (from.spare !== undefined)
        body = from.spare.body === null ? null : await from.spare.clone().arrayBuffer()
      if (from.direct ? !isReplayableBody(body) : from.spare === undefined) {
        throw new TypeError(
          `tokens.fetch: cannot follow the ${hop.response.status} redirect of ${where}: its body is a stream, which cannot be sent again`,
        )
      }
    }
    const target = { method, url: step.url.href }
    const sent = onOrigin ? await authorizer.authorize(target, { signal: from.signal }) : undefined
    for (const [name, value] of Object.entries(sent?.headers ?? {})) headers.set(name, value)
    const init: RequestInit = {
      method,
      headers,
      redirect: 'manual',
      signal: from.signal ?? null,
      body: withBody ? (body ?? null) : null,
    }
    const response = await (from.direct
      ? send(step.url.href, from.init === undefined ? init : { ...from.init, ...init })
      : send(new Request(step.url, init)))
    hop = { target, sent, response }
    // A Response's url and redirected say where the answer came from, as after fetch's own redirects.
    Object.defineProperties(response, { url: { value: step.url.href }, redirected: { value: true } })
  }
}

/** The fetch standard's method normalisation: the six standard methods in upper case, others as given. */
function normalizeMethod(method: string | undefined): string {
  if (method === undefined) return 'GET'
  const upper = method.toUpperCase()
  return STANDARD_METHODS.has(upper) ? upper : method
}

const STANDARD_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'])
