/**
 * Issuer discovery (RFC 8414, then OpenID Connect Discovery) against the project's token server:
 * where the documents are looked for, one request per issuer however many sources and callers,
 * backoff and refresh on an injected clock, keys shared with `tokenUrl` sources, and the bad
 * discovery answers of docs/ERRORS.md, each a row below.
 */
import { readFileSync } from 'node:fs'
import { inspect } from 'node:util'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  DiscoveryCache,
  isTokenkeeperError,
  TokenManager,
  type ClientAuth,
  type TokenkeeperError,
  type TokenkeeperErrorCode,
} from '../../src/index.js'
import { resolveTokenEndpoint, wellKnownUrls } from '../../src/sources/discovery.js'
import {
  createTestClock,
  startTokenServer,
  type TokenServer,
  type TokenServerDiscoveryOptions,
  type TokenServerFault,
} from '../../src/testing/index.js'

const SECRET = 'discovery-secret-must-not-leak-0123'
const CLIENT = 'svc-discovery'

const servers: TokenServer[] = []
const managers: TokenManager[] = []
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()))
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function server(discovery?: TokenServerDiscoveryOptions): Promise<TokenServer> {
  const started = await startTokenServer({
    clients: [{ clientId: CLIENT, clientSecret: SECRET, allowedScopes: ['a', 'b', 'c', 'd', 'e'] }],
    ...(discovery === undefined ? {} : { discovery }),
  })
  servers.push(started)
  return started
}

function manager(): TokenManager {
  const created = new TokenManager()
  managers.push(created)
  return created
}

function issuerSource(
  issuer: string,
  discovery: DiscoveryCache,
  extra: { scopes?: string[]; auth?: ClientAuth; timeoutMs?: number; maxResponseBytes?: number } = {},
) {
  return clientCredentials({ issuer, clientId: CLIENT, auth: clientSecretBasic(SECRET), discovery, ...extra })
}

async function failure(promise: Promise<unknown>): Promise<TokenkeeperError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  if (!isTokenkeeperError(error)) throw new Error(`expected a TokenkeeperError, got ${String(error)}`)
  return error
}

describe('where the documents are looked for', () => {
  it.each([
    [
      'https://idp.example',
      'https://idp.example/.well-known/oauth-authorization-server',
      'https://idp.example/.well-known/openid-configuration',
    ],
    [
      'https://idp.example/',
      'https://idp.example/.well-known/oauth-authorization-server',
      'https://idp.example/.well-known/openid-configuration',
    ],
    [
      'https://idp.example/tenant',
      'https://idp.example/.well-known/oauth-authorization-server/tenant',
      'https://idp.example/tenant/.well-known/openid-configuration',
    ],
    [
      'https://idp.example:8443/realms/a/',
      'https://idp.example:8443/.well-known/oauth-authorization-server/realms/a',
      'https://idp.example:8443/realms/a/.well-known/openid-configuration',
    ],
  ])('%s: RFC 8414 §3.1 inserts, OpenID Connect appends', (issuer, rfc8414, oidc) => {
    expect(wellKnownUrls(issuer).map(String)).toEqual([rfc8414, oidc])
  })
})

