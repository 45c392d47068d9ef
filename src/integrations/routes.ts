import type { Authorizer } from '../http/authorizer.js'
import type { TokenManager } from '../manager/manager.js'
import type { TokenSource } from '../sources/types.js'

/** A request as far as choosing its source is concerned. */
export interface RouteRequest {
  /** The HTTP method as the client was given it, e.g. `GET`. */
  readonly method: string
  /** The absolute URL of the request. */
  readonly url: URL
}

/** Chooses the source for a request, or `undefined` to send it without a token. */
export type SourceChooser = (request: RouteRequest) => TokenSource | undefined

/**
 * Sources by URL prefix: `'https://api.example'` covers every path of that origin,
 * `'https://api.example/v2'` covers `/v2` and everything below it (not `/v20`). The longest
 * matching prefix wins; a request no prefix covers is sent without a token.
 */
export type SourceRoutes = Readonly<Record<string, TokenSource>>

interface Route {
  readonly origin: string
  /** The path prefix without a trailing slash; `''` for the whole origin. */
  readonly path: string
  readonly source: TokenSource
}

function parseRoute(prefix: string, source: TokenSource, owner: string): Route {
  let url: URL
  try {
    url = new URL(prefix)
  } catch {
    throw new TypeError(`${owner}: route ${JSON.stringify(prefix)} is not an absolute URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`${owner}: route ${url.origin} must be an http(s) URL`)
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`${owner}: route ${url.origin}${url.pathname} must be an origin and a path only`)
  }
  if (typeof source?.key !== 'string' || typeof source.fetchToken !== 'function') {
    throw new TypeError(`${owner}: route ${url.origin}${url.pathname} needs a TokenSource`)
  }
  return { origin: url.origin, path: url.pathname.replace(/\/+$/, ''), source }
}

/** Turns routes (or a chooser, returned as it is) into a chooser. Throws `TypeError` on a bad route. */
export function sourceChooser(
  routes: TokenSource | SourceRoutes | SourceChooser,
  owner: string,
): SourceChooser {
  if (typeof routes === 'function') return routes
  if (typeof (routes as TokenSource).fetchToken === 'function') {
    const only = routes as TokenSource
    return () => only
  }
  const table = Object.entries(routes as SourceRoutes)
    .map(([prefix, source]) => parseRoute(prefix, source, owner))
    .sort((a, b) => b.path.length - a.path.length)
  if (table.length === 0) throw new TypeError(`${owner}: give at least one route`)
  return ({ url }) => {
    const origin = url.origin
    const path = url.pathname
    for (const route of table) {
      if (route.origin !== origin) continue
      if (route.path === '' || path === route.path || path.startsWith(`${route.path}/`)) return route.source
    }
    return undefined
  }
}

/**
 * One {@link Authorizer} per source, made on first use and kept while the source lives: the 401
 * refusal memory and renew-once state of a source are then shared by every request an
 * integration sends for it.
 */
export function authorizerCache(tokens: TokenManager): (source: TokenSource) => Authorizer {
  const authorizers = new WeakMap<TokenSource, Authorizer>()
  return (source) => {
    let authorizer = authorizers.get(source)
    if (authorizer === undefined) {
      authorizer = tokens.authorizer(source)
      authorizers.set(source, authorizer)
    }
    return authorizer
  }
}
