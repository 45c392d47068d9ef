/** clientAssertion(provider): checks before sending, typed errors that name the provider, never the assertion. */
import { inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientAssertion, clientCredentials, TokenManager } from '../../src/index.js'
import { formFields, startLocalServer, type LocalServer } from '../wire/local-server.js'

let server: LocalServer

beforeAll(async () => {
  server = await startLocalServer()
  server.route('/token', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ access_token: 'issued-token', expires_in: 3600 }))
  })
})

afterAll(async () => {
  await server.close()
})

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'RS256' })}.${part(claims)}.c2lnbmF0dXJl`
}

function source(provider: () => string | Promise<string>) {
  return clientCredentials({
    tokenUrl: `${server.origin}/token`,
    clientId: 'svc',
    auth: clientAssertion(provider, { id: 'k8s-sa' }),
  })
}

describe('clientAssertion', () => {
  it('sends the provider’s assertion as client_assertion, asking for it on every request', async () => {
    let calls = 0
    const assertions = [
      jwt({ exp: Date.now() / 1000 + 600, n: 1 }),
      jwt({ exp: Date.now() / 1000 + 600, n: 2 }),
    ]
    const s = source(() => assertions[calls++]!)
    await s.fetchToken()
    await s.fetchToken()
    const sent = server
      .hits('/token')
      .slice(-2)
      .map((request) => Object.fromEntries(formFields(request)))
    expect(sent.map((fields) => fields['client_assertion'])).toEqual(assertions)
    expect(sent[0]).toMatchObject({
      client_id: 'svc',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    })
  })

  it('refuses an expired JWT before any request, naming the provider and not the assertion', async () => {
    const before = server.hits('/token').length
    const expired = jwt({ exp: Math.floor(Date.now() / 1000) - 90 })
    const error = await source(() => expired)
      .fetchToken()
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'ASSERTION_EXPIRED', retryable: true })
    expect((error as Error).message).toMatch(/provider "k8s-sa" expired 9\d s ago/)
    expect(inspect(error, { depth: Infinity })).not.toContain(expired)
    expect(server.hits('/token').length).toBe(before)
  })

  it('an exp outside the range of dates (-1e20) is ASSERTION_EXPIRED, not a RangeError', async () => {
    const error = await source(() => jwt({ exp: -1e20 }))
      .fetchToken()
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'ASSERTION_EXPIRED', retryable: true })
    expect((error as Error).message).toMatch(/\(exp -100000000000000000000\)/)
  })

  it.each([
    ['empty', () => ''],
    ['only whitespace', () => ' \n'],
    ['with a space inside', () => 'abc def'],
    ['non-ASCII', () => 'abc\u010d\u010a'],
    ['not a string', () => 42 as unknown as string],
  ])('an assertion that is %s is ASSERTION_UNAVAILABLE', async (_name, provider) => {
    await expect(source(provider).fetchToken()).rejects.toMatchObject({ code: 'ASSERTION_UNAVAILABLE' })
  })

  it('a provider that throws is ASSERTION_UNAVAILABLE with its error as cause; a manager retries it later', async () => {
    const cause = new Error('metadata endpoint down')
    const tokens = new TokenManager()
    const error = await tokens
      .get(
        source(() => {
          throw cause
        }),
      )
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'ASSERTION_UNAVAILABLE', retryable: true })
    expect((error as Error).cause).toBe(cause)
    await tokens.close()
  })

  it('an opaque (non-JWT) assertion is sent as it is', async () => {
    await expect(source(() => 'opaque-assertion-value').fetchToken()).resolves.toMatchObject({
      value: 'issued-token',
    })
  })

  it('the key names the provider id, never the assertion; other ids give other keys', () => {
    const a = source(() => 'x')
    const b = clientCredentials({
      tokenUrl: `${server.origin}/token`,
      clientId: 'svc',
      auth: clientAssertion(() => 'x', { id: 'github-oidc' }),
    })
    expect(a.key).not.toBe(b.key)
    expect(JSON.stringify(a)).not.toContain('opaque')
    expect(() => clientAssertion(() => 'x', {} as never)).toThrow(TypeError)
    expect(() => clientAssertion('x' as never, { id: 'a' })).toThrow(TypeError)
  })
})
