import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { format, inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TokenkeeperError } from '../../src/index.js'
import {
  AccessToken,
  clientAssertion,
  clientAssertionFile,
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  dpopKey,
  DiscoveryCache,
  googleServiceAccount,
  isOAuthError,
  jwtBearer,
  memoryStore,
  privateKeyJwt,
  selfSignedTlsClientAuth,
  serializeToken,
  tlsClientAuth,
  TOKEN_TYPES,
  TokenManager,
  tokenExchange,
  tokenId,
  tokenSource,
  type ClientAuth,
  type TokenSourceContext,
  type TokenSource,
  type TokenStore,
} from '../../src/index.js'
import { closedPort, formFields, startLocalServer, type LocalServer } from '../wire/local-server.js'
import { ecKeyPair, findLeaks, rsaKeyPair } from './keys.js'

const SECRET = 'SECRET-must-not-leak-123'
const TOKEN = 'TOKEN-must-not-leak-456'
const ID_TOKEN = 'IDTOKEN-must-not-leak-000'
const rsa = rsaKeyPair('a')
const ec = ecKeyPair('a')
const dpopEc = ecKeyPair('dpop')
const dpopPair = { privateKey: dpopEc.privateKey, publicKey: dpopEc.publicKey }
const KEY_MATERIAL = [...rsa.privateParts, ...ec.privateParts, ...dpopEc.privateParts]
/** A JWT-shaped assertion issued by someone else (a platform), valid until 2100. */
const ASSERTION = [
  Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url'),
  Buffer.from(JSON.stringify({ sub: 'ASSERTION-must-not-leak-789', exp: 4_102_444_800 })).toString(
    'base64url',
  ),
  'c2lnbmF0dXJlLW11c3Qtbm90LWxlYWs',
].join('.')
/** A user's token to exchange (JWT-shaped, valid until 2100), and an actor token. */
const SUBJECT = [
  Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url'),
  Buffer.from(JSON.stringify({ sub: 'SUBJECT-must-not-leak-321', exp: 4_102_444_800 })).toString('base64url'),
  'c3ViamVjdC1zaWduYXR1cmU',
].join('.')
const ACTOR = 'ACTOR-must-not-leak-654'
const ASSERTION_FILE = join(mkdtempSync(join(tmpdir(), 'tk-secrets-')), 'token')
writeFileSync(ASSERTION_FILE, `${ASSERTION}\n`)

/** Every way a value is commonly printed. */
function renderings(value: unknown): string[] {
  return [
    inspect(value),
    inspect(value, { showHidden: true, depth: Infinity }),
    inspect({ nested: { deeper: value } }, { depth: Infinity }),
    format('%o', value),
    format('%O', value),
    format('%j', value),
    format('%s', value),
    String(value),
    JSON.stringify(value) ?? '',
    JSON.stringify({ value }),
  ]
}

/**
 * No rendering shows a forbidden string. A spread copy (`{ ...value }`, as some loggers merge
 * metadata) is checked too, except for `spreadMayShow`: an AccessToken's `extra` is a public,
 * enumerable field, so a copy of it shows the `id_token` (never the token value).
 */
function expectNoLeak(
  value: unknown,
  forbidden: readonly string[],
  spreadMayShow: readonly string[] = [],
): void {
  expect(findLeaks(renderings(value), forbidden)).toEqual([])
  const spread = JSON.stringify({ ...(value as object) })
  expect(
    findLeaks(
      [spread],
      forbidden.filter((item) => !spreadMayShow.includes(item)),
    ),
  ).toEqual([])
}

let server: LocalServer
let tokenUrl: string
let echoUrl: string
const assertions: string[] = []

