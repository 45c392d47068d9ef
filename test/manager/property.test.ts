import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { computeWindows, DEFAULT_REFRESH_POLICY, isTokenkeeperError, TokenManager } from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import { flush, heldSource, permanentError, transientError, type HeldSource } from './helpers.js'

const KEYS = ['a', 'b', 'c'] as const
type Key = (typeof KEYS)[number]
const RANDOM = 0.5

type Command =
  | { readonly type: 'get'; readonly key: Key; readonly count: number }
  | { readonly type: 'invalidate'; readonly key: Key; readonly which: 'current' | 'old' | 'none' }
  | { readonly type: 'advance'; readonly ms: number }
  /** Moves the clock to `fraction` of the life of the key's newest token (never backwards). */
  | { readonly type: 'seek'; readonly key: Key; readonly fraction: number }
  | { readonly type: 'succeed'; readonly key: Key; readonly lifetimeMs: number }
  | { readonly type: 'fail'; readonly key: Key; readonly retryable: boolean }

// Key a is used most, so that one key lives through many steps; b and c keep it company.
const key = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Key>('a') },
  { weight: 1, arbitrary: fc.constant<Key>('b') },
  { weight: 1, arbitrary: fc.constant<Key>('c') },
)
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ type: fc.constant('get' as const), key, count: fc.integer({ min: 1, max: 3 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('invalidate' as const),
      key,
      which: fc.constantFrom('current' as const, 'old' as const, 'none' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('advance' as const),
      ms: fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 3_600_000 })),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('seek' as const),
      key,
      fraction: fc.double({ min: 0.5, max: 1.1, noNaN: true }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('succeed' as const),
      key,
      lifetimeMs: fc.integer({ min: 1_000, max: 3_600_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('fail' as const), key, retryable: fc.boolean() }) },
)

/** How often the generated runs reached each state: a run that never reaches one proves nothing. */
const reached = {
  freshHit: 0,
  advisoryHit: 0,
  mandatoryWait: 0,
  failFast: 0,
  flightHandout: 0,
  invalidated: 0,
}

interface Handout {
  readonly key: Key
  readonly value: string
  readonly at: number
}

