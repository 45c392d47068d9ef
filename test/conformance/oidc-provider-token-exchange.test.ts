/**
 * Token exchange (RFC 8693) against panva's oidc-provider (v9), an authorization server we did
 * not write, run in-process on 127.0.0.1. oidc-provider ships no token-exchange grant; the test
 * registers one through `provider.registerGrantType`, which (as a deployment would) verifies the
 * subject and actor tokens as JWT access tokens the provider itself signed, checks the audiences
 * and the requested token type, and issues a new access token for the validated subject. The
 * subject comes from another tokenkeeper source (the provider's own client-credentials grant)
 * through the same manager, or from a function.
 */
import { generateKeyPairSync } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { createLocalJWKSet, jwtVerify, SignJWT, type JWTPayload } from 'jose'
import type { errors as OidcErrorsValue, GrantContext, Provider } from 'oidc-provider'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  isOAuthError,
  OAuthError,
  TOKEN_TYPES,
  TokenManager,
  tokenExchange,
  type TokenExchangeOptions,
  type TokenSource,
} from '../../src/index.js'
import { providerSigningKeys } from '../support/oidc-provider-keys.js'
import { listenOnLoopback, loadOidcProvider } from '../support/oidc-provider.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const API = 'https://api.example.test/'
const AUDIENCES = ['orders-api', 'billing-api']
const FRONTEND_SECRET = 'frontend-secret-0123456789abcdef'
const GATEWAY_SECRET = 'gateway-secret-0123456789abcdef'
/** Subject tokens live 10 minutes; exchanged tokens an hour, which the client caps. */
const SUBJECT_TTL = 600
const EXCHANGED_TTL = 3600

type OidcErrors = typeof OidcErrorsValue

const { providerSigningJwk, providerJwks } = providerSigningKeys()

let server: Server
let provider: Provider
let issuer: string
let tokenUrl: string
/** What the grant handler saw and decided, one entry per exchange it completed. */
const exchanged: {
  subjectToken: string
  subject: JWTPayload
  actor: JWTPayload | undefined
  audiences: string[]
  scope: string | undefined
  expiresIn: number
}[] = []

function asList(value: unknown): string[] {
  if (value === undefined || value === null) return []
  return (Array.isArray(value) ? value : [value]).map(String)
}

/** A token-exchange grant as a deployment of oidc-provider would register it. */
function registerTokenExchangeGrant(target: Provider, errors: OidcErrors): void {
  const verify = async (token: unknown, type: unknown, what: string): Promise<JWTPayload> => {
    if (type !== TOKEN_TYPES.accessToken) throw new errors.InvalidRequest(`unsupported ${what}_type`)
    if (typeof token !== 'string') throw new errors.InvalidRequest(`${what} missing`)
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(providerJwks), { issuer, audience: API })
      return payload
    } catch {
      throw new errors.InvalidGrant(`${what} rejected`)
    }
  }
  target.registerGrantType(
    EXCHANGE,
    async (ctx: GrantContext) => {
      const params = ctx.oidc.params
      const requested = params['requested_token_type']
      if (requested !== undefined && requested !== TOKEN_TYPES.accessToken) {
        throw new errors.InvalidRequest('unsupported requested_token_type')
      }
      const subject = await verify(params['subject_token'], params['subject_token_type'], 'subject_token')
      const actor =
        params['actor_token'] === undefined
          ? undefined
          : await verify(params['actor_token'], params['actor_token_type'], 'actor_token')
      const audiences = asList(params['audience'])
      if (audiences.some((audience) => !AUDIENCES.includes(audience))) throw new errors.InvalidTarget()
      const scope = typeof params['scope'] === 'string' ? params['scope'] : undefined
      const token = new target.ClientCredentials({ client: ctx.oidc.client, scope: scope ?? '' })
      const value = await token.save()
      exchanged.push({
        subjectToken: params['subject_token'] as string,
        subject,
        actor,
        audiences,
        scope,
        expiresIn: token.expiration,
      })
      ctx.body = {
        access_token: value,
        issued_token_type: TOKEN_TYPES.accessToken,
        token_type: 'Bearer',
        expires_in: token.expiration,
        ...(scope === undefined ? {} : { scope }),
      }
    },
    [
      'subject_token',
      'subject_token_type',
      'actor_token',
      'actor_token_type',
      'requested_token_type',
      'audience',
      'scope',
    ],
    ['audience'],
  )
}

beforeAll(async () => {
  const { default: ProviderClass, errors } = await loadOidcProvider()
  server = createServer()
  const port = await listenOnLoopback(server)
  issuer = `http://127.0.0.1:${port}`
  tokenUrl = `${issuer}/token`
  const defaults = {
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }
  provider = new ProviderClass(issuer, {
    clients: [
      {
        ...defaults,
        client_id: 'frontend',
        client_secret: FRONTEND_SECRET,
        grant_types: ['client_credentials'],
        scope: 'api:read api:write',
      },
      {
        ...defaults,
        client_id: 'gateway',
        client_secret: GATEWAY_SECRET,
        grant_types: ['client_credentials', EXCHANGE],
        scope: 'api:read api:write',
      },
    ],
    jwks: { keys: [providerSigningJwk] },
    scopes: ['api:read', 'api:write'],
    ttl: {
      ClientCredentials: (ctx: GrantContext | undefined) =>
        ctx?.oidc.params['grant_type'] === EXCHANGE ? EXCHANGED_TTL : SUBJECT_TTL,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API,
        getResourceServerInfo: () => ({
          scope: 'api:read api:write',
          audience: API,
          accessTokenFormat: 'jwt',
        }),
      },
    },
  })
  registerTokenExchangeGrant(provider, errors)
  server.on('request', provider.callback())
})

