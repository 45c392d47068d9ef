/**
 * Token exchange (RFC 8693) against the project's token server, which exchanges only access
 * tokens it issued and that are still active: the subject from another source through the same
 * manager, or from a function; keys by subject fingerprint; expiry capped at the subject's; the
 * answer's issued_token_type; and the rows of docs/ERRORS.md "Bad token-exchange inputs and
 * answers". Time runs on a test clock shared by the server and the manager.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  isOAuthError,
  memoryStore,
  OAuthError,
  TOKEN_TYPES,
  TokenManager,
  tokenExchange,
  tokenSource,
  DiscoveryCache,
  type ExchangeTokenProvider,
  type FetchLike,
  type TokenExchangeOptions,
  type TokenSource,
} from '../../src/index.js'
import {
  createTestClock,
  startTokenServer,
  type TestClock,
  type TokenServer,
} from '../../src/testing/index.js'
import { startLocalServer, type LocalServer } from '../wire/local-server.js'
import { errorsTableRows } from '../support/errors-table.js'
import { failure } from '../support/failure.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const clock: TestClock = createTestClock()
let server: TokenServer
let local: LocalServer

/** Form bodies of the token-exchange requests sent, in order. */
const exchanges: URLSearchParams[] = []
const recordingFetch: FetchLike = (input, init) => {
  const body = new URLSearchParams(typeof init.body === 'string' ? init.body : '')
  if (body.get('grant_type') === EXCHANGE) exchanges.push(body)
  return fetch(input, init)
}

/** The user-facing service's own token: the subject of the exchanges (10 minutes). */
function userSource(): TokenSource {
  return clientCredentials({
    tokenUrl: server.tokenUrl,
    clientId: 'frontend',
    auth: clientSecretBasic('frontend-secret-0123456789'),
    scopes: ['orders:read', 'orders:write'],
  })
}

function exchangeOf(options: Partial<TokenExchangeOptions> = {}): TokenSource {
  return tokenExchange({
    tokenUrl: server.tokenUrl,
    clientId: 'gateway',
    auth: clientSecretBasic('gateway-secret-0123456789'),
    subjectToken: userSource(),
    subjectTokenType: TOKEN_TYPES.accessToken,
    fetch: recordingFetch,
    ...options,
  })
}

/** A JWT-shaped subject token (unsigned: only its `exp` is read by the client) expiring `inMs` from now. */
function jwt(inMs: number, sub = 'alice'): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ sub, exp: Math.floor((clock.now() + inMs) / 1000) })}.c2ln`
}

/** A JWT-shaped token whose `exp` claim is `exp`, whatever it is. */
function jwtWithExp(exp: unknown): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ sub: 'alice', exp })}.c2ln`
}

function exchangeRequests(): number {
  return server.requests.filter((request) => request.grantType === EXCHANGE).length
}

/** Lets pending I/O (a background renewal against the local server) finish until `done()`. */
async function flushUntil(done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await done()) return
    await new Promise((resolve) => setImmediate(resolve))
  }
  throw new Error('the condition never held')
}

function manager(maxEntries?: number): TokenManager {
  return new TokenManager({ clock, random: () => 0.5, ...(maxEntries === undefined ? {} : { maxEntries }) })
}

beforeAll(async () => {
  server = await startTokenServer({
    clock,
    clients: [
      {
        clientId: 'frontend',
        clientSecret: 'frontend-secret-0123456789',
        allowedScopes: ['orders:read', 'orders:write'],
        tokenLifetimeMs: 600_000,
      },
      { clientId: 'gateway', clientSecret: 'gateway-secret-0123456789' },
    ],
    exchangeTargets: ['orders-api', 'billing-api', 'https://orders.example/'],
  })
  // Answers an exchange for any subject, lasting an hour, with the issued_token_type given in the query.
  local = await startLocalServer()
  local.route('/token', (req, res) => {
    const type = new URL(req.url ?? '/', 'http://x').searchParams.get('issued') ?? TOKEN_TYPES.accessToken
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(
      JSON.stringify({
        access_token: `exchanged-${local.hits('/token').length}`,
        token_type: 'Bearer',
        expires_in: 3600,
        issued_token_type: type,
      }),
    )
  })
})

