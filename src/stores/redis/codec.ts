import { createSecretKey, type KeyObject } from 'node:crypto'
import { seal, unseal } from '../../sealed.js'
import type { StoreRecord } from '../types.js'
import { RedisStoreError, type RedisStoreOperation } from './errors.js'

/**
 * One AES-256-GCM key of the Redis store. The first key of `encryptionKeys` encrypts; every key
 * decrypts the values written under its `id`, so keys can be rotated without a cold fleet.
 *
 * @example
 * ```ts
 * import type { EncryptionKey } from 'tokenkeeper/redis'
 * const current: EncryptionKey = { id: '2026-11', key: process.env.TOKEN_CACHE_KEY! } // 32 bytes, base64
 * ```
 */
export interface EncryptionKey {
  /** A short, non-secret name stored next to each value: 1–64 of `A-Z a-z 0-9 . _ -`. */
  readonly id: string
  /** 32 random bytes, or their base64 / base64url encoding. Secret. */
  readonly key: Uint8Array | string
}

/** The stored value: JSON, with the token only inside `ct` (or `p` when encryption is off). */
interface Envelope {
  readonly v: 1
  /** Token id (compare-and-delete in Lua). */
  readonly id: string
  /** Hard expiry, epoch ms (write-if-newer in Lua). */
  readonly exp: number
  readonly kid?: string
  readonly iv?: string
  readonly ct?: string
  readonly tag?: string
  /** Plaintext payload; only with `encryption: false`. */
  readonly p?: string
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/

function keyBytes(key: Uint8Array | string, id: string): Buffer {
  let bytes: Buffer
  if (typeof key === 'string') {
    if (!BASE64.test(key)) throw new TypeError(`redisStore: encryption key "${id}" is not base64`)
    bytes = Buffer.from(key.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  } else if (key instanceof Uint8Array) {
    bytes = Buffer.from(key)
  } else {
    throw new TypeError(`redisStore: encryption key "${id}" must be a Uint8Array or a base64 string`)
  }
  if (bytes.length !== 32) throw new TypeError(`redisStore: encryption key "${id}" must be 32 bytes`)
  return bytes
}

/** Checks and imports `encryptionKeys`; throws a `TypeError` that never shows key material. */
export function importKeys(keys: readonly EncryptionKey[]): Map<string, KeyObject> {
  if (!Array.isArray(keys) || keys.length === 0)
    throw new TypeError('redisStore: encryptionKeys must be a non-empty array')
  const imported = new Map<string, KeyObject>()
  for (const entry of keys as readonly unknown[]) {
    if (typeof entry !== 'object' || entry === null)
      throw new TypeError('redisStore: each encryption key must be { id, key }')
    const { id, key } = entry as Partial<EncryptionKey>
    if (typeof id !== 'string' || !KEY_ID.test(id))
      throw new TypeError('redisStore: an encryption key id must be 1-64 of A-Z a-z 0-9 . _ -')
    if (imported.has(id)) throw new TypeError(`redisStore: encryption key id "${id}" is given twice`)
    if (key === undefined) throw new TypeError(`redisStore: encryption key "${id}" has no key`)
    imported.set(id, createSecretKey(keyBytes(key, id)))
  }
  return imported
}

/** Associated data: binds the ciphertext to its cache key and to the clear fields beside it. */
function associatedData(cacheKey: string, kid: string, id: string, exp: number): string {
  return `tokenkeeper/redis v1\n${kid}\n${id}\n${exp}\n${cacheKey}`
}

function malformed(operation: RedisStoreOperation): RedisStoreError {
  return new RedisStoreError('MALFORMED_RECORD', operation, `a stored value is not a tokenkeeper record`)
}

/**
 * Turns store records into stored values and back: AES-256-GCM with a fresh 96-bit IV per
 * write, or plain JSON when the user opted out of encryption.
 */
export class RecordCodec {
  /** Encrypting key id first; undefined: plaintext. */
  readonly #writeKid: string | undefined
  readonly #keys: ReadonlyMap<string, KeyObject>

  constructor(keys: ReadonlyMap<string, KeyObject> | undefined) {
    this.#keys = keys ?? new Map()
    this.#writeKid = keys?.keys().next().value
  }

  get encrypted(): boolean {
    return this.#writeKid !== undefined
  }

  encode(cacheKey: string, record: StoreRecord): string {
    const { tokenId: id, expiresAt: exp } = record
    const kid = this.#writeKid
    if (kid === undefined) return JSON.stringify({ v: 1, id, exp, p: record.payload } satisfies Envelope)
    const sealed = seal(
      this.#keys.get(kid) as KeyObject,
      associatedData(cacheKey, kid, id, exp),
      record.payload,
    )
    const envelope: Envelope = { v: 1, id, exp, kid, ...sealed }
    return JSON.stringify(envelope)
  }

  /** The record in `text`; throws a {@link RedisStoreError} (the caller counts it as a miss). */
  decode(cacheKey: string, text: string, operation: RedisStoreOperation): StoreRecord {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw malformed(operation)
    }
    if (typeof parsed !== 'object' || parsed === null) throw malformed(operation)
    const envelope = parsed as Partial<Envelope>
    const { id, exp } = envelope
    if (envelope.v !== 1 || typeof id !== 'string' || id === '' || typeof exp !== 'number' || !isFinite(exp))
      throw malformed(operation)
    if (envelope.kid === undefined) {
      if (this.encrypted)
        throw new RedisStoreError('UNENCRYPTED_RECORD', operation, 'an unencrypted value was refused')
      if (typeof envelope.p !== 'string') throw malformed(operation)
      return { tokenId: id, expiresAt: exp, payload: envelope.p }
    }
    const { kid, iv, ct, tag } = envelope
    if (
      typeof kid !== 'string' ||
      typeof iv !== 'string' ||
      typeof ct !== 'string' ||
      typeof tag !== 'string'
    )
      throw malformed(operation)
    const key = this.#keys.get(kid)
    if (key === undefined) {
      const shown = KEY_ID.test(kid) ? `"${kid}"` : '(invalid)'
      throw new RedisStoreError(
        'UNKNOWN_KEY_ID',
        operation,
        `a value is encrypted with unknown key id ${shown}`,
      )
    }
    const opened = unseal(key, associatedData(cacheKey, kid, id, exp), { iv, ct, tag })
    if (opened.ok) return { tokenId: id, expiresAt: exp, payload: opened.plaintext }
    if (opened.reason === 'malformed') throw malformed(operation)
    throw new RedisStoreError(
      'DECRYPT_FAILED',
      operation,
      `a value encrypted with key id "${kid}" failed authentication (tampered, copied from another key, or a different key with that id)`,
    )
  }
}
