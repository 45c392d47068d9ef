import { describe, expect, it } from 'vitest'
import { InsufficientScopeError, isTokenkeeperError } from '../../src/index.js'
import { CLIENT_ID, CLIENT_SECRET, onCleanup, startHarness } from '../faults/harness.js'
import { startEchoResource } from './echo-resource.js'

async function withEcho(options: Parameters<typeof startHarness>[0] = {}) {
  const harness = await startHarness(options)
  const echo = await startEchoResource(harness.server)
  onCleanup(() => echo.close())
  return { ...harness, echo }
}

describe('tokens.fetch(source): Authorization', () => {
  it('sends Authorization: Bearer <token> and the resource accepts it', async () => {
    const { server, tokens, source } = await startHarness({ server: { tokenType: 'bearer' } })
    const api = tokens.fetch(source())
    const response = await api(server.resourceUrl)
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ ok: true, clientId: CLIENT_ID })
    const token = await tokens.get(source())
    expect(server.introspect(token.value)).toMatchObject({ active: true, uses: 1 })
    expect(server.stats()).toMatchObject({ tokenRequests: 1, resourceAccepted: 1, resourceCalls: 1 })
  })

  it("keeps the caller's headers and overwrites the caller's Authorization", async () => {
    const { tokens, source, echo } = await withEcho()
    const api = tokens.fetch(source())
    const token = await tokens.get(source())
    const headerForms: NonNullable<RequestInit['headers']>[] = [
      { 'x-trace-id': 'trace-1', accept: 'application/json', authorization: 'Basic Zm9vOmJhcg==' },
      new Headers({
        'X-Trace-Id': 'trace-1',
        Accept: 'application/json',
        Authorization: 'Bearer caller-token',
      }),
      [
        ['x-trace-id', 'trace-1'],
        ['accept', 'application/json'],
        ['authorization', 'Token abc'],
      ],
    ]
    for (const headers of headerForms) {
      const response = await api(echo.url, { headers })
      expect(response.status).toBe(200)
    }
    const viaRequest = await api(
      new Request(echo.url, {
        headers: { 'x-trace-id': 'trace-1', accept: 'application/json', authorization: 'x' },
      }),
    )
    expect(viaRequest.status).toBe(200)
    expect(echo.requests).toHaveLength(4)
    for (const request of echo.requests) {
      expect(request.headers['x-trace-id']).toBe('trace-1')
      expect(request.headers.accept).toBe('application/json')
      expect(request.headers.authorization).toBe(`Bearer ${token.value}`)
    }
  })

  it('an injected fetch that reads only its first argument gets a Request carrying the token', async () => {
    const { tokens, source } = await startHarness()
    const seen: (string | null)[] = []
    const firstOnly = ((request: Request) => {
      seen.push(request.headers.get('authorization'))
      return Promise.resolve(new Response(null, { status: 204 }))
    }) as typeof globalThis.fetch
    const api = tokens.fetch(source(), { fetch: firstOnly })
    await api('https://api.example.test/v1/things', { headers: { accept: 'application/json' } })
    expect(seen).toEqual([`Bearer ${(await tokens.get(source())).value}`])
  })

  it('uses the injected fetch option, for the first call and for the retry', async () => {
    const { server, tokens, source } = await startHarness()
    const seen: { authorization: string | null; url: string; body: string }[] = []
    const answers = [401, 200]
    // Never touches the network: proves the wrapper sends through the injected fetch only.
    const injected: typeof globalThis.fetch = async (input, init) => {
      const request = new Request(input, init)
      seen.push({
        authorization: request.headers.get('authorization'),
        url: request.url,
        body: await request.text(),
      })
      return new Response(JSON.stringify({ injected: true }), { status: answers.shift() ?? 500 })
    }
    const api = tokens.fetch(source(), { fetch: injected })
    const first = await tokens.get(source())
    const response = await api('https://api.example.test/v1/things', { method: 'POST', body: 'payload' })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ injected: true })
    const second = tokens.peek(source())!
    expect(second).not.toBe(first)
    expect(seen).toEqual([
      { authorization: `Bearer ${first.value}`, url: 'https://api.example.test/v1/things', body: 'payload' },
      { authorization: `Bearer ${second.value}`, url: 'https://api.example.test/v1/things', body: 'payload' },
    ])
    expect(server.stats()).toMatchObject({ tokenRequests: 2, resourceCalls: 0 })
  })
})

