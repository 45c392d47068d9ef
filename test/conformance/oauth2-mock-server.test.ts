/**
 * Conformance against `oauth2-mock-server` (AXA), a token server widely used in other projects'
 * tests, run on 127.0.0.1. Its `beforeResponse` and `beforeTokenSigning` hooks make it answer
 * the way real servers fail, and tokenkeeper must turn each answer into the right typed error.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { OAuth2Server, type MutableResponse } from 'oauth2-mock-server'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { systemClock } from '../../src/clock.js'
import {
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  isOAuthError,
  isTokenkeeperError,
  OAuthError,
  type ClientAuth,
  type TokenkeeperError,
  type TokenSource,
} from '../../src/index.js'

/** oauth2-mock-server's fixed lifetime for every token it issues. */
const MOCK_TTL_SECONDS = 3600
const CLIENT_ID = 'svc-reports'
const CLIENT_SECRET = 's3cret:with+chars/needing%encoding'

let server: OAuth2Server
let base: string
let tokenUrl: string
let jwksUrl: URL

/** The request behind a hook, typed: oauth2-mock-server parses the form into `body`. */
type HookRequest = IncomingMessage & { body: Record<string, unknown>; res: ServerResponse }

function source(auth: ClientAuth = clientSecretBasic(CLIENT_SECRET), scopes = ['reports:read']): TokenSource {
  return clientCredentials({ tokenUrl, clientId: CLIENT_ID, auth, scopes })
}

/** Makes the next token response the given one. */
function nextResponse(
  statusCode: number,
  body: MutableResponse['body'],
  headers: Record<string, string> = {},
): void {
  server.service.once('beforeResponse', (response: MutableResponse, req: HookRequest) => {
    response.statusCode = statusCode
    response.body = body
    for (const [name, value] of Object.entries(headers)) req.res.setHeader(name, value)
  })
}

async function rejection(promise: Promise<unknown>): Promise<TokenkeeperError> {
  try {
    await promise
  } catch (error) {
    expect(isTokenkeeperError(error)).toBe(true)
    return error as TokenkeeperError
  }
  throw new Error('expected the token request to fail')
}

/** Parses an RFC 6749 §2.3.1 Basic header the way a conforming server must: decode, then form-decode. */
function basicCredentials(header: string | undefined): [string, string] | undefined {
  if (header === undefined || !header.startsWith('Basic ')) return undefined
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  const formDecode = (value: string): string => decodeURIComponent(value.replace(/\+/g, ' '))
  return [formDecode(decoded.slice(0, colon)), formDecode(decoded.slice(colon + 1))]
}

beforeAll(async () => {
  server = new OAuth2Server()
  await server.issuer.keys.generate('RS256')
  await server.start(0, '127.0.0.1')
  base = `http://127.0.0.1:${server.address().port}`
  tokenUrl = `${base}/token`
  jwksUrl = new URL(`${base}/jwks`)
})

afterAll(async () => {
  if (server?.listening) await server.stop()
})

describe('oauth2-mock-server: client credentials', () => {
  it.each([
    ['client_secret_basic', clientSecretBasic(CLIENT_SECRET)],
    ['client_secret_post', clientSecretPost(CLIENT_SECRET)],
  ] as const)(
    '%s: the JWT verifies against the JWKS and expiresAt follows expires_in',
    async (method, auth) => {
      let seen: [string, string] | undefined
      server.service.once('beforeResponse', (_response: MutableResponse, req: HookRequest) => {
        seen =
          method === 'client_secret_basic'
            ? basicCredentials(req.headers.authorization)
            : [String(req.body['client_id']), String(req.body['client_secret'])]
      })
      const before = systemClock.now()
      const token = await source(auth, ['reports:write', 'reports:read']).fetchToken()
      const after = systemClock.now()

      expect(seen).toEqual([CLIENT_ID, CLIENT_SECRET])
      expect(token.type).toBe('Bearer')
      expect(token.scopes).toEqual(['reports:read', 'reports:write'])
      expect(token.expiresAt - token.issuedAt).toBe(MOCK_TTL_SECONDS * 1000)
      expect(token.issuedAt).toBeGreaterThanOrEqual(before)
      expect(token.issuedAt).toBeLessThanOrEqual(after)

      const { payload, protectedHeader } = await jwtVerify(token.value, createRemoteJWKSet(jwksUrl), {
        issuer: server.issuer.url!,
        algorithms: ['RS256'],
      })
      expect(protectedHeader.alg).toBe('RS256')
      expect(payload.scope).toBe('reports:read reports:write')
      expect(payload.exp! - payload.iat!).toBe(MOCK_TTL_SECONDS)
      // expires_in counts from when the request was sent, so expiresAt is at exp or just before it
      // (iat is whole seconds, hence the one-second allowance).
      expect(token.expiresAt).toBeLessThanOrEqual(payload.exp! * 1000 + 1000)
      expect(token.expiresAt).toBeGreaterThan(payload.exp! * 1000 - 5000)
    },
  )

  it('trusts expires_in, not the exp inside the token (access tokens are opaque to clients)', async () => {
    server.service.once('beforeTokenSigning', (token: { payload: Record<string, unknown> }) => {
      token.payload['exp'] = Math.floor(Date.now() / 1000) + 60
    })
    const token = await source().fetchToken()
    expect(token.lifetimeMs).toBe(MOCK_TTL_SECONDS * 1000)
  })

  it('reads a server-shortened lifetime, a lower-case token_type and a numeric-string expires_in', async () => {
    server.service.once('beforeResponse', (response: MutableResponse) => {
      if (response.body === '') return
      response.body['expires_in'] = '120'
      response.body['token_type'] = 'bearer'
    })
    const token = await source().fetchToken()
    expect(token.type).toBe('Bearer')
    expect(token.lifetimeMs).toBe(120_000)
  })
})

