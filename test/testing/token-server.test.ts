import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createTestClock,
  grantAllowedSubset,
  startTokenServer,
  type TestClock,
  type TokenServer,
  type TokenServerOptions,
} from '../../src/testing/index.js'
import {
  ASSERTION_TYPE,
  FORM,
  JWT_BEARER,
  basic,
  keyPair,
  postToken,
  signAssertion,
  type AssertionClaims,
  type KeyPair,
} from './helpers.js'

const SECRET = 's3cret-VALUE-that-must-not-leak'
let rsa: KeyPair
let ec: KeyPair
let ps: KeyPair
let stranger: KeyPair

beforeAll(async () => {
  ;[rsa, ec, ps, stranger] = await Promise.all([
    keyPair('RS256'),
    keyPair('ES256'),
    keyPair('PS256'),
    keyPair('RS256'),
  ])
})

let server: TokenServer
let clock: TestClock
afterEach(async () => {
  await server.close()
})

async function start(extra: Partial<TokenServerOptions> = {}): Promise<TokenServer> {
  clock = createTestClock()
  server = await startTokenServer({
    clients: [
      { clientId: 'svc-a', clientSecret: SECRET, allowedScopes: ['read', 'write'] },
      { clientId: 'post-only', clientSecret: 'p', authMethods: ['client_secret_post'] },
      { clientId: 'svc-jwt', jwks: { keys: [rsa.publicJwk] }, authMethods: ['private_key_jwt'] },
      { clientId: 'svc-ec', publicKey: ec.publicKey },
      { clientId: 'svc-ps', publicKey: ps.publicKey.export({ type: 'spki', format: 'pem' }).toString() },
      { clientId: 'any-scope', clientSecret: 'x' },
    ],
    clock,
    ...extra,
  })
  return server
}

const credentials = { grant_type: 'client_credentials' }

async function jwtClient(clientId: string, key: KeyPair, alg: string, claims: AssertionClaims = {}) {
  const assertion = await signAssertion(key, alg, clock.now(), {
    iss: clientId,
    sub: clientId,
    aud: server.tokenUrl,
    ...claims,
  })
  const call = await postToken(server, {
    ...credentials,
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: assertion,
  })
  return { ...call, assertion }
}

describe('client_secret_basic and client_secret_post', () => {
  it('issues an RFC 6749 §5.1 token response to client_secret_basic', async () => {
    await start()
    const call = await postToken(server, credentials, { authorization: basic('svc-a', SECRET) })
    expect(call.status).toBe(200)
    expect(call.headers.get('cache-control')).toBe('no-store')
    expect(call.headers.get('content-type')).toBe('application/json')
    expect(call.json).toEqual({
      access_token: expect.stringMatching(/^tkt_[A-Za-z0-9_-]{43}$/),
      token_type: 'Bearer',
      expires_in: 3600,
      scope: 'read write',
    })
    expect(server.requests[0]).toMatchObject({
      clientId: 'svc-a',
      authMethod: 'client_secret_basic',
      grantType: 'client_credentials',
      status: 200,
      contentType: FORM,
    })
  })

  it('form-decodes Basic credentials (RFC 6749 §2.3.1)', async () => {
    await start({ clients: [{ clientId: 'id with:colon', clientSecret: 'p@ss word+%/=' }] })
    const ok = await postToken(server, credentials, {
      authorization: basic('id with:colon', 'p@ss word+%/='),
    })
    expect(ok.status).toBe(200)
    const raw = `Basic ${Buffer.from('id with:colon:p@ss word+%/=').toString('base64')}`
    expect((await postToken(server, credentials, { authorization: raw })).status).toBe(401)
  })

  it('accepts client_secret_post', async () => {
    await start()
    const call = await postToken(server, { ...credentials, client_id: 'svc-a', client_secret: SECRET })
    expect(call.status).toBe(200)
    expect(server.requests[0]?.authMethod).toBe('client_secret_post')
  })

  it('refuses a wrong secret with 401 invalid_client and a Basic challenge when Basic was used', async () => {
    await start()
    const viaBasic = await postToken(server, credentials, { authorization: basic('svc-a', `${SECRET}x`) })
    expect(viaBasic.status).toBe(401)
    expect(viaBasic.json.error).toBe('invalid_client')
    expect(viaBasic.headers.get('www-authenticate')).toMatch(/^Basic /)
    const viaPost = await postToken(server, { ...credentials, client_id: 'svc-a', client_secret: 'nope' })
    expect(viaPost.status).toBe(401)
    expect(viaPost.json.error).toBe('invalid_client')
    expect(viaPost.headers.get('www-authenticate')).toBeNull()
    expect(server.stats()).toMatchObject({ tokenRequests: 2, tokensIssued: 0, failures: 2 })
  })

  it('refuses an unknown client, two methods at once, a disallowed method and no authentication', async () => {
    await start()
    const unknown = await postToken(server, credentials, { authorization: basic('nobody', SECRET) })
    const twoMethods = await postToken(
      server,
      { ...credentials, client_id: 'svc-a', client_secret: SECRET },
      { authorization: basic('svc-a', SECRET) },
    )
    const disallowed = await postToken(server, credentials, { authorization: basic('post-only', 'p') })
    const none = await postToken(server, { ...credentials, client_id: 'svc-a' })
    for (const call of [unknown, twoMethods, disallowed, none]) {
      expect(call.status).toBe(401)
      expect(call.json.error).toBe('invalid_client')
    }
    expect(twoMethods.json.error_description).toMatch(/more than one/)
    expect(server.requests[1]?.authMethod).toBe('multiple')
    expect(
      (await postToken(server, { ...credentials, client_id: 'post-only', client_secret: 'p' })).status,
    ).toBe(200)
  })

  it('never logs a secret, an assertion or a token', async () => {
    await start()
    const viaBasic = await postToken(server, credentials, { authorization: basic('svc-a', SECRET) })
    await postToken(server, { ...credentials, client_id: 'svc-a', client_secret: SECRET })
    const jwt = await jwtClient('svc-jwt', rsa, 'RS256')
    expect(jwt.status).toBe(200)
    const log = JSON.stringify(server.requests)
    expect(log).toContain('svc-a')
    expect(log).not.toContain(SECRET)
    expect(log).not.toContain(jwt.assertion.split('.')[1])
    expect(log).not.toContain(String(viaBasic.json.access_token))
    expect(log).not.toContain(basic('svc-a', SECRET).slice('Basic '.length))
    expect(server.requests[0]?.headers.authorization).toBe('Basic [redacted]')
    expect(JSON.stringify(server.stats())).not.toContain(SECRET)
  })
})