describe('tokens.fetch(source): 401', () => {
  it('invalidates the revoked token, gets a fresh one and retries once', async () => {
    const { server, tokens, source } = await startHarness()
    const api = tokens.fetch(source())
    const old = await tokens.get(source())
    expect(server.revoke(old.value)).toBe(true)
    const response = await api(server.resourceUrl)
    expect(response.status).toBe(200)
    expect(server.stats()).toMatchObject({
      tokenRequests: 2,
      resourceRejectedRevoked: 1,
      resourceAccepted: 1,
    })
    const fresh = tokens.peek(source())
    expect(fresh).toBeDefined()
    expect(fresh!.value).not.toBe(old.value)
    expect(server.introspect(fresh!.value)).toMatchObject({ active: true, uses: 1 })
  })

  it.each([
    ['with the token request held until all 50 were refused', true],
    ['with the token endpoint answering at once', false],
  ])(
    '50 concurrent calls that all get 401 for the same token cause exactly one token request (%s)',
    async (_name, held) => {
      const { server, tokens, source } = await startHarness()
      const api = tokens.fetch(source())
      const old = await tokens.get(source())
      server.revoke(old.value)
      const hold = held ? server.hold() : undefined
      const calls = Array.from({ length: 50 }, () => api(server.resourceUrl))
      if (hold !== undefined) {
        // Every call is refused with the old token while the one token request waits.
        const deadline = Date.now() + 5_000
        while (server.stats().resourceRejectedRevoked < 50 || tokens.stats().inFlight !== 1) {
          if (Date.now() > deadline) throw new Error('the 50 refusals did not all arrive')
          await new Promise<void>((resolve) => setTimeout(resolve, 2))
        }
        await server.waitForRequests(2)
        expect(hold.waiting).toBe(1)
        hold.release()
      }
      const responses = await Promise.all(calls)
      expect(responses.map((response) => response.status)).toEqual(Array.from({ length: 50 }, () => 200))
      expect(server.stats()).toMatchObject({
        tokenRequests: 2,
        resourceRejectedRevoked: 50,
        resourceAccepted: 50,
      })
    },
  )

  it('a 401 while a background refresh is in flight joins that refresh instead of starting another', async () => {
    // 60 s tokens: advisory window from 48 s.
    const { clock, server, tokens, source } = await startHarness({ server: { tokenLifetimeMs: 60_000 } })
    const api = tokens.fetch(source())
    const old = await tokens.get(source())
    clock.advance(48_000)
    const hold = server.hold()
    await expect(tokens.get(source())).resolves.toBe(old) // starts the background refresh
    await server.waitForRequests(2)
    server.revoke(old.value)
    const calls = Array.from({ length: 10 }, () => api(server.resourceUrl))
    const deadline = Date.now() + 5_000
    while (server.stats().resourceRejectedRevoked < 10) {
      if (Date.now() > deadline) throw new Error('the refusals did not arrive')
      await new Promise<void>((resolve) => setTimeout(resolve, 2))
    }
    hold.release()
    const responses = await Promise.all(calls)
    expect(responses.every((response) => response.status === 200)).toBe(true)
    expect(server.stats()).toMatchObject({ tokenRequests: 2, resourceAccepted: 10 })
  })

  it('a late 401 for an old token does not evict the newer one', async () => {
    const { server, tokens, source, echo } = await withEcho()
    const api = tokens.fetch(source())
    const old = await tokens.get(source())
    server.revoke(old.value)
    expect((await api(echo.url)).status).toBe(200)
    const fresh = tokens.peek(source())!
    // A call that had taken the old token before the refresh gets its 401 only now.
    await tokens.invalidate(source(), { token: old })
    expect(tokens.peek(source())).toBe(fresh)
    expect((await api(echo.url)).status).toBe(200)
    expect(server.stats().tokenRequests).toBe(2)
  })

  it('a second 401 after the retry is returned as is, with no loop', async () => {
    const { server, tokens, source, echo } = await withEcho()
    const api = tokens.fetch(source())
    const first = await tokens.get(source())
    echo.mode = 'always-401'
    const response = await api(echo.url, { method: 'POST', body: 'payload' })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('invalid_token')
    expect(await response.json()).toEqual({ error: 'invalid_token' })
    expect(echo.requests).toHaveLength(2)
    expect(echo.requests[0]!.token).toBe(first.value)
    expect(echo.requests[1]!.token).not.toBe(first.value)
    expect(echo.requests[1]!.body.toString()).toBe('payload')
    expect(server.stats().tokenRequests).toBe(2)
  })

  it('a resource that refuses every token does not turn each API call into a token request', async () => {
    // A misconfigured API (wrong audience, clock skew, ...) answers 401 to every token. A worker
    // calling it in a loop must not hammer the token endpoint at its own call rate: once a token
    // fetched just for a 401 retry is refused too, a new token will not help for a while (DESIGN.md,
    // Failures: no retry storms).
    const { server, tokens, source, echo } = await withEcho()
    const api = tokens.fetch(source())
    echo.mode = 'always-401'
    for (let call = 0; call < 50; call++) {
      const response = await api(echo.url)
      expect(response.status).toBe(401)
      await response.body?.cancel()
    }
    expect(echo.requests.length).toBeGreaterThanOrEqual(50)
    expect(server.stats().tokenRequests).toBeLessThanOrEqual(5)
  })

  it('a plain 403 (no insufficient_scope challenge) is returned as is', async () => {
    const { server, tokens, source, echo } = await withEcho()
    const api = tokens.fetch(source())
    await tokens.get(source())
    echo.mode = 'forbidden'
    const response = await api(echo.url)
    expect(response.status).toBe(403)
    expect(await response.text()).toBe('forbidden')
    expect(echo.requests).toHaveLength(1)
    expect(server.stats().tokenRequests).toBe(1)
  })
})

