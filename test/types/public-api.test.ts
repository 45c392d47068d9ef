// Type tests: checked by `npm run typecheck` (tsc), and run as ordinary tests by vitest.
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  AccessToken,
  clientCredentials,
  clientSecretBasic,
  DiscoveryCache,
  dpopKey,
  generateDpopKey,
  isOAuthError,
  isTokenkeeperError,
  memoryStore,
  selfSignedTlsClientAuth,
  tlsClientAuth,
  TOKEN_TYPES,
  TokenManager,
  tokenExchange,
  tokenSource,
  type AnyTokenkeeperError,
  type DpopKey,
  type GeneratedDpopKey,
  type TokenBinding,
  type ExchangeTokenContext,
  type TokenSourceContext,
  type OAuthError,
  type TokenkeeperErrorCode,
  type TokenSource,
  type TokenStore,
} from '../../src/index.js'

describe('public types', () => {
  const source = clientCredentials({
    tokenUrl: 'https://idp.example/token',
    clientId: 'svc',
    auth: clientSecretBasic('secret-value'),
  })

  it('sources and manager', () => {
    expectTypeOf(source).toEqualTypeOf<TokenSource>()
    expectTypeOf(source.key).toEqualTypeOf<string>()
    const tokens = new TokenManager({ store: memoryStore(), marginMs: 30_000, proactive: { idleMs: 60_000 } })
    expectTypeOf(tokens.get(source)).toEqualTypeOf<Promise<AccessToken>>()
    expectTypeOf(tokens.peek(source)).toEqualTypeOf<AccessToken | undefined>()
    expectTypeOf(tokens.invalidate(source, { token: 'x' })).toEqualTypeOf<Promise<boolean>>()
    expectTypeOf(tokens.fetch(source)).toEqualTypeOf<typeof fetch>()
    expectTypeOf(tokens.stats().hits).toEqualTypeOf<number>()
    expectTypeOf(memoryStore()).toMatchTypeOf<TokenStore>()
    // @ts-expect-error durations are numbers of milliseconds, not strings
    expect(() => new TokenManager({ marginMs: '5m' })).toThrow(TypeError)
    // @ts-expect-error there is no `timeout` option; it is `lockTtlMs` / the source's `timeoutMs`
    new TokenManager({ timeout: 5 })
  })

  it('a source by issuer instead of tokenUrl', () => {
    const byIssuer = clientCredentials({
      issuer: new URL('https://idp.example'),
      clientId: 'svc',
      auth: clientSecretBasic('secret-value'),
      discovery: new DiscoveryCache({ maxAgeMs: 60_000 }),
    })
    expectTypeOf(byIssuer).toEqualTypeOf<TokenSource>()
    expectTypeOf<TokenSource['whenKeyKnown']>().toEqualTypeOf<(() => Promise<void> | undefined) | undefined>()
    expectTypeOf(new DiscoveryCache().peek('https://idp.example')?.tokenEndpoint).toEqualTypeOf<
      URL | undefined
    >()
    expect(byIssuer.key).toBe(
      `cc|discovery:https://idp.example/${source.key.slice('cc|https://idp.example/token'.length)}`,
    )
  })

  it('token exchange', () => {
    const exchange = tokenExchange({
      tokenUrl: 'https://idp.example/token',
      subjectToken: (ctx) => {
        expectTypeOf(ctx).toEqualTypeOf<ExchangeTokenContext>()
        return Promise.resolve('subject')
      },
      subjectTokenType: TOKEN_TYPES.accessToken,
      actorToken: source,
      actorTokenType: TOKEN_TYPES.accessToken,
      audience: ['a', 'b'],
    })
    expectTypeOf(exchange).toEqualTypeOf<TokenSource>()
    expectTypeOf<TokenSource['resolve']>().toEqualTypeOf<
      ((context: TokenSourceContext) => Promise<TokenSource>) | undefined
    >()
    expectTypeOf(TOKEN_TYPES.jwt).toEqualTypeOf<'urn:ietf:params:oauth:token-type:jwt'>()
    expect(() =>
      tokenExchange({
        tokenUrl: 'https://idp.example/token',
        // @ts-expect-error the subject token is a function or a source, never a raw string
        subjectToken: 'raw',
        subjectTokenType: TOKEN_TYPES.jwt,
      }),
    ).toThrow(TypeError)
  })

  it('DPoP and mutual TLS', async () => {
    const pair = await generateDpopKey('EdDSA')
    expectTypeOf(pair).toEqualTypeOf<GeneratedDpopKey>()
    const key = dpopKey(pair)
    expectTypeOf(key).toEqualTypeOf<DpopKey>()
    expectTypeOf(key.thumbprint).toEqualTypeOf<string>()
    const bound = clientCredentials({
      tokenUrl: 'https://idp.example/token',
      clientId: 'svc',
      auth: clientSecretBasic('secret-value'),
      dpop: key,
      requireDpopBinding: true,
    })
    expectTypeOf(bound.dpop).toEqualTypeOf<DpopKey | undefined>()
    expectTypeOf<ReturnType<TokenManager['headers']>>().toEqualTypeOf<Promise<Record<string, string>>>()
    expectTypeOf<AccessToken['binding']>().toEqualTypeOf<TokenBinding | undefined>()
    expect(() =>
      // @ts-expect-error a key pair needs both keys
      dpopKey({ privateKey: pair.privateKey }),
    ).toThrow(TypeError)
    expectTypeOf(tlsClientAuth).parameter(0).toHaveProperty('cert')
    expectTypeOf(selfSignedTlsClientAuth).returns.toHaveProperty('method')
    expect(key.alg).toBe('EdDSA')
  })

  it('events are typed', () => {
    const tokens = new TokenManager()
    // @ts-expect-error only the manager publishes its events
    expect(tokens.emit).toBeUndefined()
    tokens.on('refreshFailure', (event) => {
      expectTypeOf(event.code).toEqualTypeOf<TokenkeeperErrorCode | 'UNKNOWN'>()
      expectTypeOf(event.retryAt).toEqualTypeOf<number>()
    })
    // @ts-expect-error unknown event name
    tokens.on('refreshed', () => undefined)
  })

  it('errors narrow', () => {
    const error: unknown = new Error('x')
    if (isTokenkeeperError(error)) expectTypeOf(error).toEqualTypeOf<AnyTokenkeeperError>()
    if (isOAuthError(error, 'invalid_client'))
      expectTypeOf(error.error_description).toEqualTypeOf<string | undefined>()
    expectTypeOf<OAuthError['error']>().toEqualTypeOf<string>()
  })

  it('token fields are read-only', () => {
    const token = new AccessToken({ value: 'v', type: 'Bearer', scopes: [], issuedAt: 0, expiresAt: 1 })
    expect(() => {
      // @ts-expect-error tokens are immutable
      token.expiresAt = 5
    }).toThrow(TypeError)
    expectTypeOf(token.scopes).toEqualTypeOf<readonly string[]>()
    expectTypeOf(tokenSource('k', () => token)).toEqualTypeOf<TokenSource>()
  })
})
