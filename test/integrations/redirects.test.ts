import axios from 'axios'
import got from 'got'
import { decodeJwt } from 'jose'
import { Agent, fetch as undiciFetch, interceptors, request as undiciRequest } from 'undici'
import { describe, expect, it } from 'vitest'
import { generateDpopKey, type TokenSource } from '../../src/index.js'
import { attachTokens } from '../../src/integrations/axios.js'
import { gotTokens } from '../../src/integrations/got.js'
import { tokenInterceptor } from '../../src/integrations/undici.js'
import { onCleanup, startHarness } from '../faults/harness.js'
import { startOrigins } from '../support/redirect-origins.js'

async function setup(dpop: boolean) {
  const harness = await startHarness({ server: dpop ? { dpop: true } : {} })
  const origins = await startOrigins()
  const source: TokenSource = harness.source(dpop ? { dpop: await generateDpopKey() } : {})
  return { ...harness, ...origins, source }
}

type Setup = Awaited<ReturnType<typeof setup>>

/** Each client, given one source for every request (the widest route), sending a GET. */
const clients: Record<string, (s: Setup, url: string) => Promise<number>> = {
  axios: async ({ tokens, source }, url) => {
    const api = axios.create({ validateStatus: () => true })
    attachTokens(api, tokens, source)
    return (await api.get(url)).status
  },
  got: async ({ tokens, source }, url) => {
    const api = got.extend({ throwHttpErrors: false, retry: { limit: 0 } }, gotTokens(tokens, source))
    return (await api.get(url)).statusCode
  },
  'undici fetch': async ({ tokens, source }, url) => {
    const agent = new Agent().compose(tokenInterceptor(tokens, source))
    onCleanup(() => agent.close())
    const response = await undiciFetch(url, { dispatcher: agent })
    await response.arrayBuffer()
    return response.status
  },
  'undici request, redirect interceptor': async ({ tokens, source }, url) => {
    const agent = new Agent().compose(
      tokenInterceptor(tokens, source),
      interceptors.redirect({ maxRedirections: 5 }),
    )
    onCleanup(() => agent.close())
    const response = await undiciRequest(url, { dispatcher: agent })
    await response.body.arrayBuffer()
    return response.statusCode
  },
}

const CREDENTIALS = ['authorization', 'dpop'] as const

describe.each(Object.keys(clients))('%s: redirects', (name) => {
  const send = clients[name]!

  it.each([
    [302, false],
    [307, false],
    [302, true],
    [308, true],
  ])('a %i to another origin carries no token and no proof (DPoP: %s)', async (status, dpop) => {
    const context = await setup(dpop)
    const { urls, seen, tokens, source } = context
    expect(await send(context, `${urls.api}/to/${status}/other/landing`)).toBe(200)
    expect(seen.map((one) => one.where)).toEqual(['api', 'other'])
    expect(seen[0]!.headers.authorization).toBe((await tokens.get(source)).authorization)
    for (const header of CREDENTIALS) expect(seen[1]!.headers[header]).toBeUndefined()
  })

  it('a 401 from another origin invalidates nothing', async () => {
    const context = await setup(false)
    expect(await send(context, `${context.urls.api}/to/302/other/deny`)).toBe(401)
    expect(context.tokens.peek(context.source)).toBeDefined()
    expect(context.server.stats().tokenRequests).toBe(1)
    expect(context.seen.filter((one) => one.where === 'other')).toHaveLength(1)
  })

  it('a redirect to the same origin never carries a proof signed for the old URL', async () => {
    const context = await setup(true)
    const { urls, seen } = context
    await send(context, `${urls.api}/to/302/api/landing`)
    const landing = seen.find((one) => one.path === '/landing')!
    if (name === 'axios') {
      // axios follows redirects in a synchronous hook, where no proof can be signed.
      for (const header of CREDENTIALS) expect(landing.headers[header]).toBeUndefined()
    } else {
      expect(landing.headers.authorization).toBe(seen[0]!.headers.authorization)
      const proof = decodeJwt(String(landing.headers.dpop))
      expect(proof['htu']).toBe(`${urls.api}/landing`)
      expect(proof['jti']).not.toBe(decodeJwt(String(seen[0]!.headers.dpop))['jti'])
    }
  })

  it('a bearer token goes on to the same origin', async () => {
    const context = await setup(false)
    const { urls, seen, tokens, source } = context
    expect(await send(context, `${urls.api}/to/302/api/landing`)).toBe(200)
    const token = await tokens.get(source)
    expect(seen.map((one) => one.headers.authorization)).toEqual([token.authorization, token.authorization])
  })
})
