import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { OUTAGE_PLANS, scheduleOutage } from '../../src/cli/demo/outage.js'
import type { Clock } from '../../src/clock.js'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { basic, postToken } from '../testing/helpers.js'

// The outage reads Date.now() and real timers; both are faked here, and the token server runs on
// the same faked clock, so that "the process stalled" is a jump of the fake time.
const dateClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const handle = setTimeout(callback, delayMs)
    return { cancel: () => clearTimeout(handle) }
  },
}

const LIFETIME = 2_000
let server: TokenServer

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
  server = await startTokenServer({ clock: dateClock, clients: [{ clientId: 'demo', clientSecret: 'pw' }] })
})
afterEach(async () => {
  vi.useRealTimers()
  await server.close()
})

const tokenRequest = () =>
  postToken(server, { grant_type: 'client_credentials' }, { authorization: basic('demo', 'pw') })

/** One token issued at the phase's start; the outage is planned over its renewal point. */
async function planned() {
  const phaseStartedAt = Date.now()
  expect((await tokenRequest()).status).toBe(200)
  const outage = scheduleOutage(server, {
    lifetimeMs: LIFETIME,
    plan: OUTAGE_PLANS.tokenkeeper,
    phaseStartedAt,
    phaseDurationMs: LIFETIME,
  })
  // The phase's first 30 % (600 ms) pass before it may begin; it ends at 60 % of the token's life.
  await vi.advanceTimersByTimeAsync(0.3 * LIFETIME + 10)
  expect(outage.active()).toBe(true)
  return outage
}

describe('the demo outage', () => {
  it('ends as planned once it has refused a token request', async () => {
    const outage = await planned()
    expect((await tokenRequest()).status).toBe(503)
    // Planned end: 60 % of the lifetime after issuance.
    await vi.advanceTimersByTimeAsync(0.3 * LIFETIME - 30)
    expect(outage.active()).toBe(true)
    await vi.advanceTimersByTimeAsync(30)
    expect(outage.active()).toBe(false)
    expect((await tokenRequest()).status).toBe(200)
    const report = outage.stop()!
    expect(report.failedTokenRequests).toBe(1)
    expect(report.durationMs).toBeLessThanOrEqual(0.3 * LIFETIME)
  })

  it('stays on past its planned end until a token request meets it (a process stalled over the renewal)', async () => {
    const outage = await planned()
    // Far past its planned end, and no token request came: still down.
    await vi.advanceTimersByTimeAsync(LIFETIME)
    expect(outage.active()).toBe(true)
    // The late renewal is refused; the outage ends at its next check.
    expect((await tokenRequest()).status).toBe(503)
    expect(outage.active()).toBe(true)
    await vi.advanceTimersByTimeAsync(10)
    expect(outage.active()).toBe(false)
    expect((await tokenRequest()).status).toBe(200)
    const report = outage.stop()!
    expect(report.failedTokenRequests).toBe(1)
    expect(report.durationMs).toBeGreaterThanOrEqual(LIFETIME)
  })

  it('stop() before any token request met it ends it and reports it', async () => {
    const outage = await planned()
    const report = outage.stop()!
    expect(outage.active()).toBe(false)
    expect(report.failedTokenRequests).toBe(0)
    expect((await tokenRequest()).status).toBe(200)
  })
})
