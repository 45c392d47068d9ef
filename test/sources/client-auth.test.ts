import type { KeyObject } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  privateKeyJwt,
  systemClock,
  type Clock,
  type PrivateKeyInput,
  type SigningAlgorithm,
} from '../../src/index.js'
import { formFields, startLocalServer, type CapturedRequest, type LocalServer } from '../wire/local-server.js'
import { ecKeyPair, rsaKeyPair, type TestKeyPair } from './keys.js'

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** An instant with a fractional second, far from the real time: the assertion's times come from here. */
const NOW = Date.UTC(2031, 4, 6, 7, 8, 9, 750)
const clock: Clock = {
  now: () => NOW,
  setTimer: (callback, delayMs) => systemClock.setTimer(callback, delayMs),
}
const TOKEN_RESPONSE = JSON.stringify({ access_token: 'at-1', token_type: 'Bearer', expires_in: 3600 })

let server: LocalServer
let tokenUrl: string

beforeAll(async () => {
  server = await startLocalServer()
  tokenUrl = `${server.origin}/token`
  server.route('/token', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(TOKEN_RESPONSE)
  })
})

afterAll(async () => {
  await server.close()
})

/** Sends `count` token requests and returns what the server received. */
async function capture(
  options: Omit<Parameters<typeof clientCredentials>[0], 'tokenUrl'> & { tokenUrl?: string | URL },
  count = 1,
): Promise<CapturedRequest[]> {
  const source = clientCredentials({ tokenUrl, clock, ...options })
  const before = server.hits('/token').length
  for (let i = 0; i < count; i++) await source.fetchToken()
  return server.hits('/token').slice(before)
}

function fields(request: CapturedRequest): Record<string, string> {
  const entries = formFields(request)
  const record = Object.fromEntries(entries)
  expect(Object.keys(record)).toHaveLength(entries.length) // no field twice
  return record
}

/** Decodes an `application/x-www-form-urlencoded` value (`+` is a space). */
function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '))
}

