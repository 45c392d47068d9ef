import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto'

/**
 * The one sealed envelope of tokenkeeper: AES-256-GCM with a fresh 96-bit IV per seal and the
 * full 128-bit tag, bound to associated data (the cache key and whatever clear fields sit beside
 * the ciphertext). The Redis store and the CLI's token cache both seal with it, so a fix to this
 * path has no second copy to miss.
 *
 * @internal
 */
export interface Sealed {
  /** base64url */
  readonly iv: string
  /** base64url */
  readonly ct: string
  /** base64url */
  readonly tag: string
}

const IV_BYTES = 12
const TAG_BYTES = 16

/** Encrypts `plaintext` under `key`, bound to `associatedData`. */
export function seal(key: KeyObject | Buffer, associatedData: string, plaintext: string): Sealed {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(Buffer.from(associatedData, 'utf8'))
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return {
    iv: iv.toString('base64url'),
    ct: ct.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
  }
}

/** What {@link unseal} found: the plaintext, or why there is none. */
export type Unsealed =
  | { readonly ok: true; readonly plaintext: string }
  /** `malformed`: not an envelope (a field missing, an IV or tag of the wrong length); `unauthentic`: it does not authenticate. */
  | { readonly ok: false; readonly reason: 'malformed' | 'unauthentic' }

const MALFORMED: Unsealed = { ok: false, reason: 'malformed' }
const UNAUTHENTIC: Unsealed = { ok: false, reason: 'unauthentic' }

/**
 * Decrypts what {@link seal} wrote (base64 or base64url fields). Refuses what does not
 * authenticate (tampered, sealed under another key or other associated data) and an IV or tag of
 * the wrong length: a truncated tag is never checked on fewer bits.
 */
export function unseal(
  key: KeyObject | Buffer,
  associatedData: string,
  sealed: { readonly iv?: unknown; readonly ct?: unknown; readonly tag?: unknown },
): Unsealed {
  const { iv, ct, tag } = sealed
  if (typeof iv !== 'string' || typeof ct !== 'string' || typeof tag !== 'string') return MALFORMED
  const ivBytes = Buffer.from(iv, 'base64url')
  const tagBytes = Buffer.from(tag, 'base64url')
  if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) return MALFORMED
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: TAG_BYTES })
    decipher.setAAD(Buffer.from(associatedData, 'utf8'))
    decipher.setAuthTag(tagBytes)
    const plaintext = Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()])
    return { ok: true, plaintext: plaintext.toString('utf8') }
  } catch {
    return UNAUTHENTIC
  }
}
