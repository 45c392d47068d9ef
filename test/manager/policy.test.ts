import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  backoffDelayMs,
  checkPolicy,
  computeWindows,
  DEFAULT_BACKOFF_POLICY,
  DEFAULT_REFRESH_POLICY,
  windowAt,
  type BackoffPolicy,
  type RefreshPolicy,
} from '../../src/manager/policy.js'
import { TokenManager, TokenkeeperError, tokenSource } from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'

const T = Date.UTC(2026, 0, 1)
const POLICY: RefreshPolicy & BackoffPolicy = { ...DEFAULT_REFRESH_POLICY, ...DEFAULT_BACKOFF_POLICY }
const constant = (value: number) => () => value

const SECOND = 1_000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE

describe('computeWindows with the default policy', () => {
  // Expected values worked out by hand, relative to issuedAt:
  //   margin = min(60 s, 10 % of lifetime); mustRefreshAt = expiresAt - margin;
  //   refreshAt = floor(issuedAt + lifetime × (0.75 + 0.10 × random)).
  const table: [lifetimeMs: number, random: number, refreshAt: number, mustRefreshAt: number][] = [
    [2 * SECOND, 0, 1_500, 1_800],
    [2 * SECOND, 0.5, 1_600, 1_800],
    [2 * SECOND, 0.999, 1_699, 1_800],
    [5 * SECOND, 0, 3_750, 4_500],
    [5 * SECOND, 0.5, 4_000, 4_500],
    [5 * SECOND, 0.999, 4_249, 4_500],
    [60 * SECOND, 0, 45_000, 54_000],
    [60 * SECOND, 0.5, 48_000, 54_000],
    [60 * SECOND, 0.999, 50_994, 54_000],
    [5 * MINUTE, 0, 225_000, 270_000],
    [5 * MINUTE, 0.5, 240_000, 270_000],
    [5 * MINUTE, 0.999, 254_970, 270_000],
    [HOUR, 0, 2_700_000, 3_540_000],
    [HOUR, 0.5, 2_880_000, 3_540_000],
    [HOUR, 0.999, 3_059_640, 3_540_000],
    [24 * HOUR, 0, 64_800_000, 86_340_000],
    [24 * HOUR, 0.5, 69_120_000, 86_340_000],
    [24 * HOUR, 0.999, 73_431_360, 86_340_000],
  ]

  it.each(table)(
    'lifetime %i ms, random %d → refreshAt +%i, mustRefreshAt +%i',
    (lifetimeMs, random, refresh, must) => {
      const windows = computeWindows({ issuedAt: T, expiresAt: T + lifetimeMs }, POLICY, constant(random))
      expect(windows).toEqual({ refreshAt: T + refresh, mustRefreshAt: T + must })
      // refreshAt falls within [75 %, 85 %] of the lifetime.
      expect(windows.refreshAt - T).toBeGreaterThanOrEqual(0.75 * lifetimeMs)
      expect(windows.refreshAt - T).toBeLessThanOrEqual(0.85 * lifetimeMs)
      // The windows change exactly at their instants (±1 ms).
      expect(windowAt(windows, windows.refreshAt - 1)).toBe('fresh')
      expect(windowAt(windows, windows.refreshAt)).toBe('advisory')
      expect(windowAt(windows, windows.mustRefreshAt - 1)).toBe('advisory')
      expect(windowAt(windows, windows.mustRefreshAt)).toBe('mandatory')
      expect(windowAt(windows, T + lifetimeMs)).toBe('mandatory')
    },
  )

  it('clamps the margin to 10 % of the lifetime, so a 60 s margin never makes short tokens uncacheable', () => {
    for (const lifetimeMs of [5 * SECOND, 2 * MINUTE, 10 * MINUTE - 1]) {
      const windows = computeWindows({ issuedAt: T, expiresAt: T + lifetimeMs }, POLICY, constant(0))
      expect(T + lifetimeMs - windows.mustRefreshAt).toBeLessThanOrEqual(Math.ceil(lifetimeMs * 0.1))
      expect(windowAt(windows, T)).toBe('fresh')
    }
    // From 10 minutes on, the margin is the full 60 s.
    const long = computeWindows({ issuedAt: T, expiresAt: T + 10 * MINUTE }, POLICY, constant(0))
    expect(long.mustRefreshAt).toBe(T + 9 * MINUTE)
    const longer = computeWindows({ issuedAt: T, expiresAt: T + 10 * MINUTE + 1 }, POLICY, constant(0))
    expect(longer.mustRefreshAt).toBe(T + 9 * MINUTE + 1)
  })

  it('spreads refreshAt over [75 %, 85 %) of the lifetime for any random draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1_000, max: 48 * HOUR }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (lifetimeMs, random) => {
          const windows = computeWindows({ issuedAt: T, expiresAt: T + lifetimeMs }, POLICY, constant(random))
          expect(windows.refreshAt).toBeGreaterThanOrEqual(T + Math.floor(0.75 * lifetimeMs))
          expect(windows.refreshAt).toBeLessThanOrEqual(T + Math.ceil(0.85 * lifetimeMs))
          expect(windows.refreshAt).toBeLessThanOrEqual(windows.mustRefreshAt)
          expect(windows.mustRefreshAt).toBeLessThanOrEqual(T + lifetimeMs)
          expect(T + lifetimeMs - windows.mustRefreshAt).toBeLessThanOrEqual(
            Math.min(60_000, lifetimeMs * 0.1) + 1,
          )
        },
      ),
      { numRuns: 200 },
    )
  })

  it('treats out-of-range random draws as the nearest end of the range', () => {
    const at = (random: number) =>
      computeWindows({ issuedAt: T, expiresAt: T + HOUR }, POLICY, constant(random)).refreshAt - T
    expect(at(-5)).toBe(2_700_000)
    expect(at(Number.NaN)).toBe(2_700_000)
    expect(at(7)).toBe(3_060_000)
  })
})