beforeAll(async () => {
  server = await startLocalServer()
  tokenUrl = `${server.origin}/token`
  echoUrl = `${server.origin}/echo`
  server.route('/token', (_req, res, body) => {
    const fields = Object.fromEntries(new URLSearchParams(body))
    for (const name of ['client_assertion', 'assertion'])
      if (fields[name] !== undefined) assertions.push(fields[name])
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ access_token: TOKEN, expires_in: 3600, id_token: ID_TOKEN }))
  })
  // Discovery documents (RFC 8414 §3.1 path insertion) for the issuers of issuerFor().
  for (const path of ['/token', '/echo']) {
    server.route(`/.well-known/oauth-authorization-server/issuer-for${path}`, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          issuer: `${server.origin}/issuer-for${path}`,
          token_endpoint: `${server.origin}${path}`,
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
        }),
      )
    })
  }
  // A careless server that echoes the whole request, credentials included, in its error.
  server.route('/echo', (req, res, body) => {
    res.writeHead(401, { 'content-type': 'application/json' })
    res.end(
      JSON.stringify({
        error: 'invalid_client',
        error_description: `rejected ${body} with authorization ${req.headers['authorization'] ?? 'none'}`,
      }),
    )
  })
})

afterAll(async () => {
  await server.close()
})

function auths(): Record<string, ClientAuth> {
  return {
    basic: clientSecretBasic(SECRET),
    post: clientSecretPost(SECRET),
    jwtRsaPem: privateKeyJwt({ key: rsa.pem, kid: 'k1' }),
    jwtRsaJwk: privateKeyJwt({ key: rsa.jwk, alg: 'PS256' }),
    jwtRsaKeyObject: privateKeyJwt({ key: rsa.privateKey }),
    jwtEcJwk: privateKeyJwt({ key: ec.jwk }),
    jwtEcPem: privateKeyJwt({ key: ec.traditionalPem }),
    assertionProvider: clientAssertion(() => Promise.resolve(ASSERTION), { id: 'platform' }),
    assertionFile: clientAssertionFile(ASSERTION_FILE),
  }
}

/** The issuer whose discovery document names `url` as its token endpoint (routed in beforeAll). */
function issuerFor(url: string): string {
  const { origin, pathname } = new URL(url)
  return `${origin}/issuer-for${pathname}`
}

function sources(url: string): Record<string, TokenSource> {
  const result: Record<string, TokenSource> = {}
  for (const [name, auth] of Object.entries(auths())) {
    result[`clientCredentials ${name}`] = clientCredentials({ tokenUrl: url, clientId: 'svc', auth })
  }
  const discovery = new DiscoveryCache()
  for (const [name, auth] of [
    ['basic', clientSecretBasic(SECRET)],
    ['jwtEcJwk', privateKeyJwt({ key: ec.jwk })],
  ] as const) {
    result[`clientCredentials by issuer ${name}`] = clientCredentials({
      issuer: issuerFor(url),
      clientId: 'svc',
      auth,
      discovery,
    })
  }
  result['jwtBearer rsa'] = jwtBearer({ tokenUrl: url, issuer: 'robot', key: rsa.pem, scopes: ['a'] })
  result['jwtBearer ec + basic'] = jwtBearer({
    tokenUrl: url,
    issuer: 'robot',
    key: ec.jwk,
    clientId: 'svc',
    auth: clientSecretBasic(SECRET),
    scopeIn: 'assertion',
    scopes: ['a'],
  })
  result['jwtBearer assertion provider'] = jwtBearer({
    tokenUrl: url,
    assertion: () => ASSERTION,
    assertionId: 'platform',
  })
  result['jwtBearer assertion file + post'] = jwtBearer({
    tokenUrl: url,
    assertion: { file: ASSERTION_FILE },
    clientId: 'svc',
    auth: clientSecretPost(SECRET),
  })
  result['googleServiceAccount'] = googleServiceAccount({
    credentials: {
      type: 'service_account',
      client_email: 'robot@project.iam.gserviceaccount.com',
      private_key: rsa.pem,
      private_key_id: 'key-1',
      token_uri: url,
    },
    scopes: ['https://www.googleapis.com/auth/cloud-platform'],
  })
  result['clientCredentials basic + dpop'] = clientCredentials({
    tokenUrl: url,
    clientId: 'svc',
    auth: clientSecretBasic(SECRET),
    dpop: dpopPair,
  })
  result['jwtBearer rsa + dpop'] = jwtBearer({ tokenUrl: url, issuer: 'robot', key: rsa.pem, dpop: dpopPair })
  result['tokenSource'] = tokenSource('vault', () => ({ access_token: TOKEN, id_token: ID_TOKEN }))
  return result
}

