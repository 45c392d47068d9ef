import { request } from 'node:http'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { FORM, basic, postToken } from './helpers.js'

let server: TokenServer
beforeEach(async () => {
  server = await startTokenServer({
    clients: [{ clientId: 'svc-a', clientSecret: 'pw', allowedScopes: ['read'] }],
  })
})
afterEach(async () => {
  await server.close()
})

const auth = { authorization: basic('svc-a', 'pw') }
const credentials = { grant_type: 'client_credentials' }
const raw = (init: RequestInit = {}) =>
  fetch(server.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': FORM, ...auth },
    body: 'grant_type=client_credentials',
    ...init,
  })

describe('faults', () => {
  it('status: RFC 6749 §5.2 error body and Retry-After, once by default', async () => {
    server.inject({
      kind: 'status',
      status: 503,
      error: 'temporarily_unavailable',
      errorDescription: 'down',
      retryAfter: 7,
    })
    const faulted = await postToken(server, credentials, auth)
    expect(faulted.status).toBe(503)
    expect(faulted.headers.get('retry-after')).toBe('7')
    expect(faulted.json).toEqual({ error: 'temporarily_unavailable', error_description: 'down' })
    expect((await postToken(server, credentials, auth)).status).toBe(200)
    expect(server.stats()).toMatchObject({ tokenRequests: 2, tokensIssued: 1, failures: 1 })
    expect(server.requests.map((r) => r.fault)).toEqual(['status', undefined])
  })

  it('status without error: a raw body and an HTTP-date Retry-After', async () => {
    const date = 'Wed, 21 Oct 2026 07:28:00 GMT'
    server.inject({
      kind: 'status',
      status: 429,
      retryAfter: date,
      body: 'slow down',
      headers: { 'x-why': 'quota' },
    })
    const response = await raw()
    expect(response.status).toBe(429)
    expect(response.headers.get('x-why')).toBe('quota')
    expect(response.headers.get('retry-after')).toBe(date)
    expect(await response.text()).toBe('slow down')
  })

  it('html, body and json replace the response', async () => {
    server.inject({ kind: 'html' })
    server.inject({ kind: 'body', body: '{"access_token": ', status: 200 })
    server.inject({ kind: 'json', json: { token_type: 'Bearer', expires_in: -1 } })
    const html = await raw()
    expect(html.status).toBe(502)
    expect(html.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await html.text()).toContain('<html>')
    const body = await raw()
    expect(await body.text()).toBe('{"access_token": ')
    const json = await raw()
    expect(await json.json()).toEqual({ token_type: 'Bearer', expires_in: -1 })
    expect(server.stats()).toMatchObject({ tokensIssued: 0, failures: 3 })
  })

  it('reset destroys the connection without a response', async () => {
    server.inject({ kind: 'reset' })
    await expect(raw()).rejects.toThrow(TypeError)
    expect(server.requests[0]?.status).toBeUndefined()
    expect((await raw()).status).toBe(200)
  })

  it('redirect sends Location and no token', async () => {
    server.inject({ kind: 'redirect', location: 'https://elsewhere.example/token', status: 307 })
    const response = await raw({ redirect: 'manual' })
    expect(response.status).toBe(307)
    expect(response.headers.get('location')).toBe('https://elsewhere.example/token')
  })

  it('huge streams exactly the given number of bytes, chunked or with Content-Length', async () => {
    server.inject({ kind: 'huge', bytes: 3 * 1024 * 1024 + 5 })
    server.inject({ kind: 'huge', bytes: 1000, declareLength: true })
    const chunked = await raw()
    expect(chunked.headers.get('content-length')).toBeNull()
    const text = await chunked.text()
    expect(text.length).toBe(3 * 1024 * 1024 + 5)
    expect(text.startsWith('{"access_token":"tkt_')).toBe(true)
    const declared = await raw()
    expect(declared.headers.get('content-length')).toBe('1000')
    expect((await declared.arrayBuffer()).byteLength).toBe(1000)
  })

  it('slow-body sends headers first and drips a real token body', async () => {
    server.inject({ kind: 'slow-body', ms: 100 })
    const chunks = await new Promise<string[]>((resolve, reject) => {
      const req = request(
        server.tokenUrl,
        { method: 'POST', headers: { 'content-type': FORM, ...auth } },
        (res) => {
          const received: string[] = []
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => received.push(chunk))
          res.on('end', () => resolve(received))
        },
      )
      req.on('error', reject)
      req.end('grant_type=client_credentials')
    })
    expect(chunks.length).toBeGreaterThan(1)
    expect(JSON.parse(chunks.join(''))).toMatchObject({ token_type: 'Bearer', expires_in: 3600 })
    expect(server.stats().tokensIssued).toBe(1)
  })

  it('latency delays the answer by at least ms', async () => {
    server.inject({ kind: 'latency', ms: 60 })
    const started = performance.now()
    expect((await raw()).status).toBe(200)
    expect(performance.now() - started).toBeGreaterThanOrEqual(55)
  })

  it('token overrides response fields and the expiry bookkeeping', async () => {
    server.inject({ kind: 'token', expiresIn: null, scope: null, tokenType: 'mac', refreshIn: '30' })
    server.inject({ kind: 'token', expiresIn: '3600' })
    server.inject({ kind: 'token', expiresIn: 10 })
    const omitted = await postToken(server, credentials, auth)
    expect(omitted.json).toEqual({ access_token: expect.any(String), token_type: 'mac', refresh_in: '30' })
    expect((await postToken(server, credentials, auth)).json.expires_in).toBe('3600')
    const short = await postToken(server, credentials, auth)
    expect(short.json.expires_in).toBe(10)
    const info = server.introspect(String(short.json.access_token))
    expect(info && info.expiresAt - info.issuedAt).toBe(10_000)
  })

  it('hang never answers, and close() resolves promptly with it in flight', async () => {
    server.inject({ kind: 'hang' })
    const pending = raw()
    const settled = pending.then(
      () => 'answered',
      () => 'failed',
    )
    await server.waitForRequests(1)
    expect(server.stats().inFlight).toBe(1)
    const started = performance.now()
    await server.close()
    expect(performance.now() - started).toBeLessThan(1_000)
    expect(await settled).toBe('failed')
  })
})