describe('tokens.fetch(source): 403 insufficient_scope', () => {
  it('rejects with InsufficientScopeError naming the required and granted scopes, with no token request', async () => {
    const { server, tokens, source } = await startHarness({
      server: {
        clients: [
          { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedScopes: ['read', 'write', 'admin'] },
        ],
      },
    })
    const readWrite = source({ scopes: ['write', 'read'] })
    const api = tokens.fetch(readWrite)
    const token = await tokens.get(readWrite)
    expect(token.scopes).toEqual(['read', 'write'])

    const error = await api(`${server.resourceUrl}?scope=admin`).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(InsufficientScopeError)
    expect(isTokenkeeperError(error)).toBe(true)
    const scopeError = error as InsufficientScopeError
    expect(scopeError).toMatchObject({ code: 'INSUFFICIENT_SCOPE', status: 403, retryable: false })
    expect(scopeError.requiredScopes).toEqual(['admin'])
    // Host and path, never the query string.
    expect(scopeError.message).toContain(`${new URL(server.resourceUrl).host}/resource needs scope admin`)
    expect(scopeError.message).not.toContain('?scope')
    expect(scopeError.grantedScopes).toEqual(['read', 'write'])
    expect(scopeError.message).not.toContain(token.value)

    await expect(api(`${server.resourceUrl}?scope=admin&scope=read`)).rejects.toMatchObject({
      requiredScopes: ['admin', 'read'],
    })
    // Neither a retry nor an invalidation: the token is still cached and no token request was made.
    expect(server.stats()).toMatchObject({ tokenRequests: 1, resourceRejectedScope: 2, resourceCalls: 2 })
    expect(tokens.peek(readWrite)).toBe(token)
    expect((await api(`${server.resourceUrl}?scope=write`)).status).toBe(200)
  })
})

describe("tokens.fetch(source): the caller's signal", () => {
  it('aborts the API call in progress, and invalidates nothing', async () => {
    const { server, tokens, source, echo } = await withEcho()
    const api = tokens.fetch(source())
    const token = await tokens.get(source())
    echo.mode = 'hang'
    const controller = new AbortController()
    const call = api(echo.url, { signal: controller.signal })
    await echo.waitForRequests(1)
    const reason = new Error('the caller gave up')
    controller.abort(reason)
    await expect(call).rejects.toBe(reason)
    expect(tokens.peek(source())).toBe(token)
    expect(server.stats().tokenRequests).toBe(1)
  })

  it('an already aborted signal sends nothing', async () => {
    const { server, tokens, source, echo } = await withEcho()
    const api = tokens.fetch(source())
    await tokens.get(source())
    const reason = new Error('already aborted')
    await expect(api(echo.url, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(echo.requests).toHaveLength(0)
    expect(server.stats().tokenRequests).toBe(1)
  })

  it("while waiting for a token, ends this caller's wait only", async () => {
    const { server, tokens, source } = await startHarness()
    const api = tokens.fetch(source())
    const hold = server.hold()
    const controller = new AbortController()
    const leaving = api(server.resourceUrl, { signal: controller.signal })
    const staying = api(server.resourceUrl)
    await server.waitForRequests(1)
    const reason = new Error('leaving early')
    controller.abort(reason)
    await expect(leaving).rejects.toBe(reason)
    hold.release()
    expect((await staying).status).toBe(200)
    expect(server.stats()).toMatchObject({ tokenRequests: 1, resourceCalls: 1 })
  })
})

describe('tokens.fetch(source): URLs a token must not go to', () => {
  it('a URL with user-info or a scheme other than http(s) is a TypeError: no token request, no password in it', async () => {
    const { server, tokens, source } = await startHarness()
    const api = tokens.fetch(source())
    const headersOnly = (url: string) => tokens.headers(source(), { method: 'GET', url })
    const withUserInfo = [
      `${server.resourceUrl.replace('http://', 'http://user:Pa55word-Zx9@')}`,
      `${server.resourceUrl.replace('http://', 'http://user@')}`,
      `${server.resourceUrl.replace('http://', 'HTTP:\\\\user:Pa55word-Zx9@')}`,
    ]
    for (const url of withUserInfo) {
      for (const attempt of [() => api(url), () => api(new URL(url)), () => headersOnly(url)]) {
        const error = await attempt().catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(TypeError)
        expect((error as Error).message).toMatch(/has user-info/)
        expect((error as Error).message).not.toContain('Pa55word')
      }
    }
    for (const url of [
      'ftp://files.example/x',
      'file:///etc/passwd',
      'data:text/plain,hello',
      'ws://api.example/x',
    ]) {
      await expect(headersOnly(url)).rejects.toThrow(/a token is sent only to an http\(s\) URL/)
      await expect(api(url)).rejects.toThrow(TypeError)
    }
    expect(server.stats().tokenRequests).toBe(0)
    // An at sign in the path or query is no user-info.
    const plain = await api(`${server.resourceUrl}?who=a@b`)
    expect(plain.status).toBe(200)
  })
})
