/**
 * The per-key decisions as pure functions, table-tested at ±1 ms around every boundary, and
 * checked by fast-check against an oracle written from docs/LIFECYCLE.md (not from the code).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  afterFailure,
  getAction,
  onArrival,
  timerAction,
  type KeyState,
} from '../../src/manager/decisions.js'
import {
  DEFAULT_BACKOFF_POLICY,
  DEFAULT_REFRESH_POLICY,
  type BackoffPolicy,
  type RefreshPolicy,
} from '../../src/manager/policy.js'

const POLICY: RefreshPolicy & BackoffPolicy = { ...DEFAULT_REFRESH_POLICY, ...DEFAULT_BACKOFF_POLICY }
const half = () => 0.5
const REFRESH = 1_000
const MUST = 2_000
const RETRY = 1_500

function state(parts: { token?: boolean; flight?: boolean; retryAt?: number }): KeyState {
  return {
    resolved: parts.token === true ? Promise.resolve('t') : undefined,
    refreshAt: parts.token === true ? REFRESH : 0,
    mustRefreshAt: parts.token === true ? MUST : 0,
    flight: parts.flight === true ? Promise.resolve('f') : undefined,
    failure: parts.retryAt === undefined ? undefined : { retryAt: parts.retryAt, attempt: 1 },
  }
}

describe('getAction', () => {
  const rows: [string, KeyState, number, string][] = [
    ['cold', state({}), 0, 'fetch'],
    ['cold, in flight', state({ flight: true }), 0, 'join'],
    ['cold, backing off: 1 ms before retryAt', state({ retryAt: RETRY }), RETRY - 1, 'fail-fast'],
    ['cold, backing off: at retryAt', state({ retryAt: RETRY }), RETRY, 'fetch'],
    ['cold, in flight and backing off', state({ flight: true, retryAt: RETRY }), 0, 'join'],
    ['token: 1 ms before refreshAt', state({ token: true }), REFRESH - 1, 'fresh'],
    ['token: at refreshAt', state({ token: true }), REFRESH, 'advisory-renew'],
    ['token: 1 ms before mustRefreshAt', state({ token: true }), MUST - 1, 'advisory-renew'],
    ['token: at mustRefreshAt', state({ token: true }), MUST, 'fetch'],
    ['token, renewal in flight: advisory', state({ token: true, flight: true }), REFRESH, 'advisory'],
    ['token, renewal in flight: mandatory', state({ token: true, flight: true }), MUST, 'join'],
    [
      'token, backing off: 1 ms before retryAt',
      state({ token: true, retryAt: RETRY }),
      RETRY - 1,
      'advisory',
    ],
    ['token, backing off: at retryAt', state({ token: true, retryAt: RETRY }), RETRY, 'advisory-renew'],
    ['token, backing off past mustRefreshAt', state({ token: true, retryAt: MUST + 10 }), MUST, 'fail-fast'],
    ['token, fresh, backing off', state({ token: true, retryAt: RETRY }), 0, 'fresh'],
  ]
  it.each(rows)('%s', (_name, key, now, expected) => {
    expect(getAction(key, now)).toBe(expected)
  })

  it('agrees with the rules of docs/LIFECYCLE.md for any state and instant', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 4_000 }), { nil: undefined }),
        fc.integer({ min: 0, max: 4_000 }),
        (token, flight, retryAt, now) => {
          const key = state({ token, flight, ...(retryAt === undefined ? {} : { retryAt }) })
          // The oracle: a token is served before mustRefreshAt; in the advisory part, a renewal
          // starts when none is running and the backoff is over. Without a servable token, callers
          // join a flight, else fail fast in the backoff window, else fetch.
          const servable = token && now < MUST
          const backingOff = retryAt !== undefined && now < retryAt
          let expected: string
          if (servable)
            expected = now < REFRESH ? 'fresh' : flight || backingOff ? 'advisory' : 'advisory-renew'
          else if (flight) expected = 'join'
          else expected = backingOff ? 'fail-fast' : 'fetch'
          expect(getAction(key, now)).toBe(expected)
        },
      ),
      { numRuns: 2_000 },
    )
  })
})

describe('timerAction', () => {
  it('renews a used key with a token, waits out a backoff, and leaves idle keys and flights alone', () => {
    expect(timerAction(state({ token: true }), 1_000, 1_000, 500)).toEqual({ kind: 'renew' })
    expect(timerAction(state({ token: true }), 1_500, 1_000, 500)).toEqual({ kind: 'renew' })
    expect(timerAction(state({ token: true }), 1_501, 1_000, 500)).toEqual({ kind: 'none' })
    expect(timerAction(state({}), 1_000, 1_000, 500)).toEqual({ kind: 'none' })
    expect(timerAction(state({ token: true, flight: true }), 1_000, 1_000, 500)).toEqual({ kind: 'none' })
    expect(timerAction(state({ token: true, retryAt: 1_200 }), 1_199, 1_000, 500)).toEqual({
      kind: 'later',
      at: 1_200,
    })
    expect(timerAction(state({ token: true, retryAt: 1_200 }), 1_200, 1_000, 500)).toEqual({ kind: 'renew' })
  })

  it('a timer that fires before the refresh point (a clock firing early) waits for it instead of renewing', () => {
    expect(timerAction(state({ token: true }), REFRESH - 1, REFRESH - 1, 500)).toEqual({
      kind: 'later',
      at: REFRESH,
    })
    expect(timerAction(state({ token: true }), REFRESH, REFRESH - 1, 500)).toEqual({ kind: 'renew' })
  })
})

describe('afterFailure', () => {
  const transient = { retryable: true }
  it('counts attempts and backs off (random 0.5: 138 ms, then 275 ms)', () => {
    expect(afterFailure({ failure: undefined, mustRefreshAt: 0 }, transient, 10_000, POLICY, half)).toEqual({
      retryAt: 10_138,
      attempt: 1,
    })
    expect(
      afterFailure(
        { failure: { retryAt: 0, attempt: 1 }, mustRefreshAt: 0 },
        transient,
        10_000,
        POLICY,
        half,
      ),
    ).toEqual({ retryAt: 10_275, attempt: 2 })
  })

  it('while a token serves, a retryable failure without Retry-After backs off no later than mustRefreshAt', () => {
    const serving = { failure: { retryAt: 0, attempt: 6 }, mustRefreshAt: 10_500 }
    expect(afterFailure(serving, transient, 10_000, POLICY, half).retryAt).toBe(10_500)
    expect(afterFailure({ ...serving, mustRefreshAt: 10_000 }, transient, 10_000, POLICY, half).retryAt).toBe(
      15_500,
    )
    expect(
      afterFailure(serving, { retryable: true, retryAfterMs: 3_000 }, 10_000, POLICY, half).retryAt,
    ).toBe(13_000)
    expect(afterFailure(serving, { retryable: false }, 10_000, POLICY, half).retryAt).toBeGreaterThan(10_500)
  })
})

describe('onArrival', () => {
  const cached = { issuedAt: 5_000, expiresAt: 65_000 }
  const held = { token: cached, refreshAt: 50_000, mustRefreshAt: 60_000 }

  it('adopts a newer token, or any token when none is cached', () => {
    expect(onArrival({ ...held, token: undefined }, cached, 6_000, POLICY, half).kind).toBe('adopt')
    expect(onArrival(held, { issuedAt: 6_000, expiresAt: 66_000 }, 6_000, POLICY, half).kind).toBe('adopt')
    // Newer but shorter (a server that moved to shorter tokens): adopted.
    expect(onArrival(held, { issuedAt: 6_000, expiresAt: 36_000 }, 6_000, POLICY, half).kind).toBe('adopt')
  })

  it('keeps the cached token against a late answer, moving its refresh point forward, until mustRefreshAt', () => {
    const late = { issuedAt: 4_000, expiresAt: 64_000 }
    expect(onArrival(held, late, 55_000, POLICY, half)).toEqual({ kind: 'keep', refreshAt: 55_138 })
    expect(onArrival(held, late, 59_999, POLICY, half)).toEqual({ kind: 'keep', refreshAt: 60_000 })
    expect(onArrival(held, late, 60_000, POLICY, half).kind).toBe('adopt')
    expect(onArrival(held, late, 10_000, POLICY, half)).toEqual({ kind: 'keep', refreshAt: 50_000 })
  })
})
