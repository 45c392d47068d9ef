import { describe, expect, it } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  jwtBearer,
  privateKeyJwt,
  systemClock,
  tokenSource,
  type ClientCredentialsOptions,
  type JwtBearerOptions,
} from '../../src/index.js'
import { ecKeyPair, rsaKeyPair } from './keys.js'

const SECRET = 'SECRET-must-not-leak-123'
const EXTRA_VALUE = 'EXTRA-must-not-leak-321'
const rsa = rsaKeyPair('a')
const rsaOther = rsaKeyPair('b')
const ec = ecKeyPair('a')

const base: ClientCredentialsOptions = {
  tokenUrl: 'https://idp.example/oauth/token',
  clientId: 'svc',
  auth: clientSecretBasic(SECRET),
  scopes: ['read', 'write'],
}

function ccKey(options: Partial<ClientCredentialsOptions> = {}): string {
  return clientCredentials({ ...base, ...options }).key
}

const bearerBase: JwtBearerOptions = {
  tokenUrl: 'https://oauth2.example/token',
  issuer: 'robot@project.example',
  key: rsa.pem,
  scopes: ['read'],
}

function bearerKey(options: Partial<JwtBearerOptions> = {}): string {
  return jwtBearer({ ...bearerBase, ...options }).key
}

describe('clientCredentials key', () => {
  it('is the same for equal configurations built separately', () => {
    expect(ccKey()).toBe(ccKey())
    expect(ccKey({ auth: clientSecretBasic(SECRET) })).toBe(ccKey())
    expect(ccKey({ auth: privateKeyJwt({ key: rsa.pem }) })).toBe(
      ccKey({ auth: privateKeyJwt({ key: rsa.privateKey }) }),
    )
    expect(ccKey({ auth: privateKeyJwt({ key: rsa.pem }) })).toBe(
      ccKey({ auth: privateKeyJwt({ key: rsa.jwk }) }),
    )
  })

  it('ignores scope order, duplicates and whitespace-joined scopes', () => {
    const key = ccKey({ scopes: ['read', 'write'] })
    expect(ccKey({ scopes: ['write', 'read'] })).toBe(key)
    expect(ccKey({ scopes: ['write', 'read', 'read', 'write'] })).toBe(key)
    expect(ccKey({ scopes: ['read write'] })).toBe(key)
    expect(ccKey({ scopes: ['  write\tread '] })).toBe(key)
  })

  it('ignores the order of resources and extraParams, and URL spelling that names the same URL', () => {
    expect(ccKey({ resource: ['https://r2', 'https://r1'] })).toBe(
      ccKey({ resource: ['https://r1', 'https://r2'] }),
    )
    expect(ccKey({ resource: 'https://r1' })).toBe(ccKey({ resource: ['https://r1'] }))
    expect(ccKey({ extraParams: { a: '1', b: '2' } })).toBe(ccKey({ extraParams: { b: '2', a: '1' } }))
    expect(ccKey({ tokenUrl: 'https://IDP.example:443/oauth/token' })).toBe(ccKey())
    expect(ccKey({ tokenUrl: new URL('https://idp.example/oauth/token') })).toBe(ccKey())
  })

  it('is not changed by options that do not change the token request', () => {
    const key = ccKey()
    expect(ccKey({ timeoutMs: 1234 })).toBe(key)
    expect(ccKey({ maxResponseBytes: 4096 })).toBe(key)
    expect(ccKey({ clock: systemClock })).toBe(key)
    expect(ccKey({ fetch: (input, init) => fetch(input, init) })).toBe(key)
  })

  it('changes with anything that changes the token', () => {
    const variants: Record<string, string> = {
      base: ccKey(),
      endpoint: ccKey({ tokenUrl: 'https://idp.example/oauth/token2' }),
      endpointHost: ccKey({ tokenUrl: 'https://other.example/oauth/token' }),
      endpointQuery: ccKey({ tokenUrl: 'https://idp.example/oauth/token?tenant=2' }),
      clientId: ccKey({ clientId: 'svc2' }),
      authMethod: ccKey({ auth: clientSecretPost(SECRET) }),
      secret: ccKey({ auth: clientSecretBasic(`${SECRET}x`) }),
      privateKey: ccKey({ auth: privateKeyJwt({ key: rsa.pem }) }),
      otherPrivateKey: ccKey({ auth: privateKeyJwt({ key: rsaOther.pem }) }),
      ecKey: ccKey({ auth: privateKeyJwt({ key: ec.pem }) }),
      alg: ccKey({ auth: privateKeyJwt({ key: rsa.pem, alg: 'PS256' }) }),
      kid: ccKey({ auth: privateKeyJwt({ key: rsa.pem, kid: 'k1' }) }),
      otherKid: ccKey({ auth: privateKeyJwt({ key: rsa.pem, kid: 'k2' }) }),
      assertionAudience: ccKey({ auth: privateKeyJwt({ key: rsa.pem, audience: 'https://idp.example' }) }),
      noScopes: ccKey({ scopes: [] }),
      fewerScopes: ccKey({ scopes: ['read'] }),
      moreScopes: ccKey({ scopes: ['read', 'write', 'admin'] }),
      audience: ccKey({ audience: 'https://api.example' }),
      otherAudience: ccKey({ audience: 'https://api2.example' }),
      resource: ccKey({ resource: 'https://r1' }),
      twoResources: ccKey({ resource: ['https://r1', 'https://r2'] }),
      extraParams: ccKey({ extraParams: { tenant: EXTRA_VALUE } }),
      extraParamsValue: ccKey({ extraParams: { tenant: `${EXTRA_VALUE}x` } }),
      extraParamsName: ccKey({ extraParams: { org: EXTRA_VALUE } }),
    }
    const keys = Object.values(variants)
    expect(new Set(keys).size).toBe(keys.length)
  })

  it('keeps segments apart: a separator inside a value cannot forge another key', () => {
    expect(ccKey({ tokenUrl: 'https://idp.example/t|a', clientId: 'b' })).not.toBe(
      ccKey({ tokenUrl: 'https://idp.example/t', clientId: 'a|b' }),
    )
    expect(ccKey({ clientId: 'a%7Cb' })).not.toBe(ccKey({ clientId: 'a|b' }))
  })

  it('never contains the secret, private key material or extraParams values', () => {
    const keys = [
      ccKey(),
      ccKey({ auth: clientSecretPost(SECRET) }),
      ccKey({ auth: privateKeyJwt({ key: rsa.pem, kid: 'k1' }) }),
      ccKey({ auth: privateKeyJwt({ key: rsa.jwk }) }),
      ccKey({ auth: privateKeyJwt({ key: ec.jwk }) }),
      ccKey({ extraParams: { tenant: EXTRA_VALUE } }),
      bearerKey(),
      bearerKey({ key: ec.jwk, claims: { target_audience: EXTRA_VALUE } }),
      bearerKey({ extraParams: { tenant: EXTRA_VALUE } }),
    ]
    for (const key of keys) {
      expect(key).not.toContain(SECRET)
      expect(key).not.toContain(EXTRA_VALUE)
      for (const part of [...rsa.privateParts, ...ec.privateParts]) expect(key).not.toContain(part)
    }
  })
})

