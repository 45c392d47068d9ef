import { describe, expect, it } from 'vitest'
import { isTokenkeeperError, type AccessToken, type TokenkeeperErrorCode } from '../../src/index.js'
import type { TokenServerFault } from '../../src/testing/index.js'
import {
  idle,
  maxAttemptsWithin,
  minAttemptsWithin,
  recordEvents,
  rejection,
  startHarness,
} from './harness.js'

const SECOND = 1_000

describe('outage while a token is still valid (advisory window)', () => {
  // A 60 s token with random 0.5: refreshAt at 48 s, mustRefreshAt at 54 s (margin 10 % = 6 s).
  it('serves the cached token to every caller, emits stale, and backs off its background attempts', async () => {
    const { clock, server, tokens, source } = await startHarness({ server: { tokenLifetimeMs: 60 * SECOND } })
    const api = source()
    const events = recordEvents(tokens)
    const token = await tokens.get(api)
    expect(token.expiresAt - token.issuedAt).toBe(60 * SECOND)

    clock.advance(48 * SECOND)
    server.setFault({ kind: 'status', status: 503 })
    const requestsBefore = server.stats().tokenRequests
    const STEP = 100
    const STEPS = 59 // 48.0 s … 53.9 s: the whole advisory window
    let served = 0
    for (let step = 0; step < STEPS; step++) {
      const results = await Promise.all(Array.from({ length: 5 }, () => tokens.get(api)))
      for (const result of results) expect(result).toBe(token)
      served += results.length
      await idle(tokens)
      clock.advance(STEP)
    }
    expect(served).toBe(295)

    const attempts = server.stats().tokenRequests - requestsBefore
    const span = (STEPS - 1) * STEP
    // Bounded by the backoff, not one per call (and it did keep trying).
    expect(attempts).toBeLessThanOrEqual(maxAttemptsWithin(span))
    expect(attempts).toBeGreaterThanOrEqual(minAttemptsWithin(span, STEP))
    expect(attempts).toBeLessThan(10)

    expect(events.refreshFailure).toHaveLength(attempts)
    for (const failure of events.refreshFailure) {
      expect(failure).toMatchObject({
        mode: 'background',
        code: 'SERVER_ERROR',
        retryable: true,
        servingCached: true,
      })
    }
    expect(events.stale.length).toBeGreaterThan(0)
    expect(events.stale.every((event) => event.expiresAt === token.expiresAt)).toBe(true)
    expect(tokens.stats()).toMatchObject({ staleServed: events.stale.length, failFast: 0, inFlight: 0 })
    // Every call was a hit: no caller ever waited on the failing endpoint.
    expect(events.miss).toHaveLength(1)
  })

  it('recovers with one background request right after the backoff once the endpoint is back', async () => {
    const { clock, server, tokens, source } = await startHarness({ server: { tokenLifetimeMs: 60 * SECOND } })
    const api = source()
    const events = recordEvents(tokens)
    const token = await tokens.get(api)
    clock.advance(48 * SECOND)
    server.setFault({ kind: 'reset' })
    for (let step = 0; step < 20; step++) {
      await expect(tokens.get(api)).resolves.toBe(token)
      await idle(tokens)
      clock.advance(100)
    }
    server.clearFaults()
    const retryAt = events.refreshFailure.at(-1)!.retryAt
    expect(events.refreshFailure.at(-1)!.code).toBe('CONNECTION_RESET')
    expect(retryAt).toBeLessThan(token.expiresAt - 6 * SECOND)
    const requests = server.stats().tokenRequests

    // Just before retryAt: still the old token, and no request.
    clock.set(Math.max(clock.now(), retryAt - 1))
    await expect(tokens.get(api)).resolves.toBe(token)
    await idle(tokens)
    expect(server.stats().tokenRequests).toBe(requests)

    // At retryAt: the old token at once, one background request, then the new token.
    clock.set(retryAt)
    await expect(tokens.get(api)).resolves.toBe(token)
    await idle(tokens)
    expect(server.stats().tokenRequests).toBe(requests + 1)
    const renewed = await tokens.get(api)
    expect(renewed).not.toBe(token)
    expect(renewed.issuedAt).toBe(retryAt)
    expect(server.introspect(renewed.value)?.active).toBe(true)
    for (let i = 0; i < 10; i++) await expect(tokens.get(api)).resolves.toBe(renewed)
    expect(server.stats().tokenRequests).toBe(requests + 1)
  })
})

