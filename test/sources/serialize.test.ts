import { describe, expect, it } from 'vitest'
import {
  AccessToken,
  deserializeToken,
  SERIALIZED_TOKEN_VERSION,
  serializeToken,
  tokenId,
  type AccessTokenInit,
} from '../../src/index.js'

const TOKEN = 'TOKEN-must-not-leak-456'

const init: AccessTokenInit = {
  value: TOKEN,
  type: 'Bearer',
  scopes: ['read'],
  requestedScopes: ['read', 'write'],
  issuedAt: 1_900_000_000_000,
  expiresAt: 1_900_003_600_000,
  refreshAt: 1_900_002_700_000,
  extra: { id_token: 'id', nested: { n: 1 } },
}

function fieldsOf(token: AccessToken) {
  return {
    value: token.value,
    type: token.type,
    scopes: token.scopes,
    requestedScopes: token.requestedScopes,
    issuedAt: token.issuedAt,
    expiresAt: token.expiresAt,
    refreshAt: token.refreshAt,
    extra: token.extra,
    scopeReduced: token.scopeReduced,
  }
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('did not throw')
}

describe('serializeToken / deserializeToken', () => {
  it('round-trips every field', () => {
    const token = new AccessToken(init)
    const again = deserializeToken(serializeToken(token))
    expect(again).toBeInstanceOf(AccessToken)
    expect(fieldsOf(again)).toEqual(fieldsOf(token))
    expect(Object.isFrozen(again)).toBe(true)
    expect(serializeToken(again)).toBe(serializeToken(token))
  })

  it('round-trips a token without refreshAt, requested scopes or extra', () => {
    const token = new AccessToken({ value: TOKEN, type: 'DPoP', scopes: [], issuedAt: 0, expiresAt: 5000 })
    const again = deserializeToken(serializeToken(token))
    expect(fieldsOf(again)).toEqual(fieldsOf(token))
    expect(again.refreshAt).toBeUndefined()
    expect(JSON.parse(serializeToken(token))).not.toHaveProperty('refreshAt')
  })

  it('writes the current version, and holds the value (stores must protect it)', () => {
    const data = JSON.parse(serializeToken(new AccessToken(init))) as Record<string, unknown>
    expect(data['v']).toBe(SERIALIZED_TOKEN_VERSION)
    expect(SERIALIZED_TOKEN_VERSION).toBe(1)
    expect(data['value']).toBe(TOKEN)
  })

  const valid = JSON.parse(serializeToken(new AccessToken(init))) as Record<string, unknown>
  const variant = (changes: Record<string, unknown>): string => JSON.stringify({ ...valid, ...changes })

  it.each([
    ['not JSON', `not json ${TOKEN}`, /not JSON/],
    ['truncated JSON', serializeToken(new AccessToken(init)).slice(0, -3), /not JSON/],
    ['empty', '', /not JSON/],
    ['JSON null', 'null', /not an object/],
    ['a JSON string', JSON.stringify(TOKEN), /not an object/],
    ['a JSON array', JSON.stringify([TOKEN]), /version/],
    ['version 2', variant({ v: 2 }), /unknown version/],
    ['version 0', variant({ v: 0 }), /unknown version/],
    ['version "1"', variant({ v: '1' }), /unknown version/],
    ['no version', variant({ v: undefined }), /unknown version/],
    ['no value', variant({ value: undefined }), /malformed/],
    ['value a number', variant({ value: 42 }), /malformed/],
    ['type missing', variant({ type: undefined }), /malformed/],
    ['scopes a string', variant({ scopes: 'read' }), /malformed/],
    ['scopes with a number', variant({ scopes: ['read', 1] }), /malformed/],
    ['requestedScopes missing', variant({ requestedScopes: undefined }), /malformed/],
    ['issuedAt a string', variant({ issuedAt: '1900000000000' }), /malformed/],
    ['expiresAt missing', variant({ expiresAt: undefined }), /malformed/],
    ['expiresAt null', variant({ expiresAt: null }), /malformed/],
    ['refreshAt a string', variant({ refreshAt: 'soon' }), /malformed/],
    ['extra null', variant({ extra: null }), /malformed/],
    ['extra a string', variant({ extra: TOKEN }), /malformed/],
  ])('refuses %s with a TypeError that does not echo the input', (_name, text, message) => {
    const error = thrownBy(() => deserializeToken(text))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).toMatch(message)
    expect((error as Error).message).not.toContain(TOKEN)
    expect(String(error)).not.toContain(TOKEN)
    expect((error as Error).cause).toBeUndefined()
  })
})

describe('tokenId', () => {
  it('is stable, short, URL-safe, and the same for a token, its copy and its value', () => {
    const token = new AccessToken(init)
    const id = tokenId(token)
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(tokenId(token)).toBe(id)
    expect(tokenId(new AccessToken(init))).toBe(id)
    expect(tokenId(deserializeToken(serializeToken(token)))).toBe(id)
    expect(tokenId(TOKEN)).toBe(id)
  })

  it('is not the value and differs for different values', () => {
    const id = tokenId(TOKEN)
    expect(id).not.toContain(TOKEN)
    expect(TOKEN).not.toContain(id)
    expect(tokenId(`${TOKEN}x`)).not.toBe(id)
    expect(tokenId(new AccessToken({ ...init, value: 'other' }))).not.toBe(id)
  })

  it('depends on the value only, not on the metadata', () => {
    expect(tokenId(new AccessToken({ ...init, expiresAt: init.expiresAt + 1 }))).toBe(tokenId(TOKEN))
  })
})
