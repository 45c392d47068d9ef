import { isLoopbackHost } from '../http/url.js'
import { UnsafeServiceUrlError } from './errors.js'

/**
 * One link of an RFC 8288 `Link` header: its target exactly as written between `<` and `>`, its
 * relation types (lower-cased: they compare case-insensitively) and its other parameters.
 *
 * @example
 * ```ts
 * import { parseLinkHeader } from 'tokenkeeper/lti'
 * const [link] = parseLinkHeader('<https://lms.example/m?p=2>; rel="next"')
 * link?.target // 'https://lms.example/m?p=2'
 * ```
 */
export interface WebLink {
  /** The link's URL exactly as written between `<` and `>`, not yet resolved or checked. */
  readonly target: string
  /** The relation types, lower case, e.g. `['next']`. */
  readonly rel: readonly string[]
  /** The other parameters by lower-case name, values unquoted. */
  readonly params: Readonly<Record<string, string>>
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/

/**
 * Parses an RFC 8288 §3 `Link` header (several headers joined by commas, as `fetch` joins
 * them): commas and semicolons inside `<…>` and quoted strings are data, parameter names are
 * case-insensitive, a repeated `rel` after the first is ignored (§3.3), and the target keeps its
 * case. Empty parameters (a trailing `;`) are skipped. A malformed link-value is skipped; the
 * rest are still read.
 *
 * @example
 * ```ts
 * import { parseLinkHeader } from 'tokenkeeper/lti'
 * parseLinkHeader('<https://a.example/x?Cursor=AbC>; rel="next", </first>; rel=first')
 * // [{ target: 'https://a.example/x?Cursor=AbC', rel: ['next'], ... }, { target: '/first', rel: ['first'], ... }]
 * ```
 */
export function parseLinkHeader(header: string | null | undefined): WebLink[] {
  const links: WebLink[] = []
  if (header === null || header === undefined) return links
  let i = 0
  const n = header.length
  const skipSpace = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++
  }
  const skipToNextLink = (): void => {
    let quoted = false
    let bracketed = false
    for (; i < n; i++) {
      const c = header[i]
      if (quoted) {
        if (c === '\\') i++
        else if (c === '"') quoted = false
      } else if (bracketed) {
        if (c === '>') bracketed = false
      } else if (c === '"') quoted = true
      else if (c === '<') bracketed = true
      else if (c === ',') return
    }
  }
  const readToken = (): string => {
    const start = i
    while (i < n && TOKEN_CHAR.test(header[i] ?? '')) i++
    return header.slice(start, i)
  }
  while (i < n) {
    skipSpace()
    if (header[i] === ',') {
      i++
      continue
    }
    if (header[i] !== '<') {
      skipToNextLink()
      continue
    }
    const close = header.indexOf('>', i + 1)
    if (close === -1) break
    const target = header.slice(i + 1, close).trim()
    i = close + 1
    const params: Record<string, string> = {}
    let ok = true
    for (;;) {
      skipSpace()
      if (i >= n || header[i] === ',') break
      if (header[i] !== ';') {
        ok = false
        break
      }
      i++
      skipSpace()
      // An empty parameter (`rel="next";`, `;;`) is skipped, not a reason to drop the link: a
      // dropped next link would end a paged read early without a word.
      if (i >= n || header[i] === ',' || header[i] === ';') continue
      const name = readToken().toLowerCase()
      if (name === '') {
        ok = false
        break
      }
      skipSpace()
      let value = ''
      if (header[i] === '=') {
        i++
        skipSpace()
        if (header[i] === '"') {
          i++
          let text = ''
          while (i < n && header[i] !== '"') {
            if (header[i] === '\\' && i + 1 < n) i++
            text += header[i]
            i++
          }
          if (i >= n) {
            ok = false
            break
          }
          i++
          value = text
        } else {
          value = readToken()
        }
      }
      if (!(name in params)) params[name] = value
    }
    if (!ok) {
      skipToNextLink()
      continue
    }
    const rel = (params['rel'] ?? '')
      .split(/[ \t]+/)
      .filter((type) => type.length > 0)
      .map((type) => type.toLowerCase())
    links.push({ target, rel, params })
  }
  return links
}

