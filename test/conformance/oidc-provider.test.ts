/**
 * Conformance against panva's oidc-provider (v9), an OpenID Certified authorization server we
 * did not write, run in-process on 127.0.0.1. It checks that the token requests tokenkeeper
 * sends (client_secret_basic with form-encoded credentials, client_secret_post, private_key_jwt
 * with RS256 and ES256, scopes, RFC 8707 resource indicators, the JWT-bearer grant) are accepted
 * by a strict server, and that the server's refusals arrive as tokenkeeper's typed errors.
 */
import { generateKeyPairSync, randomUUID, type JsonWebKey, type KeyObject } from 'node:crypto'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type Server } from 'node:http'
import { createLocalJWKSet, decodeJwt, jwtVerify, SignJWT } from 'jose'
import type { errors as OidcErrorsValue, GrantContext, Provider } from 'oidc-provider'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  clientAssertionFile,
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  DiscoveryCache,
  isOAuthError,
  TokenManager,
  jwtBearer,
  OAuthError,
  privateKeyJwt,
  systemClock,
  type AccessToken,
  type Clock,
  type FetchLike,
  type TokenSource,
} from '../../src/index.js'
import { publicJwk } from '../../src/sources/signing.js'
import { providerSigningKeys } from '../support/oidc-provider-keys.js'
import { listenOnLoopback, loadOidcProvider } from '../support/oidc-provider.js'

const TTL_SECONDS = 600
const API = 'https://api.example.test/'
const REPORTS = 'https://reports.example.test/'
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const ROBOT = 'robot@project.example.test'
// Characters that RFC 6749 §2.3.1 makes the client form-encode inside the Basic header.
const BASIC_SECRET = 'basic secret:+/%&=?~'
const POST_SECRET = 'post-secret-0123456789abcdef'
const BEARER_SECRET = 'bearer-client-secret-0123456789'

type OidcErrors = typeof OidcErrorsValue

interface KeyPair {
  readonly privateKey: KeyObject
  readonly publicJwk: JsonWebKey
}

function keyPair(kind: 'rsa' | 'ec', kid: string, alg: string): KeyPair {
  const { privateKey, publicKey } =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { privateKey, publicJwk: { ...publicJwk(publicKey), kid, alg, use: 'sig' } }
}

const rsaClientKey = keyPair('rsa', 'client-rs256', 'RS256')
const ecClientKey = keyPair('ec', 'client-es256', 'ES256')
const strangerKey = keyPair('ec', 'client-es256', 'ES256') // same kid, never registered
const robotKey = keyPair('ec', 'robot-1', 'ES256')
const { providerSigningJwk, providerJwks } = providerSigningKeys()

let server: Server
let provider: Provider
let issuer: string
let tokenUrl: string
/** The last error oidc-provider raised at its token endpoint, with its non-public detail. */
let lastGrantError: { error?: unknown; error_detail?: unknown } | undefined

/** Records every form body tokenkeeper sends, so assertions about the wire can be made. */
const sentBodies: URLSearchParams[] = []
const recordingFetch: FetchLike = (input, init) => {
  sentBodies.push(new URLSearchParams(typeof init.body === 'string' ? init.body : ''))
  return fetch(input, init)
}