describe('computeWindows with a server refresh_in', () => {
  it('honours refresh_in inside the lifetime, without jitter', () => {
    for (const random of [0, 0.5, 0.999]) {
      const windows = computeWindows(
        { issuedAt: T, expiresAt: T + HOUR, refreshAt: T + 30 * MINUTE },
        POLICY,
        constant(random),
      )
      expect(windows).toEqual({ refreshAt: T + 30 * MINUTE, mustRefreshAt: T + HOUR - MINUTE })
    }
  })

  it('clamps refresh_in to mustRefreshAt and to a tenth of the lifetime', () => {
    const late = computeWindows(
      { issuedAt: T, expiresAt: T + HOUR, refreshAt: T + HOUR - 1 },
      POLICY,
      constant(0),
    )
    expect(late).toEqual({ refreshAt: T + HOUR - MINUTE, mustRefreshAt: T + HOUR - MINUTE })
    const atMust = computeWindows(
      { issuedAt: T, expiresAt: T + HOUR, refreshAt: T + HOUR - MINUTE - 1 },
      POLICY,
      constant(0),
    )
    expect(atMust.refreshAt).toBe(T + HOUR - MINUTE - 1)
    const early = computeWindows({ issuedAt: T, expiresAt: T + HOUR, refreshAt: T - 5 }, POLICY, constant(0))
    expect(early.refreshAt).toBe(T + 6 * MINUTE)
    // refresh_in: 0 would otherwise start a request on every call.
    const zero = computeWindows({ issuedAt: T, expiresAt: T + HOUR, refreshAt: T }, POLICY, constant(0))
    expect(windowAt(zero, T + 6 * MINUTE - 1)).toBe('fresh')
    expect(windowAt(zero, T + 6 * MINUTE)).toBe('advisory')
    const atFloor = computeWindows(
      { issuedAt: T, expiresAt: T + HOUR, refreshAt: T + 6 * MINUTE + 1 },
      POLICY,
      constant(0),
    )
    expect(atFloor.refreshAt).toBe(T + 6 * MINUTE + 1)
  })
})

