/**
 * Issuer discovery (RFC 8414, then OpenID Connect Discovery) against the project's token server:
 * where the documents are looked for, one request per issuer however many sources and callers,
 * backoff and refresh on an injected clock, keys shared with `tokenUrl` sources, and the bad
 * discovery answers of docs/ERRORS.md, each a row below.
 */
import { inspect } from 'node:util'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  DiscoveryCache,
  TokenManager,
  type ClientAuth,
  type FetchLike,
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
import { errorsTableRows } from '../support/errors-table.js'
import { failure } from '../support/failure.js'

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
  extra: {
    scopes?: string[]
    auth?: ClientAuth
    timeoutMs?: number
    maxResponseBytes?: number
    fetch?: FetchLike
  } = {},
) {
  return clientCredentials({ issuer, clientId: CLIENT, auth: clientSecretBasic(SECRET), discovery, ...extra })
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

/** A `fetch` that answers `document` at every well-known path and 404 elsewhere. */
function serving(document: unknown): FetchLike {
  return (input) =>
    Promise.resolve(
      new URL(input).pathname.startsWith('/.well-known/')
        ? Response.json(document)
        : new Response('no', { status: 404 }),
    )
}

describe('hostile discovery documents and servers', () => {
  const issuer = 'https://idp.example'

  it('a document that echoes the client secret (issuer, methods, token_endpoint host): no rendering of the error shows it', async () => {
    const documents = [
      { issuer: SECRET, token_endpoint: 'https://idp.example/token' },
      {
        issuer,
        token_endpoint: 'https://idp.example/token',
        token_endpoint_auth_methods_supported: [SECRET, encodeURIComponent(SECRET)],
      },
      { issuer, token_endpoint: `http://${SECRET}.example/token` },
    ]
    for (const document of documents) {
      const tokens = manager()
      const messages: string[] = []
      tokens.on('refreshFailure', (event) => messages.push(event.message))
      const source = issuerSource(issuer, new DiscoveryCache(), { fetch: serving(document) })
      const error = await failure(tokens.get(source))
      expect(error.code).toMatch(/DISCOVERY_ISSUER_MISMATCH|AUTH_METHOD_NOT_SUPPORTED|INSECURE_TOKEN_URL/)
      expect(error.message).toContain('[redacted]')
      for (const rendering of [
        error.message,
        inspect(error, { depth: Infinity }),
        JSON.stringify(error),
        ...messages,
        JSON.stringify(tokens.stats()),
      ]) {
        expect(rendering).not.toContain(SECRET)
        expect(rendering).not.toContain(encodeURIComponent(SECRET))
      }
    }
  })

  it('token_endpoint_auth_methods_supported of huge strings and line breaks: the message lists 10, each cut at 64 characters, on one line', async () => {
    const methods = [
      'x'.repeat(100_000),
      'forged\nWARN line',
      ...Array.from({ length: 20 }, (_, i) => `m${i}`),
    ]
    const source = issuerSource(issuer, new DiscoveryCache(), {
      fetch: serving({
        issuer,
        token_endpoint: 'https://idp.example/token',
        token_endpoint_auth_methods_supported: methods,
      }),
      maxResponseBytes: 1_000_000,
    })
    const error = await failure(source.fetchToken())
    expect(error.code).toBe('AUTH_METHOD_NOT_SUPPORTED')
    expect(error.message).not.toContain('\n')
    expect(error.message).toContain(`it supports ${'x'.repeat(64)}, forged WARN line, m0,`)
    expect(error.message).toContain('m7, and 12 more (token_endpoint_auth_methods_supported)')
    expect(error.message.length).toBeLessThan(400)
  })

  it.each([
    [42, 'a number'],
    [null, 'null'],
    [{ href: issuer }, 'an object'],
    [[issuer], 'an array'],
  ])('an issuer of another type (%j) is DISCOVERY_ISSUER_MISMATCH naming its kind', async (value, kind) => {
    const source = issuerSource(issuer, new DiscoveryCache(), {
      fetch: serving({ issuer: value, token_endpoint: 'https://idp.example/token' }),
    })
    const error = await failure(source.fetchToken())
    expect(error.code).toBe('DISCOVERY_ISSUER_MISMATCH')
    expect(error.message).toContain(`names issuer ${kind}, not "${issuer}"`)
  })

  it('close() while discovery is in flight: the get rejects with MANAGER_CLOSED and close() resolves', async () => {
    const tokens = new TokenManager()
    let asked = 0
    const source = issuerSource(issuer, new DiscoveryCache(), {
      fetch: () => {
        asked++
        return new Promise<Response>(() => undefined) // a discovery that would last its 10 s timeout
      },
    })
    const pending = failure(tokens.get(source))
    await vi.waitFor(() => expect(asked).toBe(1))
    await tokens.close()
    expect(await pending).toMatchObject({ code: 'MANAGER_CLOSED' })
  })

  it('a token request whose injected fetch never settles and ignores its signal ends at timeoutMs', async () => {
    const source = clientCredentials({
      tokenUrl: 'https://idp.example/token',
      clientId: CLIENT,
      auth: clientSecretBasic(SECRET),
      fetch: () => new Promise<Response>(() => undefined),
      timeoutMs: 200,
    })
    // On the caller's clock: the one timer is the request's time limit.
    const clock = createTestClock()
    const pending = failure(source.fetchToken({ clock }))
    await vi.waitFor(() => expect(clock.pendingTimers).toBe(1), { interval: 1 })
    await clock.advanceAsync(200)
    expect(await pending).toMatchObject({
      code: 'TIMEOUT',
      message: 'POST idp.example/token did not answer within 200 ms',
    })
  })

  it('the cache keeps at most maxEntries issuers, the least recently used forgotten first', async () => {
    const discovery = new DiscoveryCache({ maxEntries: 2 })
    const fetchFor: FetchLike = (input) => {
      const url = new URL(input)
      return Promise.resolve(Response.json({ issuer: url.origin, token_endpoint: `${url.origin}/token` }))
    }
    const [a, b, c] = ['https://a.example', 'https://b.example', 'https://c.example']
    await resolveTokenEndpoint(a, { cache: discovery, fetch: fetchFor })
    await resolveTokenEndpoint(b, { cache: discovery, fetch: fetchFor })
    await resolveTokenEndpoint(a, { cache: discovery, fetch: fetchFor }) // a is used again
    await resolveTokenEndpoint(c, { cache: discovery, fetch: fetchFor })
    expect(discovery.size).toBe(2)
    expect([discovery.peek(a), discovery.peek(b), discovery.peek(c)].map(Boolean)).toEqual([
      true,
      false,
      true,
    ])
  })

  it('the process-wide default holds 1,000 issuers, whatever a configuration loop hands it', async () => {
    const discovery = new DiscoveryCache()
    const refusing: FetchLike = () => Promise.resolve(new Response('no', { status: 404 }))
    for (let i = 0; i < 1_500; i++) {
      await resolveTokenEndpoint(`https://idp-${i}.example`, { cache: discovery, fetch: refusing }).catch(
        () => undefined,
      )
    }
    expect(discovery.size).toBe(1_000)
  })

  it('maxEntries must be a positive integer', () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN]) {
      expect(() => new DiscoveryCache({ maxEntries })).toThrow(/maxEntries must be a positive integer/)
    }
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
      'an issuer with a line break (as read from a file)',
      { issuer: 'https://idp.example\n' },
      /issuer must not contain spaces or control characters/,
    ],
    [
      'a tokenUrl with a leading space',
      { tokenUrl: ' https://idp.example/token' },
      /tokenUrl must not contain spaces or control characters/,
    ],
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
  /** A `fetch` for the source instead of the global one. */
  readonly fetch?: FetchLike
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
  {
    name: 'a token_endpoint with a line break inside (which the URL parser would drop)',
    code: 'INVALID_DISCOVERY_DOCUMENT',
    discovery: { metadata: { token_endpoint: 'https://idp.example/tok\nen' } },
    message: /token_endpoint that is not a usable URL .*must not contain spaces or control characters/,
  },
  {
    name: 'a token_endpoint with an empty fragment (#)',
    code: 'INVALID_DISCOVERY_DOCUMENT',
    discovery: { metadata: { token_endpoint: 'https://idp.example/token#' } },
    message: /token_endpoint .* must not contain a fragment/,
  },
  {
    name: 'an injected fetch that never settles and ignores its signal, timeoutMs (200)',
    code: 'TIMEOUT',
    fetch: () => new Promise<Response>(() => undefined),
    timeoutMs: 200,
    message: /oauth-authorization-server did not answer within 200 ms/,
  },
  {
    name: 'a document whose body stops after its first bytes, timeoutMs (200)',
    code: 'TIMEOUT',
    // Headers at once, then a stream that neither ends nor heeds the request's signal.
    fetch: () =>
      Promise.resolve(
        new Response(
          new ReadableStream<Uint8Array>({
            start: (controller) => controller.enqueue(new TextEncoder().encode('{"issuer":')),
          }),
          { headers: { 'content-type': 'application/json' } },
        ),
      ),
    timeoutMs: 200,
    message: /oauth-authorization-server did not answer within 200 ms/,
  },
]

