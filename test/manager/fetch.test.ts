import { afterEach, describe, expect, it } from 'vitest'
import { InsufficientScopeError, TokenManager, type AccessToken } from '../../src/index.js'
import { parseBearerChallenge } from '../../src/manager/fetch.js'
import { createTestClock } from '../../src/testing/index.js'
import { flush, heldSource, instantSource, type HeldSource } from './helpers.js'

const HOUR = 3_600_000
const managers: TokenManager[] = []

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()))
})

interface Sent {
  readonly method: string
  readonly url: string
  readonly authorization: string | null
  readonly body: string
}

/** A fake API: `respond` decides each answer from the request's Authorization header. */
function fakeApi(respond: (authorization: string | null, sent: Sent[]) => Response) {
  const sent: Sent[] = []
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init)
    const entry = {
      method: request.method,
      url: request.url,
      authorization: request.headers.get('authorization'),
      body: await request.text(),
    }
    sent.push(entry)
    return respond(entry.authorization, sent)
  }
  return { fetch: fetch, sent }
}

async function setup(respond: (authorization: string | null, sent: Sent[]) => Response) {
  const clock = createTestClock()
  const tokens = new TokenManager({ clock, random: () => 0.5 })
  managers.push(tokens)
  const held = heldSource('api')
  const first = tokens.get(held.source)
  await flush()
  const original = held.last().succeed(HOUR)
  await first
  const api = fakeApi(respond)
  return { tokens, held, original, api, authorized: tokens.fetch(held.source, { fetch: api.fetch }) }
}

/** Answers the pending token request (if any) as soon as one is made. */
async function answerWhenAsked(held: HeldSource): Promise<AccessToken> {
  for (let i = 0; i < 50; i++) {
    const pending = held.pending()[0]
    if (pending !== undefined) return pending.succeed(HOUR)
    await flush(1)
  }
  throw new Error('no token request was made')
}

describe('tokens.fetch(source)', () => {
  it('sends Authorization with the cached token', async () => {
    const { original, api, authorized, held } = await setup(() => new Response('ok'))
    const response = await authorized('https://api.example/v1/things')
    expect(response.status).toBe(200)
    expect(api.sent).toEqual([
      {
        method: 'GET',
        url: 'https://api.example/v1/things',
        authorization: `Bearer ${original.value}`,
        body: '',
      },
    ])
    expect(held.fetches).toHaveLength(1)
  })

  it('on 401 invalidates the token it sent, gets a fresh one and retries once with the same body', async () => {
    const { original, api, authorized, held, tokens } = await setup((authorization) =>
      authorization?.endsWith(original.value) === true
        ? new Response('', { status: 401 })
        : new Response('ok'),
    )
    const response = authorized('https://api.example/v1/things', { method: 'POST', body: 'payload=1' })
    const renewed = await answerWhenAsked(held)
    expect((await response).status).toBe(200)
    expect(api.sent.map((s) => [s.method, s.authorization, s.body])).toEqual([
      ['POST', `Bearer ${original.value}`, 'payload=1'],
      ['POST', `Bearer ${renewed.value}`, 'payload=1'],
    ])
    expect(tokens.peek(held.source)).toBe(renewed)
  })

  it('retries only once: a second 401 is returned to the caller', async () => {
    const { api, authorized, held } = await setup(() => new Response('', { status: 401 }))
    const response = authorized('https://api.example/v1/things')
    await answerWhenAsked(held)
    expect((await response).status).toBe(401)
    expect(api.sent).toHaveLength(2)
    expect(held.fetches).toHaveLength(2)
  })

  it('50 concurrent 401s for one token cause one token request', async () => {
    const { original, api, authorized, held } = await setup((authorization) =>
      authorization?.endsWith(original.value) === true
        ? new Response('', { status: 401 })
        : new Response('ok'),
    )
    const responses = Array.from({ length: 50 }, () => authorized('https://api.example/v1/things'))
    const renewed = await answerWhenAsked(held)
    for (const response of await Promise.all(responses)) expect(response.status).toBe(200)
    expect(held.fetches).toHaveLength(2)
    expect(api.sent.filter((s) => s.authorization === `Bearer ${renewed.value}`)).toHaveLength(50)
  })

  it('remembers resources that refused a fresh token for at most maxEntries keys', async () => {
    // Per key: refused twice (the token, then a fresh one), then asked again; returns how many
    // requests that last call sent (1: the refusal was remembered, 2: renewed and retried).
    async function lastCallSends(maxEntries: number): Promise<number> {
      const tokens = new TokenManager({ clock: createTestClock(), random: () => 0.5, maxEntries })
      managers.push(tokens)
      const api = fakeApi(() => new Response('', { status: 401 }))
      const sources = ['a', 'b', 'c'].map((key) => instantSource(key, HOUR).source)
      for (const source of sources) {
        const response = await tokens.fetch(source, { fetch: api.fetch })(`https://api.example/${source.key}`)
        expect(response.status).toBe(401)
      }
      expect(api.sent).toHaveLength(6)
      await tokens.fetch(sources[0]!, { fetch: api.fetch })('https://api.example/again')
      return api.sent.length - 6
    }
    expect(await lastCallSends(3)).toBe(1)
    // Two keys refused after it: the first one is forgotten, and its 401 is a renewal again.
    expect(await lastCallSends(2)).toBe(2)
  })

  it('does not retry a request whose body cannot be replayed, but still invalidates the token', async () => {
    const { api, authorized, held, tokens } = await setup(() => new Response('', { status: 401 }))
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed'))
        controller.close()
      },
    })
    const response = await authorized('https://api.example/upload', {
      method: 'POST',
      body,
      duplex: 'half',
    })
    expect(response.status).toBe(401)
    expect(api.sent).toHaveLength(1)
    expect(tokens.peek(held.source)).toBeUndefined()
  })

  it('a 403 insufficient_scope rejects with InsufficientScopeError, without a retry or an invalidation', async () => {
    const { original, api, authorized, held, tokens } = await setup(
      () =>
        new Response('', {
          status: 403,
          headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="read write"' },
        }),
    )
    const error: unknown = await authorized('https://api.example/v1/admin').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InsufficientScopeError)
    expect((error as InsufficientScopeError).requiredScopes).toEqual(['read', 'write'])
    expect((error as InsufficientScopeError).message).not.toContain(original.value)
    expect(api.sent).toHaveLength(1)
    expect(tokens.peek(held.source)).toBe(original)
  })

  it('any other 403 is returned as it is', async () => {
    const { authorized } = await setup(() => new Response('no', { status: 403 }))
    expect((await authorized('https://api.example/v1/things')).status).toBe(403)
  })

  it('reads Bearer challenges (RFC 6750 §3)', () => {
    expect(parseBearerChallenge(null)).toEqual({})
    expect(
      parseBearerChallenge(
        'Bearer realm="example", error="insufficient_scope", scope="a b", error_description="x\\"y"',
      ),
    ).toEqual({ realm: 'example', error: 'insufficient_scope', scope: 'a b', error_description: 'x"y' })
    expect(parseBearerChallenge('Bearer error=invalid_token')).toEqual({ error: 'invalid_token' })
  })
})
