import { describe, expect, it } from 'vitest'
import { idle, recordEvents, startHarness } from '../faults/harness.js'

describe('tokens.fetch(source): tokens expiring during use', () => {
  it('2 s tokens over 20 s of clock time: no call ever presents an expired token, one request per renewal', async () => {
    const LIFETIME_MS = 2_000
    const STEP_MS = 100
    const DURATION_MS = 20_000
    const { clock, server, tokens, source } = await startHarness({ server: { tokenLifetimeMs: LIFETIME_MS } })
    const events = recordEvents(tokens)
    const api = tokens.fetch(source())
    const seen = new Set<string>()

    let calls = 0
    for (let elapsed = 0; elapsed < DURATION_MS; elapsed += STEP_MS) {
      const responses = await Promise.all(Array.from({ length: 3 }, () => api(server.resourceUrl)))
      for (const response of responses) {
        expect(response.status).toBe(200)
        await response.body?.cancel()
      }
      calls += responses.length
      const current = tokens.peek(source())
      if (current !== undefined) seen.add(current.value)
      await clock.advanceAsync(STEP_MS)
    }

    const stats = server.stats()
    expect(calls).toBe(600)
    expect(stats.resourceCalls).toBe(600)
    expect(stats.resourceRejectedExpired).toBe(0)
    expect(stats.resourceRejectedUnknown).toBe(0)
    expect(stats.resourceAccepted).toBe(600)
    // Renewed in time, but not more than about once per renewal cycle (80 % of 2 s at this jitter).
    expect(stats.tokenRequests).toBeLessThanOrEqual(Math.ceil(DURATION_MS / 1_500) + 1)
    expect(stats.tokenRequests).toBeGreaterThanOrEqual(DURATION_MS / LIFETIME_MS)
    for (const value of seen) expect(server.introspect(value)?.usesAfterExpiry).toBe(0)
    expect(events.refreshFailure).toHaveLength(0)
    // Renewals happen in the background: after the first token, no call waited on one.
    expect(events.refreshSuccess.slice(1).every((event) => event.mode === 'background')).toBe(true)
  })

  it("the server's refresh_in sets the renewal point end to end", async () => {
    // 60 s tokens with refresh_in 30 s: renewal at 30 s instead of 48 s.
    const { clock, server, tokens, source } = await startHarness({
      server: { tokenLifetimeMs: 60_000, refreshInMs: 30_000 },
    })
    const api = tokens.fetch(source())
    expect((await api(server.resourceUrl)).status).toBe(200)
    const first = tokens.peek(source())!
    expect(first.refreshAt).toBe(first.issuedAt + 30_000)
    clock.advance(29_999)
    expect((await api(server.resourceUrl)).status).toBe(200)
    await idle(tokens)
    expect(server.stats().tokenRequests).toBe(1)
    clock.advance(1)
    expect((await api(server.resourceUrl)).status).toBe(200)
    await idle(tokens)
    expect(server.stats().tokenRequests).toBe(2)
    const renewed = tokens.peek(source())!
    expect(renewed).not.toBe(first)
    expect(renewed.issuedAt).toBe(first.issuedAt + 30_000)
  })
})