describe('outage across expiry', () => {
  const faults: [name: string, fault: TokenServerFault, code: TokenkeeperErrorCode][] = [
    ['503', { kind: 'status', status: 503 }, 'SERVER_ERROR'],
    ['connection reset', { kind: 'reset' }, 'CONNECTION_RESET'],
  ]

  it.each(faults)(
    '%s: typed errors once the token is unusable, requests bounded by the backoff, recovery at retryAt',
    async (_name, fault, code) => {
      // A 10 s token: refreshAt at 8 s, mustRefreshAt at 9 s (margin 10 % = 1 s).
      const { clock, server, tokens, source } = await startHarness({
        server: { tokenLifetimeMs: 10 * SECOND },
      })
      const api = source()
      const events = recordEvents(tokens)
      const token = await tokens.get(api)
      const mustRefreshAt = token.issuedAt + 9 * SECOND

      clock.advance(7 * SECOND)
      server.setFault(fault)
      const requestsBefore = server.stats().tokenRequests
      const failFastBefore = tokens.stats().failFast

      // 200 calls spread over 30 s of clock time, one every 150 ms.
      const STEP = 150
      const CALLS = 200
      let firstAttemptAt: number | undefined
      let lastAttemptAt = 0
      let lastError: unknown
      let failed = 0
      let foreground = 0
      for (let call = 0; call < CALLS; call++) {
        const now = clock.now()
        const requests = server.stats().tokenRequests
        if (now < mustRefreshAt) {
          await expect(tokens.get(api)).resolves.toBe(token)
          await idle(tokens)
        } else {
          const error = await rejection(tokens.get(api))
          failed++
          expect(isTokenkeeperError(error)).toBe(true)
          if (!isTokenkeeperError(error)) throw error
          expect(error.code).toBe(code)
          expect(error.retryable).toBe(true)
          // A caller inside the backoff window gets the remembered error at once, with no request.
          if (server.stats().tokenRequests === requests) expect(error).toBe(lastError)
          else foreground++
          lastError = error
        }
        if (server.stats().tokenRequests > requests) {
          firstAttemptAt ??= now
          lastAttemptAt = now
        }
        clock.advance(STEP)
      }

      const attempts = server.stats().tokenRequests - requestsBefore
      expect(firstAttemptAt).toBeDefined()
      const span = lastAttemptAt - firstAttemptAt!
      expect(span).toBeGreaterThan(25 * SECOND)
      // log2 growth up to maxBackoffMs, then linear: ~10 requests in 30 s, not 200.
      expect(attempts).toBeLessThanOrEqual(maxAttemptsWithin(span))
      expect(attempts).toBeGreaterThanOrEqual(minAttemptsWithin(span, STEP))
      expect(attempts).toBeLessThanOrEqual(12)
      expect(failed).toBe(CALLS - Math.ceil((mustRefreshAt - (token.issuedAt + 7 * SECOND)) / STEP))
      expect(tokens.stats().failFast - failFastBefore).toBe(failed - foreground)
      expect(events.refreshFailure).toHaveLength(attempts)
      expect(events.refreshSuccess).toHaveLength(1)

      // The endpoint comes back: nothing changes before retryAt, then the first call recovers.
      server.clearFaults()
      const retryAt = events.refreshFailure.at(-1)!.retryAt
      expect(retryAt).toBeGreaterThan(clock.now())
      clock.set(retryAt - 1)
      const requests = server.stats().tokenRequests
      await expect(tokens.get(api)).rejects.toBe(lastError)
      expect(server.stats().tokenRequests).toBe(requests)

      clock.advance(1)
      const recovered = await tokens.get(api)
      expect(server.stats().tokenRequests).toBe(requests + 1)
      expect(recovered).not.toBe(token)
      expect(recovered.issuedAt).toBe(retryAt)
      expect(server.introspect(recovered.value)?.active).toBe(true)
      const after = await Promise.all(Array.from({ length: 50 }, () => tokens.get(api)))
      expect(after.every((t) => t === recovered)).toBe(true)
      expect(server.stats().tokenRequests).toBe(requests + 1)
    },
  )

  it('callers waiting together on the failing request all get its one error', async () => {
    const { clock, server, tokens, source } = await startHarness({ server: { tokenLifetimeMs: 10 * SECOND } })
    const api = source()
    await tokens.get(api)
    clock.advance(9 * SECOND)
    server.setFault({ kind: 'status', status: 502, body: 'bad gateway' })
    const hold = server.hold()
    const waiting = Array.from({ length: 100 }, () => rejection(tokens.get(api)))
    await server.waitForRequests(2)
    hold.release()
    const errors = await Promise.all(waiting)
    expect(new Set(errors).size).toBe(1)
    expect(errors[0]).toMatchObject({ code: 'SERVER_ERROR', status: 502, retryable: true })
    expect(server.stats().tokenRequests).toBe(2)
  })
})