/** The system clock, off by `offsetMs`, as on a machine whose NTP is broken. */
function offsetClock(offsetMs: number): Clock {
  return {
    now: () => Date.now() + offsetMs,
    setTimer: (callback, delayMs) => systemClock.setTimer(callback, delayMs),
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the token request to fail')
}

async function expectOAuthError(source: TokenSource, error: string, status: number): Promise<OAuthError> {
  lastGrantError = undefined
  const thrown = await rejection(source.fetchToken())
  expect(thrown).toBeInstanceOf(OAuthError)
  expect(isOAuthError(thrown, error)).toBe(true)
  const oauth = thrown as OAuthError
  expect(oauth.code).toBe('OAUTH_ERROR')
  expect(oauth.error).toBe(error)
  expect(oauth.status).toBe(status)
  expect(oauth.response.status).toBe(status)
  expect(oauth.retryable).toBe(false)
  return oauth
}

function expectLifetime(token: AccessToken, before: number, after: number): void {
  expect(token.expiresAt - token.issuedAt).toBe(TTL_SECONDS * 1000)
  expect(token.lifetimeMs).toBe(TTL_SECONDS * 1000)
  expect(token.issuedAt).toBeGreaterThanOrEqual(before)
  expect(token.issuedAt).toBeLessThanOrEqual(after)
}

/** A JWT-bearer grant (RFC 7523 §2.1), which oidc-provider does not ship, registered as a custom grant. */
function registerJwtBearerGrant(target: Provider, errors: OidcErrors): void {
  target.registerGrantType(
    JWT_BEARER,
    async (ctx: GrantContext) => {
      const assertion = ctx.oidc.params['assertion']
      if (typeof assertion !== 'string') throw new errors.InvalidGrant('assertion missing')
      let claims
      try {
        ;({ payload: claims } = await jwtVerify(
          assertion,
          createLocalJWKSet({ keys: [robotKey.publicJwk] }),
          {
            issuer: ROBOT,
            audience: tokenUrl,
            algorithms: ['ES256'],
            requiredClaims: ['jti', 'iat', 'exp'],
          },
        ))
      } catch {
        throw new errors.InvalidGrant('assertion rejected')
      }
      const requested =
        typeof ctx.oidc.params['scope'] === 'string' ? ctx.oidc.params['scope'].split(' ') : []
      const token = new target.ClientCredentials({ client: ctx.oidc.client, scope: requested.join(' ') })
      const value = await token.save()
      ctx.body = {
        access_token: value,
        token_type: 'Bearer',
        expires_in: token.expiration,
        scope: token.scope,
        assertion_sub: claims.sub ?? null,
      }
    },
    ['assertion', 'scope'],
  )
}

beforeAll(async () => {
  const { default: ProviderClass, errors } = await loadOidcProvider()

  // The issuer must name the port, so listen first and attach the provider once it exists.
  server = createServer()
  const port = await listenOnLoopback(server)
  issuer = `http://127.0.0.1:${port}`
  tokenUrl = `${issuer}/token`

  const clientDefaults = {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api:read api:write',
  }
  provider = new ProviderClass(issuer, {
    clients: [
      {
        ...clientDefaults,
        client_id: 'basic-client',
        client_secret: BASIC_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        ...clientDefaults,
        client_id: 'post-client',
        client_secret: POST_SECRET,
        token_endpoint_auth_method: 'client_secret_post',
      },
      {
        ...clientDefaults,
        client_id: 'jwt-client',
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [rsaClientKey.publicJwk, ecClientKey.publicJwk] },
      },
      {
        ...clientDefaults,
        grant_types: [JWT_BEARER],
        client_id: 'bearer-client',
        client_secret: BEARER_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [providerSigningJwk] },
    scopes: ['openid', 'offline_access', 'api:read', 'api:write', 'api:admin'],
    ttl: { ClientCredentials: TTL_SECONDS },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Without a resource parameter, client-credentials tokens are for the API.
        defaultResource: () => API,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (resource === API) {
            return { scope: 'api:read api:write api:admin', audience: API, accessTokenFormat: 'jwt' }
          }
          if (resource === REPORTS) return { scope: 'api:read', audience: REPORTS, accessTokenFormat: 'jwt' }
          throw new errors.InvalidTarget()
        },
      },
    },
  })
  provider.on('grant.error', (_ctx, error) => {
    lastGrantError = error as typeof lastGrantError
  })
  registerJwtBearerGrant(provider, errors)
  server.on('request', provider.callback())
})

afterAll(async () => {
  vi.restoreAllMocks()
  if (server !== undefined) {
    server.closeAllConnections()
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())))
  }
})