describe('fault scheduling', () => {
  it('inject times, Infinity with remove(), standing faults and clearFaults()', async () => {
    const twice = server.inject({ kind: 'status', status: 500 }, { times: 2 })
    expect((await raw()).status).toBe(500)
    expect(twice.remaining).toBe(1)
    expect((await raw()).status).toBe(500)
    expect((await raw()).status).toBe(200)

    const forever = server.inject({ kind: 'status', status: 502 }, { times: Infinity })
    for (let i = 0; i < 3; i++) expect((await raw()).status).toBe(502)
    forever.remove()
    expect((await raw()).status).toBe(200)

    server.setFault({ kind: 'status', status: 503 })
    server.inject({ kind: 'status', status: 429 })
    expect((await raw()).status).toBe(429) // queued one-shots come before the standing fault
    expect((await raw()).status).toBe(503)
    expect((await raw()).status).toBe(503)
    server.setFault(undefined)
    expect((await raw()).status).toBe(200)
    server.setFault({ kind: 'status', status: 503 })
    server.inject({ kind: 'status', status: 429 })
    server.clearFaults()
    expect((await raw()).status).toBe(200)
  })
})

describe('hold and waitForRequests', () => {
  it('holds requests unanswered until release()', async () => {
    const hold = server.hold()
    expect(server.hold()).toBe(hold)
    const calls = Array.from({ length: 5 }, () => postToken(server, credentials, auth))
    await server.waitForRequests(5)
    expect(hold.waiting).toBe(5)
    expect(server.stats()).toMatchObject({ tokenRequests: 5, tokensIssued: 0, inFlight: 5 })
    hold.release()
    expect(hold.waiting).toBe(0)
    const results = await Promise.all(calls)
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
    expect(new Set(results.map((r) => r.json.access_token)).size).toBe(5)
    expect(server.stats()).toMatchObject({ tokensIssued: 5, inFlight: 0, byClient: { 'svc-a': 5 } })
  })

  it('waitForRequests rejects on timeout and on close, and resolves at once when already reached', async () => {
    await expect(server.waitForRequests(1, { timeoutMs: 20 })).rejects.toThrow(/0 of 1/)
    expect((await raw()).status).toBe(200)
    await expect(server.waitForRequests(1)).resolves.toBeUndefined()
    const waiting = server.waitForRequests(2)
    await server.close()
    await expect(waiting).rejects.toThrow(/closed/)
  })

  it('close() resolves with held requests and open keep-alive sockets', async () => {
    expect((await raw()).status).toBe(200) // leaves a keep-alive socket open
    server.hold()
    const held = raw().catch((error: unknown) => error)
    await server.waitForRequests(2)
    await server.close()
    expect(await held).toBeInstanceOf(TypeError)
    await server.close() // idempotent
  })

  it('answers many concurrent requests and counts them exactly', async () => {
    const calls = await Promise.all(Array.from({ length: 200 }, () => raw().then((r) => r.status)))
    expect(calls.every((status) => status === 200)).toBe(true)
    expect(server.stats()).toMatchObject({ tokenRequests: 200, tokensIssued: 200, failures: 0 })
    expect(server.requests).toHaveLength(200)
  })
})