afterAll(async () => {
  vi.restoreAllMocks()
  if (server !== undefined) {
    server.closeAllConnections()
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())))
  }
})

/** The frontend's own token, a JWT access token the provider signs: the subject of the exchanges. */
function frontend(): TokenSource {
  return clientCredentials({
    tokenUrl,
    clientId: 'frontend',
    auth: clientSecretBasic(FRONTEND_SECRET),
    scopes: ['api:read'],
  })
}

function exchangeOf(options: Partial<TokenExchangeOptions> = {}): TokenSource {
  return tokenExchange({
    tokenUrl,
    clientId: 'gateway',
    auth: clientSecretBasic(GATEWAY_SECRET),
    subjectToken: frontend(),
    subjectTokenType: TOKEN_TYPES.accessToken,
    ...options,
  })
}

describe('oidc-provider: token exchange (RFC 8693) through a registered grant', () => {
  it('exchanges the subject from another source once for every get, for both audiences, capped at the subject’s expiry', async () => {
    await using tokens = new TokenManager()
    const source = exchangeOf({
      audience: AUDIENCES,
      scopes: ['api:read'],
      requestedTokenType: TOKEN_TYPES.accessToken,
    })
    const count = exchanged.length
    const [a, b] = await Promise.all([tokens.get(source), tokens.get(source)])
    expect(b).toBe(a)
    expect(await tokens.get(source)).toBe(a)
    expect(exchanged.length - count).toBe(1)
    const seen = exchanged.at(-1)!
    const subject = await tokens.get(frontend())
    expect(seen.subjectToken).toBe(subject.value)
    // The provider verified the subject: a token it issued to the frontend.
    expect(seen.subject['client_id']).toBe('frontend')
    expect(seen.audiences.sort()).toEqual([...AUDIENCES].sort())
    expect(seen.scope).toBe('api:read')
    expect(a.type).toBe('Bearer')
    expect(a.scopes).toEqual(['api:read'])
    expect(a.extra['issued_token_type']).toBe(TOKEN_TYPES.accessToken)
    // The provider granted an hour; the subject lasts 10 minutes, and so does the exchanged token.
    expect(seen.expiresIn).toBe(EXCHANGED_TTL)
    expect(subject.lifetimeMs).toBe(SUBJECT_TTL * 1000)
    expect(a.expiresAt).toBe(subject.expiresAt)
    expect(a.value).not.toBe(subject.value)
  })

  it('a rotated subject from a function is exchanged anew; the same one is not', async () => {
    await using tokens = new TokenManager()
    let subject = (await frontend().fetchToken()).value
    const source = exchangeOf({ subjectToken: () => subject })
    const count = exchanged.length
    const first = await tokens.get(source)
    await tokens.get(source)
    expect(exchanged.length - count).toBe(1)
    subject = (await frontend().fetchToken()).value
    const second = await tokens.get(source)
    expect(second.value).not.toBe(first.value)
    expect(exchanged.length - count).toBe(2)
    expect(exchanged.at(-1)!.subjectToken).toBe(subject)
    // The function's subject is a JWT: its exp caps the exchanged token.
    const exp = (await jwtVerify(subject, createLocalJWKSet(providerJwks))).payload.exp!
    // (exp is wall time; the token's times are on the manager's monotonic clock, anchored to it.)
    expect(Math.abs(second.expiresAt - exp * 1000)).toBeLessThan(1000)
    expect(second.lifetimeMs).toBeLessThanOrEqual(SUBJECT_TTL * 1000)
  })

  it('delegation: the actor token is verified and sent with its type', async () => {
    await using tokens = new TokenManager()
    const actor = clientCredentials({
      tokenUrl,
      clientId: 'gateway',
      auth: clientSecretBasic(GATEWAY_SECRET),
    })
    const source = exchangeOf({ actorToken: actor, actorTokenType: TOKEN_TYPES.accessToken })
    await tokens.get(source)
    expect(exchanged.at(-1)!.actor?.['client_id']).toBe('gateway')
    expect(exchanged.at(-1)!.subject['client_id']).toBe('frontend')
  })

  it('RFC 8693 §2.2.2 refusals are typed OAuth errors', async () => {
    await using tokens = new TokenManager()
    const cases: [TokenSource, string][] = [
      [exchangeOf({ audience: 'elsewhere-api' }), 'invalid_target'],
      [exchangeOf({ requestedTokenType: TOKEN_TYPES.idToken }), 'invalid_request'],
      [exchangeOf({ subjectTokenType: TOKEN_TYPES.jwt }), 'invalid_request'],
      [exchangeOf({ subjectToken: () => forgedSubject }), 'invalid_grant'],
    ]
    const forgedSubject = await new SignJWT({ client_id: 'frontend' })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(issuer)
      .setAudience(API)
      .setExpirationTime('5m')
      .sign(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)
    for (const [source, error] of cases) {
      const thrown = await tokens.get(source).catch((caught: unknown) => caught)
      expect(thrown).toBeInstanceOf(OAuthError)
      expect(isOAuthError(thrown, error)).toBe(true)
      expect((thrown as OAuthError).status).toBe(400)
      expect((thrown as OAuthError).retryable).toBe(false)
      expect((thrown as OAuthError).message).not.toContain(forgedSubject)
    }
  })
})