afterAll(async () => {
  await server.close()
  await local.close()
})

describe('tokenExchange: the subject from another source through the same manager', () => {
  it('one subject request and one exchange serve every get; the request is RFC 8693 §2.1', async () => {
    const tokens = manager()
    const source = exchangeOf({
      audience: ['orders-api', 'billing-api'],
      resource: 'https://orders.example/',
      scopes: ['orders:write', 'orders:read'],
      requestedTokenType: TOKEN_TYPES.accessToken,
    })
    exchanges.length = 0
    const before = server.stats().tokenRequests
    const [first, second] = await Promise.all([tokens.get(source), tokens.get(source)])
    expect(second).toBe(first)
    expect(await tokens.get(source)).toBe(first)
    expect(server.stats().tokenRequests - before).toBe(2) // the subject, then the exchange
    expect(exchanges).toHaveLength(1)
    const body = exchanges[0]!
    const subject = await tokens.get(userSource())
    expect(body.get('subject_token')).toBe(subject.value)
    expect(body.get('subject_token_type')).toBe(TOKEN_TYPES.accessToken)
    expect(body.get('requested_token_type')).toBe(TOKEN_TYPES.accessToken)
    expect(body.getAll('audience')).toEqual(['billing-api', 'orders-api'])
    expect(body.getAll('resource')).toEqual(['https://orders.example/'])
    expect(body.get('scope')).toBe('orders:read orders:write')
    expect(body.has('actor_token')).toBe(false)
    // The server issued it by exchange, for the subject token's client.
    expect(server.introspect(first.value)).toMatchObject({
      active: true,
      grantType: EXCHANGE,
      clientId: 'gateway',
      subject: 'frontend',
    })
    expect(first.extra['issued_token_type']).toBe(TOKEN_TYPES.accessToken)
    // The exchanged token works at the resource.
    const api = tokens.fetch(source)
    expect((await api(server.resourceUrl)).status).toBe(200)
    await tokens.close()
  })

  it('never outlives its subject: the hour the server grants is capped at the subject’s 10 minutes', async () => {
    const tokens = manager()
    const exchanged = await tokens.get(exchangeOf())
    const subject = await tokens.get(userSource())
    expect(server.introspect(exchanged.value)!.expiresAt - clock.now()).toBe(3_600_000)
    expect(exchanged.expiresAt).toBe(subject.expiresAt)
    expect(exchanged.lifetimeMs).toBe(600_000)
    await tokens.close()
  })

  it('when the subject is renewed, the next get exchanges the new one', async () => {
    const tokens = manager()
    const source = exchangeOf()
    const first = await tokens.get(source)
    const firstSubject = await tokens.get(userSource())
    const count = exchangeRequests()
    // Past the subject's mandatory point (and the exchanged token's, capped at it).
    await clock.advanceAsync(595_000)
    const second = await tokens.get(source)
    const secondSubject = await tokens.get(userSource())
    expect(secondSubject.value).not.toBe(firstSubject.value)
    expect(second.value).not.toBe(first.value)
    expect(exchangeRequests() - count).toBe(1)
    expect(exchanges.at(-1)!.get('subject_token')).toBe(secondSubject.value)
    expect(second.expiresAt).toBe(secondSubject.expiresAt)
    await tokens.close()
  })

  it('renewed in the subject’s advisory window: one exchange per subject, none for the old one', async () => {
    const tokens = manager()
    const source = exchangeOf()
    await tokens.get(source)
    const firstSubject = await tokens.get(userSource())
    const count = exchangeRequests()
    // 80 % of the subject's 10 minutes (random 0.5): its background renewal starts.
    await clock.advanceAsync(481_000)
    const during = await tokens.get(source)
    await flushUntil(async () => (await tokens.get(userSource())).value !== firstSubject.value)
    const after = await tokens.get(source)
    expect(after.value).not.toBe(during.value)
    expect(exchangeRequests() - count).toBe(1)
    expect(exchanges.at(-1)!.get('subject_token')).toBe((await tokens.get(userSource())).value)
    await tokens.close()
  })

  it('a subject source that fails: SUBJECT_TOKEN_UNAVAILABLE with its error as cause, nothing exchanged', async () => {
    const tokens = manager()
    const count = exchangeRequests()
    const source = exchangeOf({
      subjectToken: clientCredentials({
        tokenUrl: server.tokenUrl,
        clientId: 'frontend',
        auth: clientSecretBasic('wrong-secret-0123456789'),
      }),
    })
    const error = await failure(tokens.get(source))
    expect(error.code).toBe('SUBJECT_TOKEN_UNAVAILABLE')
    expect(error.retryable).toBe(false)
    expect(error.message).toMatch(/subject token from source cc\|.*could not be obtained \(OAUTH_ERROR/)
    expect(isOAuthError(error.cause, 'invalid_client')).toBe(true)
    expect(exchangeRequests()).toBe(count)
    await tokens.close()
  })
})

describe('tokenExchange({ issuer })', () => {
  it('discovers the token endpoint once, tells the provider that URL, and shares tokens with a tokenUrl source', async () => {
    const tokens = manager()
    const discovery = new DiscoveryCache({ clock })
    const told: string[] = []
    const subject = (await userSource().fetchToken({ clock })).value
    const provider = (ctx: { tokenUrl: string }) => {
      told.push(ctx.tokenUrl)
      return subject
    }
    const options = {
      clientId: 'gateway',
      auth: clientSecretBasic('gateway-secret-0123456789'),
      subjectToken: provider,
      subjectTokenType: TOKEN_TYPES.accessToken,
      audience: 'orders-api',
      fetch: recordingFetch,
    }
    const byIssuer = tokenExchange({ ...options, issuer: server.issuer, discovery })
    const discoveredBefore = server.stats().discoveryRequests
    const before = exchangeRequests()
    const [a, b] = await Promise.all([tokens.get(byIssuer), tokens.get(byIssuer)])
    expect(b.value).toBe(a.value)
    expect(server.stats().discoveryRequests - discoveredBefore).toBe(1)
    expect(exchangeRequests() - before).toBe(1)
    expect(told).toEqual([server.tokenUrl, server.tokenUrl])
    // The same subject through a source built with the token URL: the same key, no new exchange.
    const byUrl = tokenExchange({ ...options, tokenUrl: server.tokenUrl })
    expect((await tokens.get(byUrl)).value).toBe(a.value)
    expect(exchangeRequests() - before).toBe(1)
    await tokens.close()
  })

  it('a discovery document for another issuer fails the get before the subject is read or anything is sent', async () => {
    const tokens = manager()
    let read = 0
    const wrong = tokenExchange({
      issuer: `${server.issuer}/other`,
      discovery: new DiscoveryCache({ clock }),
      clientId: 'gateway',
      auth: clientSecretBasic('gateway-secret-0123456789'),
      subjectToken: () => {
        read++
        return jwt(600_000)
      },
      subjectTokenType: TOKEN_TYPES.jwt,
      fetch: recordingFetch,
    })
    const before = exchangeRequests()
    const error = await failure(tokens.get(wrong))
    expect(error.code).toMatch(/^DISCOVERY_/)
    expect(read).toBe(0)
    expect(exchangeRequests()).toBe(before)
    await tokens.close()
  })

  it('tokenUrl and issuer together, or discovery without issuer, are TypeErrors', () => {
    const base = { subjectToken: () => 'x', subjectTokenType: TOKEN_TYPES.jwt }
    expect(() => tokenExchange({ ...base, tokenUrl: server.tokenUrl, issuer: server.issuer })).toThrow(
      /give tokenUrl or issuer, not both/,
    )
    expect(() =>
      tokenExchange({ ...base, tokenUrl: server.tokenUrl, discovery: new DiscoveryCache() }),
    ).toThrow(/discovery needs an issuer/)
    expect(() => tokenExchange(base)).toThrow(TypeError)
  })
})

describe('tokenExchange: the subject from a function', () => {
  it('the same subject is exchanged once; a new subject once more; the key holds neither', async () => {
    const tokens = manager()
    let subject = (await userSource().fetchToken()).value
    const seenKeys = new Set<string>()
    const source = exchangeOf({ subjectToken: () => subject })
    const count = exchangeRequests()
    const a = await Promise.all([tokens.get(source), tokens.get(source), tokens.get(source)])
    expect(new Set(a).size).toBe(1)
    expect(exchangeRequests() - count).toBe(1)
    subject = (await userSource().fetchToken()).value
    const b = await tokens.get(source)
    expect(b.value).not.toBe(a[0].value)
    expect(await tokens.get(source)).toBe(b)
    expect(exchangeRequests() - count).toBe(2)
    expect(exchanges.at(-1)!.get('subject_token')).toBe(subject)
    for (const event of [source.key, JSON.stringify(source)]) seenKeys.add(event)
    for (const shown of seenKeys) expect(shown).not.toContain(subject)
    expect(tokens.peek(source)).toBeUndefined()
    await tokens.close()
  })

  it('entries of old subjects age out of the bounded cache', async () => {
    const tokens = manager(3)
    let subject = ''
    const source = exchangeOf({ subjectToken: () => subject })
    const values = new Set<string>()
    for (let i = 0; i < 8; i++) {
      subject = (await userSource().fetchToken()).value
      values.add((await tokens.get(source)).value)
      expect(tokens.stats().entries).toBeLessThanOrEqual(3)
    }
    expect(values.size).toBe(8)
    await tokens.close()
  })

  it('invalidate() drops the current subject’s exchanged token only if it is the one given', async () => {
    const tokens = manager()
    const subject = (await userSource().fetchToken()).value
    const source = exchangeOf({ subjectToken: () => subject })
    const first = await tokens.get(source)
    expect(await tokens.invalidate(source, { token: 'an-older-token' })).toBe(false)
    expect(await tokens.get(source)).toBe(first)
    expect(await tokens.invalidate(source, { token: first })).toBe(true)
    const second = await tokens.get(source)
    expect(second.value).not.toBe(first.value)
    await tokens.close()
  })

  it('a JWT subject caps the exchanged token at its exp', async () => {
    const tokens = manager()
    const subject = jwt(120_000)
    const source = tokenExchange({
      tokenUrl: `${local.origin}/token`,
      subjectToken: () => subject,
      subjectTokenType: TOKEN_TYPES.jwt,
      clock,
    })
    const token = await tokens.get(source)
    expect(token.expiresAt).toBe(Math.floor((clock.now() + 120_000) / 1000) * 1000)
    expect(token.lifetimeMs).toBeLessThanOrEqual(120_000)
    await tokens.close()
  })

  it('an actor token is sent with its type, and is part of the key', async () => {
    const subject = (await userSource().fetchToken()).value
    const actorA = (await userSource().fetchToken()).value
    const actorB = (await userSource().fetchToken()).value
    let actor = actorA
    const tokens = manager()
    const source = exchangeOf({
      subjectToken: () => subject,
      actorToken: () => actor,
      actorTokenType: TOKEN_TYPES.accessToken,
    })
    const count = exchangeRequests()
    const a = await tokens.get(source)
    expect(exchanges.at(-1)!.get('actor_token')).toBe(actorA)
    expect(exchanges.at(-1)!.get('actor_token_type')).toBe(TOKEN_TYPES.accessToken)
    actor = actorB
    const b = await tokens.get(source)
    expect(b.value).not.toBe(a.value)
    expect(exchangeRequests() - count).toBe(2)
    await tokens.close()
  })

  it('works without a manager: fetchToken() reads the subject and exchanges it', async () => {
    const token = await exchangeOf().fetchToken()
    expect(server.introspect(token.value)).toMatchObject({ grantType: EXCHANGE, subject: 'frontend' })
  })
})

/** A subject provider that never answers and ignores its signal; `asked` settles once it is called. */
function hungProvider(): { readonly provider: ExchangeTokenProvider; readonly asked: Promise<void> } {
  let called: () => void = () => undefined
  const asked = new Promise<void>((resolve) => (called = resolve))
  return {
    provider: () => {
      called()
      return new Promise<string>(() => undefined)
    },
    asked,
  }
}

let hung = hungProvider()

/** The rows of docs/ERRORS.md "Bad token-exchange inputs and answers", in order. */
const BAD: readonly {
  readonly name: string
  readonly code: string
  readonly error?: string
  readonly retryable: boolean
  /** Whether a token-exchange request reaches a server. */
  readonly sent: boolean
  readonly message: RegExp
  readonly make: () => Promise<TokenSource> | TokenSource
  /** Moves the test along while the `get` is pending (the clock, for a time limit). */
  readonly drive?: () => Promise<void>
}[] = [
  {
    name: 'answer without issued_token_type',
    retryable: false,
    code: 'INVALID_ISSUED_TOKEN_TYPE',
    sent: true,
    message: /has no issued_token_type string \(RFC 8693 §2\.2\.1 requires it\)/,
    make: async () => {
      const subject = (await userSource().fetchToken()).value
      server.inject({ kind: 'token', issuedTokenType: null })
      return exchangeOf({ subjectToken: () => subject })
    },
  },
  {
    name: 'answer with an issued_token_type other than the requested one',
    retryable: false,
    code: 'INVALID_ISSUED_TOKEN_TYPE',
    sent: true,
    message: /issued_token_type other than the requested urn:ietf:params:oauth:token-type:access_token/,
    make: async () => {
      const subject = (await userSource().fetchToken()).value
      server.inject({ kind: 'token', issuedTokenType: TOKEN_TYPES.idToken })
      return exchangeOf({ subjectToken: () => subject, requestedTokenType: TOKEN_TYPES.accessToken })
    },
  },
  {
    name: 'subject provider throws',
    retryable: true,
    code: 'SUBJECT_TOKEN_UNAVAILABLE',
    sent: false,
    message: /the subject token from provider failed \(its own error is error\.cause\)/,
    make: () =>
      exchangeOf({
        subjectToken: () => {
          throw new Error('no user on this request')
        },
      }),
  },
  {
    name: 'subject provider returns nothing',
    retryable: true,
    code: 'SUBJECT_TOKEN_UNAVAILABLE',
    sent: false,
    message: /the subject token from provider is empty/,
    make: () => exchangeOf({ subjectToken: () => '  ' }),
  },
  {
    name: 'subject source fails',
    retryable: false,
    code: 'SUBJECT_TOKEN_UNAVAILABLE',
    sent: false,
    message: /the subject token from source .* could not be obtained \(OAUTH_ERROR/,
    make: () =>
      exchangeOf({
        subjectToken: clientCredentials({
          tokenUrl: server.tokenUrl,
          clientId: 'nobody',
          auth: clientSecretBasic('nobody-secret-0123456789'),
        }),
      }),
  },
  {
    name: 'expired subject JWT',
    retryable: true,
    code: 'SUBJECT_TOKEN_EXPIRED',
    sent: false,
    message: /the subject token from provider expired 30 s ago \(exp .*\); nothing was sent/,
    make: () => exchangeOf({ subjectToken: () => jwt(-30_000), subjectTokenType: TOKEN_TYPES.jwt }),
  },
  {
    name: 'subject provider does not answer within timeoutMs (200)',
    retryable: true,
    code: 'SUBJECT_TOKEN_UNAVAILABLE',
    sent: false,
    message: /the subject token from provider did not answer within 200 ms/,
    // It ignores its signal too: the deadline is the source's, not the provider's good will.
    make: () => {
      hung = hungProvider()
      return exchangeOf({ subjectToken: hung.provider, timeoutMs: 200 })
    },
    // The time limit runs on the manager's clock: moved past it once the provider is asked.
    drive: async () => {
      await hung.asked
      await clock.advanceAsync(200)
    },
  },
  {
    name: 'subject JWT with exp -1e20 (outside the range of dates)',
    retryable: true,
    code: 'SUBJECT_TOKEN_EXPIRED',
    sent: false,
    message:
      /the subject token from provider expired \d+ s ago \(exp -100000000000000000000\); nothing was sent/,
    make: () => exchangeOf({ subjectToken: () => jwtWithExp(-1e20), subjectTokenType: TOKEN_TYPES.jwt }),
  },
  {
    name: 'actor provider throws',
    retryable: true,
    code: 'ACTOR_TOKEN_UNAVAILABLE',
    sent: false,
    message: /the actor token from provider failed/,
    make: () =>
      exchangeOf({
        actorToken: () => Promise.reject(new Error('no actor')),
        actorTokenType: TOKEN_TYPES.accessToken,
      }),
  },
  {
    name: 'expired actor JWT',
    retryable: true,
    code: 'ACTOR_TOKEN_EXPIRED',
    sent: false,
    message: /the actor token from provider expired 5 s ago/,
    make: () => exchangeOf({ actorToken: () => jwt(-5_000), actorTokenType: TOKEN_TYPES.jwt }),
  },
  {
    name: 'invalid_grant: the subject token is not active',
    retryable: false,
    code: 'OAUTH_ERROR',
    error: 'invalid_grant',
    sent: true,
    message: /invalid_grant/,
    make: async () => {
      const subject = (await userSource().fetchToken()).value
      server.revoke(subject)
      return exchangeOf({ subjectToken: () => subject })
    },
  },
  {
    name: 'invalid_target: an audience the server does not know',
    retryable: false,
    code: 'OAUTH_ERROR',
    error: 'invalid_target',
    sent: true,
    message: /invalid_target/,
    make: () => exchangeOf({ audience: 'somewhere-else' }),
  },
  {
    name: 'invalid_request: a subject token type the server does not take',
    retryable: false,
    code: 'OAUTH_ERROR',
    error: 'invalid_request',
    sent: true,
    message: /invalid_request/,
    make: () => exchangeOf({ subjectTokenType: TOKEN_TYPES.saml2 }),
  },
  {
    name: 'invalid_scope: a scope the subject does not hold',
    retryable: false,
    code: 'OAUTH_ERROR',
    error: 'invalid_scope',
    sent: true,
    message: /invalid_scope/,
    make: () => exchangeOf({ scopes: ['orders:admin'] }),
  },
]

describe('bad token-exchange inputs and answers (docs/ERRORS.md)', () => {
  it.each(BAD.map((row, index) => [index + 1, row] as const))('row %i', async (_index, row) => {
    const tokens = manager()
    const source = await row.make()
    const count = exchangeRequests()
    const pending = failure(tokens.get(source))
    await row.drive?.()
    const error = await pending
    expect(error.code).toBe(row.code)
    expect(error.retryable).toBe(row.retryable)
    expect(error.message).toMatch(row.message)
    if (row.error !== undefined) {
      expect(error).toBeInstanceOf(OAuthError)
      expect((error as OAuthError).error).toBe(row.error)
    }
    expect(exchangeRequests() - count).toBe(row.sent ? 1 : 0)
    await tokens.close()
  })

  it('docs/ERRORS.md lists the same rows', () => {
    const rows = errorsTableRows('token-exchange-inputs')
    expect(rows).toEqual(
      BAD.map((row, index) => [
        String(index + 1),
        row.name,
        row.error === undefined ? row.code : `${row.code} (${row.error})`,
        row.retryable ? 'yes' : 'no',
        row.sent ? 'yes' : 'no',
      ]),
    )
  })

  it('construction mistakes are TypeErrors', () => {
    const base = {
      tokenUrl: 'https://idp.example/token',
      subjectToken: () => 'subject',
      subjectTokenType: TOKEN_TYPES.accessToken,
    }
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ subjectTokenType: undefined }, /subjectTokenType must be a token type URI/],
      [
        { subjectToken: 'a-raw-token' },
        /subjectToken must be a function returning the token or a TokenSource/,
      ],
      [{ actorToken: () => 'actor' }, /actorToken and actorTokenType go together/],
      [{ actorTokenType: TOKEN_TYPES.jwt }, /actorToken and actorTokenType go together/],
      [{ requestedTokenType: 'has space' }, /requestedTokenType must be a token type URI/],
      [{ audience: ['ok', ''] }, /audience must be a non-empty string or an array of them/],
      [{ auth: clientSecretBasic('s3cret-value') }, /auth needs a clientId/],
      [{ extraParams: { subject_token: 'x' } }, /extraParams must not set subject_token/],
      [{ tokenUrl: 'http://idp.example/token' }, /https/],
    ]
    for (const [change, message] of cases) {
      expect(() => tokenExchange({ ...base, ...change })).toThrow(message)
    }
  })
})