describe('client_secret_basic (RFC 6749 §2.3.1)', () => {
  it('sends Basic base64(formencode(id):formencode(secret)) and no credentials in the body', async () => {
    const clientId = 'a b:c/%'
    const secret = 's3:cr+t/%& x'
    const [request] = await capture({ clientId, auth: clientSecretBasic(secret), scopes: ['read'] })
    const expected = Buffer.from('a+b%3Ac%2F%25:s3%3Acr%2Bt%2F%25%26+x').toString('base64')
    expect(request!.headers['authorization']).toBe(`Basic ${expected}`)

    // And a server that decodes it the RFC way gets the originals back.
    const decoded = Buffer.from(expected, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    expect(formDecode(decoded.slice(0, colon))).toBe(clientId)
    expect(formDecode(decoded.slice(colon + 1))).toBe(secret)

    expect(fields(request!)).toEqual({ grant_type: 'client_credentials', scope: 'read' })
  })

  it('encodes non-ASCII as UTF-8', async () => {
    const [request] = await capture({ clientId: 'é', auth: clientSecretBasic('ü') })
    const expected = Buffer.from('%C3%A9:%C3%BC').toString('base64')
    expect(request!.headers['authorization']).toBe(`Basic ${expected}`)
  })
})

describe('client_secret_post (RFC 6749 §2.3.1)', () => {
  it('sends client_id and client_secret in the form body and no Authorization header', async () => {
    const [request] = await capture({
      clientId: 'a b:c/%',
      auth: clientSecretPost('s3:cr+t/%& x'),
      scopes: ['write', 'read'],
    })
    expect(request!.headers['authorization']).toBeUndefined()
    expect(request!.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/)
    expect(fields(request!)).toEqual({
      grant_type: 'client_credentials',
      scope: 'read write',
      client_id: 'a b:c/%',
      client_secret: 's3:cr+t/%& x',
    })
  })
})

interface KeyCase {
  readonly name: string
  readonly alg: SigningAlgorithm
  readonly pair: TestKeyPair
  readonly form: 'jwk' | 'pem' | 'traditional pem' | 'KeyObject'
}

function keyInput(keyCase: KeyCase): PrivateKeyInput {
  switch (keyCase.form) {
    case 'jwk':
      return keyCase.pair.jwk
    case 'pem':
      return keyCase.pair.pem
    case 'traditional pem':
      return keyCase.pair.traditionalPem
    case 'KeyObject':
      return keyCase.pair.privateKey
  }
}

const KEY_CASES: KeyCase[] = (['RS256', 'PS256', 'ES256'] as const).flatMap((alg) =>
  (['jwk', 'pem', 'traditional pem', 'KeyObject'] as const).map((form) => ({
    name: `${alg} with a ${form} key`,
    alg,
    pair: alg === 'ES256' ? ecKeyPair('a') : rsaKeyPair('a'),
    form,
  })),
)

async function verify(
  assertion: string,
  publicKey: KeyObject,
  alg: SigningAlgorithm,
  audience: string,
  clientId: string,
) {
  return jwtVerify(assertion, publicKey, {
    algorithms: [alg],
    issuer: clientId,
    subject: clientId,
    audience,
    currentDate: new Date(NOW),
  })
}

describe('private_key_jwt (RFC 7523 §2.2)', () => {
  it.each(KEY_CASES.map((keyCase) => [keyCase.name, keyCase] as const))('%s', async (_name, keyCase) => {
    const clientId = 'svc-jwt'
    const requests = await capture(
      { clientId, auth: privateKeyJwt({ key: keyInput(keyCase), alg: keyCase.alg, kid: 'key-2031' }) },
      2,
    )
    const jtis = new Set<unknown>()
    for (const request of requests) {
      const body = fields(request)
      expect(request.headers['authorization']).toBeUndefined()
      expect(Object.keys(body).sort()).toEqual([
        'client_assertion',
        'client_assertion_type',
        'client_id',
        'grant_type',
      ])
      expect(body['grant_type']).toBe('client_credentials')
      expect(body['client_id']).toBe(clientId)
      expect(body['client_assertion_type']).toBe(ASSERTION_TYPE)
      const assertion = body['client_assertion']!

      expect(decodeProtectedHeader(assertion)).toEqual({ alg: keyCase.alg, typ: 'JWT', kid: 'key-2031' })
      const claims = decodeJwt(assertion)
      expect(claims.iss).toBe(clientId)
      expect(claims.sub).toBe(clientId)
      expect(claims.aud).toBe(tokenUrl)
      expect(claims.iat).toBe(Math.floor(NOW / 1000))
      expect(claims.exp! - claims.iat!).toBe(60)
      expect(typeof claims.jti).toBe('string')
      expect(claims.jti!.length).toBeGreaterThanOrEqual(16)
      jtis.add(claims.jti)

      const { payload } = await verify(assertion, keyCase.pair.publicKey, keyCase.alg, tokenUrl, clientId)
      expect(payload.jti).toBe(claims.jti)
    }
    expect(jtis.size).toBe(2)
  })

  it('defaults the algorithm from the key: RS256 for RSA, ES256 for EC, the JWK alg when given', async () => {
    const rsa = rsaKeyPair('a')
    const ec = ecKeyPair('a')
    for (const [key, alg] of [
      [rsa.pem, 'RS256'],
      [ec.jwk, 'ES256'],
      [{ ...rsa.jwk, alg: 'PS256' }, 'PS256'],
    ] as const) {
      const [request] = await capture({ clientId: 'svc', auth: privateKeyJwt({ key }) })
      const assertion = fields(request!)['client_assertion']!
      expect(decodeProtectedHeader(assertion).alg).toBe(alg)
      expect(decodeProtectedHeader(assertion).kid).toBeUndefined()
    }
  })

  it('uses the configured lifetime, never more than 300 s', async () => {
    const rsa = rsaKeyPair('a')
    for (const [lifetimeMs, seconds] of [
      [1000, 1],
      [90_500, 90],
      [300_000, 300],
    ] as const) {
      const [request] = await capture({ clientId: 'svc', auth: privateKeyJwt({ key: rsa.pem, lifetimeMs }) })
      const claims = decodeJwt(fields(request!)['client_assertion']!)
      expect(claims.exp! - claims.iat!).toBe(seconds)
      expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(300)
    }
  })

  it('takes iat from the clock passed to fetchToken', async () => {
    const later = NOW + 7_000_000
    const source = clientCredentials({
      tokenUrl,
      clientId: 'svc',
      auth: privateKeyJwt({ key: ecKeyPair('a').pem }),
      clock,
    })
    await source.fetchToken({ clock: { ...clock, now: () => later } })
    const claims = decodeJwt(fields(server.hits('/token').at(-1)!)['client_assertion']!)
    expect(claims.iat).toBe(Math.floor(later / 1000))
  })

  it('uses the audience override, else the token URL exactly as configured', async () => {
    const ec = ecKeyPair('a')
    const [overridden] = await capture({
      clientId: 'svc',
      auth: privateKeyJwt({ key: ec.pem, audience: 'https://idp.example' }),
    })
    const assertion = fields(overridden!)['client_assertion']!
    expect(decodeJwt(assertion).aud).toBe('https://idp.example')
    await verify(assertion, ec.publicKey, 'ES256', 'https://idp.example', 'svc')

    const asUrl = new URL(tokenUrl)
    const [fromUrl] = await capture({
      tokenUrl: asUrl,
      clientId: 'svc',
      auth: privateKeyJwt({ key: ec.pem }),
    })
    expect(decodeJwt(fields(fromUrl!)['client_assertion']!).aud).toBe(asUrl.href)
  })

  it('keeps scopes and other parameters next to the assertion', async () => {
    const [request] = await capture({
      clientId: 'svc',
      auth: privateKeyJwt({ key: ecKeyPair('a').jwk }),
      scopes: ['b', 'a'],
      resource: 'https://api.example',
    })
    expect(fields(request!)).toMatchObject({
      grant_type: 'client_credentials',
      scope: 'a b',
      resource: 'https://api.example',
      client_id: 'svc',
      client_assertion_type: ASSERTION_TYPE,
    })
  })
})
