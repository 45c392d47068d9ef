import { inspect } from 'node:util'
import got, { HTTPError } from 'got'
import ky from 'ky'
import { describe, expect, it } from 'vitest'
import { gotTokens } from '../../src/integrations/got.js'
import { InsufficientScopeError } from '../../src/index.js'
import { CLIENT_ID, CLIENT_SECRET, onCleanup, startHarness } from '../faults/harness.js'
import { startEchoResource } from '../fetch/echo-resource.js'

describe('tokenkeeper/got: gotTokens', () => {
  it('sends Authorization; 20 concurrent calls, one token request', async () => {
    const { server, tokens, source } = await startHarness()
    const api = got.extend(gotTokens(tokens, source()))
    const answers = await Promise.all(Array.from({ length: 20 }, () => api.get(server.resourceUrl)))
    expect(answers.map((answer) => answer.statusCode)).toEqual(Array.from({ length: 20 }, () => 200))
    expect(server.stats()).toMatchObject({ tokenRequests: 1, resourceAccepted: 20 })
  })

  it('50 concurrent requests answered 401 for the same token → exactly 1 token request, 50 retried successes', async () => {
    const { server, tokens, source } = await startHarness()
    const api = got.extend(gotTokens(tokens, source()))
    const old = await tokens.get(source())
    server.revoke(old.value)
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        api.post(server.resourceUrl, { json: { item: i } }).json<unknown>(),
      ),
    )
    expect(answers.filter((answer) => (answer as { ok?: unknown }).ok === true)).toHaveLength(50)
    expect(server.stats()).toMatchObject({
      tokenRequests: 2,
      resourceRejectedRevoked: 50,
      resourceAccepted: 50,
    })
    expect(tokens.peek(source())!.value).not.toBe(old.value)
  })

  it('a resource that refuses every token gets one retry, then the HTTPError; no token in it', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    echo.mode = 'always-401'
    const api = got.extend({ retry: { limit: 0 } }, gotTokens(harness.tokens, harness.source()))
    const error = await api.get(echo.url).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(HTTPError)
    expect((error as HTTPError).response.statusCode).toBe(401)
    expect(echo.requests).toHaveLength(2)
    expect(echo.requests[0]!.token).not.toBe(echo.requests[1]!.token)
    expect(harness.server.stats().tokenRequests).toBe(2)
    const seen = echo.requests.map((request) => request.token!)
    for (const output of [
      inspect(error, { depth: 6 }),
      JSON.stringify((error as HTTPError).options),
      String((error as HTTPError).stack),
    ]) {
      for (const value of seen) expect(output).not.toContain(value)
    }
    // Within the refusal backoff, a later 401 is returned without renewing.
    await api.get(echo.url).catch(() => undefined)
    expect(echo.requests).toHaveLength(3)
    expect(harness.server.stats().tokenRequests).toBe(2)
  })

  it('a 403 insufficient_scope rejects with InsufficientScopeError', async () => {
    const { server, tokens, source } = await startHarness({
      server: {
        clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedScopes: ['read', 'admin'] }],
      },
    })
    const api = got.extend(gotTokens(tokens, source({ scopes: ['read'] })))
    const error = await api.get(`${server.resourceUrl}?scope=admin`).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(InsufficientScopeError)
    expect((error as InsufficientScopeError).requiredScopes).toEqual(['admin'])
    expect(server.stats().tokenRequests).toBe(1)
  })

  it('routes and own Authorization headers: uncovered URLs and caller credentials go as they are', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    const api = got.extend(
      { throwHttpErrors: false },
      gotTokens(harness.tokens, { [`${echo.url}/private`]: harness.source() }),
    )
    await api.get(`${echo.url}/private`)
    await api.get(`${echo.url}/public`)
    await api.get(`${echo.url}/private`, { headers: { authorization: 'Basic abcd' } })
    expect(echo.requests.map((seen) => seen.headers.authorization?.split(' ')[0])).toEqual([
      'Bearer',
      undefined,
      'Basic',
    ])
  })
})

describe('ky through its fetch option', () => {
  it('tokens.fetch(source) as ky’s fetch: 50 concurrent 401s → 1 token request, retried bodies', async () => {
    const { server, tokens, source } = await startHarness()
    const api = ky.create({ fetch: tokens.fetch(source()), retry: 0 })
    const old = await tokens.get(source())
    server.revoke(old.value)
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        api.post(server.resourceUrl, { json: { item: i } }).json<unknown>(),
      ),
    )
    expect(answers.filter((answer) => (answer as { ok?: unknown }).ok === true)).toHaveLength(50)
    expect(server.stats()).toMatchObject({
      tokenRequests: 2,
      resourceRejectedRevoked: 50,
      resourceAccepted: 50,
    })
  })

  it('a 403 insufficient_scope rejects with InsufficientScopeError', async () => {
    const { server, tokens, source } = await startHarness({
      server: {
        clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedScopes: ['read', 'admin'] }],
      },
    })
    const api = ky.create({ fetch: tokens.fetch(source({ scopes: ['read'] })), retry: 0 })
    const error = await api.get(`${server.resourceUrl}?scope=admin`).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(InsufficientScopeError)
  })
})