describe('private_key_jwt (RFC 7523 §2.2)', () => {
  it('accepts RS256 via JWKS, ES256 via KeyObject and PS256 via PEM', async () => {
    await start()
    expect((await jwtClient('svc-jwt', rsa, 'RS256')).status).toBe(200)
    expect((await jwtClient('svc-ec', ec, 'ES256')).status).toBe(200)
    expect((await jwtClient('svc-ps', ps, 'PS256')).status).toBe(200)
    expect(server.requests.map((r) => [r.clientId, r.authMethod])).toEqual([
      ['svc-jwt', 'private_key_jwt'],
      ['svc-ec', 'private_key_jwt'],
      ['svc-ps', 'private_key_jwt'],
    ])
  })

  it('refuses a bad signature, a wrong aud, and iss/sub other than the client', async () => {
    await start()
    const badSignature = await jwtClient('svc-jwt', stranger, 'RS256')
    expect(badSignature.status).toBe(401)
    expect(badSignature.json.error).toBe('invalid_client')
    const wrongAud = await jwtClient('svc-jwt', rsa, 'RS256', { aud: `${server.url}/elsewhere` })
    expect(wrongAud.status).toBe(401)
    expect(wrongAud.json.error_description).toMatch(/aud/)
    const wrongSub = await jwtClient('svc-jwt', rsa, 'RS256', { sub: 'svc-a' })
    expect(wrongSub.status).toBe(401)
    expect((await jwtClient('svc-jwt', rsa, 'RS256', { aud: ['x', server.tokenUrl] })).status).toBe(200)
  })

  it('checks exp and iat by the server clock, within the tolerance, and says it is about the clock', async () => {
    await start()
    const now = Math.floor(clock.now() / 1000)
    const expired = await jwtClient('svc-jwt', rsa, 'RS256', { iat: now - 120, exp: now - 60 })
    expect(expired.status).toBe(401)
    expect(expired.json.error_description).toMatch(/expired.*clock/)
    const future = await jwtClient('svc-jwt', rsa, 'RS256', { iat: now + 60, exp: now + 120 })
    expect(future.status).toBe(401)
    expect(future.json.error_description).toMatch(/iat is in the future.*clock/)
    const tooLong = await jwtClient('svc-jwt', rsa, 'RS256', { exp: now + 3600 })
    expect(tooLong.json.error_description).toMatch(/too far in the future/)
    const noExp = await jwtClient('svc-jwt', rsa, 'RS256', { exp: null })
    expect(noExp.json.error_description).toMatch(/no exp/)
    // Within the 5 s tolerance either way.
    expect((await jwtClient('svc-jwt', rsa, 'RS256', { iat: now + 4, exp: now + 60 })).status).toBe(200)
    expect((await jwtClient('svc-jwt', rsa, 'RS256', { iat: now - 60, exp: now - 4 })).status).toBe(200)
  })

  it('refuses a replayed or missing jti', async () => {
    await start()
    const first = await jwtClient('svc-jwt', rsa, 'RS256', { jti: 'once' })
    expect(first.status).toBe(200)
    const replay = await postToken(server, {
      ...credentials,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: first.assertion,
    })
    expect(replay.status).toBe(401)
    expect(replay.json.error_description).toMatch(/replay/)
    expect((await jwtClient('svc-jwt', rsa, 'RS256', { jti: null })).status).toBe(401)
  })

  it('refuses a wrong client_assertion_type and an assertion combined with a secret', async () => {
    await start()
    const assertion = await signAssertion(rsa, 'RS256', clock.now(), {
      iss: 'svc-jwt',
      sub: 'svc-jwt',
      aud: server.tokenUrl,
    })
    const wrongType = await postToken(server, {
      ...credentials,
      client_assertion_type: 'x',
      client_assertion: assertion,
    })
    expect(wrongType.status).toBe(401)
    const both = await postToken(server, {
      ...credentials,
      client_id: 'svc-jwt',
      client_secret: 'x',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: assertion,
    })
    expect(both.status).toBe(401)
  })

  it('uses the configured audience instead of the token URL', async () => {
    await start({ audience: 'https://issuer.example' })
    expect((await jwtClient('svc-jwt', rsa, 'RS256')).status).toBe(401)
    expect((await jwtClient('svc-jwt', rsa, 'RS256', { aud: 'https://issuer.example' })).status).toBe(200)
  })
})

