import { describe, expect, it } from 'vitest'
import { onCleanup, startHarness } from '../faults/harness.js'
import { startEchoResource } from './echo-resource.js'

async function revokedSetup() {
  const harness = await startHarness()
  const echo = await startEchoResource(harness.server)
  onCleanup(() => echo.close())
  const source = harness.source()
  const api = harness.tokens.fetch(source)
  const old = await harness.tokens.get(source)
  harness.server.revoke(old.value)
  return { ...harness, echo, source, api, old }
}

const BINARY = Uint8Array.from({ length: 600 }, (_, i) => (i * 37 + 11) % 256)

/** A body kind, how to send it, and the bytes (and content type) the resource must see both times. */
interface BodyCase {
  readonly name: string
  readonly call: (url: string) => [input: string | Request, init?: RequestInit]
  readonly bytes: Buffer | undefined
  readonly contentType: string | RegExp | undefined
}

const text = 'héllo, wörld — ' + 'x'.repeat(2_000)

const cases: BodyCase[] = [
  {
    name: 'a string',
    call: (url) => [url, { method: 'POST', body: text }],
    bytes: Buffer.from(text),
    contentType: 'text/plain;charset=UTF-8',
  },
  {
    name: 'URLSearchParams',
    call: (url) => [url, { method: 'POST', body: new URLSearchParams({ a: '1 2', b: 'ü&=' }) }],
    bytes: Buffer.from('a=1+2&b=%C3%BC%26%3D'),
    contentType: 'application/x-www-form-urlencoded;charset=UTF-8',
  },
  {
    name: 'a Uint8Array',
    call: (url) => [url, { method: 'PUT', body: BINARY }],
    bytes: Buffer.from(BINARY),
    contentType: undefined,
  },
  {
    name: 'a DataView over part of a buffer',
    call: (url) => [url, { method: 'POST', body: new DataView(BINARY.buffer, 100, 200) }],
    bytes: Buffer.from(BINARY.subarray(100, 300)),
    contentType: undefined,
  },
  {
    name: 'an ArrayBuffer',
    call: (url) => [url, { method: 'POST', body: BINARY.slice().buffer }],
    bytes: Buffer.from(BINARY),
    contentType: undefined,
  },
  {
    name: 'a Blob',
    call: (url) => [
      url,
      { method: 'POST', body: new Blob([BINARY, 'tail'], { type: 'application/x-thing' }) },
    ],
    bytes: Buffer.concat([Buffer.from(BINARY), Buffer.from('tail')]),
    contentType: 'application/x-thing',
  },
  {
    name: 'FormData',
    call: (url) => {
      const form = new FormData()
      form.set('field', 'value')
      form.set('file', new Blob(['file body']), 'a.txt')
      return [url, { method: 'POST', body: form }]
    },
    bytes: undefined, // multipart: the same bytes both times, checked below
    contentType: /^multipart\/form-data; boundary=/,
  },
  {
    name: 'a Request with a body',
    call: (url) => [
      new Request(url, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } }),
    ],
    bytes: Buffer.from('{"a":1}'),
    contentType: 'application/json',
  },
  {
    name: 'a Request with its body replaced by init',
    call: (url) => [new Request(url, { method: 'POST', body: 'old' }), { body: 'new body' }],
    bytes: Buffer.from('new body'),
    contentType: 'text/plain;charset=UTF-8',
  },
  {
    name: 'no body',
    call: (url) => [url, { method: 'DELETE' }],
    bytes: Buffer.alloc(0),
    contentType: undefined,
  },
]

describe('tokens.fetch(source): replayable bodies are replayed exactly after a 401', () => {
  it.each(cases)('$name', async ({ call, bytes, contentType }) => {
    const { server, tokens, source, echo, api, old } = await revokedSetup()
    const [input, init] = call(echo.url)
    const response = await api(input, init)
    expect(response.status).toBe(200)
    expect(echo.requests).toHaveLength(2)
    const [first, retry] = echo.requests as [(typeof echo.requests)[0], (typeof echo.requests)[0]]
    expect(first.token).toBe(old.value)
    expect(retry.token).toBe(tokens.peek(source)?.value)
    expect(retry.token).not.toBe(old.value)
    expect(retry.method).toBe(first.method)
    expect(retry.path).toBe(first.path)
    expect(retry.body.equals(first.body)).toBe(true)
    if (bytes !== undefined) expect(retry.body.equals(bytes)).toBe(true)
    else expect(retry.body.length).toBeGreaterThan(0)
    expect(retry.headers['content-type']).toEqual(first.headers['content-type'])
    if (contentType === undefined) expect(retry.headers['content-type']).toBeUndefined()
    else if (typeof contentType === 'string') expect(retry.headers['content-type']).toBe(contentType)
    else expect(retry.headers['content-type']).toMatch(contentType)
    expect(server.stats().tokenRequests).toBe(2)
  })
})

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk))
      controller.close()
    },
  })
}

describe('tokens.fetch(source): a body that cannot be replayed', () => {
  it('a ReadableStream body: no retry, the 401 is returned, and the token was invalidated', async () => {
    const { server, tokens, source, echo, api, old } = await revokedSetup()
    const response = await api(echo.url, {
      method: 'POST',
      body: streamOf('part one, ', 'part two'),
      duplex: 'half',
    })
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({ error: 'invalid_token' })
    expect(echo.requests).toHaveLength(1)
    expect(echo.requests[0]!.body.toString()).toBe('part one, part two')
    expect(echo.requests[0]!.token).toBe(old.value)
    // Invalidated, but not yet replaced: no token request was made for a retry that cannot happen.
    expect(tokens.peek(source)).toBeUndefined()
    expect(server.stats().tokenRequests).toBe(1)

    // The next call gets a fresh token.
    const next = await api(echo.url, { method: 'POST', body: streamOf('again'), duplex: 'half' })
    expect(next.status).toBe(200)
    expect(server.stats().tokenRequests).toBe(2)
    expect(echo.requests[1]!.token).not.toBe(old.value)
    expect(echo.requests[1]!.body.toString()).toBe('again')
  })

  it('a ReadableStream body given in init over a Request: no retry either', async () => {
    const { server, tokens, source, echo, api } = await revokedSetup()
    const response = await api(new Request(echo.url, { method: 'POST' }), {
      body: streamOf('streamed'),
      duplex: 'half',
    })
    expect(response.status).toBe(401)
    expect(echo.requests).toHaveLength(1)
    expect(echo.requests[0]!.body.toString()).toBe('streamed')
    expect(tokens.peek(source)).toBeUndefined()
    expect(server.stats().tokenRequests).toBe(1)
  })

  it('a Request whose body is a stream is either replayed exactly or returned as a 401, never mangled', async () => {
    const { echo, api } = await revokedSetup()
    const request = new Request(echo.url, {
      method: 'POST',
      body: streamOf('chunk-a|', 'chunk-b'),
      duplex: 'half',
    })
    const response = await api(request)
    expect(echo.requests[0]!.body.toString()).toBe('chunk-a|chunk-b')
    if (response.status === 200) {
      expect(echo.requests).toHaveLength(2)
      expect(echo.requests[1]!.body.toString()).toBe('chunk-a|chunk-b')
    } else {
      expect(response.status).toBe(401)
      expect(echo.requests).toHaveLength(1)
    }
  })
})
