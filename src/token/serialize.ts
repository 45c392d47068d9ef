import { createHash } from 'node:crypto'
import { AccessToken } from './access-token.js'

/** The version written by {@link serializeToken}. Readers accept this version only. */
export const SERIALIZED_TOKEN_VERSION = 1

interface SerializedTokenV1 {
  v: 1
  value: string
  type: string
  scopes: string[]
  requestedScopes: string[]
  issuedAt: number
  expiresAt: number
  refreshAt?: number
  extra: Record<string, unknown>
  binding?: { method: 'dpop'; jkt: string; bound: boolean }
}

/**
 * Turns a token into the versioned string form that stores keep. The result contains the
 * token value: stores that leave the process must encrypt it (the Redis store does).
 *
 * @example
 * ```ts
 * const text = serializeToken(token)
 * const again = deserializeToken(text)
 * ```
 */
export function serializeToken(token: AccessToken): string {
  const data: SerializedTokenV1 = {
    v: SERIALIZED_TOKEN_VERSION,
    value: token.value,
    type: token.type,
    scopes: [...token.scopes],
    requestedScopes: [...token.requestedScopes],
    issuedAt: token.issuedAt,
    expiresAt: token.expiresAt,
    ...(token.refreshAt === undefined ? {} : { refreshAt: token.refreshAt }),
    extra: { ...token.extra },
    ...(token.binding === undefined ? {} : { binding: { ...token.binding } }),
  }
  return JSON.stringify(data)
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

/**
 * Reads a token written by {@link serializeToken}. Throws a `TypeError` (without echoing the
 * input, which holds a secret) when the text is not a token of a known version.
 *
 * @example
 * ```ts
 * const token = deserializeToken(await readFromSomewhere())
 * ```
 */
export function deserializeToken(text: string): AccessToken {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw new TypeError('serialized token is not JSON')
  }
  if (typeof data !== 'object' || data === null) throw new TypeError('serialized token is not an object')
  const record = data as Partial<SerializedTokenV1>
  if (record.v !== SERIALIZED_TOKEN_VERSION) throw new TypeError('serialized token has an unknown version')
  if (
    typeof record.value !== 'string' ||
    typeof record.type !== 'string' ||
    !isStringArray(record.scopes) ||
    !isStringArray(record.requestedScopes) ||
    !Number.isFinite(record.issuedAt) ||
    !Number.isFinite(record.expiresAt) ||
    (record.refreshAt !== undefined && !Number.isFinite(record.refreshAt)) ||
    typeof record.extra !== 'object' ||
    record.extra === null ||
    (record.binding !== undefined &&
      (typeof record.binding !== 'object' ||
        record.binding === null ||
        record.binding.method !== 'dpop' ||
        typeof record.binding.jkt !== 'string' ||
        typeof record.binding.bound !== 'boolean'))
  ) {
    throw new TypeError('serialized token has missing or malformed fields')
  }
  // A corrupted or forged value or type that cannot go into a header is refused by the
  // AccessToken constructor (a TypeError that never quotes it), which a store reader treats as
  // a miss.
  return new AccessToken({
    value: record.value,
    type: record.type,
    scopes: record.scopes,
    requestedScopes: record.requestedScopes,
    issuedAt: record.issuedAt as number,
    expiresAt: record.expiresAt as number,
    refreshAt: record.refreshAt,
    extra: record.extra,
    binding: record.binding,
  })
}

/**
 * A short, stable identifier of a token value (a truncated SHA-256), used for compare-and-delete
 * in stores without keeping or comparing the value itself.
 *
 * @example
 * ```ts
 * await store.delete(key, { tokenId: tokenId(token) })
 * ```
 */
export function tokenId(token: AccessToken | string): string {
  const value = typeof token === 'string' ? token : token.value
  return createHash('sha256').update(value).digest('base64url').slice(0, 22)
}