describe('request validation (RFC 6749 §5.2)', () => {
  it('requires POST, a form body, and a supported grant_type', async () => {
    await start()
    const get = await fetch(server.tokenUrl)
    expect(get.status).toBe(405)
    const json = await fetch(server.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('svc-a', SECRET) },
      body: JSON.stringify(credentials),
    })
    expect(json.status).toBe(400)
    expect(await json.json()).toMatchObject({ error: 'invalid_request' })
    const auth = { authorization: basic('svc-a', SECRET) }
    expect((await postToken(server, { grant_type: 'password' }, auth)).json.error).toBe(
      'unsupported_grant_type',
    )
    expect((await postToken(server, {}, auth)).json.error).toBe('invalid_request')
    expect(server.stats()).toMatchObject({ tokenRequests: 4, tokensIssued: 0, failures: 4 })
  })
})

describe('scopes (RFC 6749 §3.3)', () => {
  const auth = { authorization: basic('svc-a', SECRET) }

  it('grants requested allowed scopes, all allowed when omitted, and refuses others', async () => {
    await start()
    expect((await postToken(server, { ...credentials, scope: 'read' }, auth)).json.scope).toBe('read')
    expect((await postToken(server, credentials, auth)).json.scope).toBe('read write')
    const invalid = await postToken(server, { ...credentials, scope: 'read admin' }, auth)
    expect(invalid.status).toBe(400)
    expect(invalid.json.error).toBe('invalid_scope')
    expect(server.requests[2]?.scopes).toEqual(['read', 'admin'])
    const any = await postToken(
      server,
      { ...credentials, scope: 'a b' },
      { authorization: basic('any-scope', 'x') },
    )
    expect(any.json.scope).toBe('a b')
    const none = await postToken(server, credentials, { authorization: basic('any-scope', 'x') })
    expect(none.json).not.toHaveProperty('scope')
  })

  it('grants a subset with grantAllowedSubset or a custom policy', async () => {
    await start({ grantScopes: grantAllowedSubset })
    expect((await postToken(server, { ...credentials, scope: 'read admin' }, auth)).json.scope).toBe('read')
    expect((await postToken(server, { ...credentials, scope: 'admin' }, auth)).json.error).toBe(
      'invalid_scope',
    )
    await server.close()
    await start({ grantScopes: (requested) => requested.slice(0, 1) })
    const first = await postToken(server, { ...credentials, scope: 'write read' }, auth)
    expect(first.json.scope).toBe('write')
    expect(server.introspect(String(first.json.access_token))?.scopes).toEqual(['write'])
  })

  it('omits scope from the response when configured', async () => {
    await start({
      includeScopeInResponse: false,
      tokenType: 'DPoP',
      refreshInMs: 1_800_000,
      tokenLifetimeMs: 7_200_400,
    })
    const call = await postToken(server, credentials, auth)
    expect(call.json).toEqual({
      access_token: expect.any(String),
      token_type: 'DPoP',
      expires_in: 7200,
      refresh_in: 1800,
    })
  })
})

