import { TokenkeeperError } from '../errors.js'

/** True for `localhost`, `127.0.0.0/8` and `[::1]`: addresses that never leave the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase()
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '[::1]' ||
    host === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
  )
}

/**
 * Parses a token endpoint URL and refuses anything but `https:` (or `http:` to a loopback
 * address, for development and tests). Credentials in the URL, fragments, spaces and control
 * characters are refused too.
 * Throws a `TypeError` for a malformed URL and a `TokenkeeperError` (`INSECURE_TOKEN_URL`) for
 * an insecure one, at construction, before any request is made.
 */
export function checkTokenUrl(raw: string | URL, what = 'tokenUrl'): URL {
  // The URL parser drops them, but the string as given is what a client assertion's `aud` is.
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (typeof raw === 'string' && /[\u0000-\u0020\u007f-\u009f]/.test(raw)) {
    throw new TypeError(`${what} must not contain spaces or control characters (a line break from a file?)`)
  }
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new TypeError(`${what} is not a valid absolute URL`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new TypeError(`${what} must not contain credentials; pass them through the auth option`)
  }
  // `url.hash` is empty for a bare `#`, which is a fragment all the same (RFC 6749 §3.2).
  if (url.hash !== '' || String(raw).includes('#')) throw new TypeError(`${what} must not contain a fragment`)
  // A bare `?` is no query: some fetch implementations send it and some drop it, so drop it here
  // and every Node version sends the same request (and the cache key, which ignores it, holds).
  if (url.search === '') url.search = ''
  if (url.protocol === 'https:') return url
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return url
  throw new TokenkeeperError(
    'INSECURE_TOKEN_URL',
    `${what} must use https (http is allowed only for loopback addresses), got ${url.protocol}//${url.host}`,
  )
}

/** Describes an endpoint for messages: `POST idp.example/oauth/token` (no query string). */
export function describeEndpoint(url: URL): string {
  return `POST ${url.host}${url.pathname}`
}

/**
 * The host (and port) of an absolute URL as written, without user-info; `undefined` when `text`
 * is not an absolute URL. A parsed URL lowercases its host, so a secret a server echoed there
 * would no longer match its scrubbed forms: messages quoting a server's URL use this.
 */
export function writtenHost(text: string): string | undefined {
  return /^[a-z][a-z0-9+.-]*:\/\/(?:[^/?#@]*@)?([^/?#]*)/i.exec(text)?.[1]
}