describe('tokenExchange with a shared store', () => {
  it('two managers sharing a store exchange one subject once: the per-subject key is the same everywhere', async () => {
    const store = memoryStore()
    const a = new TokenManager({ clock, random: () => 0.5, store })
    const b = new TokenManager({ clock, random: () => 0.5, store })
    const subject = (await userSource().fetchToken()).value
    const count = exchangeRequests()
    const fromA = await a.get(exchangeOf({ subjectToken: () => subject }))
    const fromB = await b.get(exchangeOf({ subjectToken: () => subject }))
    expect(fromB.value).toBe(fromA.value)
    expect(exchangeRequests() - count).toBe(1)
    expect(b.stats().storeHits).toBe(1)
    await a.close()
    await b.close()
  })
})

describe('the test token server’s token-exchange grant', () => {
  async function post(fields: [string, string][]): Promise<{ status: number; error: unknown }> {
    const response = await fetch(server.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([['grant_type', EXCHANGE], ...fields]),
    })
    const body = (await response.json()) as { error?: unknown }
    return { status: response.status, error: body.error }
  }

  it('refuses missing, repeated and unpaired parameters, and an expired subject', async () => {
    const subject = (await userSource().fetchToken()).value
    const type: [string, string] = ['subject_token_type', TOKEN_TYPES.accessToken]
    expect(await post([type])).toEqual({ status: 400, error: 'invalid_request' })
    expect(await post([['subject_token', subject]])).toEqual({ status: 400, error: 'invalid_request' })
    expect(await post([['subject_token', subject], ['subject_token', subject], type])).toEqual({
      status: 400,
      error: 'invalid_request',
    })
    expect(await post([['subject_token', subject], type, ['actor_token', subject]])).toEqual({
      status: 400,
      error: 'invalid_request',
    })
    expect(await post([['subject_token', 'never-issued'], type])).toEqual({
      status: 400,
      error: 'invalid_grant',
    })
    expect((await post([['subject_token', subject], type])).status).toBe(200)
    await clock.advanceAsync(600_000)
    expect(await post([['subject_token', subject], type])).toEqual({ status: 400, error: 'invalid_grant' })
  })
})