describe('JWT-bearer grant (RFC 7523 §2.1)', () => {
  const issuer = 'robot@example.test'

  it('verifies the assertion and grants scopes from the parameter or the claim', async () => {
    await start({
      jwtBearerIssuers: [{ issuer, jwks: { keys: [ec.publicJwk] }, allowedScopes: ['cloud', 'storage'] }],
    })
    const grant = async (claims: AssertionClaims, params: Record<string, string> = {}) =>
      postToken(server, {
        grant_type: JWT_BEARER,
        assertion: await signAssertion(ec, 'ES256', clock.now(), {
          iss: issuer,
          sub: 'user-1',
          aud: server.tokenUrl,
          ...claims,
        }),
        ...params,
      })
    const fromClaim = await grant({ scope: 'cloud' })
    expect(fromClaim.status).toBe(200)
    expect(fromClaim.json.scope).toBe('cloud')
    expect(server.introspect(String(fromClaim.json.access_token))).toMatchObject({
      subject: 'user-1',
      clientId: undefined,
      grantType: JWT_BEARER,
    })
    expect((await grant({ scope: 'cloud' }, { scope: 'storage' })).json.scope).toBe('storage')
    expect((await grant({}, { scope: 'admin' })).json.error).toBe('invalid_scope')
    expect((await grant({ iss: 'someone-else' })).json.error).toBe('invalid_grant')
    expect((await grant({ aud: 'nope' })).json.error).toBe('invalid_grant')
    const now = Math.floor(clock.now() / 1000)
    const expired = await grant({ exp: now - 30 })
    expect(expired.json).toMatchObject({
      error: 'invalid_grant',
      error_description: expect.stringMatching(/clock/),
    })
    expect((await postToken(server, { grant_type: JWT_BEARER })).json.error).toBe('invalid_request')
  })
})

describe('configuration', () => {
  it('throws TypeError for mistakes', async () => {
    await start()
    await expect(startTokenServer({ clients: [{ clientId: 'a' }] })).rejects.toThrow(TypeError)
    await expect(
      startTokenServer({
        clients: [
          { clientId: 'a', clientSecret: 'x' },
          { clientId: 'a', clientSecret: 'y' },
        ],
      }),
    ).rejects.toThrow(/twice/)
    await expect(
      startTokenServer({ clients: [{ clientId: 'a', clientSecret: 'x', authMethods: ['private_key_jwt'] }] }),
    ).rejects.toThrow(TypeError)
    await expect(startTokenServer({ tokenLifetimeMs: -1 })).rejects.toThrow(TypeError)
    expect(() => server.inject({ kind: 'huge', bytes: -1 })).toThrow(TypeError)
    expect(() => server.inject({ kind: 'reset' }, { times: 0 })).toThrow(TypeError)
  })

  it('serves RFC 8414 metadata and 404 elsewhere', async () => {
    await start()
    const metadata = await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()
    expect(metadata).toMatchObject({ issuer: server.url, token_endpoint: server.tokenUrl })
    expect((await fetch(`${server.url}/nope`)).status).toBe(404)
    expect(server.tokenUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/token$/)
  })

  it('closes on leaving an await using block', async () => {
    await start()
    let url: string
    {
      await using scoped = await startTokenServer()
      url = scoped.url
      expect((await fetch(`${url}/nope`)).status).toBe(404)
    }
    await expect(fetch(`${url}/nope`)).rejects.toThrow(TypeError)
  })

  it('honours a per-client token lifetime', async () => {
    await start({
      clients: [{ clientId: 'short', clientSecret: 'x', tokenLifetimeMs: 5_000 }],
    })
    const call = await postToken(server, credentials, { authorization: basic('short', 'x') })
    expect(call.json.expires_in).toBe(5)
    const info = server.introspect(String(call.json.access_token))
    expect(info && info.expiresAt - info.issuedAt).toBe(5_000)
  })
})