describe('oidc-provider: client credentials', () => {
  it('client_secret_basic with a secret that needs form-encoding', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'basic-client',
      auth: clientSecretBasic(BASIC_SECRET),
      scopes: ['api:write', 'api:read'],
    })
    const before = systemClock.now()
    const token = await source.fetchToken()
    expect(token.value.length).toBeGreaterThan(0)
    expect(token.type).toBe('Bearer')
    expect(token.scopes).toEqual(['api:read', 'api:write'])
    expect(token.scopeReduced).toBe(false)
    expectLifetime(token, before, systemClock.now())
    // The token is an RFC 9068 JWT for the default resource, signed by the provider.
    const { payload } = await jwtVerify(token.value, createLocalJWKSet(providerJwks), {
      issuer,
      audience: API,
    })
    expect(payload['client_id']).toBe('basic-client')
    expect(payload['scope']).toBe('api:read api:write')
    expect(payload.exp! - payload.iat!).toBe(TTL_SECONDS)
  })

  it('client_secret_post', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'post-client',
      auth: clientSecretPost(POST_SECRET),
      scopes: ['api:read'],
    })
    const before = systemClock.now()
    const token = await source.fetchToken()
    expect(token.type).toBe('Bearer')
    expect(token.scopes).toEqual(['api:read'])
    expectLifetime(token, before, systemClock.now())
    expect(decodeJwt(token.value)['client_id']).toBe('post-client')
  })

  it('grants the scopes the provider reports, not the ones requested, for a narrower resource', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'post-client',
      auth: clientSecretPost(POST_SECRET),
      scopes: ['api:read', 'api:write'],
      resource: REPORTS,
    })
    const token = await source.fetchToken()
    expect(token.scopes).toEqual(['api:read'])
    expect(token.requestedScopes).toEqual(['api:read', 'api:write'])
    expect(token.scopeReduced).toBe(true)
    expect(token.hasScope('api:write')).toBe(false)
    expect(decodeJwt(token.value).aud).toBe(REPORTS)
  })

  it('requireRequestedScopes turns a narrowed grant into SCOPE_NOT_GRANTED', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'post-client',
      auth: clientSecretPost(POST_SECRET),
      scopes: ['api:read', 'api:write'],
      resource: REPORTS,
      requireRequestedScopes: true,
    })
    await expect(source.fetchToken()).rejects.toMatchObject({ code: 'SCOPE_NOT_GRANTED', retryable: false })
  })

  it('an unknown resource indicator is invalid_target', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'basic-client',
      auth: clientSecretBasic(BASIC_SECRET),
      resource: 'https://unknown.example.test/',
    })
    await expectOAuthError(source, 'invalid_target', 400)
  })

  it.each([
    ['RS256', rsaClientKey],
    ['ES256', ecClientKey],
  ] as const)(
    'private_key_jwt signed with %s, aud = the token endpoint URL (the default)',
    async (alg, pair) => {
      const source = clientCredentials({
        tokenUrl,
        clientId: 'jwt-client',
        auth: privateKeyJwt({ key: pair.privateKey, kid: String(pair.publicJwk.kid), alg }),
        scopes: ['api:read'],
        fetch: recordingFetch,
      })
      sentBodies.length = 0
      const before = systemClock.now()
      const token = await source.fetchToken()
      expect(token.type).toBe('Bearer')
      expect(token.scopes).toEqual(['api:read'])
      expectLifetime(token, before, systemClock.now())
      expect(decodeJwt(token.value)['client_id']).toBe('jwt-client')
      const assertion = decodeJwt(sentBodies[0]!.get('client_assertion')!)
      expect(assertion).toMatchObject({ iss: 'jwt-client', sub: 'jwt-client', aud: tokenUrl })
    },
  )

  it('private_key_jwt with aud = the issuer identifier is accepted too', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'jwt-client',
      auth: privateKeyJwt({ key: ecClientKey.privateKey, kid: 'client-es256', audience: issuer }),
      scopes: ['api:read'],
    })
    const token = await source.fetchToken()
    expect(token.type).toBe('Bearer')
  })

  it('private_key_jwt with an audience that is neither is invalid_client', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'jwt-client',
      auth: privateKeyJwt({ key: ecClientKey.privateKey, kid: 'client-es256', audience: API }),
    })
    await expectOAuthError(source, 'invalid_client', 401)
    expect(String(lastGrantError?.error_detail)).toMatch(/audience/)
  })

  it('signs a new assertion per request: three sequential requests all succeed', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'jwt-client',
      auth: privateKeyJwt({ key: rsaClientKey.privateKey, kid: 'client-rs256' }),
      scopes: ['api:read'],
      fetch: recordingFetch,
    })
    sentBodies.length = 0
    const tokens: AccessToken[] = []
    for (let i = 0; i < 3; i++) tokens.push(await source.fetchToken())
    expect(new Set(tokens.map((token) => token.value)).size).toBe(3)
    const jtis = sentBodies.map((body) => decodeJwt(body.get('client_assertion')!).jti)
    expect(new Set(jtis).size).toBe(3)

    // The provider does reject a replayed assertion: resending one tokenkeeper already used fails.
    const replay = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: sentBodies[0]!.toString(),
    })
    expect(replay.status).toBe(401)
    expect(await replay.json()).toMatchObject({ error: 'invalid_client' })
    expect(lastGrantError?.error_detail).toBe('client assertion tokens must only be used once')
  })
})

