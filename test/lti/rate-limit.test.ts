import { describe, expect, it } from 'vitest'
import {
  allowedConcurrency,
  answered,
  initialPacing,
  startDelayMs,
  started,
  type PacingAnswer,
  type PacingState,
} from '../../src/lti/rate-limit.js'

const ok = (at: number, fields: Partial<PacingAnswer> = {}): PacingAnswer => ({
  at,
  status: 200,
  remaining: undefined,
  cost: undefined,
  throttled: false,
  retryAfterMs: undefined,
  inFlight: 1,
  ...fields,
})

const run = (state: PacingState, answers: readonly PacingAnswer[]): PacingState =>
  answers.reduce((s, a) => answered(s, a), state)

describe('bulk pacing (pure)', () => {
  it('slow start: from 2, one more per answer, up to the ceiling', () => {
    let state = initialPacing(8)
    expect(allowedConcurrency(state)).toBe(2)
    state = run(state, [ok(0), ok(1), ok(2)])
    expect(allowedConcurrency(state)).toBe(5)
    state = run(
      state,
      Array.from({ length: 10 }, (_, i) => ok(3 + i)),
    )
    expect(allowedConcurrency(state)).toBe(8)
    expect(allowedConcurrency(initialPacing(1))).toBe(1)
  })

  it('a throttled answer halves the concurrency once per round, not once per answer', () => {
    let state = run(
      initialPacing(16),
      Array.from({ length: 14 }, (_, i) => ok(i)),
    )
    expect(allowedConcurrency(state)).toBe(16)
    const throttled = (at: number) => ok(at, { status: 403, throttled: true })
    state = run(state, [throttled(20), throttled(20), throttled(20)])
    expect(allowedConcurrency(state)).toBe(8)
    // A round (8 answers) later, a throttled answer cuts again.
    state = run(state, [...Array.from({ length: 7 }, () => throttled(21)), throttled(22)])
    expect(allowedConcurrency(state)).toBe(4)
  })

  it('after a cut, growth is one per round (additive increase)', () => {
    let state = run(initialPacing(16), [
      ...Array.from({ length: 6 }, (_, i) => ok(i)),
      ok(7, { status: 503 }),
    ])
    expect(allowedConcurrency(state)).toBe(4)
    state = run(
      state,
      Array.from({ length: 4 }, (_, i) => ok(10 + i)),
    )
    expect(allowedConcurrency(state)).toBe(4) // 4 + 4 × 1/4.x, just below 5
    state = run(
      state,
      Array.from({ length: 2 }, (_, i) => ok(20 + i)),
    )
    expect(allowedConcurrency(state)).toBe(5)
  })

  it('Retry-After on a 503 or a throttled answer holds every start until it has passed', () => {
    const state = answered(initialPacing(4), ok(1_000, { status: 503, retryAfterMs: 2_000 }))
    expect(startDelayMs(state, 1_000)).toBe(2_000)
    expect(startDelayMs(state, 2_999)).toBe(1)
    expect(startDelayMs(state, 3_000)).toBe(0)
    // Not on other statuses.
    expect(startDelayMs(answered(initialPacing(4), ok(0, { status: 500, retryAfterMs: 2_000 })), 0)).toBe(0)
  })

  it('estimates the refill from the remaining budget and spaces requests by cost ÷ refill when it runs low', () => {
    // A bucket of 100 refilling 1 unit per 10 ms; each answer costs 2.
    let state = initialPacing(8)
    let remaining = 60
    for (let at = 0; at <= 400; at += 10) {
      remaining += 1 - 2 // one unit refilled, two spent, per 10 ms
      state = answered(started(state, at), ok(at, { remaining, cost: 2, inFlight: 1 }))
    }
    expect(state.refillPerMs).toBeCloseTo(0.1, 5)
    expect(remaining).toBe(19)
    // Not low at 19: the call in flight and the next need 2 × 2 = 4.
    expect(state.spacingMs).toBe(0)
    state = answered(started(state, 410), ok(410, { remaining: 3, cost: 2, inFlight: 1 }))
    expect(state.spacingMs).toBeCloseTo(20, 5) // 2 units at 0.1 per ms
    expect(state.notBefore).toBeCloseTo(420, 5) // the missing unit, 10 ms
    expect(startDelayMs(state, 410)).toBeCloseTo(20, 5)
    expect(startDelayMs(state, 430)).toBe(0)
  })

  it('when the budget would not cover the calls in flight and the next, nothing starts until refilled', () => {
    let state: PacingState = { ...initialPacing(8), refillPerMs: 0.1, ceiling: 100 }
    state = answered(state, ok(1_000, { remaining: 2, cost: 2, inFlight: 3 }))
    // needs 2 × (3 + 1) = 8 units, has 2: 6 units at 0.1 per ms
    expect(startDelayMs(state, 1_000)).toBeCloseTo(60, 5)
    expect(allowedConcurrency(state)).toBe(1) // cut from 2
  })

  it('a full bucket says nothing of the refill: no estimate from answers at the ceiling', () => {
    let state = initialPacing(4)
    for (let at = 0; at < 500; at += 20) state = answered(state, ok(at, { remaining: 700, cost: 1 }))
    expect(state.refillPerMs).toBeUndefined()
    expect(state.spacingMs).toBe(0)
    expect(allowedConcurrency(state)).toBe(4)
  })

  it('a throttled answer with budget left teaches the floor the platform throttles at (a pre-flight penalty)', () => {
    let state: PacingState = { ...initialPacing(8), refillPerMs: 0.01, typicalCost: 1, ceiling: 700 }
    state = answered(state, ok(0, { status: 403, throttled: true, remaining: 42, cost: 0, inFlight: 4 }))
    expect(state.floor).toBe(43)
    // 1 below the floor; 4 in flight and the next need 5 more: 6 units at 0.01 per ms.
    expect(state.notBefore).toBeCloseTo(600, 5)
    // 60 left is 17 above the floor: more than twice what 4 in flight and the next need.
    state = answered(state, ok(10, { remaining: 60, cost: 1, inFlight: 4 }))
    expect(state.spacingMs).toBe(0)
    state = answered(state, ok(20, { remaining: 47, cost: 1, inFlight: 4 }))
    // 4 above the floor: spaced by cost ÷ refill (and held until 1 more unit is back, 120 < 600).
    expect(state.spacingMs).toBeCloseTo(100, 5)
    expect(state.notBefore).toBeCloseTo(600, 5)
  })

  it('the refill is estimated only between answers with as many requests in flight', () => {
    let state: PacingState = { ...initialPacing(8), ceiling: 700 }
    state = answered(state, ok(0, { remaining: 300, cost: 1, inFlight: 4 }))
    // One more request in flight holds a penalty of 50: the budget drops, which is no refill.
    state = answered(state, ok(100, { remaining: 250, cost: 1, inFlight: 5 }))
    expect(state.refillPerMs).toBeUndefined()
    state = answered(state, ok(200, { remaining: 300, cost: 1, inFlight: 4 }))
    // 200 ms, 2 units spent, none lost: 2 / 200 per ms.
    expect(state.refillPerMs).toBeCloseTo(0.01, 5)
  })
})
