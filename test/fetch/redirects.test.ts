import { decodeJwt } from 'jose'
import { describe, expect, it } from 'vitest'
import { generateDpopKey, type TokenSource } from '../../src/index.js'
import { startHarness } from '../faults/harness.js'
import { startOrigins } from '../support/redirect-origins.js'

async function setup(options: { dpop?: boolean } = {}) {
  const harness = await startHarness({ server: options.dpop === true ? { dpop: true } : {} })
  const origins = await startOrigins()
  const source: TokenSource = harness.source(options.dpop === true ? { dpop: await generateDpopKey() } : {})
  return { ...harness, ...origins, source, api: harness.tokens.fetch(source) }
}

const CREDENTIALS = ['authorization', 'dpop', 'cookie', 'proxy-authorization'] as const

describe('tokens.fetch(source): redirects', () => {
  it.each([301, 302, 303, 307, 308])(
    'a %i to another origin carries no Authorization, DPoP proof or cookie; other headers go on',
    async (status) => {
      for (const dpop of [false, true]) {
        const { api, urls, seen, tokens, source } = await setup({ dpop })
        const response = await api(`${urls.api}/to/${status}/other/landing`, {
          headers: { 'x-trace-id': 't-1', cookie: 'session=caller', 'proxy-authorization': 'Basic eDp5' },
        })
        expect(response.status).toBe(200)
        expect(await response.text()).toBe('other /landing')
        expect(response.redirected).toBe(true)
        expect(response.url).toBe(`${urls.other}/landing`)
        const token = await tokens.get(source)
        expect(seen.map((one) => one.where)).toEqual(['api', 'other'])
        expect(seen[0]!.headers.authorization).toBe(token.authorization)
        expect(seen[0]!.headers.dpop !== undefined).toBe(dpop)
        for (const name of CREDENTIALS) expect(seen[1]!.headers[name]).toBeUndefined()
        expect(seen[1]!.headers['x-trace-id']).toBe('t-1')
      }
    },
  )

  it('a redirect to the same origin carries the token again, with a new proof signed for the new URL', async () => {
    const { api, urls, seen, tokens, source } = await setup({ dpop: true })
    const response = await api(`${urls.api}/to/302/api/landing?x=1`)
    expect(await response.text()).toBe('api /landing?x=1')
    const token = await tokens.get(source)
    expect(seen.map((one) => [one.where, one.headers.authorization])).toEqual([
      ['api', token.authorization],
      ['api', token.authorization],
    ])
    const [first, second] = seen.map((one) => decodeJwt(String(one.headers.dpop)))
    expect(first!['htu']).toBe(`${urls.api}/to/302/api/landing`)
    expect(second!['htu']).toBe(`${urls.api}/landing`)
    expect(second!['htm']).toBe('GET')
    expect(second!['jti']).not.toBe(first!['jti'])
  })

  it('a hop off the origin ends the credentials for good: a redirect back to the API carries none', async () => {
    const { api, urls, seen } = await setup()
    // api → other (307) → other redirects nowhere; build api → other → api by nesting.
    const back = `to/302/api/landing`
    const response = await api(`${urls.api}/to/307/other/${back}`)
    expect(await response.text()).toBe('api /landing')
    expect(seen.map((one) => one.where)).toEqual(['api', 'other', 'api'])
    expect(seen[1]!.headers.authorization).toBeUndefined()
    expect(seen[2]!.headers.authorization).toBeUndefined()
  })

  it('a 401 from another origin is returned as it is: the token it never saw is not invalidated', async () => {
    const { api, urls, tokens, source, server } = await setup()
    const response = await api(`${urls.api}/to/302/other/deny`)
    expect(response.status).toBe(401)
    expect(tokens.peek(source)).toBeDefined()
    expect(server.stats().tokenRequests).toBe(1)
  })

  it('a 401 after a same-origin redirect renews once and retries from the original URL', async () => {
    const { api, urls, seen, server } = await setup()
    const response = await api(`${urls.api}/to/302/api/deny`)
    expect(response.status).toBe(401)
    expect(seen.map((one) => one.path)).toEqual(['/to/302/api/deny', '/deny', '/to/302/api/deny', '/deny'])
    expect(server.stats().tokenRequests).toBe(2)
    expect(seen[2]!.headers.authorization).not.toBe(seen[0]!.headers.authorization)
  })

  it('307 and 308 send the body again; 303, and 301/302 after a POST, become a GET without one', async () => {
    const { api, urls, seen } = await setup()
    for (const status of [307, 308, 303, 301, 302]) {
      seen.length = 0
      await api(`${urls.api}/to/${status}/api/landing`, {
        method: 'POST',
        body: 'payload',
        headers: { 'content-type': 'text/plain' },
      })
      const hop = seen[1]!
      if (status === 307 || status === 308) {
        expect([hop.method, hop.body, hop.headers['content-type']]).toEqual(['POST', 'payload', 'text/plain'])
      } else {
        expect([hop.method, hop.body, hop.headers['content-type']]).toEqual(['GET', '', undefined])
      }
      expect(hop.headers.authorization).toBeDefined()
    }
  })

  it('the same rules for a Request and an injected fetch', async () => {
    const { tokens, source, urls, seen } = await setup({ dpop: true })
    const api = tokens.fetch(source, { fetch: (input, init) => fetch(input, init) })
    const response = await api(
      new Request(`${urls.api}/to/308/other/landing`, {
        method: 'PUT',
        body: 'bytes',
        headers: { 'x-a': '1' },
      }),
    )
    expect(await response.text()).toBe('other /landing')
    expect([seen[1]!.method, seen[1]!.body, seen[1]!.headers['x-a']]).toEqual(['PUT', 'bytes', '1'])
    for (const name of CREDENTIALS) expect(seen[1]!.headers[name]).toBeUndefined()
  })

  it('a streamed body through an injected fetch: a 303 becomes a GET that keeps the caller’s headers and gets the token again', async () => {
    const { tokens, source, urls, seen } = await setup({ dpop: true })
    const api = tokens.fetch(source, { fetch: (input, init) => fetch(input, init) })
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed'))
        controller.close()
      },
    })
    const response = await api(`${urls.api}/to/303/api/landing`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
      headers: { 'x-trace-id': 't-2', authorization: 'Bearer caller-own' },
    })
    expect(await response.text()).toBe('api /landing')
    const token = await tokens.get(source)
    expect(seen.map((one) => [one.method, one.headers['x-trace-id'], one.headers.authorization])).toEqual([
      ['POST', 't-2', token.authorization],
      ['GET', 't-2', token.authorization],
    ])
    expect(decodeJwt(String(seen[1]!.headers.dpop))['htu']).toBe(`${urls.api}/landing`)
  })

  it('a 307 of a streamed body, more than 20 redirects and a non-http location are TypeErrors', async () => {
    const { api, urls, seen } = await setup()
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('once'))
        controller.close()
      },
    })
    await expect(
      api(`${urls.api}/to/307/api/landing`, { method: 'POST', body: stream, duplex: 'half' }),
    ).rejects.toThrow(/cannot follow the 307 redirect of POST 127\.0\.0\.1:\d+\/to\/307\/api\/landing/)
    await expect(api(`${urls.api}/loop`)).rejects.toThrow(/more than 20 redirects/)
    expect(seen.filter((one) => one.path === '/loop')).toHaveLength(21)
    await expect(api(`${urls.api}/to/302/scheme/passwd`)).rejects.toThrow(/not an http\(s\) URL/)
  })

  it("redirect: 'manual' hands the redirect back, 'error' rejects, as fetch does", async () => {
    const { api, urls, seen } = await setup()
    const manual = await api(`${urls.api}/to/302/other/landing`, { redirect: 'manual' })
    expect([manual.status, manual.headers.get('location')]).toEqual([302, `${urls.other}/landing`])
    await expect(api(`${urls.api}/to/302/other/landing`, { redirect: 'error' })).rejects.toThrow(TypeError)
    expect(seen.every((one) => one.where === 'api')).toBe(true)
  })
})
