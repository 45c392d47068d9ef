import type { JsonWebKey } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  jwtBearer,
  privateKeyJwt,
  tokenSource,
  TokenkeeperError,
  type ClientAuth,
  type ClientCredentialsOptions,
  type TokenFunction,
} from '../../src/index.js'
import { ecKeyPair, rsaKeyPair } from './keys.js'

const SECRET = 'SECRET-must-not-leak-123'
const rsa = rsaKeyPair('a')
const ec = ecKeyPair('a')

const base: ClientCredentialsOptions = {
  tokenUrl: 'https://idp.example/oauth/token',
  clientId: 'svc',
  auth: clientSecretBasic(SECRET),
}

/** Builds a client-credentials source from options that may be deliberately wrong. */
function build(options: Record<string, unknown>): () => unknown {
  return () => clientCredentials({ ...base, ...options })
}

function bearer(options: Record<string, unknown>): () => unknown {
  return () =>
    jwtBearer({
      tokenUrl: 'https://oauth2.example/token',
      issuer: 'robot@example',
      key: rsa.pem,
      ...options,
    })
}

function withoutD(jwk: JsonWebKey): JsonWebKey {
  const { d: _d, ...rest } = jwk
  return rest
}

/** The error thrown by `fn`, which must throw synchronously. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('did not throw')
}

describe('clientCredentials construction: caller mistakes are TypeErrors', () => {
  it.each([
    ['no options', () => clientCredentials(undefined as unknown as ClientCredentialsOptions)],
    ['missing clientId', build({ clientId: undefined })],
    ['empty clientId', build({ clientId: '' })],
    ['clientId not a string', build({ clientId: 42 })],
    ['missing auth', build({ auth: undefined })],
    ['auth a plain string', build({ auth: SECRET })],
    ['auth an object without apply', build({ auth: { method: 'client_secret_basic', fingerprint: 'x' } })],
    ['missing tokenUrl', build({ tokenUrl: undefined })],
    ['tokenUrl not a URL', build({ tokenUrl: 'not a url' })],
    ['relative tokenUrl', build({ tokenUrl: '/oauth/token' })],
    ['tokenUrl with credentials', build({ tokenUrl: `https://svc:${SECRET}@idp.example/token` })],
    ['tokenUrl with a username only', build({ tokenUrl: 'https://svc@idp.example/token' })],
    ['tokenUrl with a fragment', build({ tokenUrl: 'https://idp.example/token#x' })],
    ['scopes not an array', build({ scopes: 'read write' })],
    ['scope with a double quote', build({ scopes: ['read', 'wr"ite'] })],
    ['scope with a backslash', build({ scopes: ['a\\b'] })],
    ['scope with a non-ASCII character', build({ scopes: ['lectur\u00e9'] })],
    ['extraParams grant_type', build({ extraParams: { grant_type: 'password' } })],
    ['extraParams scope', build({ extraParams: { scope: 'admin' } })],
    ['extraParams client_id', build({ extraParams: { client_id: 'other' } })],
    ['extraParams client_secret', build({ extraParams: { client_secret: SECRET } })],
    ['extraParams client_assertion', build({ extraParams: { client_assertion: 'x' } })],
    ['extraParams client_assertion_type', build({ extraParams: { client_assertion_type: 'x' } })],
    ['extraParams audience', build({ extraParams: { audience: 'x' } })],
    ['extraParams resource', build({ extraParams: { resource: 'x' } })],
    ['extraParams assertion', build({ extraParams: { assertion: 'x' } })],
    ['timeoutMs 0', build({ timeoutMs: 0 })],
    ['timeoutMs negative', build({ timeoutMs: -1 })],
    ['timeoutMs NaN', build({ timeoutMs: Number.NaN })],
    ['maxResponseBytes Infinity', build({ maxResponseBytes: Number.POSITIVE_INFINITY })],
    ['defaultLifetimeMs 0', build({ defaultLifetimeMs: 0 })],
    ['defaultLifetimeMs negative', build({ defaultLifetimeMs: -1000 })],
  ])('%s', (_name, make) => {
    const error = thrownBy(make)
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).not.toContain(SECRET)
  })

  it('the scope check names RFC 6749 §3.3 and uses only the allowed characters', () => {
    // A scope token is 1*( %x21 / %x23-5B / %x5D-7E ): ! # [ ] ~ are fine.
    expect(() => build({ scopes: ['a!#[]~', 'x:y/z'] })()).not.toThrow()
    expect(thrownBy(build({ scopes: ['a"b'] }))).toHaveProperty('message', expect.stringMatching(/6749/))
  })
})

describe('client authentication construction', () => {
  it.each([
    ['clientSecretBasic empty', () => clientSecretBasic('')],
    ['clientSecretBasic not a string', () => clientSecretBasic(undefined as unknown as string)],
    ['clientSecretPost empty', () => clientSecretPost('')],
    ['privateKeyJwt no options', () => privateKeyJwt(undefined as never)],
    ['privateKeyJwt key not a key', () => privateKeyJwt({ key: 'not a pem' })],
    ['privateKeyJwt truncated PEM', () => privateKeyJwt({ key: rsa.pem.slice(0, 200) })],
    ['privateKeyJwt a public key', () => privateKeyJwt({ key: rsa.publicKey })],
    [
      'privateKeyJwt a public PEM',
      () => privateKeyJwt({ key: rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString() }),
    ],
    ['privateKeyJwt a JWK without d', () => privateKeyJwt({ key: withoutD(rsa.jwk) })],
    ['privateKeyJwt RSA key of 1024 bits', () => privateKeyJwt({ key: rsaKeyPair('small', 1024).pem })],
    ['privateKeyJwt alg HS256', () => privateKeyJwt({ key: rsa.pem, alg: 'HS256' as never })],
    ['privateKeyJwt alg none', () => privateKeyJwt({ key: rsa.pem, alg: 'none' as never })],
    ['privateKeyJwt EC key with RS256', () => privateKeyJwt({ key: ec.pem, alg: 'RS256' })],
    ['privateKeyJwt RSA key with ES256', () => privateKeyJwt({ key: rsa.pem, alg: 'ES256' })],
    ['privateKeyJwt P-384 key with ES256', () => privateKeyJwt({ key: ecKeyPair('p384', 'P-384').pem })],
    ['privateKeyJwt JWK with alg HS256', () => privateKeyJwt({ key: { ...rsa.jwk, alg: 'HS256' } })],
    ['privateKeyJwt lifetimeMs 999', () => privateKeyJwt({ key: rsa.pem, lifetimeMs: 999 })],
    ['privateKeyJwt lifetimeMs over 5 minutes', () => privateKeyJwt({ key: rsa.pem, lifetimeMs: 300_001 })],
    ['privateKeyJwt lifetimeMs NaN', () => privateKeyJwt({ key: rsa.pem, lifetimeMs: Number.NaN })],
    // An empty kid or aud would be sent as such, yet share the cache key of none.
    ['privateKeyJwt empty kid', () => privateKeyJwt({ key: rsa.pem, kid: '' })],
    ['privateKeyJwt empty audience', () => privateKeyJwt({ key: rsa.pem, audience: '' })],
    ['privateKeyJwt kid not a string', () => privateKeyJwt({ key: rsa.pem, kid: 7 as never })],
  ])('%s', (_name, make) => {
    const error = thrownBy(make)
    expect(error).toBeInstanceOf(TypeError)
    const message = (error as Error).message
    for (const part of [SECRET, ...rsa.privateParts, ...ec.privateParts]) expect(message).not.toContain(part)
  })

  it('accepts assertion lifetimes at the bounds', () => {
    expect(() => privateKeyJwt({ key: rsa.pem, lifetimeMs: 1000 })).not.toThrow()
    expect(() => privateKeyJwt({ key: rsa.pem, lifetimeMs: 300_000 })).not.toThrow()
  })
})

describe('jwtBearer construction', () => {
  it.each([
    ['missing issuer', bearer({ issuer: undefined })],
    ['empty issuer', bearer({ issuer: '' })],
    ['missing key', bearer({ key: undefined })],
    ['bad key', bearer({ key: 'nope' })],
    ['RSA key of 1024 bits', bearer({ key: rsaKeyPair('small', 1024).privateKey })],
    ['assertionLifetimeMs over 1 hour', bearer({ assertionLifetimeMs: 3_600_001 })],
    ['assertionLifetimeMs under 1 s', bearer({ assertionLifetimeMs: 500 })],
    ['auth without clientId', bearer({ auth: clientSecretBasic(SECRET) })],
    ['scope with a double quote', bearer({ scopes: ['"'] })],
    ['bad tokenUrl', bearer({ tokenUrl: 'oauth2.example/token' })],
    // An empty sub, kid or aud would be sent as such, yet share the cache key of none.
    ['empty subject', bearer({ subject: '' })],
    ['empty kid', bearer({ kid: '' })],
    ['empty assertionAudience', bearer({ assertionAudience: '' })],
    ['subject not a string', bearer({ subject: 42 })],
  ])('%s', (_name, make) => {
    expect(thrownBy(make)).toBeInstanceOf(TypeError)
  })

  it('names the option given empty', () => {
    for (const name of ['subject', 'kid', 'assertionAudience']) {
      expect(thrownBy(bearer({ [name]: '' }))).toHaveProperty(
        'message',
        `jwtBearer: ${name} must be a non-empty string when given`,
      )
    }
    expect(thrownBy(() => privateKeyJwt({ key: rsa.pem, audience: '' }))).toHaveProperty(
      'message',
      'privateKeyJwt: audience must be a non-empty string when given',
    )
  })
})

describe('tokenSource construction', () => {
  const fn: TokenFunction = () => ({ access_token: 'x' })
  it.each([
    ['empty key', () => tokenSource('', fn)],
    ['key not a string', () => tokenSource(undefined as unknown as string, fn)],
    ['not a function', () => tokenSource('x', { access_token: 'x' } as unknown as TokenFunction)],
  ])('%s', (_name, make) => {
    expect(thrownBy(make)).toBeInstanceOf(TypeError)
  })
})

describe('token endpoint URL security', () => {
  it.each([
    'http://example.com/oauth/token',
    'http://10.0.0.1/token',
    'http://localhost.example.com/token',
    'http://127.0.0.1.nip.io/token',
    'ftp://idp.example/token',
    'ws://127.0.0.1/token',
  ])('%s is refused with INSECURE_TOKEN_URL at construction', (tokenUrl) => {
    const error = thrownBy(build({ tokenUrl }))
    expect(error).toBeInstanceOf(TokenkeeperError)
    expect(error).toMatchObject({ code: 'INSECURE_TOKEN_URL', retryable: false, status: undefined })
    expect(() => bearer({ tokenUrl })()).toThrow(TokenkeeperError)
  })

  it.each([
    'https://idp.example/oauth/token',
    'http://127.0.0.1/token',
    'http://127.0.0.1:8080/token',
    'http://127.8.9.10/token',
    'http://localhost/token',
    'http://LOCALHOST:3000/token',
    'http://idp.localhost/token',
    'http://[::1]:8080/token',
  ])('%s is allowed', (tokenUrl) => {
    expect(() => build({ tokenUrl })()).not.toThrow()
  })

  it('does not echo the credentials of a URL in the error', () => {
    const error = thrownBy(build({ tokenUrl: `https://svc:${SECRET}@idp.example/token` }))
    expect(String(error)).not.toContain(SECRET)
  })
})

describe('what a valid configuration accepts', () => {
  it('takes any ClientAuth-shaped object', () => {
    const custom: ClientAuth = {
      method: 'client_secret_post',
      fingerprint: 'custom',
      apply: () => Promise.resolve([]),
    }
    expect(() => clientCredentials({ ...base, auth: custom })).not.toThrow()
  })

  it('takes keys as JWK, PEM (PKCS#8 and traditional) and KeyObject', () => {
    for (const pair of [rsa, ec]) {
      for (const key of [pair.jwk, pair.pem, pair.traditionalPem, pair.privateKey]) {
        expect(() => privateKeyJwt({ key })).not.toThrow()
        expect(() => bearer({ key })()).not.toThrow()
      }
    }
  })
})