describe('secrets never show', () => {
  it.each(Object.entries(auths()))('ClientAuth %s', (_name, auth) => {
    expectNoLeak(auth, [SECRET, ASSERTION, ...KEY_MATERIAL])
    expect(JSON.parse(JSON.stringify(auth))).toMatchObject({
      method: auth.method,
      fingerprint: auth.fingerprint,
    })
  })

  it('the fingerprint of a secret is not the secret, nor a plain hash of it', () => {
    const { fingerprint } = clientSecretBasic(SECRET)
    expect(fingerprint).not.toContain(SECRET)
    expect(fingerprint).toMatch(/^[A-Za-z0-9_-]{8,}$/)
    expect(clientSecretBasic(SECRET).fingerprint).toBe(fingerprint)
    expect(clientSecretBasic(`${SECRET}!`).fingerprint).not.toBe(fingerprint)
  })

  it.each(Object.entries(sources('https://idp.example/oauth/token')))('source %s', (_name, source) => {
    expectNoLeak(source, [SECRET, TOKEN, ASSERTION, ...KEY_MATERIAL])
    expect(inspect(source)).toContain(source.key)
    expect(source.key).not.toContain(ASSERTION.split('.')[1])
  })

  it('tokens fetched by every source, and the assertions they sent', async () => {
    assertions.length = 0
    for (const source of Object.values(sources(tokenUrl))) {
      const token = await source.fetchToken()
      expect(token.value).toBe(TOKEN)
      expectNoLeak(token, [TOKEN, ID_TOKEN, SECRET, ...KEY_MATERIAL], [ID_TOKEN])
      // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- a token in a template is exactly what is tested
      expect(`${token}`).not.toContain(TOKEN)
      expect(token.toString()).toMatch(/^\[AccessToken Bearer expiresAt=\d{4}-/)
      // Only the names of extra fields are shown.
      expect(JSON.parse(JSON.stringify(token))).toMatchObject({ value: '[redacted]', extra: ['id_token'] })
      expectNoLeak(source, assertions)
    }
    // 6 private_key_jwt sources (1 by issuer), 2 client assertions from elsewhere, 5 jwtBearer
    // sources (1 with dpop), 1 Google
    expect(assertions).toHaveLength(14)
    expect(assertions.filter((sent) => sent === ASSERTION)).toHaveLength(4)
  })

  it('a DPoP key shows its algorithm and thumbprint only', () => {
    const key = dpopKey(dpopPair)
    expectNoLeak(key, KEY_MATERIAL)
    expect(JSON.parse(JSON.stringify(key))).toEqual({ alg: 'ES256', jkt: key.thumbprint })
    expect(Object.keys(key.publicJwk).sort()).toEqual(['crv', 'kty', 'x', 'y'])
  })

  it('DPoP proofs reach no event, stats, inspect or JSON of the manager, source or token', async () => {
    const proofs: string[] = []
    server.route('/token-dpop', (req, res) => {
      proofs.push(String(req.headers['dpop']))
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ access_token: TOKEN, token_type: 'DPoP', expires_in: 3600 }))
    })
    const source = clientCredentials({
      tokenUrl: `${server.origin}/token-dpop`,
      clientId: 'svc',
      auth: clientSecretBasic(SECRET),
      dpop: dpopPair,
    })
    const tokens = new TokenManager()
    const events: unknown[] = []
    for (const name of ['refreshStart', 'refreshSuccess', 'miss', 'hit'] as const) {
      tokens.on(name, (event: unknown) => events.push(event))
    }
    const token = await tokens.get(source)
    const headers = await tokens.headers(source, { method: 'GET', url: 'https://api.example/x' })
    const forbidden = [TOKEN, SECRET, ...KEY_MATERIAL, ...proofs, headers['dpop']!]
    expect(proofs).toHaveLength(1)
    for (const value of [token, source, tokens, tokens.stats(), events]) expectNoLeak(value, forbidden)
    await tokens.close()
  })

  it('an AccessToken built by hand', () => {
    const token = new AccessToken({
      value: TOKEN,
      type: 'Bearer',
      scopes: ['a'],
      issuedAt: 0,
      expiresAt: 1000,
      refreshAt: 500,
      extra: { id_token: ID_TOKEN },
    })
    expectNoLeak(token, [TOKEN, ID_TOKEN], [ID_TOKEN])
    expect(Object.keys(token)).not.toContain('value')
    expect(token.authorization).toBe(`Bearer ${TOKEN}`)
  })
})