async function run(commands: readonly Command[]): Promise<void> {
  const clock = createTestClock()
  const tokens = new TokenManager({ clock, random: () => RANDOM })
  const held = Object.fromEntries(KEYS.map((k) => [k, heldSource(k)])) as Record<Key, HeldSource>
  /** Every token value each key's source issued, with its times. */
  const issued = new Map<string, { key: Key; issuedAt: number; expiresAt: number }>()
  const errors = new Map<unknown, Key>()
  const invalidated = new Set<string>()
  const lastHanded = new Map<Key, string>()
  const handouts: Handout[] = []
  const violations: string[] = []
  let phase: Command['type'] = 'get'
  let unsettled = 0

  const watch = (k: Key, promise: Promise<{ value: string }>) => {
    unsettled++
    const calledIn = phase
    promise.then(
      (token) => {
        unsettled--
        const now = clock.now()
        const info = issued.get(token.value)
        if (info === undefined || info.key !== k) {
          violations.push(`key ${k} was handed a token not issued for it`)
          return
        }
        if (!(now < info.expiresAt)) violations.push(`key ${k} was handed an expired token at ${now}`)
        if (invalidated.has(token.value)) violations.push(`key ${k} was handed an invalidated token`)
        // A call answered within its own `get` step is a cache hit: never in the mandatory window.
        if (phase === 'get' && calledIn === 'get') {
          const windows = computeWindows(info, DEFAULT_REFRESH_POLICY, () => RANDOM)
          if (!(now < windows.mustRefreshAt))
            violations.push(`key ${k} served from cache in its mandatory window`)
          if (now < windows.refreshAt) reached.freshHit++
          else reached.advisoryHit++
        } else {
          reached.flightHandout++
        }
        lastHanded.set(k, token.value)
        handouts.push({ key: k, value: token.value, at: now })
      },
      (error: unknown) => {
        unsettled--
        if (phase === 'get') reached.failFast++
        const from = errors.get(error)
        const expiredOnArrival = isTokenkeeperError(error) && error.code === 'EXPIRED_ON_ARRIVAL'
        if (from !== k && !expiredOnArrival) violations.push(`key ${k} got an error that is not its own`)
      },
    )
  }

  const check = () => {
    for (const k of KEYS) {
      const pending = held[k].pending().length
      if (pending > 1) violations.push(`key ${k} has ${pending} fetches in flight`)
    }
    const inFlight = KEYS.reduce((sum, k) => sum + held[k].pending().length, 0)
    if (tokens.stats().inFlight !== inFlight)
      violations.push(`stats.inFlight ${tokens.stats().inFlight} != ${inFlight}`)
    if (violations.length > 0) throw new Error(violations.join('\n'))
  }

  const answer = (k: Key, lifetimeMs: number) => {
    const pending = held[k].pending()[0]
    if (pending === undefined) return
    const token = pending.succeed(lifetimeMs)
    issued.set(token.value, { key: k, issuedAt: token.issuedAt, expiresAt: token.expiresAt })
  }

  try {
    for (const step of commands) {
      phase = step.type
      switch (step.type) {
        case 'get': {
          const before = held[step.key].fetches.length
          const fresh = (() => {
            const token = tokens.peek(held[step.key].source)
            const info = token === undefined ? undefined : issued.get(token.value)
            if (info === undefined) return false
            return clock.now() < computeWindows(info, DEFAULT_REFRESH_POLICY, () => RANDOM).refreshAt
          })()
          for (let i = 0; i < step.count; i++) watch(step.key, tokens.get(held[step.key].source))
          await flush()
          const started = held[step.key].fetches.length - before
          if (tokens.peek(held[step.key].source) === undefined && held[step.key].pending().length > 0) {
            reached.mandatoryWait++
          }
          if (fresh && started !== 0) violations.push(`a fresh hit on ${step.key} started a fetch`)
          if (started > 1) violations.push(`one get step on ${step.key} started ${started} fetches`)
          break
        }
        case 'invalidate': {
          const values = [...issued.entries()]
            .filter(([, info]) => info.key === step.key)
            .map(([value]) => value)
          const token =
            step.which === 'none'
              ? undefined
              : step.which === 'current'
                ? lastHanded.get(step.key)
                : values[0]
          const cachedBefore = tokens.peek(held[step.key].source)?.value
          if (step.which !== 'none' && token === undefined) break
          const removed = await tokens.invalidate(held[step.key].source, token === undefined ? {} : { token })
          const removedValue = token ?? cachedBefore
          if (removed && removedValue !== undefined) invalidated.add(removedValue)
          if (removed) reached.invalidated++
          if (token !== undefined && cachedBefore !== undefined && cachedBefore !== token) {
            // Compare-and-delete: a different (newer) cached token survives.
            if (tokens.peek(held[step.key].source)?.value !== cachedBefore) {
              violations.push(`invalidating an old token on ${step.key} evicted the current one`)
            }
          }
          await flush()
          break
        }
        case 'advance':
          clock.advance(step.ms)
          await flush()
          break
        case 'seek': {
          const newest = [...issued.values()].filter((info) => info.key === step.key).at(-1)
          if (newest !== undefined) {
            const at = Math.round(newest.issuedAt + step.fraction * (newest.expiresAt - newest.issuedAt))
            clock.set(Math.max(clock.now(), at))
          }
          await flush()
          break
        }
        case 'succeed':
          answer(step.key, step.lifetimeMs)
          await flush()
          break
        case 'fail': {
          const pending = held[step.key].pending()[0]
          if (pending !== undefined) {
            const error = step.retryable ? transientError() : permanentError()
            errors.set(error, step.key)
            pending.fail(error)
          }
          await flush()
          break
        }
      }
      check()
    }

    // Resolve every fetch still in flight; then every caller must have settled.
    phase = 'succeed'
    for (let round = 0; round < 5 && KEYS.some((k) => held[k].pending().length > 0); round++) {
      for (const k of KEYS) answer(k, 3_600_000)
      await flush()
    }
    check()
    expect(unsettled).toBe(0)
    // Different keys never share a token value.
    const owners = new Map<string, Key>()
    for (const handout of handouts) {
      const owner = owners.get(handout.value)
      if (owner !== undefined && owner !== handout.key)
        throw new Error(`keys ${owner} and ${handout.key} share a token`)
      owners.set(handout.value, handout.key)
    }
  } finally {
    for (const k of KEYS) for (const pending of held[k].pending()) pending.fail(transientError())
    await tokens.close()
  }
}

describe('TokenManager state machine (fast-check)', () => {
  it('never serves from the mandatory window, never more than one fetch per key, never mixes keys, settles every caller', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 5, maxLength: 50, size: 'max' }), async (commands) => {
        await run(commands)
      }),
      { numRuns: 100 },
    )
    // The generated runs did reach every interesting state.
    for (const [state, count] of Object.entries(reached)) expect(count, state).toBeGreaterThan(0)
  })

  it('a hand-written sequence through every window and failure kind holds the same invariants', async () => {
    await run([
      { type: 'get', key: 'a', count: 3 },
      { type: 'get', key: 'b', count: 1 },
      { type: 'succeed', key: 'a', lifetimeMs: 60_000 },
      { type: 'fail', key: 'b', retryable: true },
      { type: 'advance', ms: 48_000 },
      { type: 'get', key: 'a', count: 2 },
      { type: 'fail', key: 'a', retryable: false },
      { type: 'get', key: 'a', count: 1 },
      { type: 'advance', ms: 6_000 },
      { type: 'get', key: 'a', count: 2 },
      { type: 'advance', ms: 5_000 },
      { type: 'get', key: 'a', count: 2 },
      { type: 'invalidate', key: 'a', which: 'old' },
      { type: 'succeed', key: 'a', lifetimeMs: 2_000 },
      { type: 'invalidate', key: 'a', which: 'current' },
      { type: 'get', key: 'a', count: 1 },
      { type: 'get', key: 'c', count: 1 },
      { type: 'succeed', key: 'c', lifetimeMs: 1_000 },
    ])
  })
})