describe('clientCredentials({ issuer })', () => {
  it('finds the token endpoint in the RFC 8414 document and gets a token through it', async () => {
    const idp = await server()
    const token = await issuerSource(idp.issuer, new DiscoveryCache()).fetchToken()
    expect(token.type).toBe('Bearer')
    expect(idp.stats()).toMatchObject({ discoveryRequests: 1, tokenRequests: 1, tokensIssued: 1 })
  })

  it('inserts the path of an issuer with one (RFC 8414 §3.1)', async () => {
    const idp = await server({ issuerPath: '/tenant-a' })
    expect(idp.issuer).toBe(`${idp.url}/tenant-a`)
    await issuerSource(idp.issuer, new DiscoveryCache()).fetchToken()
    expect(idp.stats()).toMatchObject({ discoveryRequests: 1, tokensIssued: 1 })
  })

  it('falls back to /.well-known/openid-configuration when the RFC 8414 document is not there', async () => {
    const idp = await server({ issuerPath: '/tenant-b', documents: ['openid-configuration'] })
    await issuerSource(idp.issuer, new DiscoveryCache()).fetchToken()
    // The RFC 8414 path answers 404, the OpenID Connect one the document.
    expect(idp.stats()).toMatchObject({ discoveryRequests: 2, tokensIssued: 1 })
  })

  it('falls back when the RFC 8414 path serves an HTML page (a web app answering every path)', async () => {
    const idp = await server({ documents: ['oauth-authorization-server', 'openid-configuration'] })
    idp.injectDiscovery({ kind: 'html', status: 200 })
    await issuerSource(idp.issuer, new DiscoveryCache()).fetchToken()
    expect(idp.stats()).toMatchObject({ discoveryRequests: 2, tokensIssued: 1 })
  })

  it('has the key of a source built with the discovered tokenUrl, so the two share tokens', async () => {
    const idp = await server()
    const discovery = new DiscoveryCache()
    const byIssuer = issuerSource(idp.issuer, discovery, { scopes: ['a'] })
    const byUrl = clientCredentials({
      tokenUrl: idp.tokenUrl,
      clientId: CLIENT,
      auth: clientSecretBasic(SECRET),
      scopes: ['a'],
    })
    expect(byIssuer.key).toBe(`cc|discovery:${idp.issuer}${byUrl.key.slice(`cc|${idp.tokenUrl}`.length)}`)
    const tokens = manager()
    const first = await tokens.get(byIssuer)
    expect(byIssuer.key).toBe(byUrl.key)
    expect(await tokens.get(byUrl)).toBe(first)
    expect(idp.stats()).toMatchObject({ discoveryRequests: 1, tokenRequests: 1 })
    // Another source of the same issuer knows its key at once, from the shared document.
    expect(issuerSource(idp.issuer, discovery, { scopes: ['a'] }).key).toBe(byUrl.key)
    expect(inspect(byIssuer)).toContain(`issuer: '${idp.issuer}'`)
  })

  it('50 concurrent gets over 5 sources of one issuer: 1 discovery request, 1 token request per source', async () => {
    const idp = await server()
    const discovery = new DiscoveryCache()
    const tokens = manager()
    const sources = ['a', 'b', 'c', 'd', 'e'].map((scope) =>
      issuerSource(idp.issuer, discovery, { scopes: [scope] }),
    )
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => tokens.get(sources[i % 5]!)))
    expect(idp.stats()).toMatchObject({ discoveryRequests: 1, tokenRequests: 5, tokensIssued: 5 })
    expect(new Set(results.map((token) => token.value)).size).toBe(5)
    expect(tokens.stats()).toMatchObject({ fetches: 5, misses: 50 })
  })

  it('the process-wide cache serves every source that is given none', async () => {
    const idp = await server({ issuerPath: '/process-wide' })
    const a = clientCredentials({ issuer: idp.issuer, clientId: CLIENT, auth: clientSecretBasic(SECRET) })
    const b = clientCredentials({ issuer: idp.issuer, clientId: CLIENT, auth: clientSecretPost(SECRET) })
    await Promise.all([a.fetchToken(), b.fetchToken(), a.fetchToken()])
    expect(idp.stats()).toMatchObject({ discoveryRequests: 1, tokensIssued: 3 })
    await expect(resolveTokenEndpoint(idp.issuer)).resolves.toMatchObject({ tokenUrl: idp.tokenUrl })
    expect(idp.stats().discoveryRequests).toBe(1)
  })

  it('a failed discovery is retried after a backoff, not before; callers within it get the error at once', async () => {
    const idp = await server()
    const clock = createTestClock()
    const discovery = new DiscoveryCache({ clock, random: () => 0 }) // first backoff: 10 % of 1 s
    const source = issuerSource(idp.issuer, discovery)
    idp.injectDiscovery({ kind: 'status', status: 503 })
    expect(await failure(source.fetchToken())).toMatchObject({ code: 'SERVER_ERROR', retryable: true })
    expect(await failure(source.fetchToken())).toMatchObject({ code: 'SERVER_ERROR' })
    clock.advance(99)
    expect(await failure(source.fetchToken())).toMatchObject({ code: 'SERVER_ERROR' })
    expect(idp.stats()).toMatchObject({ discoveryRequests: 1, tokenRequests: 0 })
    clock.advance(1)
    await expect(source.fetchToken()).resolves.toMatchObject({ type: 'Bearer' })
    expect(idp.stats()).toMatchObject({ discoveryRequests: 2, tokenRequests: 1 })
  })

  it('through a manager: the failure is the get caller’s error, and the next get after the backoff recovers', async () => {
    const idp = await server()
    const clock = createTestClock()
    const discovery = new DiscoveryCache({ clock, random: () => 0 })
    const tokens = new TokenManager({ clock, random: () => 0 })
    managers.push(tokens)
    const source = issuerSource(idp.issuer, discovery)
    idp.injectDiscovery({ kind: 'status', status: 503 })
    expect(await failure(tokens.get(source))).toMatchObject({ code: 'SERVER_ERROR' })
    expect(tokens.stats()).toMatchObject({ failures: 1, fetches: 1 })
    await clock.advanceAsync(1_000)
    const token = await tokens.get(source)
    expect(await tokens.get(source)).toBe(token)
    expect(idp.stats()).toMatchObject({ discoveryRequests: 2, tokenRequests: 1 })
  })

  it('refreshes a document older than maxAgeMs in the background, and keeps it when the refresh fails', async () => {
    const idp = await server()
    const clock = createTestClock()
    const discovery = new DiscoveryCache({ clock, maxAgeMs: 3_600_000 })
    const source = issuerSource(idp.issuer, discovery)
    await source.fetchToken()
    clock.advance(3_599_999)
    await source.fetchToken()
    expect(idp.stats().discoveryRequests).toBe(1)
    clock.advance(1)
    idp.injectDiscovery({ kind: 'status', status: 500 })
    const before = discovery.peek(idp.issuer)
    // Served from the cached document at once; one refresh goes out meanwhile and fails.
    await source.fetchToken()
    await vi.waitFor(() => expect(idp.stats().discoveryRequests).toBe(2))
    expect(idp.stats().tokensIssued).toBe(3)
    await source.fetchToken()
    expect(discovery.peek(idp.issuer)).toBe(before)
    expect(idp.stats().discoveryRequests).toBe(2) // backing off
    clock.advance(60_000)
    await source.fetchToken()
    await vi.waitFor(() => expect(discovery.peek(idp.issuer)).not.toBe(before))
    expect(idp.stats().discoveryRequests).toBe(3)
  })

  it('a refreshed document that names another token endpoint changes the key: the next get asks that one', async () => {
    const first = await server()
    const second = await server()
    const clock = createTestClock()
    const discovery = new DiscoveryCache({ clock, maxAgeMs: 60_000 })
    const issuer = 'https://idp.example'
    let tokenEndpoint = first.tokenUrl
    const source = clientCredentials({
      issuer,
      clientId: CLIENT,
      auth: clientSecretBasic(SECRET),
      discovery,
      // The issuer's metadata, as a server that moved its token endpoint would serve it.
      fetch: (input, init) =>
        new URL(input).pathname.startsWith('/.well-known/')
          ? Promise.resolve(Response.json({ issuer, token_endpoint: tokenEndpoint }))
          : fetch(input, init),
    })
    const tokens = manager()
    await tokens.get(source)
    const firstKey = source.key
    expect(firstKey).toContain(first.tokenUrl)
    tokenEndpoint = second.tokenUrl
    clock.advance(60_000)
    // The next token request (a renewal) still goes to the cached endpoint, and refreshes the
    // document in the background.
    await source.fetchToken()
    await vi.waitFor(() => expect(source.key).not.toBe(firstKey))
    expect(source.key).toContain(second.tokenUrl)
    await tokens.get(source)
    expect([first.stats().tokenRequests, second.stats().tokenRequests]).toEqual([2, 1])
  })

  it('a caller’s signal ends its own wait, not the shared discovery', async () => {
    const idp = await server()
    const discovery = new DiscoveryCache()
    idp.injectDiscovery({ kind: 'latency', ms: 200 })
    const controller = new AbortController()
    const source = issuerSource(idp.issuer, discovery)
    const aborted = resolveTokenEndpoint(idp.issuer, { cache: discovery, signal: controller.signal })
    const other = source.fetchToken()
    controller.abort(new Error('caller gave up'))
    await expect(aborted).rejects.toThrow('caller gave up')
    await expect(other).resolves.toMatchObject({ type: 'Bearer' })
    expect(idp.stats().discoveryRequests).toBe(1)
  })
})

