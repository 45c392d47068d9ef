import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createTestClock,
  startTokenServer,
  type TestClock,
  type TokenServer,
} from '../../src/testing/index.js'
import { basic, postToken } from './helpers.js'

let server: TokenServer
let clock: TestClock
beforeEach(async () => {
  clock = createTestClock()
  server = await startTokenServer({
    clients: [{ clientId: 'svc-a', clientSecret: 'pw', allowedScopes: ['read', 'write'] }],
    tokenLifetimeMs: 60_000,
    clock,
  })
})
afterEach(async () => {
  await server.close()
})

async function token(scope?: string): Promise<string> {
  const call = await postToken(
    server,
    { grant_type: 'client_credentials', ...(scope === undefined ? {} : { scope }) },
    { authorization: basic('svc-a', 'pw') },
  )
  expect(call.status).toBe(200)
  return String(call.json.access_token)
}

const callResource = (accessToken: string | undefined, query = '', method = 'GET') =>
  fetch(`${server.resourceUrl}${query}`, {
    method,
    headers: accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` },
  })

describe('introspect', () => {
  it('reports expiry by the injected clock, at the exact millisecond', async () => {
    const issuedAt = clock.now()
    const accessToken = await token()
    expect(server.introspect(accessToken)).toMatchObject({
      active: true,
      expired: false,
      revoked: false,
      clientId: 'svc-a',
      scopes: ['read', 'write'],
      issuedAt,
      expiresAt: issuedAt + 60_000,
    })
    clock.advance(59_999)
    expect(server.introspect(accessToken)?.active).toBe(true)
    clock.advance(1)
    expect(server.introspect(accessToken)).toMatchObject({ active: false, expired: true })
    expect(server.introspect('tkt_never-issued')).toBeUndefined()
  })
})

describe('resource endpoint (RFC 6750)', () => {
  it('accepts a valid token on GET and POST', async () => {
    const accessToken = await token('read')
    const get = await callResource(accessToken)
    expect(get.status).toBe(200)
    expect(await get.json()).toEqual({ ok: true, clientId: 'svc-a', scopes: ['read'] })
    expect((await callResource(accessToken, '', 'POST')).status).toBe(200)
    expect((await callResource(accessToken, '', 'DELETE')).status).toBe(405)
    expect(server.introspect(accessToken)?.uses).toBe(2)
  })

  it('answers 403 insufficient_scope when a required scope is missing', async () => {
    const accessToken = await token('read')
    expect((await callResource(accessToken, '?scope=read')).status).toBe(200)
    const forbidden = await callResource(accessToken, '?scope=write')
    expect(forbidden.status).toBe(403)
    expect(forbidden.headers.get('www-authenticate')).toMatch(
      /^Bearer .*error="insufficient_scope", scope="write"/,
    )
    expect(server.stats().resourceRejectedScope).toBe(1)
  })

  it('answers 401 invalid_token for unknown, expired and revoked tokens, and counts each', async () => {
    const missing = await callResource(undefined)
    expect(missing.status).toBe(401)
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer /)
    const unknown = await callResource('tkt_forged')
    expect(unknown.status).toBe(401)
    expect(unknown.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)

    const expiring = await token()
    clock.advance(60_000)
    const expired = await callResource(expiring)
    expect(expired.status).toBe(401)
    expect(expired.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)
    expect(server.introspect(expiring)).toMatchObject({ uses: 1, usesAfterExpiry: 1 })

    const revoked = await token()
    expect((await callResource(revoked)).status).toBe(200)
    expect(server.revoke(revoked)).toBe(true)
    expect(server.revoke(revoked)).toBe(false)
    expect((await callResource(revoked)).status).toBe(401)
    expect(server.introspect(revoked)).toMatchObject({ active: false, revoked: true, expired: false })

    const [a, b] = [await token(), await token()]
    expect(server.revokeAll()).toBe(3) // a, b and the expired one
    expect((await callResource(a)).status).toBe(401)
    expect((await callResource(b)).status).toBe(401)

    expect(server.stats()).toMatchObject({
      resourceCalls: 7,
      resourceAccepted: 1,
      resourceRejectedUnknown: 2,
      resourceRejectedExpired: 1,
      resourceRejectedRevoked: 3,
    })
  })
})
