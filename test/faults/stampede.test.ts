import { describe, expect, it } from 'vitest'
import type { AccessToken } from '../../src/index.js'
import { CLIENT_ID, CLIENT_SECRET, startHarness } from './harness.js'

describe('cold stampede against the real token server', () => {
  it('2,000 concurrent get calls make exactly one token request and all get its token', async () => {
    const { server, tokens, source } = await startHarness()
    const api = source()
    const hold = server.hold()
    const callers = Array.from({ length: 2_000 }, () => tokens.get(api))
    await server.waitForRequests(1)
    expect(hold.waiting).toBe(1)
    expect(tokens.stats()).toMatchObject({ misses: 2_000, joined: 1_999, fetches: 1, inFlight: 1 })
    hold.release()
    const results = await Promise.all(callers)
    const first = results[0]!
    expect(results.every((token) => token === first)).toBe(true)
    expect(server.stats()).toMatchObject({ tokenRequests: 1, tokensIssued: 1 })
    expect(server.introspect(first.value)).toMatchObject({ active: true, clientId: CLIENT_ID })
    // The next wave is served from memory.
    const again = await Promise.all(Array.from({ length: 2_000 }, () => tokens.get(api)))
    expect(again.every((token) => token === first)).toBe(true)
    expect(server.stats().tokenRequests).toBe(1)
    expect(tokens.stats()).toMatchObject({ fetches: 1, hits: 2_000, inFlight: 0 })
  })
})

describe('many keys at once', () => {
  it('50 sources with different scopes: exactly 50 requests, one per key, tokens never shared', async () => {
    const KEYS = 50
    const scopes = Array.from({ length: KEYS }, (_, i) => `scope.${i}`)
    const { server, tokens, source } = await startHarness({
      server: { clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedScopes: scopes }] },
    })
    const sources = scopes.map((scope) => source({ scopes: [scope] }))
    expect(new Set(sources.map((s) => s.key)).size).toBe(KEYS)

    const hold = server.hold()
    // 20 callers per key, interleaved across keys.
    const calls: { index: number; promise: Promise<AccessToken> }[] = []
    for (let round = 0; round < 20; round++) {
      sources.forEach((s, index) => calls.push({ index, promise: tokens.get(s) }))
    }
    // Every key's request is in flight at the same time before any is answered.
    await server.waitForRequests(KEYS)
    expect(hold.waiting).toBe(KEYS)
    hold.release()
    const results = await Promise.all(
      calls.map(async ({ index, promise }) => ({ index, token: await promise })),
    )

    expect(server.stats()).toMatchObject({ tokenRequests: KEYS, tokensIssued: KEYS })
    const requestedScopes = server.requests.map((request) => request.scopes.join(' ')).sort()
    expect(requestedScopes).toEqual([...scopes].sort())

    const byKey = new Map<number, AccessToken>()
    for (const { index, token } of results) {
      const previous = byKey.get(index)
      if (previous === undefined) byKey.set(index, token)
      else expect(token).toBe(previous)
    }
    expect(byKey.size).toBe(KEYS)
    expect(new Set([...byKey.values()].map((token) => token.value)).size).toBe(KEYS)
    for (const [index, token] of byKey) {
      expect(token.scopes).toEqual([scopes[index]])
      // The server issued this token for exactly this key's scope.
      expect(server.introspect(token.value)?.scopes).toEqual([scopes[index]])
    }
    // And from memory afterwards, still per key.
    for (const [index, s] of sources.entries()) await expect(tokens.get(s)).resolves.toBe(byKey.get(index))
    expect(server.stats().tokenRequests).toBe(KEYS)
    expect(tokens.stats()).toMatchObject({ entries: KEYS, fetches: KEYS })
  })
})