describe('oauth2-mock-server: failures become typed errors', () => {
  it('400 invalid_client is an OAuthError, not retryable', async () => {
    nextResponse(400, { error: 'invalid_client', error_description: 'client authentication failed' })
    const error = await rejection(source().fetchToken())
    expect(error).toBeInstanceOf(OAuthError)
    expect(isOAuthError(error, 'invalid_client')).toBe(true)
    expect(error).toMatchObject({ code: 'OAUTH_ERROR', status: 400, retryable: false })
    expect((error as OAuthError).error_description).toBe('client authentication failed')
    expect(error.message).not.toContain(CLIENT_SECRET)
  })

  it('401 invalid_client that echoes the secret is scrubbed', async () => {
    nextResponse(401, { error: 'invalid_client', error_description: `bad secret ${CLIENT_SECRET}` })
    const error = await rejection(source(clientSecretPost(CLIENT_SECRET)).fetchToken())
    expect(isOAuthError(error, 'invalid_client')).toBe(true)
    expect(error.message).not.toContain(CLIENT_SECRET)
    expect((error as OAuthError).error_description).not.toContain(CLIENT_SECRET)
  })

  it('400 invalid_scope is an OAuthError, not retryable', async () => {
    nextResponse(400, { error: 'invalid_scope' })
    const error = await rejection(source().fetchToken())
    expect(isOAuthError(error, 'invalid_scope')).toBe(true)
    expect(error.retryable).toBe(false)
  })

  it('503 temporarily_unavailable with Retry-After is retryable and carries the delay', async () => {
    nextResponse(503, { error: 'temporarily_unavailable' }, { 'retry-after': '7' })
    const error = await rejection(source().fetchToken())
    expect(isOAuthError(error, 'temporarily_unavailable')).toBe(true)
    expect(error).toMatchObject({ status: 503, retryable: true, retryAfterMs: 7000 })
  })

  it('503 without an OAuth error body is SERVER_ERROR, retryable', async () => {
    nextResponse(503, '')
    const error = await rejection(source().fetchToken())
    expect(error).toMatchObject({ code: 'SERVER_ERROR', status: 503, retryable: true })
  })

  it('429 is RATE_LIMITED, retryable, with Retry-After', async () => {
    nextResponse(429, {}, { 'retry-after': '2' })
    const error = await rejection(source().fetchToken())
    expect(error).toMatchObject({ code: 'RATE_LIMITED', status: 429, retryable: true, retryAfterMs: 2000 })
  })

  it('an error body with status 200 is still an OAuthError', async () => {
    nextResponse(200, { error: 'invalid_grant' })
    const error = await rejection(source().fetchToken())
    expect(isOAuthError(error, 'invalid_grant')).toBe(true)
    expect(error.status).toBe(200)
  })

  it('a 200 without access_token is MISSING_ACCESS_TOKEN', async () => {
    nextResponse(200, { token_type: 'Bearer', expires_in: 3600 })
    const error = await rejection(source().fetchToken())
    expect(error).toMatchObject({ code: 'MISSING_ACCESS_TOKEN', retryable: false })
  })

  it('a failing token signer (beforeTokenSigning throws) is 500 server_error: retryable', async () => {
    // The mock server logs the unexpected error with console.error; keep it out of the output.
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    try {
      server.service.once('beforeTokenSigning', () => {
        throw new Error('signing key unavailable')
      })
      const error = await rejection(source().fetchToken())
      expect(isOAuthError(error, 'server_error')).toBe(true)
      expect(error).toMatchObject({ status: 500, retryable: true })
      expect(consoleError).toHaveBeenCalledOnce()
    } finally {
      consoleError.mockRestore()
    }
  })
})
