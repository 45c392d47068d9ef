import { randomBytes } from 'node:crypto'
import { refuse, type ServiceOutcome } from './guard.js'

const MAX_CURSORS = 100_000

/** One page of a container, and the `Link` header values that go with it. @internal */
export interface PageSlice<T> {
  readonly items: readonly T[]
  readonly links: readonly string[]
}

/**
 * Paging of containers. A `next` link is the request URL (filters and all, exactly as received)
 * with an opaque, case-sensitive `Cursor` parameter, so a client that rebuilds the URL, drops
 * the filters or lower-cases it does not get the next page. Cursors stay valid (a 401 retry
 * repeats the same URL). @internal
 */
export class Pager {
  readonly #cursors = new Map<string, number>()
  readonly #pageSize: number
  readonly #rewrite: (target: string, rel: 'next' | 'first' | 'differences') => string

  constructor(
    pageSize: number,
    rewrite: ((target: string, rel: 'next' | 'first' | 'differences') => string) | undefined,
  ) {
    this.#pageSize = pageSize
    this.#rewrite = rewrite ?? ((target) => target)
  }

  /** A link header value with the rewrite hook applied. */
  link(target: string, rel: 'next' | 'first' | 'differences'): string {
    return `<${this.#rewrite(target, rel)}>; rel="${rel}"`
  }

  /** Cuts the page the request asks for; refuses an unknown cursor or a bad `limit`. */
  page<T>(items: readonly T[], requestUrl: URL, origin: string): PageSlice<T> | ServiceOutcome {
    const limitText = requestUrl.searchParams.get('limit')
    const limit = limitText === null ? this.#pageSize : Number(limitText)
    if (!Number.isSafeInteger(limit) || limit < 1)
      return refuse(400, 'invalid', 'limit must be a positive integer')
    const cursor = requestUrl.searchParams.get('Cursor')
    const mangled = [...requestUrl.searchParams.keys()].some(
      (name) => name !== 'Cursor' && name.toLowerCase() === 'cursor',
    )
    if (mangled) return refuse(400, 'invalid', 'unknown page cursor (use the next link exactly as given)')
    let offset = 0
    if (cursor !== null) {
      const known = this.#cursors.get(cursor)
      if (known === undefined)
        return refuse(400, 'invalid', 'unknown page cursor (use the next link exactly as given)')
      offset = known
    }
    const slice = items.slice(offset, offset + limit)
    const links: string[] = []
    if (offset + limit < items.length) {
      const token = `Pg${randomBytes(9).toString('base64url')}`
      this.#cursors.set(token, offset + limit)
      if (this.#cursors.size > MAX_CURSORS) {
        const oldest = this.#cursors.keys().next().value
        if (oldest !== undefined) this.#cursors.delete(oldest)
      }
      links.push(this.link(withCursor(requestUrl, origin, token), 'next'))
    }
    if (cursor !== null || links.length > 0)
      links.push(this.link(withCursor(requestUrl, origin, undefined), 'first'))
    return { items: slice, links }
  }
}

/** The request URL (made absolute) with its `Cursor` parameter set or removed, the rest as received. */
function withCursor(requestUrl: URL, origin: string, cursor: string | undefined): string {
  const kept = requestUrl.search
    .slice(1)
    .split('&')
    .filter((part) => part !== '' && !part.startsWith('Cursor='))
  if (cursor !== undefined) kept.push(`Cursor=${cursor}`)
  return `${origin}${requestUrl.pathname}${kept.length === 0 ? '' : `?${kept.join('&')}`}`
}