const RETRYABLE = new Set<TokenkeeperErrorCode>(['TIMEOUT', 'SERVER_ERROR'])

describe('bad discovery answers (docs/ERRORS.md)', () => {
  it.each(BAD_DISCOVERY.map((row, index) => [index + 1, row] as const))('row %i', async (_index, row) => {
    const target = await server(row.discovery)
    if (row.fault !== undefined) target.injectDiscovery(row.fault, { times: row.faultTimes ?? 1 })
    const clock = createTestClock()
    const source = clientCredentials({
      issuer: `${target.issuer}${row.issuerSuffix ?? ''}`,
      clientId: CLIENT,
      auth: row.auth ?? clientSecretBasic(SECRET),
      discovery: new DiscoveryCache({ clock }),
      ...(row.fetch === undefined ? {} : { fetch: row.fetch }),
      ...(row.timeoutMs === undefined ? {} : { timeoutMs: row.timeoutMs }),
      ...(row.maxResponseBytes === undefined ? {} : { maxResponseBytes: row.maxResponseBytes }),
    })
    const pending = failure(source.fetchToken({ clock }))
    if (row.code === 'TIMEOUT') {
      // The time limit runs on the discovery cache's clock: moved past it once the request is out
      // (its timer is the only one on that clock) and, with a server fault, has reached the server.
      await vi.waitFor(() => expect(clock.pendingTimers).toBe(1), { interval: 1 })
      if (row.fault !== undefined)
        await vi.waitFor(() => expect(target.stats().discoveryRequests).toBe(1), { interval: 1 })
      await clock.advanceAsync(row.timeoutMs ?? 10_000)
    }
    const error = await pending
    expect(error.code).toBe(row.code)
    expect(error.retryable).toBe(RETRYABLE.has(row.code))
    expect(error.message).toMatch(row.message)
    for (const rendering of [error.message, inspect(error, { depth: Infinity }), JSON.stringify(error)]) {
      expect(rendering).not.toContain(SECRET)
    }
    expect(target.stats().tokenRequests).toBe(0)
  })

  it('docs/ERRORS.md lists the same rows', () => {
    const rows = errorsTableRows('discovery-inputs')
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
