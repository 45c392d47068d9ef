/**
 * The project's token server with DPoP (tokenkeeper/testing `dpop` option): bound tokens, nonces
 * at the token endpoint and the resource, rotation, replay and Bearer misuse refused; and the
 * axios, got and undici integrations sending DPoP through the manager's authorizer.
 */
import { inspect } from 'node:util'
import axios from 'axios'
import got from 'got'
import { Agent, request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { attachTokens } from '../../src/integrations/axios.js'
import { gotTokens } from '../../src/integrations/got.js'
import { tokenInterceptor } from '../../src/integrations/undici.js'
import {
  clientCredentials,
  clientSecretBasic,
  dpopKey,
  generateDpopKey,
  TOKEN_TYPES,
  TokenManager,
  tokenExchange,
  type TokenSource,
} from '../../src/index.js'
import { startTokenServer, type TokenServer, type TokenServerOptions } from '../../src/testing/index.js'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function setup(dpop: TokenServerOptions['dpop'] = { requireNonce: true }): Promise<{
  server: TokenServer
  tokens: TokenManager
  source: TokenSource
}> {
  const server = await startTokenServer({
    clients: [{ clientId: 'svc', clientSecret: 'test-secret-123' }],
    dpop,
  })
  const tokens = new TokenManager()
  cleanups.push(
    () => server.close(),
    () => tokens.close(),
  )
  const source = clientCredentials({
    tokenUrl: server.tokenUrl,
    clientId: 'svc',
    auth: clientSecretBasic('test-secret-123'),
    dpop: await generateDpopKey(),
  })
  return { server, tokens, source }
}

describe('tokenkeeper/testing with dpop', () => {
  it('binds tokens to the proof key; nonces at the token endpoint cost one retry, once', async () => {
    const { server, tokens, source } = await setup()
    const token = await tokens.get(source)
    expect(token.type).toBe('DPoP')
    expect(server.introspect(token.value)?.jkt).toBe(source.dpop!.thumbprint)
    expect(server.requests.map((r) => [r.status, r.error])).toEqual([
      [400, 'use_dpop_nonce'],
      [200, undefined],
    ])
    await tokens.invalidate(source)
    await tokens.get(source)
    expect(server.stats()).toMatchObject({ tokenRequests: 3, tokensIssued: 2, dpopRejected: 1 })
  })

  it('the resource checks each proof; a rotated nonce costs one retry and no token', async () => {
    const { server, tokens, source } = await setup()
    const api = tokens.fetch(source)
    expect((await api(server.resourceUrl)).status).toBe(200)
    expect((await api(`${server.resourceUrl}?scope=`)).status).toBe(200)
    server.rotateDpopNonce()
    expect((await api(server.resourceUrl, { method: 'POST', body: 'x' })).status).toBe(200)
    expect(server.stats()).toMatchObject({ resourceAccepted: 3, tokensIssued: 1 })
    // One nonce demand at the token endpoint, whose nonce the resource (same origin) takes too,
    // and one after the rotation.
    expect(server.stats().dpopRejected).toBe(2)
  })

  it('refuses a bound token sent as Bearer, a replayed proof, and another key', async () => {
    const { server, tokens, source } = await setup({})
    const token = await tokens.get(source)
    const bearer = await fetch(server.resourceUrl, { headers: { authorization: `Bearer ${token.value}` } })
    expect(bearer.status).toBe(401)
    const headers = await tokens.headers(source, { method: 'GET', url: server.resourceUrl })
    expect((await fetch(server.resourceUrl, { headers })).status).toBe(200)
    const replay = await fetch(server.resourceUrl, { headers })
    expect(replay.status).toBe(401)
    expect(replay.headers.get('www-authenticate')).toMatch(/DPoP .*error="invalid_dpop_proof".*replay/)
    const stranger = dpopKey(await generateDpopKey())
    const proof = await stranger.proof({
      htm: 'GET',
      htu: server.resourceUrl,
      now: Date.now(),
      accessToken: token.value,
    })
    const wrongKey = await fetch(server.resourceUrl, {
      headers: { authorization: `DPoP ${token.value}`, dpop: proof },
    })
    expect(wrongKey.status).toBe(401)
    expect(wrongKey.headers.get('www-authenticate')).toMatch(/not bound to the key/)
  })

  it('refuses a proof whose iat is off by more than clockToleranceMs (a skewed client clock)', async () => {
    const { server } = await setup({})
    const skewed = clientCredentials({
      tokenUrl: server.tokenUrl,
      clientId: 'svc',
      auth: clientSecretBasic('test-secret-123'),
      dpop: await generateDpopKey(),
      clock: {
        now: () => Date.now() + 5 * 60_000,
        setTimer: (fn, ms) => {
          const t = setTimeout(fn, ms)
          return { cancel: () => clearTimeout(t) }
        },
      },
    })
    const error = await skewed.fetchToken().catch((e: unknown) => e)
    expect(error).toMatchObject({
      code: 'OAUTH_ERROR',
      error: 'invalid_dpop_proof',
      error_description: 'iat is not recent',
    })
    expect(server.stats().tokensIssued).toBe(0)
  })

  it('tokenExchange with dpop: the exchanged token is bound to the key and used with proofs', async () => {
    const { server, tokens } = await setup({})
    const subject = clientCredentials({
      tokenUrl: server.tokenUrl,
      clientId: 'svc',
      auth: clientSecretBasic('test-secret-123'),
    })
    const exchange = tokenExchange({
      tokenUrl: server.tokenUrl,
      clientId: 'svc',
      auth: clientSecretBasic('test-secret-123'),
      subjectToken: subject,
      subjectTokenType: TOKEN_TYPES.accessToken,
      dpop: await generateDpopKey(),
    })
    const token = await tokens.get(exchange)
    expect(token.type).toBe('DPoP')
    expect(server.introspect(token.value)?.jkt).toBe(exchange.dpop!.thumbprint)
    expect((await tokens.fetch(exchange)(server.resourceUrl)).status).toBe(200)
    expect(server.stats()).toMatchObject({ tokensIssued: 2, resourceAccepted: 1 })
  })

  it('dpop.required refuses a token request without a proof', async () => {
    const { server } = await setup({ required: true })
    const plain = clientCredentials({
      tokenUrl: server.tokenUrl,
      clientId: 'svc',
      auth: clientSecretBasic('test-secret-123'),
    })
    await expect(plain.fetchToken()).rejects.toMatchObject({
      code: 'OAUTH_ERROR',
      error: 'invalid_dpop_proof',
    })
  })

  it('without dpop the server ignores proofs and answers Bearer, which the token records', async () => {
    const { server, tokens, source } = await setup(false)
    const token = await tokens.get(source)
    expect(token.type).toBe('Bearer')
    expect(token.binding).toMatchObject({ bound: false })
    expect((await tokens.fetch(source)(server.resourceUrl)).status).toBe(200)
  })
})

describe('integrations send DPoP through the authorizer', () => {
  it('axios: 200 with a nonce demand answered, the proof redacted from the config', async () => {
    const { server, tokens, source } = await setup()
    const api = axios.create()
    attachTokens(api, tokens, source)
    await tokens.get(source)
    server.rotateDpopNonce()
    const answers = []
    for (let i = 0; i < 3; i++) answers.push(await api.get(server.resourceUrl))
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200])
    expect(server.stats()).toMatchObject({ resourceAccepted: 3, resourceCalls: 4, tokensIssued: 1 })
    const last = answers.at(-1)!
    expect(last.config.headers.get('dpop')).toBe('[redacted]')
    expect(last.config.headers.get('authorization')).toBe('[redacted]')
    expect(inspect(last, { depth: 6 })).not.toMatch(/eyJ[\w-]+\.eyJ/)
  })

  it('got: 200 with a nonce demand answered, the proof redacted from the options', async () => {
    const { server, tokens, source } = await setup()
    const api = got.extend(gotTokens(tokens, source))
    await tokens.get(source)
    server.rotateDpopNonce()
    const first = await api.get(server.resourceUrl)
    const second = await api.get(server.resourceUrl)
    expect([first.statusCode, second.statusCode]).toEqual([200, 200])
    expect(server.stats()).toMatchObject({ resourceAccepted: 2, resourceCalls: 3, tokensIssued: 1 })
    const options = second.request.options.headers as Record<string, unknown>
    expect(options['dpop']).toBe('[redacted]')
  })

  it('undici: 200 with a nonce demand answered and remembered', async () => {
    const { server, tokens, source } = await setup()
    const agent = new Agent()
    cleanups.push(() => agent.close())
    const dispatcher = agent.compose(tokenInterceptor(tokens, { [server.resourceUrl]: source }))
    await tokens.get(source)
    server.rotateDpopNonce()
    for (let i = 0; i < 3; i++) {
      const res = await request(server.resourceUrl, { dispatcher })
      await res.body.dump()
      expect(res.statusCode).toBe(200)
    }
    // Only the first call met a nonce demand: later ones used the remembered nonce.
    expect(server.stats()).toMatchObject({ resourceAccepted: 3, resourceCalls: 4, tokensIssued: 1 })
  })
})