describe('store errors never carry a token', () => {
  it('a third-party store whose every method fails quoting what it was given or holds', async () => {
    const inner = memoryStore()
    // Each failure quotes the record as JSON and its payload as it is.
    const quoting = (what: string, value: unknown): Error =>
      new Error(
        `${what} failed for ${JSON.stringify(value)}: ${String((value as { payload?: unknown } | undefined)?.payload)}`,
      )
    const store: TokenStore = {
      get: async (key) => {
        throw quoting('get', await inner.get(key))
      },
      set: (key, record) => Promise.reject(quoting(`set ${key}`, record)),
      delete: (key, options) => Promise.reject(quoting('delete', options)),
      clear: () => Promise.reject(new Error('clear failed')),
      acquireLock: async (key, options) => {
        const lock = await inner.acquireLock!(key, options)
        return lock && { release: () => Promise.reject(new Error('release failed')) }
      },
    }
    const key = 'fn|store-secrets'
    const tokenValue = `${TOKEN}-store`
    const now = Date.now()
    const stored = new AccessToken({
      value: `${TOKEN}-stored`,
      type: 'Bearer',
      scopes: [],
      issuedAt: now,
      expiresAt: now + 3_600_000,
      extra: { id_token: ID_TOKEN },
    })
    await inner.set(
      key,
      { tokenId: tokenId(stored), expiresAt: stored.expiresAt, payload: serializeToken(stored) },
      { ttlMs: 3_600_000 },
    )
    const tokens = new TokenManager({ store })
    const events: unknown[] = []
    tokens.on('storeError', (event) => events.push(event))
    const source = tokenSource('store-secrets', () => ({ access_token: tokenValue, expires_in: 3600 }))
    const token = await tokens.get(source)
    await tokens.invalidate(source, { token })
    await tokens.clear()
    expect(events.length).toBeGreaterThanOrEqual(4)
    const forbidden = [tokenValue, `${TOKEN}-stored`, ID_TOKEN]
    for (const value of [events, tokens.stats()]) expectNoLeak(value, forbidden)
    await tokens.close()
  })
})

