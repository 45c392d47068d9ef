import { describe, expect, it } from 'vitest'
import {
  clientSecretBasic,
  isOAuthError,
  isTokenkeeperError,
  type TokenkeeperError,
} from '../../src/index.js'
import type { TokenServerFault } from '../../src/testing/index.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  idle,
  maxAttemptsWithin,
  recordEvents,
  rejection,
  startHarness,
} from './harness.js'

const SECOND = 1_000

/** Tracks a promise's outcome without awaiting it. */
function track<T>(promise: Promise<T>): { readonly state: () => 'pending' | 'fulfilled' | 'rejected' } {
  let state: 'pending' | 'fulfilled' | 'rejected' = 'pending'
  promise.then(
    () => (state = 'fulfilled'),
    () => (state = 'rejected'),
  )
  return { state: () => state }
}

/** Polls (real time, bounded) until `condition` holds. */
async function until(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise<void>((resolve) => setTimeout(resolve, 2))
  }
}

describe('a hanging token endpoint', () => {
  it('times out the one shared request; every waiter gets TIMEOUT; an aborting caller leaves early alone', async () => {
    // The request's time limit runs on the manager's (test) clock: nothing fails until the clock
    // reaches it, whatever the real time.
    const { clock, server, tokens, source } = await startHarness()
    const api = source({ timeoutMs: 300 })
    server.setFault({ kind: 'hang' })

    const waiting = Array.from({ length: 200 }, () => tokens.get(api))
    const outcomes = waiting.map(track)
    const controller = new AbortController()
    const leaving = rejection(tokens.get(api, { signal: controller.signal }))
    await server.waitForRequests(1)

    const reason = new Error('this caller gave up')
    controller.abort(reason)
    expect(await leaving).toBe(reason)
    // It left before the request timed out: the others are still waiting on the one hung request.
    expect(outcomes.every((outcome) => outcome.state() === 'pending')).toBe(true)

    await clock.advanceAsync(299)
    expect(outcomes.every((outcome) => outcome.state() === 'pending')).toBe(true)
    await clock.advanceAsync(1)
    expect(outcomes.every((outcome) => outcome.state() === 'rejected')).toBe(true)
    const errors = await Promise.all(waiting.map(rejection))
    expect(new Set(errors).size).toBe(1)
    const error = errors[0] as TokenkeeperError
    expect(isTokenkeeperError(error)).toBe(true)
    expect(error).toMatchObject({ code: 'TIMEOUT', retryable: true })
    expect(error.message).toContain('300 ms')
    expect(server.stats().tokenRequests).toBe(1)
    expect(tokens.stats()).toMatchObject({ fetches: 1, joined: 200, failures: 1, inFlight: 0 })
    // The client gave up the hung request: its connection is closed, nothing is left open.
    await until(() => server.stats().inFlight === 0, 'the hung request to be abandoned')

    // Within the backoff window, the timeout is given at once, without a new request.
    await expect(tokens.get(api)).rejects.toBe(error)
    expect(server.stats().tokenRequests).toBe(1)
  })

  it('callers sharing one AbortSignal (say, a shutdown signal) wait without a process warning', async () => {
    const { server, tokens, source } = await startHarness()
    const api = source({ timeoutMs: 300 })
    const warnings: string[] = []
    const onWarning = (warning: Error): void => void warnings.push(`${warning.name}: ${warning.message}`)
    process.on('warning', onWarning)
    try {
      server.setFault({ kind: 'hang' })
      const shutdown = new AbortController()
      const sharing = Array.from({ length: 50 }, () =>
        rejection(tokens.get(api, { signal: shutdown.signal })),
      )
      const others = Array.from({ length: 5 }, () => tokens.get(api)).map(track)
      await server.waitForRequests(1)
      const reason = new Error('shutting down')
      shutdown.abort(reason)
      for (const error of await Promise.all(sharing)) expect(error).toBe(reason)
      expect(others.every((outcome) => outcome.state() === 'pending')).toBe(true)
      await new Promise<void>((resolve) => setTimeout(resolve, 20)) // warnings are emitted on a later tick
      // Node prints "MaxListenersExceededWarning: Possible EventTarget memory leak detected" when more
      // than 10 listeners are added to one AbortSignal: a false leak alarm caused by the library.
      expect(warnings).toEqual([])
      expect(server.stats().tokenRequests).toBe(1)
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('recovers after the backoff once the endpoint answers again', async () => {
    const { clock, server, tokens, source } = await startHarness()
    const api = source({ timeoutMs: 300 })
    const events = recordEvents(tokens)
    server.inject({ kind: 'hang' })
    const failing = rejection(tokens.get(api))
    await server.waitForRequests(1)
    await clock.advanceAsync(300)
    expect(await failing).toMatchObject({ code: 'TIMEOUT' })
    const retryAt = events.refreshFailure[0]!.retryAt
    clock.set(retryAt)
    const token = await tokens.get(api)
    expect(server.introspect(token.value)?.active).toBe(true)
    expect(server.stats().tokenRequests).toBe(2)
  })
})

describe('Retry-After', () => {
  const faults: [name: string, fault: TokenServerFault, code: string][] = [
    ['429 Retry-After: 3', { kind: 'status', status: 429, retryAfter: 3 }, 'RATE_LIMITED'],
    [
      '503 temporarily_unavailable, Retry-After: 3',
      { kind: 'status', status: 503, error: 'temporarily_unavailable', retryAfter: 3 },
      'OAUTH_ERROR',
    ],
  ]

  it.each(faults)(
    '%s with no token: no request before 3 s even though the backoff allows one, then one',
    async (_name, fault, code) => {
      const { clock, server, tokens, source } = await startHarness()
      const api = source()
      server.inject(fault)
      const error = await rejection(tokens.get(api))
      expect(error).toMatchObject({ code, retryable: true, retryAfterMs: 3_000 })
      const failedAt = clock.now()
      expect(server.stats().tokenRequests).toBe(1)

      // The backoff alone (138 ms at this jitter) would allow a request long before 3 s.
      for (const offset of [138, 139, 500, 1_000, 2_000, 2_999]) {
        clock.set(failedAt + offset)
        await expect(tokens.get(api)).rejects.toBe(error)
      }
      expect(server.stats().tokenRequests).toBe(1)

      clock.set(failedAt + 3_000)
      const callers = await Promise.all(Array.from({ length: 20 }, () => tokens.get(api)))
      expect(server.stats().tokenRequests).toBe(2)
      expect(new Set(callers).size).toBe(1)
      expect(server.introspect(callers[0]!.value)?.active).toBe(true)
    },
  )

  it('429 Retry-After: 3 during a background refresh: no request before 3 s, the cached token meanwhile', async () => {
    // 60 s token: advisory window 48 s … 54 s.
    const { clock, server, tokens, source } = await startHarness({ server: { tokenLifetimeMs: 60 * SECOND } })
    const api = source()
    const token = await tokens.get(api)
    clock.advance(48 * SECOND)
    const failedAt = clock.now()
    server.inject({ kind: 'status', status: 429, retryAfter: 3 })
    await expect(tokens.get(api)).resolves.toBe(token)
    await idle(tokens)
    expect(server.stats().tokenRequests).toBe(2)
    for (let offset = 100; offset < 3_000; offset += 100) {
      clock.set(failedAt + offset)
      await expect(tokens.get(api)).resolves.toBe(token)
      await idle(tokens)
    }
    expect(server.stats().tokenRequests).toBe(2)
    clock.set(failedAt + 3_000)
    await expect(tokens.get(api)).resolves.toBe(token)
    await idle(tokens)
    expect(server.stats().tokenRequests).toBe(3)
    const renewed = await tokens.get(api)
    expect(renewed).not.toBe(token)
    expect(renewed.issuedAt).toBe(failedAt + 3_000)
  })
})

describe('a permanent refusal (invalid_client)', () => {
  it('is remembered, given at once within its window, and never retried in a loop', async () => {
    const { clock, server, tokens, source } = await startHarness()
    const wrongSecret = 'not-the-secret-at-all'
    const api = source({ auth: clientSecretBasic(wrongSecret) })
    const events = recordEvents(tokens)

    const waiting = Array.from({ length: 50 }, () => rejection(tokens.get(api)))
    const errors = await Promise.all(waiting)
    expect(new Set(errors).size).toBe(1)
    const error = errors[0]
    expect(isOAuthError(error, 'invalid_client')).toBe(true)
    expect(isOAuthError(error, 'invalid_grant')).toBe(false)
    if (!isOAuthError(error)) throw error
    expect(error).toMatchObject({ code: 'OAUTH_ERROR', status: 401, retryable: false })
    expect(error.message).not.toContain(wrongSecret)
    expect(error.message).not.toContain(CLIENT_SECRET)
    expect(server.stats().tokenRequests).toBe(1)
    expect(events.refreshFailure[0]).toMatchObject({
      code: 'OAUTH_ERROR',
      retryable: false,
      servingCached: false,
    })

    // Nothing retries by itself: no request while nobody asks, however long.
    clock.advance(60 * SECOND)
    await new Promise<void>((resolve) => setTimeout(resolve, 20))
    expect(server.stats().tokenRequests).toBe(1)

    // Callers every 100 ms for 20 s: the refusal is remembered for permanentErrorBackoffMs (5 s).
    const start = clock.now()
    let requests = server.stats().tokenRequests
    let remembered = error as unknown
    for (let step = 0; step < 200; step++) {
      const caught = await rejection(tokens.get(api))
      expect(isOAuthError(caught, 'invalid_client')).toBe(true)
      const now = server.stats().tokenRequests
      if (now === requests) {
        expect(caught).toBe(remembered)
      } else {
        expect(now).toBe(requests + 1)
        const previous = events.refreshFailure.at(-2)!
        expect(clock.now()).toBeGreaterThanOrEqual(previous.retryAt)
        expect(events.refreshFailure.at(-1)!.retryAt - clock.now()).toBeGreaterThanOrEqual(5_000)
      }
      requests = now
      remembered = caught
      clock.advance(100)
    }
    const attempts = server.stats().tokenRequests - 1
    expect(attempts).toBeGreaterThanOrEqual(1)
    expect(attempts).toBeLessThanOrEqual(maxAttemptsWithin(clock.now() - start, { retryable: false }))
    expect(attempts).toBeLessThanOrEqual(5)
    expect(tokens.stats().failFast).toBeGreaterThanOrEqual(200 - attempts)
  })
})

describe('a permanent refusal (invalid_scope)', () => {
  it('is remembered for permanentErrorBackoffMs, then asked once more', async () => {
    const { clock, server, tokens, source } = await startHarness({
      server: { clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedScopes: ['read'] }] },
    })
    const api = source({ scopes: ['admin'] })
    const error = await rejection(tokens.get(api))
    expect(isOAuthError(error, 'invalid_scope')).toBe(true)
    expect(error).toMatchObject({ status: 400, retryable: false })
    const failedAt = clock.now()
    for (const offset of [1, 138, 1_000, 4_999]) {
      clock.set(failedAt + offset)
      await expect(tokens.get(api)).rejects.toBe(error)
    }
    expect(server.stats().tokenRequests).toBe(1)
    clock.set(failedAt + 5_000)
    const again = await rejection(tokens.get(api))
    expect(isOAuthError(again, 'invalid_scope')).toBe(true)
    expect(again).not.toBe(error)
    expect(server.stats().tokenRequests).toBe(2)
  })
})