describe('TokenSource.resolve in the manager', () => {
  it('ctx.get shares the manager’s cache; a get after close() is MANAGER_CLOSED', async () => {
    const tokens = manager()
    let fetched = 0
    const inner = tokenSource('inner', () => {
      fetched++
      return { access_token: `inner-${fetched}`, expires_in: 600 }
    })
    const outer: TokenSource = {
      key: 'outer',
      fetchToken: () => Promise.reject(new Error('never called: the manager resolves')),
      resolve: async (ctx) => {
        const token = await ctx.get(inner)
        return tokenSource(`bound-${token.value}`, () => ({ access_token: `for-${token.value}` }))
      },
    }
    const [a, b] = await Promise.all([tokens.get(outer), tokens.get(outer)])
    expect(a.value).toBe('for-inner-1')
    expect(b).toBe(a)
    expect(await tokens.get(inner)).toMatchObject({ value: 'inner-1' })
    expect(fetched).toBe(1)
    expect(tokens.stats().entries).toBe(2) // inner and bound, never outer
    await tokens.close()
    await expect(tokens.get(outer)).rejects.toMatchObject({ code: 'MANAGER_CLOSED' })
  })

  it('a source that resolves to one that must be resolved again is a TypeError', async () => {
    const tokens = manager()
    const loop: TokenSource = {
      key: 'loop',
      fetchToken: () => Promise.reject(new Error('unused')),
      resolve: () => Promise.resolve(loop),
    }
    await expect(tokens.get(loop)).rejects.toThrow(/resolved to a source that must be resolved again/)
    await tokens.close()
  })

  it('close() ends a get waiting for a subject provider that never answers: MANAGER_CLOSED', async () => {
    const tokens = manager()
    const source = exchangeOf({ subjectToken: () => new Promise<string>(() => undefined) })
    const pending = failure(tokens.get(source))
    await tokens.close()
    expect(await pending).toMatchObject({ code: 'MANAGER_CLOSED' })
  })

  it('a subject that resolves through the exchange itself fails after 8 nested resolutions, not by overflowing the stack', async () => {
    const tokens = manager()
    let resolutions = 0
    // A hand-written source whose token is the exchange's own result: a cycle.
    const proxy: TokenSource = {
      key: 'proxy-of-the-exchange',
      fetchToken: () => Promise.reject(new Error('unused')),
      resolve: (ctx) => {
        resolutions++
        return (exchange.resolve as NonNullable<TokenSource['resolve']>)(ctx)
      },
    }
    const exchange = exchangeOf({ subjectToken: proxy })
    const before = exchangeRequests()
    const error = await failure(tokens.get(exchange))
    expect(error.code).toBe('SUBJECT_TOKEN_UNAVAILABLE')
    let innermost: unknown = error
    while ((innermost as { cause?: unknown }).cause !== undefined) innermost = (innermost as Error).cause
    expect(innermost).toBeInstanceOf(TypeError)
    expect(String(innermost)).toMatch(
      /resolved inside 8 other resolutions; does a source's subject resolve through the source itself/,
    )
    expect(resolutions).toBe(7) // the exchange's own resolution, then 7 of the proxy inside it
    expect(exchangeRequests() - before).toBe(0)
    await tokens.close()
  })

  it('a caller’s signal ends its wait for the subject', async () => {
    const tokens = manager()
    const controller = new AbortController()
    const source = exchangeOf({ subjectToken: () => new Promise<string>(() => undefined) })
    const pending = tokens.get(source, { signal: controller.signal })
    controller.abort(new Error('caller gave up'))
    await expect(pending).rejects.toThrow('caller gave up')
    await tokens.close()
  })
})

describe('tokenExchange keys', () => {
  it('the configuration key names the subject source, never a token; a different audience is a different key', () => {
    const source = exchangeOf({ audience: 'orders-api' })
    expect(source.key).toMatch(/^token-exchange\|/)
    expect(source.key).toContain('|aud=orders-api')
    expect(exchangeOf({ audience: 'billing-api' }).key).not.toBe(source.key)
    expect(exchangeOf({ audience: ['a', 'b'] }).key).toBe(exchangeOf({ audience: ['b', 'a', 'b'] }).key)
    expect(exchangeOf({ audience: 'a b' }).key).not.toBe(exchangeOf({ audience: ['a', 'b'] }).key)
    expect(JSON.parse(JSON.stringify(source))).toMatchObject({
      kind: 'tokenExchange',
      subject: `source ${userSource().key}`,
    })
  })
})
