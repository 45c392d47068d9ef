/** The one sealed envelope (AES-256-GCM) used by the Redis store and the CLI's token cache. */
import { createSecretKey, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { seal as sealFile, unseal as unsealFile } from '../../src/stores/file/key.js'
import { seal, unseal } from '../../src/sealed.js'

const key = randomBytes(32)

describe('sealed envelopes', () => {
  it('round-trips under the same key and associated data, with a fresh IV each time', () => {
    const a = seal(key, 'cache-key', 'payload é')
    const b = seal(createSecretKey(key), 'cache-key', 'payload é')
    expect(a.iv).not.toBe(b.iv)
    expect(unseal(key, 'cache-key', a)).toEqual({ ok: true, plaintext: 'payload é' })
    expect(unseal(createSecretKey(key), 'cache-key', b)).toEqual({ ok: true, plaintext: 'payload é' })
    expect(JSON.stringify(a)).not.toContain('payload')
  })

  it('refuses another key, other associated data, and any changed byte', () => {
    const sealed = seal(key, 'k1', 'secret payload')
    expect(unseal(randomBytes(32), 'k1', sealed)).toEqual({ ok: false, reason: 'unauthentic' })
    expect(unseal(key, 'k2', sealed)).toEqual({ ok: false, reason: 'unauthentic' })
    const ct = Buffer.from(sealed.ct, 'base64url')
    ct[0] = ct[0]! ^ 1
    expect(unseal(key, 'k1', { ...sealed, ct: ct.toString('base64url') })).toMatchObject({ ok: false })
  })

  it('refuses a truncated tag or IV instead of checking fewer bits', () => {
    const sealed = seal(key, 'k', 'secret payload')
    const tag = Buffer.from(sealed.tag, 'base64url')
    for (const length of [4, 8, 12, 15]) {
      expect(unseal(key, 'k', { ...sealed, tag: tag.subarray(0, length).toString('base64url') })).toEqual({
        ok: false,
        reason: 'malformed',
      })
    }
    expect(unseal(key, 'k', { ...sealed, iv: 'AAAA' })).toEqual({ ok: false, reason: 'malformed' })
    expect(unseal(key, 'k', { iv: sealed.iv, ct: 42, tag: sealed.tag })).toEqual({
      ok: false,
      reason: 'malformed',
    })
  })

  it('reads standard base64 fields as well (the CLI cache wrote them before)', () => {
    const sealed = seal(key, 'k', 'secret payload')
    const standard = Object.fromEntries(
      Object.entries(sealed).map(([name, value]) => [
        name,
        Buffer.from(value, 'base64url').toString('base64'),
      ]),
    )
    expect(unseal(key, 'k', standard)).toEqual({ ok: true, plaintext: 'secret payload' })
  })

  it('the CLI cache file envelope: versioned JSON, a miss (undefined) for anything that does not open', () => {
    const text = sealFile(key, 'cache-key', 'payload')
    expect(JSON.parse(text)).toMatchObject({ v: 1 })
    expect(unsealFile(key, 'cache-key', text)).toBe('payload')
    expect(unsealFile(key, 'other', text)).toBeUndefined()
    expect(unsealFile(key, 'cache-key', text.replace('"v":1', '"v":2'))).toBeUndefined()
    expect(unsealFile(key, 'cache-key', 'not json')).toBeUndefined()
    expect(unsealFile(key, 'cache-key', 'null')).toBeUndefined()
  })
})
