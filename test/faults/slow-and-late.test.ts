import { describe, expect, it } from 'vitest'
import { isTokenkeeperError } from '../../src/index.js'
import { idle, recordEvents, rejection, startHarness } from './harness.js'

const SECOND = 1_000

describe('slow token endpoints', () => {
  it('a body dripped out slower than timeoutMs ends in TIMEOUT, once for every waiter', async () => {
    const { clock, server, tokens, source } = await startHarness()
    // The time limit covers the body: the clock moves past it once the headers are in, while the
    // body is still being dripped (over 10 s of real time, far longer than the test takes).
    let headersArrived: () => void = () => undefined
    const headers = new Promise<void>((resolve) => (headersArrived = resolve))
    const api = source({
      timeoutMs: 300,
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        headersArrived()
        return response
      },
    })
    server.inject({ kind: 'slow-body', ms: 10_000 })
    const waiting = Array.from({ length: 20 }, () => rejection(tokens.get(api)))
    await headers
    await clock.advanceAsync(300)
    const errors = await Promise.all(waiting)
    expect(new Set(errors).size).toBe(1)
    expect(errors[0]).toMatchObject({ code: 'TIMEOUT', retryable: true })
    expect(server.stats().tokenRequests).toBe(1)
  })

  it('close() while a request hangs settles every waiter at once with MANAGER_CLOSED', async () => {
    const { server, tokens, source } = await startHarness()
    const api = source({ timeoutMs: 5_000 })
    server.setFault({ kind: 'hang' })
    const waiting = Array.from({ length: 10 }, () => rejection(tokens.get(api)))
    await server.waitForRequests(1)
    const started = performance.now()
    await tokens.close()
    const errors = await Promise.all(waiting)
    expect(performance.now() - started).toBeLessThan(1_000)
    for (const error of errors) {
      expect(isTokenkeeperError(error)).toBe(true)
      expect(error).toMatchObject({ code: 'MANAGER_CLOSED' })
    }
    await expect(tokens.get(api)).rejects.toMatchObject({ code: 'MANAGER_CLOSED' })
    expect(server.stats().tokenRequests).toBe(1)
  })

  it('a refresh still in flight when the token reaches its mandatory window is joined, not repeated', async () => {
    // 10 s token: refreshAt at 8 s, mustRefreshAt at 9 s.
    const { clock, server, tokens, source } = await startHarness({ server: { tokenLifetimeMs: 10 * SECOND } })
    const api = source()
    const events = recordEvents(tokens)
    const token = await tokens.get(api)
    clock.advance(8 * SECOND)
    const hold = server.hold()
    await expect(tokens.get(api)).resolves.toBe(token) // advisory: served at once, refresh starts
    await server.waitForRequests(2)
    const refreshSentAt = clock.now()

    clock.advance(1_500) // now mandatory: callers must wait for the one refresh in flight
    expect(tokens.peek(api)).toBeUndefined()
    const waiting = Array.from({ length: 100 }, () => tokens.get(api))
    await new Promise<void>((resolve) => setTimeout(resolve, 10))
    expect(server.stats().tokenRequests).toBe(2)
    hold.release()
    const results = await Promise.all(waiting)
    const renewed = results[0]!
    expect(results.every((result) => result === renewed)).toBe(true)
    expect(renewed).not.toBe(token)
    // Its lifetime counts from when the request was sent, not from when it arrived.
    expect(renewed.issuedAt).toBe(refreshSentAt)
    expect(renewed.expiresAt).toBe(refreshSentAt + 10 * SECOND)
    expect(server.stats().tokenRequests).toBe(2)
    expect(tokens.stats()).toMatchObject({ joined: 100, backgroundRefreshes: 1 })
    expect(events.refreshSuccess.at(-1)).toMatchObject({ mode: 'background', durationMs: 1_500 })
  })

  it('a token that had expired by the time it arrived is never handed out', async () => {
    const { clock, server, tokens, source } = await startHarness({ server: { tokenLifetimeMs: 10 * SECOND } })
    // A time limit longer than the token's lifetime (it runs on the same clock as the lifetime).
    const api = source({ timeoutMs: 60 * SECOND })
    const hold = server.hold()
    const waiting = Array.from({ length: 10 }, () => rejection(tokens.get(api)))
    await server.waitForRequests(1)
    clock.advance(10 * SECOND) // the request took the token's whole lifetime
    hold.release()
    const errors = await Promise.all(waiting)
    expect(new Set(errors).size).toBe(1)
    expect(errors[0]).toMatchObject({ code: 'EXPIRED_ON_ARRIVAL', retryable: true })
    expect(tokens.peek(api)).toBeUndefined()
    expect(tokens.stats().entries).toBe(1)
    await idle(tokens)
  })
})