describe('computeWindows edge cases', () => {
  it('a lifetime of 0 is mandatory at once', () => {
    const windows = computeWindows({ issuedAt: T, expiresAt: T }, POLICY, constant(0.5))
    expect(windows).toEqual({ refreshAt: T, mustRefreshAt: T })
    expect(windowAt(windows, T - 1)).toBe('fresh')
    expect(windowAt(windows, T)).toBe('mandatory')
  })

  it('a 1 ms lifetime keeps refreshAt <= mustRefreshAt <= expiresAt', () => {
    const windows = computeWindows({ issuedAt: T, expiresAt: T + 1 }, POLICY, constant(0.999))
    expect(windows.refreshAt).toBeLessThanOrEqual(windows.mustRefreshAt)
    expect(windows.mustRefreshAt).toBeLessThanOrEqual(T + 1)
  })

  it('respects custom margins and ratios', () => {
    const policy = { ...POLICY, marginMs: 0, refreshRatioMin: 0.5, refreshRatioMax: 0.5 }
    expect(computeWindows({ issuedAt: T, expiresAt: T + 10_000 }, policy, constant(0.9))).toEqual({
      refreshAt: T + 5_000,
      mustRefreshAt: T + 10_000,
    })
    const half = { ...POLICY, marginMs: 1_000_000, maxMarginRatio: 0.5 }
    expect(computeWindows({ issuedAt: T, expiresAt: T + 10_000 }, half, constant(0)).mustRefreshAt).toBe(
      T + 5_000,
    )
  })

  it('keeps refreshAt <= mustRefreshAt even when expiresAt precedes issuedAt', () => {
    const windows = computeWindows({ issuedAt: T, expiresAt: T - 1_000 }, POLICY, constant(0))
    expect(windows.refreshAt).toBeLessThanOrEqual(windows.mustRefreshAt)
    expect(windowAt(windows, T)).toBe('mandatory')
  })
})

describe('windowAt', () => {
  const windows = { refreshAt: 1_000, mustRefreshAt: 2_000 }
  it.each([
    [0, 'fresh'],
    [999, 'fresh'],
    [1_000, 'advisory'],
    [1_999, 'advisory'],
    [2_000, 'mandatory'],
    [2_001, 'mandatory'],
  ] as const)('at %i is %s', (now, expected) => {
    expect(windowAt(windows, now)).toBe(expected)
  })

  it('has no advisory window when refreshAt equals mustRefreshAt', () => {
    const flat = { refreshAt: 500, mustRefreshAt: 500 }
    expect(windowAt(flat, 499)).toBe('fresh')
    expect(windowAt(flat, 500)).toBe('mandatory')
  })
})