describe('oidc-provider: issuer discovery (OpenID Connect Discovery 1.0)', () => {
  it('finds token_endpoint in its metadata (RFC 8414 path first) and gets a token through it', async () => {
    const seen: string[] = []
    const discovery = new DiscoveryCache()
    const source = clientCredentials({
      issuer,
      clientId: 'basic-client',
      auth: clientSecretBasic(BASIC_SECRET),
      scopes: ['api:read'],
      discovery,
      fetch: (input, init) => {
        seen.push(`${init.method ?? 'GET'} ${new URL(input).pathname}`)
        return fetch(input, init)
      },
    })
    const token = await source.fetchToken()
    expect(seen).toEqual(['GET /.well-known/oauth-authorization-server', 'POST /token'])
    expect(discovery.peek(issuer)).toMatchObject({ issuer, tokenUrl })
    expect(discovery.peek(issuer)?.tokenEndpointAuthMethods).toContain('private_key_jwt')
    const { payload } = await jwtVerify(token.value, createLocalJWKSet(providerJwks), {
      issuer,
      audience: API,
    })
    expect(payload['client_id']).toBe('basic-client')
    // Shares the key, and so the token, of a source built with the token URL.
    const byUrl = clientCredentials({
      tokenUrl,
      clientId: 'basic-client',
      auth: clientSecretBasic(BASIC_SECRET),
      scopes: ['api:read'],
    })
    expect(source.key).toBe(byUrl.key)
    const tokens = new TokenManager()
    try {
      const first = await tokens.get(source)
      expect(await tokens.get(byUrl)).toBe(first)
      expect(tokens.stats().fetches).toBe(1)
    } finally {
      await tokens.close()
    }
  })

  it('reads its openid-configuration when the RFC 8414 path is not served (an OpenID-only deployment)', async () => {
    const seen: string[] = []
    const discovery = new DiscoveryCache()
    const source = clientCredentials({
      issuer,
      clientId: 'post-client',
      auth: clientSecretPost(POST_SECRET),
      discovery,
      fetch: (input, init) => {
        const path = new URL(input).pathname
        seen.push(`${init.method ?? 'GET'} ${path}`)
        // A reverse proxy in front of the provider that routes only the OpenID path.
        if (path.startsWith('/.well-known/oauth-authorization-server')) {
          return Promise.resolve(new Response('not found', { status: 404 }))
        }
        return fetch(input, init)
      },
    })
    await expect(source.fetchToken()).resolves.toMatchObject({ type: 'Bearer' })
    expect(seen).toEqual([
      'GET /.well-known/oauth-authorization-server',
      'GET /.well-known/openid-configuration',
      'POST /token',
    ])
    expect(discovery.peek(issuer)?.documentUrl).toBe(`${issuer}/.well-known/openid-configuration`)
    expect(discovery.peek(issuer)).toMatchObject({ issuer, tokenUrl, authMethodsListed: true })
  })

  it('private_key_jwt with an assertion whose aud is the discovered token endpoint', async () => {
    const source = clientCredentials({
      issuer,
      clientId: 'jwt-client',
      auth: privateKeyJwt({ key: ecClientKey.privateKey, kid: 'client-es256', alg: 'ES256' }),
      discovery: new DiscoveryCache(),
      fetch: recordingFetch,
    })
    sentBodies.length = 0
    await expect(source.fetchToken()).resolves.toMatchObject({ type: 'Bearer' })
    const assertion = sentBodies.at(-1)?.get('client_assertion')
    expect(decodeJwt(assertion ?? '').aud).toBe(tokenUrl)
  })

  it('the issuer with a trailing slash is not the provider’s issuer (RFC 8414 §3.3)', async () => {
    const source = clientCredentials({
      issuer: `${issuer}/`,
      clientId: 'basic-client',
      auth: clientSecretBasic(BASIC_SECRET),
      discovery: new DiscoveryCache(),
    })
    await expect(source.fetchToken()).rejects.toMatchObject({
      code: 'DISCOVERY_ISSUER_MISMATCH',
      retryable: false,
    })
  })
})