describe('errors never carry credentials', () => {
  it.each(Object.entries(sources('https://idp.example/names')).filter(([name]) => name !== 'tokenSource'))(
    'a server echoing the request to %s',
    async (name) => {
      const source = sources(echoUrl)[name]!
      const before = server.hits('/echo').length
      let caught: unknown
      try {
        await source.fetchToken()
      } catch (error) {
        caught = error
      }
      expect(isOAuthError(caught, 'invalid_client')).toBe(true)
      const [request] = server.hits('/echo').slice(before)
      const sent = formFields(request!)
        .filter(([field]) => ['client_secret', 'client_assertion', 'assertion'].includes(field))
        .map(([, value]) => value)
      const authorization = request!.headers['authorization']
      const credentials = authorization === undefined ? [] : [authorization.replace(/^Basic /, '')]
      const forbidden = [SECRET, ASSERTION, ...sent, ...credentials, ...KEY_MATERIAL]
      expect(sent.length + credentials.length).toBeGreaterThan(0)
      expectNoLeak(caught, forbidden)
      expect((caught as TokenkeeperError).message).toContain('[redacted]')
    },
  )

  it('a server echoing a large assertion (a 40 KB JWT, as from a platform with many claims) and its base64', async () => {
    const claims = Buffer.from(JSON.stringify({ exp: 4_000_000_000, groups: 'g'.repeat(30_000) })).toString(
      'base64url',
    )
    const large = `eyJhbGciOiJSUzI1NiJ9.${claims}.c2lnbmF0dXJl`
    const source = clientCredentials({
      tokenUrl: echoUrl,
      clientId: 'svc',
      auth: clientAssertion(() => large, { id: 'large' }),
    })
    const caught = await source.fetchToken().catch((error: unknown) => error)
    // Not a SyntaxError from building the scrubber (whose message quoted the assertion's base64).
    expect(isOAuthError(caught, 'invalid_client')).toBe(true)
    expect((caught as TokenkeeperError).message).toContain('[redacted]')
    expectNoLeak(caught, [large, claims, Buffer.from(large).toString('base64').slice(0, 64)])
  })

  it('a transport error with the secret in the request body', async () => {
    const port = await closedPort()
    const source = clientCredentials({
      tokenUrl: `http://127.0.0.1:${port}/token`,
      clientId: 'svc',
      auth: clientSecretPost(SECRET),
    })
    let caught: unknown
    try {
      await source.fetchToken()
    } catch (error) {
      caught = error
    }
    expect(caught).toMatchObject({ code: 'CONNECTION_REFUSED' })
    expectNoLeak(caught, [SECRET])
  })

  it('a transport error of an injected fetch that carries the request (as HTTP client adapters do)', async () => {
    for (const auth of [clientSecretBasic(SECRET), clientSecretPost(SECRET)]) {
      let sent: { headers: Record<string, string>; body: string } | undefined
      const source = clientCredentials({
        tokenUrl: 'https://idp.example/token',
        clientId: 'svc',
        auth,
        fetch: (_url, init) => {
          const body = init.body as string
          sent = { headers: { ...(init.headers as Record<string, string>) }, body }
          const error = Object.assign(new Error(`connect ECONNREFUSED while sending ${body}`), {
            code: 'ECONNREFUSED',
            config: { headers: init.headers, data: init.body },
          })
          return Promise.reject(error)
        },
      })
      const caught = await source.fetchToken().catch((error: unknown) => error)
      expect(caught).toMatchObject({ code: 'CONNECTION_REFUSED' })
      expect((caught as Error).cause).toMatchObject({ code: 'ECONNREFUSED' })
      const authorization = sent?.headers['authorization']
      const forbidden = [
        SECRET,
        ...(authorization === undefined ? [] : [authorization.replace(/^Basic /, '')]),
      ]
      expectNoLeak(caught, forbidden)
    }
  })

  it('a server echoing the DPoP proof in its refusal and WWW-Authenticate', async () => {
    const proofs: string[] = []
    server.route('/echo-dpop', (req, res) => {
      const proof = String(req.headers['dpop'])
      proofs.push(proof)
      res.writeHead(400, {
        'content-type': 'application/json',
        'www-authenticate': `DPoP error="invalid_dpop_proof", got="${proof}"`,
      })
      res.end(JSON.stringify({ error: 'invalid_dpop_proof', error_description: `bad proof ${proof}` }))
    })
    const source = clientCredentials({
      tokenUrl: `${server.origin}/echo-dpop`,
      clientId: 'svc',
      auth: clientSecretBasic(SECRET),
      dpop: dpopPair,
    })
    const caught = await source.fetchToken().catch((error: unknown) => error)
    expect(isOAuthError(caught, 'invalid_dpop_proof')).toBe(true)
    expect(proofs).toHaveLength(1)
    expectNoLeak(caught, [SECRET, ...proofs, ...KEY_MATERIAL])
    const kept = (caught as { response: { headers: Record<string, string> } }).response.headers
    expect(kept['www-authenticate']).toContain('[redacted]')
    expect((caught as TokenkeeperError).message).toContain('[redacted]')
  })

  it('a DPoP construction error names no key material', () => {
    const caught = (() => {
      try {
        clientCredentials({
          tokenUrl,
          clientId: 'svc',
          auth: clientSecretBasic(SECRET),
          dpop: { privateKey: dpopEc.privateKey, publicKey: ec.publicKey },
        })
      } catch (error) {
        return error
      }
      throw new Error('expected a TypeError')
    })()
    expect(caught).toBeInstanceOf(TypeError)
    expectNoLeak(caught, [SECRET, ...KEY_MATERIAL])
  })

  it('mutual TLS: the client key reaches no inspect, JSON, error or cause', async () => {
    // A certificate for the test's EC key, made with openssl.
    const dir = mkdtempSync(join(tmpdir(), 'tk-secrets-mtls-'))
    writeFileSync(join(dir, 'client.key'), dpopEc.pem)
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-key', 'client.key', '-subj', '/CN=svc', '-days', '1', '-out', 'client.crt'],
      { cwd: dir, encoding: 'utf8' },
    )
    expect(made.status).toBe(0)
    const cert = readFileSync(join(dir, 'client.crt'), 'utf8')
    const port = await closedPort()
    for (const auth of [
      tlsClientAuth({ cert, key: dpopEc.pem }),
      selfSignedTlsClientAuth({
        cert: { file: join(dir, 'client.crt') },
        key: { file: join(dir, 'client.key') },
      }),
    ]) {
      expectNoLeak(auth, KEY_MATERIAL)
      const source = clientCredentials({ tokenUrl: `https://127.0.0.1:${port}/token`, clientId: 'svc', auth })
      expectNoLeak(source, KEY_MATERIAL)
      const caught = await source.fetchToken().catch((error: unknown) => error)
      expect(caught).toMatchObject({ code: 'CONNECTION_REFUSED' })
      expectNoLeak(caught, KEY_MATERIAL)
      const tokens = new TokenManager()
      const fetched = await tokens
        .fetch(source)(`https://127.0.0.1:${port}/api`)
        .catch((error: unknown) => error)
      expectNoLeak(fetched, KEY_MATERIAL)
      expectNoLeak(tokens.stats(), KEY_MATERIAL)
      await tokens.close()
    }
    const broken = (() => {
      try {
        tlsClientAuth({ cert, key: ec.pem })
      } catch (error) {
        return error
      }
      throw new Error('expected a TypeError')
    })()
    expect(broken).toBeInstanceOf(TypeError)
    expectNoLeak(broken, KEY_MATERIAL)
  })

  it('discovery failures of issuer sources (no document, wrong issuer, unreachable, unsupported method)', async () => {
    const port = await closedPort()
    const issuers = [
      `${server.origin}/issuer-nowhere`, // 404 at both well-known paths
      `${server.origin}/issuer-for/token/`, // the document names it without the slash
      `http://127.0.0.1:${port}`,
    ]
    const failures: unknown[] = []
    for (const issuer of issuers) {
      for (const auth of [
        clientSecretBasic(SECRET),
        clientSecretPost(SECRET),
        privateKeyJwt({ key: rsa.pem }),
      ]) {
        const source = clientCredentials({ issuer, clientId: 'svc', auth, discovery: new DiscoveryCache() })
        failures.push(await source.fetchToken().catch((error: unknown) => error))
      }
    }
    const unsupported = clientCredentials({
      issuer: issuerFor(tokenUrl),
      clientId: 'svc',
      auth: clientSecretPost(SECRET),
      discovery: new DiscoveryCache(),
    })
    failures.push(await unsupported.fetchToken().catch((error: unknown) => error))
    expect(failures.map((error) => (error as TokenkeeperError).code)).toEqual([
      ...Array<string>(3).fill('DISCOVERY_NOT_FOUND'),
      ...Array<string>(3).fill('DISCOVERY_ISSUER_MISMATCH'),
      ...Array<string>(3).fill('CONNECTION_REFUSED'),
      'AUTH_METHOD_NOT_SUPPORTED',
    ])
    for (const error of failures) expectNoLeak(error, [SECRET, ...KEY_MATERIAL])
  })

  it('a discovery document that echoes the client secret (as issuer, method, token_endpoint host), raw and encoded', async () => {
    const issuer = 'https://idp.example'
    const encodings = [
      SECRET,
      encodeURIComponent(SECRET),
      Buffer.from(SECRET).toString('base64'),
      Buffer.from(SECRET).toString('base64url'),
    ]
    const documents = encodings.flatMap((echoed) => [
      { issuer: echoed, token_endpoint: `${issuer}/token` },
      { issuer, token_endpoint: `${issuer}/token`, token_endpoint_auth_methods_supported: [echoed] },
      { issuer, token_endpoint: `http://${echoed}.example/token` },
    ])
    for (const document of documents) {
      for (const auth of [clientSecretBasic(SECRET), clientSecretPost(SECRET)]) {
        const source = clientCredentials({
          issuer,
          clientId: 'svc',
          auth,
          discovery: new DiscoveryCache(),
          fetch: () => Promise.resolve(Response.json(document)),
        })
        const tokens = new TokenManager()
        const messages: string[] = []
        tokens.on('refreshFailure', (event) => messages.push(event.message))
        const caught = await tokens.get(source).catch((error: unknown) => error)
        expect((caught as TokenkeeperError).code).toMatch(
          /^(DISCOVERY_ISSUER_MISMATCH|AUTH_METHOD_NOT_SUPPORTED|INSECURE_TOKEN_URL)$/,
        )
        expectNoLeak(caught, [...encodings, SECRET.toLowerCase()])
        expectNoLeak(messages, [...encodings, SECRET.toLowerCase()])
        await tokens.close()
      }
    }
  })

  it('a redirect whose Location host echoes the client secret (which URL parsing would lowercase)', async () => {
    server.route('/redirect-echo', (_req, res) => {
      res.writeHead(302, { location: `https://user:pw@${SECRET}.example/token` })
      res.end()
    })
    const caught = await clientCredentials({
      tokenUrl: `${server.origin}/redirect-echo`,
      clientId: 'svc',
      auth: clientSecretPost(SECRET),
    })
      .fetchToken()
      .catch((error: unknown) => error)
    expect(caught).toMatchObject({ code: 'REDIRECT_REJECTED' })
    expect((caught as Error).message).toContain('redirecting to [redacted].example;')
    expectNoLeak(caught, [SECRET, SECRET.toLowerCase(), 'user:pw'])
  })

  it('a construction error for a broken key', () => {
    for (const key of [rsa.pem.replace('MII', 'XII'), { ...rsa.jwk, n: 'AQAB' }]) {
      let caught: unknown
      try {
        privateKeyJwt({ key })
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(TypeError)
      expectNoLeak(caught, KEY_MATERIAL)
    }
  })
})