describe('backoffDelayMs', () => {
  const transient = (attempt: number, retryAfterMs?: number) => ({ attempt, retryable: true, retryAfterMs })

  // step = min(10 s, 250 ms × 2^(attempt-1)); delay = round(step × (0.1 + 0.9 × random)).
  const growth: [attempt: number, atZero: number, atHalf: number, atTop: number][] = [
    [1, 25, 138, 250],
    [2, 50, 275, 500],
    [3, 100, 550, 999],
    [4, 200, 1_100, 1_998],
    [5, 400, 2_200, 3_996],
    [6, 800, 4_400, 7_993],
    [7, 1_000, 5_500, 9_991],
    [8, 1_000, 5_500, 9_991],
    [60, 1_000, 5_500, 9_991],
  ]
  it.each(growth)(
    'attempt %i: %i ms at random 0, %i at 0.5, %i at 0.999',
    (attempt, atZero, atHalf, atTop) => {
      expect(backoffDelayMs(transient(attempt), POLICY, constant(0))).toBe(atZero)
      expect(backoffDelayMs(transient(attempt), POLICY, constant(0.5))).toBe(atHalf)
      expect(backoffDelayMs(transient(attempt), POLICY, constant(0.999))).toBe(atTop)
    },
  )

  it('treats attempt 0 or below as the first attempt', () => {
    expect(backoffDelayMs(transient(0), POLICY, constant(0))).toBe(25)
    expect(backoffDelayMs(transient(-3), POLICY, constant(0.999))).toBe(250)
  })

  it('keeps every delay within [10 %, 100 %] of its step (full jitter with a floor)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, random) => {
          const step = Math.min(POLICY.maxBackoffMs, POLICY.baseBackoffMs * 2 ** (attempt - 1))
          const delay = backoffDelayMs(transient(attempt), POLICY, constant(random))
          expect(delay).toBeGreaterThanOrEqual(Math.floor(step * 0.1))
          expect(delay).toBeLessThanOrEqual(step)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('waits exactly Retry-After after a transient failure: never less, and not more because of growth', () => {
    expect(backoffDelayMs(transient(1, 30_000), POLICY, constant(0))).toBe(30_000)
    expect(backoffDelayMs(transient(7, 9_990), POLICY, constant(0.999))).toBe(9_990)
    expect(backoffDelayMs(transient(7, 1_000), POLICY, constant(0.999))).toBe(1_000)
    expect(backoffDelayMs(transient(60, 1_000), POLICY, constant(0.5))).toBe(1_000)
    expect(backoffDelayMs(transient(7, 9_992), POLICY, constant(0.999))).toBe(9_992)
    // Retry-After: 0 keeps the floor of the first step.
    expect(backoffDelayMs(transient(1, 0), POLICY, constant(0))).toBe(25)
    expect(backoffDelayMs(transient(9, 0), POLICY, constant(0.999))).toBe(25)
  })

  it('caps Retry-After at maxRetryAfterMs', () => {
    expect(backoffDelayMs(transient(1, 299_999), POLICY, constant(0))).toBe(299_999)
    expect(backoffDelayMs(transient(1, 300_000), POLICY, constant(0))).toBe(300_000)
    expect(backoffDelayMs(transient(1, 300_001), POLICY, constant(0))).toBe(300_000)
    expect(backoffDelayMs(transient(1, 86_400_000), POLICY, constant(0))).toBe(300_000)
    const custom = { ...POLICY, maxRetryAfterMs: 2_000 }
    expect(backoffDelayMs(transient(1, 60_000), custom, constant(0))).toBe(2_000)
  })

  it('remembers permanent errors at least permanentErrorBackoffMs', () => {
    const permanent = (attempt: number, retryAfterMs?: number) => ({
      attempt,
      retryable: false,
      retryAfterMs,
    })
    expect(backoffDelayMs(permanent(1), POLICY, constant(0))).toBe(5_000)
    expect(backoffDelayMs(permanent(1), POLICY, constant(0.999))).toBe(5_000)
    expect(backoffDelayMs(permanent(7), POLICY, constant(0.999))).toBe(9_991)
    expect(backoffDelayMs(permanent(1, 60_000), POLICY, constant(0))).toBe(60_000)
    expect(backoffDelayMs(permanent(1), { ...POLICY, permanentErrorBackoffMs: 42_000 }, constant(0))).toBe(
      42_000,
    )
  })
})

describe('checkPolicy', () => {
  it('accepts the defaults and the edges of every range', () => {
    expect(() => checkPolicy(POLICY)).not.toThrow()
    expect(() => checkPolicy({ ...POLICY, marginMs: 0, baseBackoffMs: 0, maxBackoffMs: 0 })).not.toThrow()
    expect(() => checkPolicy({ ...POLICY, maxMarginRatio: 0 })).not.toThrow()
    expect(() => checkPolicy({ ...POLICY, maxMarginRatio: 0.5 })).not.toThrow()
    expect(() => checkPolicy({ ...POLICY, refreshRatioMin: 0.6, refreshRatioMax: 0.6 })).not.toThrow()
    expect(() => checkPolicy({ ...POLICY, refreshRatioMin: 0.001, refreshRatioMax: 0.999 })).not.toThrow()
  })

  const durations = [
    'marginMs',
    'baseBackoffMs',
    'maxBackoffMs',
    'maxRetryAfterMs',
    'permanentErrorBackoffMs',
  ] as const
  it.each(durations)('rejects a negative, NaN or infinite %s with a TypeError naming it', (name) => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => checkPolicy({ ...POLICY, [name]: bad })).toThrow(TypeError)
      expect(() => checkPolicy({ ...POLICY, [name]: bad })).toThrow(name)
    }
  })

  it.each([
    { maxMarginRatio: -0.01 },
    { maxMarginRatio: 0.51 },
    { maxMarginRatio: Number.NaN },
    { refreshRatioMin: 0 },
    { refreshRatioMin: -0.1 },
    { refreshRatioMax: 1 },
    { refreshRatioMin: 0.9, refreshRatioMax: 0.8 },
    { refreshRatioMin: Number.NaN },
  ])('rejects %o', (bad) => {
    expect(() => checkPolicy({ ...POLICY, ...bad })).toThrow(TypeError)
  })

  it('runs when a TokenManager is constructed', () => {
    expect(() => new TokenManager({ marginMs: -1 })).toThrow(TypeError)
    expect(() => new TokenManager({ refreshRatioMin: 0.9, refreshRatioMax: 0.8 })).toThrow(TypeError)
    expect(() => new TokenManager({ maxEntries: 0 })).toThrow(TypeError)
    expect(() => new TokenManager({ maxEntries: 1.5 })).toThrow(TypeError)
    expect(() => new TokenManager({ marginMs: 0, maxMarginRatio: 0.5 })).not.toThrow()
  })

  it('rejects a store, random or proactive that is not one with a TypeError naming it', () => {
    const get = () => Promise.resolve(undefined)
    const ok = {
      get,
      set: () => Promise.resolve(true),
      delete: () => Promise.resolve(true),
      clear: () => Promise.resolve(),
    }
    for (const store of [
      null,
      'redis://cache:6379',
      42,
      {},
      { get },
      { ...ok, delete: undefined },
      { ...ok, acquireLock: 'yes' },
      { ...ok, subscribe: {} },
    ]) {
      expect(() => new TokenManager({ store: store as never })).toThrow(/TokenManager: store/)
    }
    expect(() => new TokenManager({ store: ok })).not.toThrow()
    expect(() => new TokenManager({ random: 0.5 as never })).toThrow(/TokenManager: random/)
    for (const proactive of ['yes', 1, null]) {
      expect(() => new TokenManager({ proactive: proactive as never })).toThrow(/TokenManager: proactive/)
    }
    expect(() => new TokenManager({ proactive: false })).not.toThrow()
  })

  it('a random that throws or answers NaN is read as the low end of each range: tokens and backoffs as usual', async () => {
    for (const random of [
      () => {
        throw new Error('no entropy')
      },
      () => Number.NaN,
    ]) {
      const clock = createTestClock()
      const tokens = new TokenManager({ clock, random })
      let calls = 0
      const failing = tokenSource('random-fails', () => {
        calls++
        throw new TokenkeeperError('SERVER_ERROR', 'down', { retryable: true })
      })
      await expect(tokens.get(failing)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
      await expect(tokens.get(failing)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
      expect(calls).toBe(1) // backing off: 10 % of 250 ms
      clock.advance(25)
      await expect(tokens.get(failing)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
      expect(calls).toBe(2)
      const good = tokenSource('random-ok', () => ({ access_token: 'fine', expires_in: 60 }))
      const token = await tokens.get(good)
      clock.advance(44_999) // the refresh point at 75 % of the lifetime
      await expect(tokens.get(good)).resolves.toBe(token)
      await tokens.close()
    }
  })

  it('rejects a bad lockTtlMs or proactive idleMs with a TypeError', () => {
    expect(() => new TokenManager({ lockTtlMs: -1 })).toThrow(TypeError)
    expect(() => new TokenManager({ lockTtlMs: Number.NaN })).toThrow(TypeError)
    expect(() => new TokenManager({ proactive: { idleMs: -1 } })).toThrow(TypeError)
    expect(() => new TokenManager({ proactive: { idleMs: Number.NaN } })).toThrow(TypeError)
  })
})
