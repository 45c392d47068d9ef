import { inspect } from 'node:util'
import { Agent, fetch as undiciFetch, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { tokenInterceptor } from '../../src/integrations/undici.js'
import { InsufficientScopeError } from '../../src/index.js'
import { CLIENT_ID, CLIENT_SECRET, onCleanup, startHarness } from '../faults/harness.js'
import { startEchoResource } from '../fetch/echo-resource.js'

const agents: Agent[] = []
function agent(): Agent {
  const created = new Agent()
  agents.push(created)
  return created
}
afterEach(async () => {
  for (const created of agents.splice(0)) await created.close()
})

describe('tokenkeeper/undici: tokenInterceptor', () => {
  it('sends Authorization on request() and fetch(); 20 concurrent calls, one token request', async () => {
    const { server, tokens, source } = await startHarness()
    const dispatcher = agent().compose(tokenInterceptor(tokens, { [server.resourceUrl]: source() }))
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        if (i % 2 === 0) {
          const res = await request(server.resourceUrl, { dispatcher })
          await res.body.dump()
          return res.statusCode
        }
        const res = await undiciFetch(server.resourceUrl, { dispatcher })
        await res.body?.cancel()
        return res.status
      }),
    )
    expect(answers).toEqual(Array.from({ length: 20 }, () => 200))
    // The token request went through the same agent (same origin, not covered by the route).
    expect(server.stats()).toMatchObject({ tokenRequests: 1, resourceAccepted: 20 })
  })

  it('50 concurrent requests answered 401 for the same token → exactly 1 token request, 50 retried successes', async () => {
    const { server, tokens, source } = await startHarness()
    const dispatcher = agent().compose(tokenInterceptor(tokens, source()))
    const old = await tokens.get(source())
    server.revoke(old.value)
    const answers = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const res = await request(server.resourceUrl, {
          dispatcher,
          method: 'POST',
          body: JSON.stringify({ item: i }),
          headers: { 'content-type': 'application/json' },
        })
        return { status: res.statusCode, body: await res.body.json() }
      }),
    )
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 50 }, () => 200))
    expect(answers[0]!.body).toMatchObject({ ok: true })
    expect(server.stats()).toMatchObject({
      tokenRequests: 2,
      resourceRejectedRevoked: 50,
      resourceAccepted: 50,
    })
    expect(tokens.peek(source())!.value).not.toBe(old.value)
  })

  it('a resource that refuses every token gets one retry, then its 401 (with its body) is the answer', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    echo.mode = 'always-401'
    const dispatcher = agent().compose(tokenInterceptor(harness.tokens, harness.source()))
    const res = await request(echo.url, { dispatcher })
    expect(res.statusCode).toBe(401)
    expect(await res.body.json()).toEqual({ error: 'invalid_token' })
    expect(echo.requests).toHaveLength(2)
    expect(echo.requests[0]!.token).not.toBe(echo.requests[1]!.token)
    expect(harness.server.stats().tokenRequests).toBe(2)
    // Within the refusal backoff, a later 401 is returned without renewing.
    await (await request(echo.url, { dispatcher })).body.dump()
    expect(echo.requests).toHaveLength(3)
    expect(harness.server.stats().tokenRequests).toBe(2)
  })

  it('a streamed body is not sent twice: the 401 is returned, the token is invalidated', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    const dispatcher = agent().compose(tokenInterceptor(harness.tokens, harness.source()))
    const old = await harness.tokens.get(harness.source())
    harness.server.revoke(old.value)
    // undici's fetch hands a body to the dispatcher as a one-shot stream.
    const res = await undiciFetch(echo.url, { dispatcher, method: 'POST', body: 'payload' })
    expect(res.status).toBe(401)
    await res.body?.cancel()
    expect(echo.requests).toHaveLength(1)
    expect(harness.tokens.peek(harness.source())).toBeUndefined()
    const next = await undiciFetch(echo.url, { dispatcher, method: 'POST', body: 'payload' })
    expect(next.status).toBe(200)
    expect(echo.requests[1]!.body.toString()).toBe('payload')
  })

  it('a 403 insufficient_scope fails with InsufficientScopeError; a plain 403 is returned', async () => {
    const harness = await startHarness({
      server: {
        clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedScopes: ['read', 'admin'] }],
      },
    })
    const { server, tokens, source } = harness
    const dispatcher = agent().compose(tokenInterceptor(tokens, source({ scopes: ['read'] })))
    const error = await request(`${server.resourceUrl}?scope=admin`, { dispatcher }).catch(
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(InsufficientScopeError)
    expect((error as InsufficientScopeError).requiredScopes).toEqual(['admin'])
    const fetched = await undiciFetch(`${server.resourceUrl}?scope=admin`, { dispatcher }).catch(
      (caught: unknown) => caught,
    )
    expect((fetched as Error).cause).toBeInstanceOf(InsufficientScopeError)
    expect(server.stats().tokenRequests).toBe(1)

    const echo = await startEchoResource(server)
    onCleanup(() => echo.close())
    echo.mode = 'forbidden'
    const plain = await request(echo.url, { dispatcher })
    expect(plain.statusCode).toBe(403)
    expect(await plain.body.text()).toBe('forbidden')
  })

  it('routes choose by origin and path prefix; other requests and ones with Authorization go as they are', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    const dispatcher = agent().compose(
      tokenInterceptor(harness.tokens, { [`${new URL(echo.url).origin}/echo/private`]: harness.source() }),
    )
    for (const path of ['/echo/private', '/echo/private/x?y=1', '/echo/privateer', '/echo/public']) {
      await (await request(new URL(path, echo.url), { dispatcher })).body.dump()
    }
    await (
      await request(`${echo.url}/private`, { dispatcher, headers: { Authorization: 'Basic abcd' } })
    ).body.dump()
    expect(echo.requests.map((seen) => seen.headers.authorization?.split(' ')[0])).toEqual([
      'Bearer',
      'Bearer',
      undefined,
      undefined,
      'Basic',
    ])
    expect(() => tokenInterceptor(harness.tokens, { 'api.example': harness.source() })).toThrow(TypeError)
    expect(() => tokenInterceptor(harness.tokens, { 'https://api.example/?a=1': harness.source() })).toThrow(
      TypeError,
    )
  })

  it('keeps every caller header in every form and case, whatever its name (constructor, toString, ...)', async () => {
    const harness = await startHarness()
    const echo = await startEchoResource(harness.server)
    onCleanup(() => echo.close())
    const source = harness.source()
    const dispatcher = agent().compose(tokenInterceptor(harness.tokens, source))
    const names = ['X-Trace', 'Constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']
    const forms: NonNullable<NonNullable<Parameters<typeof request>[1]>['headers']>[] = [
      Object.fromEntries(names.map((name) => [name, `v-${name.toLowerCase()}`])),
      names.flatMap((name) => [name, `v-${name.toLowerCase()}`]),
      new Map(names.map((name) => [name, `v-${name.toLowerCase()}`])),
    ]
    for (const headers of forms) await (await request(echo.url, { dispatcher, headers })).body.dump()
    const token = await harness.tokens.get(source)
    expect(echo.requests).toHaveLength(3)
    for (const seen of echo.requests) {
      expect(seen.headers.authorization).toBe(token.authorization)
      for (const name of names) {
        expect(Object.hasOwn(seen.headers, name.toLowerCase()) && seen.headers[name.toLowerCase()]).toBe(
          `v-${name.toLowerCase()}`,
        )
      }
    }
  })

  it('a failed token request fails the request with the typed error, no token in it', async () => {
    const harness = await startHarness()
    const dispatcher = agent().compose(
      tokenInterceptor(harness.tokens, harness.source({ clientId: 'nobody' })),
    )
    const error = await request(harness.server.resourceUrl, { dispatcher }).catch((caught: unknown) => caught)
    expect((error as { code?: string }).code).toBe('OAUTH_ERROR')
    expect(inspect(error, { depth: 8 })).not.toContain(CLIENT_SECRET)
    expect(harness.server.stats().resourceCalls).toBe(0)
  })

  it('setGlobalDispatcher: undici fetch and request, and Node global fetch, send tokens', async () => {
    const { server, tokens, source } = await startHarness()
    const previous = getGlobalDispatcher()
    setGlobalDispatcher(agent().compose(tokenInterceptor(tokens, { [server.resourceUrl]: source() })))
    try {
      const viaRequest = await request(server.resourceUrl)
      await viaRequest.body.dump()
      const viaUndiciFetch = await undiciFetch(server.resourceUrl)
      await viaUndiciFetch.body?.cancel()
      const viaGlobalFetch = await globalThis.fetch(server.resourceUrl)
      await viaGlobalFetch.body?.cancel()
      expect([viaRequest.statusCode, viaUndiciFetch.status, viaGlobalFetch.status]).toEqual([200, 200, 200])
      expect(server.stats()).toMatchObject({ tokenRequests: 1, resourceAccepted: 3 })
    } finally {
      setGlobalDispatcher(previous)
    }
  })
})
