import { InsufficientScopeError } from '../errors.js'

/** `host/path` of a resource URL, for messages: no query string (it may carry credentials). */
function describeResource(url: string): string {
  const parsed = new URL(url)
  return `${parsed.host}${parsed.pathname}`
}
import type { TokenSource } from '../sources/types.js'
import type { AccessToken } from '../token/access-token.js'

/** The part of {@link TokenManager} the fetch wrapper uses. */
export interface TokenProvider {
  get(source: TokenSource, options?: { signal?: AbortSignal | undefined }): Promise<AccessToken>
  invalidate(source: TokenSource, options: { token: AccessToken }): Promise<boolean>
}

/**
 * What the wrapper remembers between calls, owned by the manager: keys whose resource refused
 * even a freshly obtained token, and until when to stop renewing on their 401s.
 */
export interface RefusalMemory {
  readonly now: () => number
  /** How long to return 401s as they are after a fresh token was refused too. */
  readonly backoffMs: number
  readonly refusedUntil: Map<string, number>
}

/** Options of `tokens.fetch(source, options)`. */
export interface AuthorizedFetchOptions {
  /** The `fetch` that sends API requests. Default: the global `fetch`. */
  readonly fetch?: typeof globalThis.fetch
}

/** Reads the parameters of a `WWW-Authenticate: Bearer ...` challenge (RFC 6750 §3). */
export function parseBearerChallenge(header: string | null): Record<string, string> {
  const params: Record<string, string> = {}
  if (header === null) return params
  const pattern = /([a-zA-Z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g
  for (const match of header.matchAll(pattern)) {
    const name = match[1]
    if (name !== undefined) params[name.toLowerCase()] = (match[2] ?? match[3] ?? '').replace(/\\(.)/g, '$1')
  }
  return params
}

function isReplayable(body: unknown): boolean {
  if (body === undefined || body === null) return true
  if (typeof body === 'string' || body instanceof URLSearchParams || body instanceof ArrayBuffer) return true
  if (ArrayBuffer.isView(body) || body instanceof Blob || body instanceof FormData) return true
  return false
}

/**
 * Builds the fetch behind `tokens.fetch(source)`: every request carries
 * `Authorization: <type> <token>`. On 401 the token that was sent is invalidated
 * (compare-and-delete, so 50 concurrent 401s cause one token request), a fresh one is obtained,
 * and the request is retried once when its body can be replayed. If the fresh token is refused
 * too, 401s for that key are returned as they are for a backoff period. A 403 whose challenge says
 * `error="insufficient_scope"` rejects with {@link InsufficientScopeError}: a new token with the
 * same scopes would not help.
 */
export function authorizedFetch(
  tokens: TokenProvider,
  source: TokenSource,
  options: AuthorizedFetchOptions,
  refusals: RefusalMemory,
): typeof globalThis.fetch {
  const send = options.fetch ?? globalThis.fetch
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const replayable =
      input instanceof Request
        ? init?.body === undefined || isReplayable(init.body)
        : isReplayable(init?.body)
    const request = new Request(input, init)
    const signal = request.signal
    const attempt = async (target: Request): Promise<{ response: Response; token: AccessToken }> => {
      const token = await tokens.get(source, { signal })
      target.headers.set('authorization', token.authorization)
      return { response: await send(target), token }
    }
    const spare = replayable ? request.clone() : undefined
    let { response, token } = await attempt(request)
    if (response.status === 401) {
      const key = source.key
      // A resource that refused a fresh token too is not asking for renewal: until the backoff
      // ends, its 401s are returned as they are, so a loop of calls cannot become a loop of
      // token requests.
      if (refusals.now() < (refusals.refusedUntil.get(key) ?? 0)) return response
      await tokens.invalidate(source, { token })
      if (spare === undefined) return response
      await response.body?.cancel().catch(() => undefined)
      ;({ response, token } = await attempt(spare))
      if (response.status === 401) refusals.refusedUntil.set(key, refusals.now() + refusals.backoffMs)
      else refusals.refusedUntil.delete(key)
    }
    if (response.status === 403) {
      const challenge = parseBearerChallenge(response.headers.get('www-authenticate'))
      if (challenge['error'] === 'insufficient_scope') {
        await response.body?.cancel().catch(() => undefined)
        const required = (challenge['scope'] ?? '').split(' ').filter((scope) => scope.length > 0)
        throw new InsufficientScopeError(
          `${request.method} ${describeResource(request.url)} needs scope ${required.join(' ') || '(unnamed)'}, which the token was not granted`,
          required,
          token.scopes,
        )
      }
    }
    return response
  }
}
