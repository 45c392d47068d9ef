/**
 * Cache keys: the one builder every source's `key` comes from. A key is
 * `kind|endpoint|segment|segment...`: the source kind, the token endpoint, then the segments the
 * source names in a fixed order, each one escaped here and nowhere else. A segment is
 * positional (`value`) or named (`name=value`); a value that derives from a secret (a client
 * secret, a key, a subject token, extra parameters) enters only as a {@link fingerprint}.
 * Values enter as they are sent (an extra parameter as its `String()`, headers of one name in
 * any case as the one header `fetch` sends), byte for byte: two configurations that send
 * different requests never share a key; two that send the same request may.
 *
 * Keys name records in shared stores and appear in events and `stats()`: their bytes must not
 * change between releases, or every fleet starts cold on upgrade. `test/sources/key.test.ts`
 * pins that any difference that changes the token changes the key, and that no key holds a
 * secret.
 *
 * @internal
 */
import { fingerprint } from './fingerprint.js'

/** One segment of a key: positional when `name` is undefined. @internal */
export interface KeySegment {
  readonly name: string | undefined
  /**
   * A string is escaped as a whole. A list (scopes, resources) is written as its items, each
   * escaped (spaces too), joined by spaces: `['a b']` and `['a', 'b']` stay apart.
   */
  readonly value: string | readonly string[]
}

/** A segment with a name: `name=value`. Absent (skipped by {@link cacheKey}) when `value` is undefined. @internal */
export function named(name: string, value: string | readonly string[] | undefined): KeySegment | undefined {
  return value === undefined ? undefined : { name, value }
}

/** A positional segment: its place in the key names it. @internal */
export function positional(value: string): KeySegment {
  return { name: undefined, value }
}

/** Escapes the separator characters of a key segment so that segments cannot run together. @internal */
export function keyPart(value: string): string {
  return value.replace(/[%|]/g, (c) => (c === '%' ? '%25' : '%7C'))
}

/** One item of a list value: {@link keyPart}, and a space escaped so that items cannot run together. */
function keyWord(value: string): string {
  return value.replace(/[%| ]/g, (c) => (c === '%' ? '%25' : c === '|' ? '%7C' : '%20'))
}

function segmentText(segment: KeySegment): string {
  const { name, value } = segment
  const text = typeof value === 'string' ? keyPart(value) : value.map(keyWord).join(' ')
  return name === undefined ? text : `${name}=${text}`
}

/**
 * The key `kind|endpoint|...segments`, every part escaped; `undefined` segments (options not
 * set) are left out. `kind` is a fixed word without separators; a new kind must not be the
 * prefix of another kind's keys.
 *
 * @internal
 */
export function cacheKey(
  kind: string,
  endpoint: string,
  segments: readonly (KeySegment | undefined)[],
): string {
  let key = `${kind}|${keyPart(endpoint)}`
  for (const segment of segments) if (segment !== undefined) key += `|${segmentText(segment)}`
  return key
}

/**
 * The key of a source that names another key as a whole (a `tokenSource` name, the JWT-bearer
 * key inside a Google service account): `kind|` and that key as it is, unescaped, so that keys
 * made before this builder keep their bytes. The kind keeps it apart from every other source's
 * (no built-in kind is `fn` or `google-sa`); a `tokenSource` name is its caller's namespace.
 *
 * @internal
 */
export function wrappedKey(kind: string, key: string): string {
  return `${kind}|${key}`
}

/**
 * The endpoint part of a key: origin and path, with any query string (which may hold an API key)
 * replaced by its fingerprint. The same for a `tokenUrl` and a discovered token endpoint.
 *
 * @internal
 */
export function tokenUrlKeyPart(url: URL): string {
  const { origin, pathname, search } = url
  return `${origin}${pathname}${search === '' ? '' : `?#${fingerprint('query', search)}`}`
}

/** The endpoint part of a key whose issuer's document is not known yet. @internal */
export function discoveryKeyPart(issuer: string): string {
  return `discovery:${issuer}`
}

/**
 * The `client=` segment of a grant that may identify its client: the client id and its
 * authentication method and fingerprint (`none` without one). Absent without a client id.
 *
 * @internal
 */
export function clientSegment(
  clientId: string | undefined,
  auth: { readonly method: string; readonly fingerprint: string } | undefined,
): KeySegment | undefined {
  if (clientId === undefined) return undefined
  return named('client', `${clientId}:${auth === undefined ? 'none' : authPart(auth)}`)
}

/** A client authentication as a key value: `method:fingerprint`. @internal */
export function authPart(auth: { readonly method: string; readonly fingerprint: string }): string {
  return `${auth.method}:${auth.fingerprint}`
}
