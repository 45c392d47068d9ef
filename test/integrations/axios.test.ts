import { inspect } from 'node:util'
import axios, { AxiosError } from 'axios'
import { describe, expect, it } from 'vitest'
import { attachTokens } from '../../src/integrations/axios.js'
import { InsufficientScopeError } from '../../src/index.js'
import { CLIENT_ID, CLIENT_SECRET, onCleanup, startHarness } from '../faults/harness.js'
import { startEchoResource } from '../fetch/echo-resource.js'

describe('tokenkeeper/axios: attachTokens', () => {
  it('sends Authorization with the cached token and the resource accepts it; one token request', async () => {
    const { server, tokens, source } = await startHarness()
    const api = axios.create()
    attachTokens(api, tokens, source())
    const answers = await Promise.all(Array.from({ length: 20 }, () => api.get(server.resourceUrl)))
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 20 }, () => 200))
    expect(server.stats()).toMatchObject({ tokenRequests: 1, resourceAccepted: 20 })
  })

  it('50 concurrent 401s for one token cause one token request, and every request is retried once', async () => {
    const { server, tokens, source } = await startHarness()
    const api = axios.create()
    attachTokens(api, tokens, source())
    const old = await tokens.get(source())
    server.revoke(old.value)
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => api.post(server.resourceUrl, { item: i })),
    )
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 50 }, () => 200))
    expect(server.stats()).toMatchObject({
      tokenRequests: 2,
      resourceRejectedRevoked: 50,
      resourceAccepted: 50,
    })
    expect(tokens.peek(source())!.value).not.toBe(old.value)
  })

  it('a resource that refuses every token gets one retry, then its 401 is the answer (no loop)', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    echo.mode = 'always-401'
    const api = axios.create()
    attachTokens(api, harness.tokens, harness.source())
    const error = await api.get(echo.url).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(AxiosError)
    expect((error as AxiosError).response?.status).toBe(401)
    expect(echo.requests).toHaveLength(2)
    expect(harness.server.stats().tokenRequests).toBe(2)
    // Within the refusal backoff, a later 401 is returned without renewing.
    await api.get(echo.url).catch(() => undefined)
    expect(echo.requests).toHaveLength(3)
    expect(harness.server.stats().tokenRequests).toBe(2)
  })

  it('a 403 insufficient_scope rejects with InsufficientScopeError, without a token request', async () => {
    const { server, tokens, source } = await startHarness({
      server: {
        clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedScopes: ['read', 'admin'] }],
      },
    })
    const api = axios.create()
    attachTokens(api, tokens, source({ scopes: ['read'] }))
    const error = await api.get(`${server.resourceUrl}?scope=admin`).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(InsufficientScopeError)
    expect((error as InsufficientScopeError).requiredScopes).toEqual(['admin'])
    expect(server.stats().tokenRequests).toBe(1)
  })

  it('a plain 403 stays an AxiosError', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    echo.mode = 'forbidden'
    const api = axios.create()
    attachTokens(api, harness.tokens, harness.source())
    const error = await api.get(echo.url).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(AxiosError)
    expect(harness.server.stats().tokenRequests).toBe(1)
  })

  it('no token in the error or the response axios hands back (inspect, JSON, config)', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    const api = axios.create()
    attachTokens(api, harness.tokens, harness.source())
    const token = await harness.tokens.get(harness.source())
    const ok = await api.get(echo.url)
    expect(echo.requests[0]!.headers.authorization).toBe(`Bearer ${token.value}`)
    echo.mode = 'always-401'
    const error = (await api.get(echo.url).catch((caught: unknown) => caught)) as AxiosError
    const tokensSeen = [token.value, harness.tokens.peek(harness.source())?.value].filter(
      (value): value is string => value !== undefined,
    )
    for (const output of [
      inspect(error, { depth: 8 }),
      JSON.stringify(error.toJSON()),
      inspect(ok, { depth: 8 }),
      JSON.stringify(ok.config),
      String(error.stack),
    ]) {
      for (const value of tokensSeen) expect(output).not.toContain(value)
    }
    expect(ok.config.headers.get('authorization')).toBe('[redacted]')
  })

  it('a chooser sends some requests without a token, and detaching removes the interceptors', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    const api = axios.create({ validateStatus: () => true })
    const detach = attachTokens(api, harness.tokens, (config) =>
      config.url?.includes('public') === true ? undefined : harness.source(),
    )
    await api.get(`${echo.url}/public`)
    await api.get(`${echo.url}/private`)
    expect(echo.requests.map((request) => request.headers.authorization === undefined)).toEqual([true, false])
    detach()
    await api.get(`${echo.url}/private`)
    expect(echo.requests[2]!.headers.authorization).toBeUndefined()
  })

  it("replaces a caller's own Authorization, in any case; a chooser's undefined sends it as it is", async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    const source = harness.source()
    const api = axios.create({ validateStatus: () => true })
    attachTokens(api, harness.tokens, (config) => (config.url?.includes('own') === true ? undefined : source))
    for (const name of ['authorization', 'Authorization', 'AUTHORIZATION']) {
      await api.get(echo.url, { headers: { [name]: 'Basic Y2FsbGVyOnNlY3JldA==' } })
    }
    await api.get(`${echo.url}/own`, { headers: { Authorization: 'Basic Y2FsbGVyOnNlY3JldA==' } })
    const token = await harness.tokens.get(source)
    expect(echo.requests.map((request) => request.headers.authorization)).toEqual([
      token.authorization,
      token.authorization,
      token.authorization,
      'Basic Y2FsbGVyOnNlY3JldA==',
    ])
  })
})