describe('oidc-provider: refusals become typed errors', () => {
  it('a wrong client_secret_basic secret is invalid_client, not retryable', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'basic-client',
      auth: clientSecretBasic('not-the-secret'),
      scopes: ['api:read'],
    })
    const error = await expectOAuthError(source, 'invalid_client', 401)
    expect(error.message).toContain(`POST 127.0.0.1:${new URL(issuer).port}/token`)
    expect(error.message).not.toContain('not-the-secret')
    expect(error.response.headers['www-authenticate']).toMatch(/^Basic /)
  })

  it('a wrong client_secret_post secret is invalid_client', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'post-client',
      auth: clientSecretPost('not-the-secret'),
    })
    await expectOAuthError(source, 'invalid_client', 401)
  })

  it('an unknown client is invalid_client', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'nobody',
      auth: clientSecretBasic('whatever-secret'),
    })
    await expectOAuthError(source, 'invalid_client', 401)
  })

  it('a scope the client may not have is invalid_scope', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'basic-client',
      auth: clientSecretBasic(BASIC_SECRET),
      scopes: ['api:read', 'api:admin'],
    })
    const error = await expectOAuthError(source, 'invalid_scope', 400)
    expect(error.error_description).toBe('requested scope is not allowed')
  })

  it('an assertion signed with an unregistered key is invalid_client', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'jwt-client',
      auth: privateKeyJwt({ key: strangerKey.privateKey, kid: 'client-es256' }),
    })
    const error = await expectOAuthError(source, 'invalid_client', 401)
    expect(String(lastGrantError?.error_detail)).toMatch(/signature/)
    expect(error.clockSkewSuspected).toBe(false)
  })

  it('an assertion from a clock far behind is invalid_client', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'jwt-client',
      auth: privateKeyJwt({ key: ecClientKey.privateKey, kid: 'client-es256' }),
      clock: offsetClock(-10 * 60_000),
    })
    const error = await expectOAuthError(source, 'invalid_client', 401)
    expect(String(lastGrantError?.error_detail)).toMatch(/exp/)
    // oidc-provider answers only "client authentication failed" and hides the reason; the
    // response's Date header still shows the skew, and tokenkeeper says so.
    expect(error.error_description).toBe('client authentication failed')
    expect(error.clockSkewSuspected).toBe(true)
    expect(error.message).toMatch(/clock is about (59\d|60\d) s behind/)
  })

  it('a grant type the client is not registered for is refused (oidc-provider says invalid_request)', async () => {
    const source = clientCredentials({
      tokenUrl,
      clientId: 'bearer-client',
      auth: clientSecretBasic(BEARER_SECRET),
    })
    await expectOAuthError(source, 'invalid_request', 400)
  })
})