describe('jwtBearer key', () => {
  it('is stable and changes with anything that changes the token', () => {
    expect(bearerKey()).toBe(bearerKey())
    expect(bearerKey({ key: rsa.privateKey })).toBe(bearerKey())
    expect(bearerKey({ scopes: ['read', 'read'] })).toBe(bearerKey())
    const variants = [
      bearerKey(),
      bearerKey({ tokenUrl: 'https://oauth2.example/token2' }),
      bearerKey({ issuer: 'other@project.example' }),
      bearerKey({ subject: 'user@example' }),
      bearerKey({ key: rsaOther.pem }),
      bearerKey({ key: rsa.pem, alg: 'PS256' }),
      bearerKey({ kid: 'k1' }),
      bearerKey({ assertionAudience: 'https://oauth2.example/' }),
      bearerKey({ scopes: ['write'] }),
      bearerKey({ scopeIn: 'assertion' }),
      bearerKey({ scopeIn: 'assertion', scopes: ['write'] }),
      bearerKey({ claims: { target_audience: 'a' } }),
      bearerKey({ claims: { target_audience: 'b' } }),
      bearerKey({ audience: 'https://api.example' }),
      bearerKey({ clientId: 'svc' }),
      bearerKey({ clientId: 'svc', auth: clientSecretBasic(SECRET) }),
      bearerKey({ clientId: 'svc', auth: clientSecretBasic(`${SECRET}x`) }),
      bearerKey({ clientId: 'svc', auth: clientSecretPost(SECRET) }),
      ccKey({ tokenUrl: 'https://oauth2.example/token' }),
    ]
    expect(new Set(variants).size).toBe(variants.length)
  })
})

describe('tokenSource key', () => {
  it('is the given name, prefixed so that it cannot collide with a built-in source', () => {
    const fn = () => ({ access_token: 'x' })
    expect(tokenSource('x', fn).key).toBe('fn|x')
    expect(tokenSource('x', () => ({ access_token: 'y' })).key).toBe(tokenSource('x', fn).key)
    expect(tokenSource('y', fn).key).not.toBe(tokenSource('x', fn).key)
    const cc = ccKey()
    expect(tokenSource(cc, fn).key).not.toBe(cc)
  })
})