/**
 * The target of the first link with relation `rel`, exactly as written, or `undefined`.
 *
 * @example
 * ```ts
 * import { findLink } from 'tokenkeeper/lti'
 * findLink(response.headers.get('link'), 'next')
 * ```
 */
export function findLink(header: string | null | undefined, rel: string): string | undefined {
  const wanted = rel.toLowerCase()
  return parseLinkHeader(header).find((link) => link.rel.includes(wanted))?.target
}

/** https, or http to a loopback address: the only URLs a token is sent to. @internal */
export function isSecureServiceUrl(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))
}

/**
 * Parses a service URL (an endpoint of a launch claim) and requires https (http only for
 * loopback). `TypeError` for a malformed URL, {@link UnsafeServiceUrlError} for an insecure one.
 * @internal
 */
export function checkServiceUrl(raw: unknown, what: string): URL {
  if (typeof raw !== 'string' && !(raw instanceof URL)) {
    throw new TypeError(`tokenkeeper/lti: ${what} must be a URL string`)
  }
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new TypeError(`tokenkeeper/lti: ${what} is not a valid absolute URL`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new TypeError(`tokenkeeper/lti: ${what} must not contain credentials`)
  }
  if (!isSecureServiceUrl(url)) {
    throw new UnsafeServiceUrlError(
      `${what} must use https (http only for loopback addresses), got ${url.protocol}//${url.host}`,
      url.host,
    )
  }
  return url
}

/**
 * Resolves `target` (a `next` link, a line item id) against `base` and allows it only when it
 * is https (or loopback http) on one of `hosts`, so a token is never sent to another host.
 * @internal
 */
export function checkSameHost(
  target: string,
  base: URL | string,
  hosts: ReadonlySet<string>,
  what: string,
): URL {
  let url: URL
  try {
    url = new URL(target, base)
  } catch {
    throw new UnsafeServiceUrlError(`${what} is not a valid URL`, '')
  }
  if (!isSecureServiceUrl(url) || !hosts.has(url.host) || url.username !== '' || url.password !== '') {
    throw new UnsafeServiceUrlError(
      `${what} points to ${url.protocol}//${url.host}, not to the platform's service host ` +
        `(${[...hosts].join(', ')}); no token was sent to it`,
      url.host,
    )
  }
  return url
}

/**
 * Appends `suffix` (`/scores`, `/results`) to the path of a line item URL, before any query
 * string, which is kept (AGS 2.0 §3.3.1, §3.4.1): `…/lineitem?type_id=7` →
 * `…/lineitem/scores?type_id=7`. @internal
 */
export function appendPath(url: URL, suffix: string): URL {
  const result = new URL(url.href)
  result.hash = ''
  result.pathname = `${result.pathname.replace(/\/+$/, '')}${suffix}`
  return result
}

/**
 * What identifies the scores of one (line item, user): the line item's `/scores` URL (so
 * `…/7`, `…/7/` and `…/7#x`, which post to the same place, are one line item) and the user id.
 * @internal
 */
export function scoreKey(lineItem: URL, userId: string): string {
  return `${appendPath(lineItem, '/scores').href}\n${userId}`
}

/** Adds query parameters to a URL, keeping its own query string exactly as it is. @internal */
export function withQuery(url: URL, params: Readonly<Record<string, string | number | undefined>>): URL {
  const added = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) added.append(name, String(value))
  }
  const extra = added.toString()
  if (extra === '') return url
  const result = new URL(url.href)
  result.search = url.search === '' ? `?${extra}` : `${url.search}&${extra}`
  return result
}