describe('oidc-provider: JWT-bearer grant (RFC 7523 §2.1, registered as a custom grant)', () => {
  it('exchanges a fresh assertion for a token, with client_secret_basic', async () => {
    const source = jwtBearer({
      tokenUrl,
      issuer: ROBOT,
      subject: 'job-42',
      key: robotKey.privateKey,
      kid: 'robot-1',
      scopes: ['api:read'],
      clientId: 'bearer-client',
      auth: clientSecretBasic(BEARER_SECRET),
    })
    const before = systemClock.now()
    const token = await source.fetchToken()
    expect(token.type).toBe('Bearer')
    expect(token.scopes).toEqual(['api:read'])
    expectLifetime(token, before, systemClock.now())
    expect(token.extra['assertion_sub']).toBe('job-42')
  })

  it('an assertion signed by another key is invalid_grant', async () => {
    const source = jwtBearer({
      tokenUrl,
      issuer: ROBOT,
      key: strangerKey.privateKey,
      clientId: 'bearer-client',
      auth: clientSecretBasic(BEARER_SECRET),
    })
    await expectOAuthError(source, 'invalid_grant', 400)
  })

  it('an assertion someone else issues, read from a file the test rotates; the provider verifies each', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-oidc-jwt-bearer-'))
    const path = join(dir, 'grant')
    const issue = (subject: string): Promise<string> => {
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid: 'robot-1' })
        .setIssuer(ROBOT)
        .setSubject(subject)
        .setAudience(tokenUrl)
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(robotKey.privateKey)
    }
    try {
      const source = jwtBearer({
        tokenUrl,
        assertion: { file: path },
        scopes: ['api:read'],
        clientId: 'bearer-client',
        auth: clientSecretBasic(BEARER_SECRET),
      })
      writeFileSync(path, await issue('job-1'))
      expect((await source.fetchToken()).extra['assertion_sub']).toBe('job-1')
      writeFileSync(`${path}.next`, await issue('job-2'))
      renameSync(`${path}.next`, path)
      expect((await source.fetchToken()).extra['assertion_sub']).toBe('job-2')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('client assertions from a file the platform writes (workload identity)', () => {
  /** What a platform does: sign a short-lived assertion for the client and (re)write the file atomically. */
  async function writeAssertion(path: string, lifetimeS: number, issuedAgoS = 0): Promise<string> {
    const now = Math.floor(Date.now() / 1000) - issuedAgoS
    const jwt = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS256', kid: 'client-rs256' })
      .setIssuer('jwt-client')
      .setSubject('jwt-client')
      .setAudience(tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + lifetimeS)
      .sign(rsaClientKey.privateKey)
    writeFileSync(`${path}.tmp`, `${jwt}\n`)
    renameSync(`${path}.tmp`, path)
    return jwt
  }

  it('oidc-provider verifies each assertion; a rotated file is used at once; an expired one is never sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenkeeper-assertion-'))
    try {
      const file = join(dir, 'token')
      const sent: string[] = []
      const recording: FetchLike = (url, init) => {
        sent.push(new URLSearchParams(init.body as string).get('client_assertion') ?? '')
        return fetch(url, init)
      }
      const source = clientCredentials({
        tokenUrl,
        clientId: 'jwt-client',
        auth: clientAssertionFile(file),
        scopes: ['api:read'],
        fetch: recording,
      })
      const first = await writeAssertion(file, 600)
      const token = await source.fetchToken()
      expect(decodeJwt(token.value)).toMatchObject({ client_id: 'jwt-client' })
      expect(sent).toEqual([first])
      // The platform rotates the file; the next request sends the new assertion (oidc-provider
      // refuses a replayed jti, so reusing the old one would fail).
      const second = await writeAssertion(file, 600)
      await source.fetchToken()
      expect(sent).toEqual([first, second])
      // An expired assertion left in place is refused before any request.
      await writeAssertion(file, 60, 120)
      const expired = await source.fetchToken().catch((error: unknown) => error)
      expect(expired).toMatchObject({ code: 'ASSERTION_EXPIRED', retryable: true })
      expect((expired as Error).message).toContain(file)
      expect(sent).toHaveLength(2)
      // A file the platform has not written yet, and an empty one.
      rmSync(file)
      await expect(source.fetchToken()).rejects.toMatchObject({ code: 'ASSERTION_UNAVAILABLE' })
      writeFileSync(file, '\n')
      await expect(source.fetchToken()).rejects.toMatchObject({ code: 'ASSERTION_UNAVAILABLE' })
      expect(sent).toHaveLength(2)
      for (const assertion of [first, second]) {
        expect(JSON.stringify(source)).not.toContain(assertion)
        expect(source.key).not.toContain(assertion.slice(0, 20))
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
