import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  clientSecretBasic,
  jwtBearer,
  systemClock,
  type Clock,
  type JwtBearerOptions,
} from '../../src/index.js'
import { formFields, startLocalServer, type CapturedRequest, type LocalServer } from '../wire/local-server.js'
import { ecKeyPair, rsaKeyPair } from './keys.js'

const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const NOW = Date.UTC(2031, 4, 6, 7, 8, 9, 250)
const clock: Clock = {
  now: () => NOW,
  setTimer: (callback, delayMs) => systemClock.setTimer(callback, delayMs),
}
const rsa = rsaKeyPair('a')
const ec = ecKeyPair('a')

let server: LocalServer
let tokenUrl: string

beforeAll(async () => {
  server = await startLocalServer()
  tokenUrl = `${server.origin}/token`
  server.route('/token', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ access_token: 'at-1', token_type: 'Bearer', expires_in: 3600 }))
  })
})

afterAll(async () => {
  await server.close()
})

async function capture(options: Partial<JwtBearerOptions>, count = 1): Promise<CapturedRequest[]> {
  const source = jwtBearer({ tokenUrl, issuer: 'robot@project.example', key: rsa.pem, clock, ...options })
  const before = server.hits('/token').length
  for (let i = 0; i < count; i++) await source.fetchToken()
  return server.hits('/token').slice(before)
}

function fields(request: CapturedRequest): Record<string, string> {
  return Object.fromEntries(formFields(request))
}

describe('jwtBearer (RFC 7523 §2.1)', () => {
  it('exchanges a signed assertion: grant_type, assertion, scope; iss, sub, aud, iat, exp, jti', async () => {
    const requests = await capture({ subject: 'user@example', scopes: ['write', 'read'], kid: 'sa-key-1' }, 2)
    const jtis = new Set<unknown>()
    for (const request of requests) {
      const body = fields(request)
      expect(Object.keys(body).sort()).toEqual(['assertion', 'grant_type', 'scope'])
      expect(body['grant_type']).toBe(JWT_BEARER_GRANT)
      expect(body['scope']).toBe('read write')
      expect(request.headers['authorization']).toBeUndefined()

      const assertion = body['assertion']!
      expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'sa-key-1' })
      const { payload } = await jwtVerify(assertion, rsa.publicKey, {
        algorithms: ['RS256'],
        issuer: 'robot@project.example',
        subject: 'user@example',
        audience: tokenUrl,
        currentDate: new Date(NOW),
      })
      expect(payload.iat).toBe(Math.floor(NOW / 1000))
      expect(payload.exp! - payload.iat!).toBe(60)
      expect(payload.scope).toBeUndefined()
      jtis.add(payload.jti)
    }
    expect(jtis.size).toBe(2)
  })

  it('has no sub claim when no subject is configured', async () => {
    const [request] = await capture({})
    expect(decodeJwt(fields(request!)['assertion']!)).not.toHaveProperty('sub')
  })

  it("with scopeIn: 'assertion' puts a scope claim in the assertion and no scope parameter", async () => {
    const [request] = await capture({
      scopes: ['https://api.example/b', 'https://api.example/a'],
      scopeIn: 'assertion',
    })
    const body = fields(request!)
    expect(body).not.toHaveProperty('scope')
    const { payload } = await jwtVerify(body['assertion']!, rsa.publicKey, {
      audience: tokenUrl,
      currentDate: new Date(NOW),
    })
    expect(payload.scope).toBe('https://api.example/a https://api.example/b')
  })

  it("with scopeIn: 'assertion' and no scope in the answer, the token records the assertion's scopes as granted", async () => {
    for (const scopeIn of ['assertion', undefined] as const) {
      const token = await jwtBearer({
        tokenUrl,
        issuer: 'robot@project.example',
        key: rsa.pem,
        clock,
        scopes: ['b', 'a'],
        ...(scopeIn === undefined ? {} : { scopeIn }),
      }).fetchToken()
      expect(token.scopes).toEqual(['a', 'b'])
      expect(token.hasScope('a')).toBe(true)
    }
  })

  it('adds configured claims, the audience override and the lifetime; signs ES256 with an EC key', async () => {
    const [request] = await capture({
      key: ec.jwk,
      claims: { target_audience: 'https://run.example' },
      assertionAudience: 'https://oauth2.example/token',
      assertionLifetimeMs: 3_600_000,
    })
    const assertion = fields(request!)['assertion']!
    expect(decodeProtectedHeader(assertion).alg).toBe('ES256')
    const { payload } = await jwtVerify(assertion, ec.publicKey, {
      algorithms: ['ES256'],
      audience: 'https://oauth2.example/token',
      currentDate: new Date(NOW),
    })
    expect(payload.target_audience).toBe('https://run.example')
    expect(payload.exp! - payload.iat!).toBe(3600)
  })

  it('configured claims cannot override the registered claims', async () => {
    const [request] = await capture({ claims: { iss: 'evil', aud: 'evil', exp: 1, jti: 'fixed' } })
    const claims = decodeJwt(fields(request!)['assertion']!)
    expect(claims.iss).toBe('robot@project.example')
    expect(claims.aud).toBe(tokenUrl)
    expect(claims.exp).toBe(Math.floor(NOW / 1000) + 60)
    expect(claims.jti).not.toBe('fixed')
  })

  it('identifies the client when asked: client_id alone, or with client authentication', async () => {
    const [plain] = await capture({ clientId: 'svc' })
    expect(fields(plain!)['client_id']).toBe('svc')
    expect(plain!.headers['authorization']).toBeUndefined()

    const [basic] = await capture({ clientId: 'svc', auth: clientSecretBasic('s3cret') })
    expect(basic!.headers['authorization']).toBe(`Basic ${Buffer.from('svc:s3cret').toString('base64')}`)
    expect(fields(basic!)['grant_type']).toBe(JWT_BEARER_GRANT)
  })

  it('returns a token measured from the clock', async () => {
    const source = jwtBearer({ tokenUrl, issuer: 'robot@project.example', key: rsa.privateKey, clock })
    const token = await source.fetchToken()
    expect(token.issuedAt).toBe(NOW)
    expect(token.expiresAt).toBe(NOW + 3_600_000)
  })
})

describe("jwtBearer with scopeIn: 'assertion' normalises and checks scopes", () => {
  it('normalises whitespace-joined scopes in the claim and the key like the scope parameter', async () => {
    const [request] = await capture({ scopes: ['b a', 'a'], scopeIn: 'assertion' })
    expect(decodeJwt(fields(request!)['assertion']!).scope).toBe('a b')
    const key = (scopes: string[]) =>
      jwtBearer({ tokenUrl, issuer: 'i', key: rsa.pem, scopes, scopeIn: 'assertion' }).key
    expect(key(['b a', 'a'])).toBe(key(['a', 'b']))
  })

  it('refuses a scope with a forbidden character at construction', () => {
    expect(() =>
      jwtBearer({
        tokenUrl: 'https://oauth2.example/token',
        issuer: 'i',
        key: rsa.pem,
        scopes: ['"'],
        scopeIn: 'assertion',
      }),
    ).toThrow(TypeError)
  })
})
