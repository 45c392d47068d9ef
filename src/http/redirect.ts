/**
 * Redirects of requests that carry a token, as the fetch standard follows them (§4.4 HTTP-redirect
 * fetch), with one rule of tokenkeeper's: credentials go only to the origin (scheme, host, port)
 * of the request they were asked for. Pure functions: `tokens.fetch` and the integrations act on
 * their answers.
 */

/** The statuses that redirect (RFC 9110 §15.4), as the fetch standard follows them. */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

/** How many redirects one request follows at most (the fetch standard's limit). */
export const MAX_REDIRECTS = 20

/**
 * Request headers dropped on a redirect to another origin: `Authorization` (the fetch standard
 * drops it), `Cookie` and `Proxy-Authorization` (undici's and got's redirect handling drop them
 * too), and `DPoP`, whose proof names the old URL and the token (RFC 9449 §4.2).
 */
export const CROSS_ORIGIN_DROPPED_HEADERS: readonly string[] = [
  'authorization',
  'cookie',
  'proxy-authorization',
  'dpop',
]

/** Headers that describe a body, dropped when a redirect turns the request into a GET without one. */
export const BODY_HEADERS: readonly string[] = [
  'content-encoding',
  'content-language',
  'content-location',
  'content-type',
  'content-length',
]

/** The next request of a redirect. */
export interface RedirectStep {
  /** Where to send it. */
  readonly url: URL
  /** Its method: `GET` after a 303, or after a 301/302 answering a `POST`; else unchanged. */
  readonly method: string
  /** Whether the body is sent again (307, 308, and 301/302 to methods other than `POST`). */
  readonly keepsBody: boolean
}

/**
 * What a redirect answer asks for (the fetch standard's HTTP-redirect fetch): `undefined` when
 * `status` is not a redirect or there is no `Location` (the answer is then the response);
 * `'invalid'` when the `Location` is not a URL or not http(s), which the fetch standard makes a
 * network error.
 */
export function redirectStep(
  status: number,
  method: string,
  location: string | null | undefined,
  from: URL,
): RedirectStep | 'invalid' | undefined {
  if (!REDIRECT_STATUSES.has(status) || location === null || location === undefined) return undefined
  let url: URL
  try {
    url = new URL(location, from)
  } catch {
    return 'invalid'
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'invalid'
  // A fragment is never sent; the fetch standard keeps the old one when the new URL has none.
  url.hash = ''
  const upper = method.toUpperCase()
  const toGet =
    ((status === 301 || status === 302) && upper === 'POST') ||
    (status === 303 && upper !== 'GET' && upper !== 'HEAD')
  return toGet ? { url, method: 'GET', keepsBody: false } : { url, method, keepsBody: true }
}

/** Whether two URLs share an origin (scheme, host and port); an http and an https URL never do. */
export function sameOrigin(a: URL, b: URL): boolean {
  return a.protocol === b.protocol && a.host === b.host
}