describe('construction', () => {
  const auth = clientSecretBasic(SECRET)
  it.each([
    [
      'tokenUrl and issuer',
      { tokenUrl: 'https://idp.example/token', issuer: 'https://idp.example' },
      /not both/,
    ],
    ['neither', {}, /tokenUrl is not a valid absolute URL/],
    ['an issuer with a query', { issuer: 'https://idp.example/?tenant=a' }, /must not contain a query/],
    ['an issuer with a fragment', { issuer: 'https://idp.example/#a' }, /must not contain a fragment/],
    ['an issuer that is not a URL', { issuer: 'idp.example' }, /issuer is not a valid absolute URL/],
    [
      'discovery without issuer',
      { tokenUrl: 'https://idp.example/token', discovery: new DiscoveryCache() },
      /needs an issuer/,
    ],
    [
      'discovery that is not a cache',
      { issuer: 'https://idp.example', discovery: {} as DiscoveryCache },
      /must be a DiscoveryCache/,
    ],
  ])('%s is a TypeError', (_name, options, message) => {
    expect(() => clientCredentials({ clientId: CLIENT, auth, ...options })).toThrow(TypeError)
    expect(() => clientCredentials({ clientId: CLIENT, auth, ...options })).toThrow(message)
  })

  it('an http issuer off loopback is INSECURE_TOKEN_URL', () => {
    let thrown: unknown
    try {
      clientCredentials({ issuer: 'http://idp.example', clientId: CLIENT, auth })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toMatchObject({ code: 'INSECURE_TOKEN_URL' })
  })
})

interface BadDiscovery {
  readonly name: string
  readonly code: TokenkeeperErrorCode
  readonly discovery?: TokenServerDiscoveryOptions
  readonly fault?: TokenServerFault
  readonly faultTimes?: number
  readonly auth?: ClientAuth
  readonly timeoutMs?: number
  readonly maxResponseBytes?: number
  /** Appended to the server's issuer in the source. */
  readonly issuerSuffix?: string
  /** What the message must say. */
  readonly message: RegExp
}

/** The rows of docs/ERRORS.md "Bad discovery documents", in order. */
const BAD_DISCOVERY: readonly BadDiscovery[] = [
  {
    name: 'the document names another issuer',
    code: 'DISCOVERY_ISSUER_MISMATCH',
    discovery: { metadata: { issuer: 'https://elsewhere.example' } },
    message: /names issuer "https:\/\/elsewhere\.example", not "http:\/\/127\.0\.0\.1:\d+".*RFC 8414 §3\.3/,
  },
  {
    name: 'the source names the issuer with a trailing slash the document does not have',
    code: 'DISCOVERY_ISSUER_MISMATCH',
    issuerSuffix: '/',
    message: /names issuer "http:\/\/127\.0\.0\.1:\d+", not "http:\/\/127\.0\.0\.1:\d+\/".*trailing slash/,
  },
  {
    name: 'an HTML page instead of JSON at both paths',
    code: 'HTML_RESPONSE',
    fault: { kind: 'html', status: 200 },
    faultTimes: 2,
    message: /GET 127\.0\.0\.1:\d+\/\.well-known\/oauth-authorization-server answered 200 with an HTML page/,
  },
  {
    name: 'a body that is not JSON',
    code: 'INVALID_JSON',
    fault: { kind: 'body', body: 'issuer=x' },
    faultTimes: 2,
    message: /not JSON/,
  },
  {
    name: 'JSON that is not an object',
    code: 'RESPONSE_NOT_OBJECT',
    fault: { kind: 'json', json: ['issuer'] },
    message: /not a JSON object/,
  },
  {
    name: 'no token_endpoint',
    code: 'INVALID_DISCOVERY_DOCUMENT',
    discovery: { metadata: { token_endpoint: undefined } },
    message: /has no token_endpoint/,
  },
  {
    name: 'a token_endpoint that is not a URL',
    code: 'INVALID_DISCOVERY_DOCUMENT',
    discovery: { metadata: { token_endpoint: '/token' } },
    message: /token_endpoint that is not a usable URL/,
  },
  {
    name: 'an http token_endpoint off loopback',
    code: 'INSECURE_TOKEN_URL',
    discovery: { metadata: { token_endpoint: 'http://idp.example/token' } },
    message: /token_endpoint of .* must use https/,
  },
  {
    name: 'token_endpoint_auth_methods_supported that is not an array of strings',
    code: 'INVALID_DISCOVERY_DOCUMENT',
    discovery: { metadata: { token_endpoint_auth_methods_supported: 'client_secret_basic' } },
    message: /not an array of strings/,
  },
  {
    name: 'the auth method is not in token_endpoint_auth_methods_supported',
    code: 'AUTH_METHOD_NOT_SUPPORTED',
    discovery: {
      metadata: { token_endpoint_auth_methods_supported: ['private_key_jwt', 'tls_client_auth'] },
    },
    message:
      /does not support client authentication by client_secret_basic .*it supports private_key_jwt, tls_client_auth/,
  },
  {
    name: 'client_secret_post when the document lists no methods (RFC 8414: client_secret_basic only)',
    code: 'AUTH_METHOD_NOT_SUPPORTED',
    discovery: { metadata: { token_endpoint_auth_methods_supported: undefined } },
    auth: clientSecretPost(SECRET),
    message:
      /by client_secret_post .*lists no token_endpoint_auth_methods_supported, which means client_secret_basic only/,
  },
  {
    name: '404 at both well-known paths',
    code: 'DISCOVERY_NOT_FOUND',
    discovery: { documents: [] },
    message: /oauth-authorization-server and GET .*openid-configuration both answered that there is none/,
  },
  {
    name: 'no answer within timeoutMs (300)',
    code: 'TIMEOUT',
    fault: { kind: 'hang' },
    timeoutMs: 300,
    message: /oauth-authorization-server did not answer within 300 ms/,
  },
  {
    name: 'a redirect',
    code: 'REDIRECT_REJECTED',
    fault: { kind: 'redirect', location: 'https://elsewhere.example/.well-known/oauth-authorization-server' },
    message: /redirecting to elsewhere\.example; discovery requests never follow redirects/,
  },
  {
    name: 'a document over maxResponseBytes',
    code: 'RESPONSE_TOO_LARGE',
    fault: { kind: 'huge', bytes: 4096 },
    maxResponseBytes: 1024,
    message: /larger than 1024 bytes/,
  },
  {
    name: '503 at the RFC 8414 path',
    code: 'SERVER_ERROR',
    fault: { kind: 'status', status: 503, retryAfter: 7 },
    message: /answered 503/,
  },
]

const RETRYABLE = new Set<TokenkeeperErrorCode>(['TIMEOUT', 'SERVER_ERROR'])

describe('bad discovery answers (docs/ERRORS.md)', () => {
  it.each(BAD_DISCOVERY.map((row, index) => [index + 1, row] as const))('row %i', async (_index, row) => {
    const target = await server(row.discovery)
    if (row.fault !== undefined) target.injectDiscovery(row.fault, { times: row.faultTimes ?? 1 })
    const source = clientCredentials({
      issuer: `${target.issuer}${row.issuerSuffix ?? ''}`,
      clientId: CLIENT,
      auth: row.auth ?? clientSecretBasic(SECRET),
      discovery: new DiscoveryCache(),
      ...(row.timeoutMs === undefined ? {} : { timeoutMs: row.timeoutMs }),
      ...(row.maxResponseBytes === undefined ? {} : { maxResponseBytes: row.maxResponseBytes }),
    })
    const error = await failure(source.fetchToken())
    expect(error.code).toBe(row.code)
    expect(error.retryable).toBe(RETRYABLE.has(row.code))
    expect(error.message).toMatch(row.message)
    for (const rendering of [error.message, inspect(error, { depth: Infinity }), JSON.stringify(error)]) {
      expect(rendering).not.toContain(SECRET)
    }
    expect(target.stats().tokenRequests).toBe(0)
  })

  it('docs/ERRORS.md lists the same rows', () => {
    const markdown = readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8')
    const section = markdown
      .split('<!-- discovery-inputs:start -->')[1]!
      .split('<!-- discovery-inputs:end -->')[0]!
    const rows = section
      .split('\n')
      .filter((line) => /^\| \d+ \|/.test(line))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim().replace(/`/g, '')),
      )
    expect(rows).toEqual(
      BAD_DISCOVERY.map((row, index) => [
        String(index + 1),
        row.name,
        row.code,
        RETRYABLE.has(row.code) ? 'yes' : 'no',
      ]),
    )
  })
})