/** Token-exchange sources: the subject from a function or a source, with an actor, with client auth. */
function exchangeSources(url: string): Record<string, TokenSource> {
  return {
    'subject provider': tokenExchange({
      tokenUrl: url,
      subjectToken: () => SUBJECT,
      subjectTokenType: TOKEN_TYPES.jwt,
    }),
    'subject source + actor + basic': tokenExchange({
      tokenUrl: url,
      clientId: 'svc',
      auth: clientSecretBasic(SECRET),
      subjectToken: tokenSource('user', () => ({ access_token: SUBJECT, expires_in: 600 })),
      subjectTokenType: TOKEN_TYPES.accessToken,
      actorToken: () => Promise.resolve(ACTOR),
      actorTokenType: TOKEN_TYPES.accessToken,
      audience: ['a', 'b'],
    }),
  }
}

/** A context that gets other sources' tokens directly, as a manager would from its cache. */
const directContext: TokenSourceContext = {
  get: (source) => source.fetchToken(),
  clock: { now: () => Date.now(), setTimer: () => ({ cancel: () => undefined }) },
}

describe('token exchange: the subject and actor tokens never show', () => {
  beforeAll(() => {
    server.route('/exchange', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          access_token: TOKEN,
          expires_in: 3600,
          issued_token_type: TOKEN_TYPES.accessToken,
        }),
      )
    })
    server.route('/exchange-no-type', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ access_token: TOKEN, expires_in: 3600 }))
    })
  })

  it.each(Object.keys(exchangeSources('https://idp.example/token')))(
    '%s: the source and the source it resolves to for one subject',
    async (name) => {
      const source = exchangeSources(`${server.origin}/exchange`)[name]!
      expectNoLeak(source, [SECRET, SUBJECT, ACTOR])
      const resolved = await source.resolve!(directContext)
      expectNoLeak(resolved, [SECRET, SUBJECT, ACTOR, SUBJECT.split('.')[1]!])
      expect(resolved.key).not.toBe(source.key)
      expect(inspect(resolved)).toContain(resolved.key)
    },
  )

  it.each(Object.keys(exchangeSources('https://idp.example/token')))(
    '%s: a manager’s token, events, stats and errors',
    async (name) => {
      const tokens = new TokenManager()
      const seen: unknown[] = []
      for (const event of ['refreshStart', 'refreshSuccess', 'refreshFailure', 'miss', 'hit'] as const) {
        tokens.on(event, (payload: unknown) => seen.push(payload))
      }
      const token = await tokens.get(exchangeSources(`${server.origin}/exchange`)[name]!)
      expect(token.value).toBe(TOKEN)
      const refused = await tokens.get(exchangeSources(echoUrl)[name]!).catch((error: unknown) => error)
      expect(isOAuthError(refused, 'invalid_client')).toBe(true)
      expect((refused as Error).message).toContain('[redacted]')
      const untyped = await tokens
        .get(exchangeSources(`${server.origin}/exchange-no-type`)[name]!)
        .catch((error: unknown) => error)
      expect(untyped).toMatchObject({ code: 'INVALID_ISSUED_TOKEN_TYPE' })
      for (const shown of [token, refused, untyped, seen, tokens.stats()]) {
        expectNoLeak(shown, [SECRET, SUBJECT, ACTOR])
      }
      await tokens.close()
    },
  )

  it('an answer whose scope repeats the subject token or the client secret is INVALID_SCOPE_FIELD (scopes are shown)', async () => {
    for (const echoed of [SUBJECT, SECRET]) {
      const source = tokenExchange({
        tokenUrl: 'https://idp.example/token',
        clientId: 'gateway',
        auth: clientSecretPost(SECRET),
        subjectToken: () => SUBJECT,
        subjectTokenType: TOKEN_TYPES.jwt,
        fetch: () =>
          Promise.resolve(
            Response.json({
              access_token: TOKEN,
              expires_in: 60,
              issued_token_type: TOKEN_TYPES.accessToken,
              scope: `orders:read ${echoed}`,
            }),
          ),
      })
      const tokens = new TokenManager()
      const caught = await tokens.get(source).catch((error: unknown) => error)
      expect(caught).toMatchObject({
        code: 'INVALID_SCOPE_FIELD',
        message:
          'token response from POST idp.example/token has a scope that repeats a credential the request sent',
      })
      expectNoLeak(caught, [SECRET, SUBJECT, TOKEN])
      await tokens.close()
    }
  })

  it('a subject provider that fails: the error names the provider, never a token', async () => {
    const source = tokenExchange({
      tokenUrl: `${server.origin}/exchange`,
      subjectToken: () => SUBJECT.split('.').slice(0, 2).join('.') + '.', // an unusable JWT
      subjectTokenType: TOKEN_TYPES.jwt,
      actorToken: () => {
        throw new Error('no actor')
      },
      actorTokenType: TOKEN_TYPES.accessToken,
    })
    const caught = await source.fetchToken().catch((error: unknown) => error)
    expect(caught).toMatchObject({ code: 'ACTOR_TOKEN_UNAVAILABLE' })
    expectNoLeak(caught, [SUBJECT, SUBJECT.split('.')[1]!])
  })
})