describe('malformed responses while a token is valid', () => {
  const faults: [name: string, fault: TokenServerFault, code: TokenkeeperErrorCode, retryable: boolean][] = [
    ['an HTML 502 page', { kind: 'html' }, 'SERVER_ERROR', true],
    ['an HTML 200 page', { kind: 'html', status: 200 }, 'HTML_RESPONSE', false],
    ['a body that is not JSON', { kind: 'body', body: '{"access_token": tkt_' }, 'INVALID_JSON', false],
    [
      'JSON without access_token',
      { kind: 'json', json: { token_type: 'Bearer' } },
      'MISSING_ACCESS_TOKEN',
      false,
    ],
    ['a JSON array', { kind: 'json', json: ['tkt_x'] }, 'RESPONSE_NOT_OBJECT', false],
    [
      'a bad expires_in',
      { kind: 'json', json: { access_token: 'tkt_x', token_type: 'Bearer', expires_in: 'soon' } },
      'INVALID_EXPIRES_IN',
      false,
    ],
    ['a response over the size cap', { kind: 'huge', bytes: 300 * 1024 }, 'RESPONSE_TOO_LARGE', false],
  ]

  it.each(faults)('%s: the cached token keeps being served', async (_name, fault, code, retryable) => {
    const { clock, server, tokens, source } = await startHarness({ server: { tokenLifetimeMs: 60 * SECOND } })
    const api = source()
    const events = recordEvents(tokens)
    const token: AccessToken = await tokens.get(api)
    clock.advance(48 * SECOND)
    server.setFault(fault)
    const requestsBefore = server.stats().tokenRequests
    for (let step = 0; step < 55; step++) {
      const results = await Promise.all([tokens.get(api), tokens.get(api), tokens.get(api)])
      for (const result of results) expect(result).toBe(token)
      await idle(tokens)
      clock.advance(100)
    }
    const attempts = server.stats().tokenRequests - requestsBefore
    expect(attempts).toBeGreaterThanOrEqual(1)
    expect(attempts).toBeLessThanOrEqual(maxAttemptsWithin(5_400, { retryable }))
    expect(events.refreshFailure).toHaveLength(attempts)
    for (const failure of events.refreshFailure) {
      expect(failure).toMatchObject({ code, retryable, servingCached: true, mode: 'background' })
      expect(failure.message).not.toContain('tkt_')
    }
    expect(events.stale.length).toBeGreaterThan(0)
    expect(tokens.peek(api)).toBe(token)
  })
})
