/**
 * Time that jumps. Every decision of the manager is measured on `clock.now()`, which the system
 * clock derives from the wall clock read once and the monotonic clock since (monotonicEpoch):
 * a wall clock stepped back changes nothing, a wall clock that runs ahead (a suspended machine)
 * is followed. Tokens read from a shared store are dated by the store's own countdown, not by
 * the writer's clock. These tests drive the real derivation with fake time sources.
 */
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { monotonicEpoch, systemClock, type Clock } from '../../src/clock.js'
import { decodeJwt } from 'jose'
import {
  AccessToken,
  clientCredentials,
  memoryStore,
  privateKeyJwt,
  TokenManager,
  TokenkeeperError,
  tokenSource,
} from '../../src/index.js'
import { rsaKeyPair } from '../sources/keys.js'
import { formFields, startLocalServer } from '../wire/local-server.js'
import { createTestClock, type TestClock } from '../../src/testing/index.js'
import { flush, heldSource, settle } from './helpers.js'

const HOUR = 3_600_000
const START = Date.UTC(2026, 5, 1)

/** A system clock over fake sources: `elapsed` (monotonic, a test clock) and a settable wall. */
function jumpingClock(): Clock & {
  readonly ticks: TestClock
  setWall(at: number): void
  advance(ms: number): Promise<void>
} {
  const ticks = createTestClock(0)
  let wall = START
  const now = monotonicEpoch(
    () => wall,
    () => ticks.now(),
    0,
  )
  return {
    ticks,
    now,
    wallNow: () => wall,
    setTimer: (callback, delayMs) => ticks.setTimer(callback, delayMs),
    setWall(at: number) {
      wall = at
    },
    /** Real time passes: the monotonic clock and the wall clock both move by `ms`. */
    async advance(ms: number) {
      wall += ms
      await ticks.advanceAsync(ms)
    },
  }
}

describe('monotonicEpoch', () => {
  it('starts at the wall clock and ignores a wall clock stepped back', () => {
    let wall = START
    let mono = 1_000
    const now = monotonicEpoch(
      () => wall,
      () => mono,
      0,
    )
    expect(now()).toBe(START)
    mono += 500
    wall -= HOUR // NTP, an operator, a VM snapshot restored
    expect(now()).toBe(START + 500)
    mono += 500
    wall += 500
    expect(now()).toBe(START + 1_000)
  })

  it('follows a wall clock that runs ahead of the monotonic one (a suspended machine)', () => {
    let wall = START
    let mono = 0
    const now = monotonicEpoch(
      () => wall,
      () => mono,
      0,
    )
    now()
    wall += HOUR // suspended for an hour: the monotonic clock did not count it
    mono += 1
    expect(now()).toBe(START + HOUR)
    mono += 10
    wall += 10
    expect(now()).toBe(START + HOUR + 10)
  })

  it('looks at the wall clock once per wallCheckMs of monotonic time', () => {
    let wall = START
    let mono = 0
    let reads = 0
    const now = monotonicEpoch(
      () => (reads++, wall),
      () => mono,
      10,
    )
    for (let i = 0; i < 100; i++) now()
    expect(reads).toBe(1)
    wall += HOUR // resumed from suspend
    mono += 9
    expect(now()).toBe(START + 9)
    mono += 1
    expect(now()).toBe(START + HOUR)
    expect(reads).toBe(2)
  })

  it('never decreases and never falls behind the real time elapsed, whatever the wall clock does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ elapsed: fc.nat(10_000), wallStep: fc.integer({ min: -HOUR, max: HOUR }) }), {
          maxLength: 50,
        }),
        (steps) => {
          let wall = START
          let mono = 0
          const now = monotonicEpoch(
            () => wall,
            () => mono,
            0,
          )
          let previous = now()
          const first = previous
          for (const step of steps) {
            mono += step.elapsed
            wall += step.wallStep
            const current = now()
            expect(Number.isInteger(current)).toBe(true)
            expect(current).toBeGreaterThanOrEqual(previous)
            expect(current - first).toBeGreaterThanOrEqual(mono)
            expect(current).toBeGreaterThanOrEqual(wall)
            previous = current
          }
        },
      ),
    )
  })

  it('the system clock never goes back and keeps to Date.now() while the wall clock holds still', () => {
    let previous = systemClock.now()
    for (let i = 0; i < 1_000; i++) {
      const before = Date.now()
      const now = systemClock.now()
      expect(now).toBeGreaterThanOrEqual(previous)
      // Within the millisecond Date.now() truncates to.
      expect(now).toBeGreaterThanOrEqual(before - 1)
      expect(now).toBeLessThanOrEqual(Date.now() + 1)
      previous = now
    }
    expect(systemClock.wallNow?.()).toBeTypeOf('number')
  })
})

describe('a wall clock stepped back one hour', () => {
  it('get and peek do not serve a token past its real lifetime', async () => {
    const clock = jumpingClock()
    const tokens = new TokenManager({ clock })
    const held = heldSource('jump-expiry')
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(60_000, { value: 'first' })
    await expect(first).resolves.toMatchObject({ value: 'first' })
    clock.setWall(START - HOUR)
    await clock.advance(61_000)
    expect(tokens.peek(held.source)).toBeUndefined()
    const second = tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(2)
    held.last().succeed(60_000, { value: 'second' })
    await expect(second).resolves.toMatchObject({ value: 'second' })
    await tokens.close()
  })

  it('a proactive renewal replaces the old token (the late-answer rule is not fooled)', async () => {
    const clock = jumpingClock()
    const tokens = new TokenManager({ clock, proactive: true })
    const held = heldSource('jump-renewal')
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(60_000, { value: 'old' })
    await first
    clock.setWall(START - HOUR)
    // Past the refresh point (at most 90 % of the lifetime with jitter): the timer renews.
    await clock.advance(55_000)
    expect(held.fetches).toHaveLength(2)
    held.last().succeed(60_000, { value: 'new' })
    await flush()
    expect(tokens.peek(held.source)?.value).toBe('new')
    await expect(tokens.get(held.source)).resolves.toMatchObject({ value: 'new' })
    await tokens.close()
  })

  it('a failure backs off for its real length, not an hour longer', async () => {
    const clock = jumpingClock()
    const tokens = new TokenManager({
      clock,
      random: () => 0.5,
      baseBackoffMs: 1_000,
      maxBackoffMs: 1_000,
    })
    let calls = 0
    const source = tokenSource('jump-backoff', () => {
      calls++
      throw new TokenkeeperError('SERVER_ERROR', 'down', { retryable: true })
    })
    await expect(tokens.get(source)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    clock.setWall(START - HOUR)
    await expect(tokens.get(source)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    expect(calls).toBe(1) // within the backoff window: fail fast
    await clock.advance(2_000)
    await expect(tokens.get(source)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    expect(calls).toBe(2)
    await tokens.close()
  })

  it('a client assertion is dated by the wall clock, which the server checks', async () => {
    const server = await startLocalServer()
    server.route('/token', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ access_token: 'x', token_type: 'Bearer', expires_in: 60 }))
    })
    try {
      const clock = jumpingClock()
      await clock.advance(5_000)
      clock.setWall(START - HOUR) // the wall clock was an hour ahead and NTP corrected it
      const source = clientCredentials({
        tokenUrl: `${server.origin}/token`,
        clientId: 'svc',
        auth: privateKeyJwt({ key: rsaKeyPair('clock').pem }),
      })
      const tokens = new TokenManager({ clock })
      await tokens.get(source)
      const assertion = Object.fromEntries(formFields(server.hits('/token')[0]!))['client_assertion']!
      expect(decodeJwt(assertion).iat).toBe(Math.floor((START - HOUR) / 1000))
      expect(clock.now()).toBe(START + 5_000)
      await tokens.close()
    } finally {
      await server.close()
    }
  })
})

describe('a shared store and processes whose clocks disagree', () => {
  /** Three clocks on one timeline: the store's (true time) and two processes `offsetMs` apart. */
  function skewed(offsetMs: number) {
    const truth = createTestClock(START)
    const writer = createTestClock(START)
    const reader = createTestClock(START + offsetMs)
    const store = memoryStore({ clock: truth })
    return {
      store,
      writer: new TokenManager({ clock: writer, store }),
      reader: new TokenManager({ clock: reader, store }),
      async advance(ms: number) {
        for (const clock of [truth, writer, reader]) clock.advance(ms)
        await flush()
      },
    }
  }

  it('a process whose clock is an hour behind never keeps another’s token past its real expiry', async () => {
    const world = skewed(-HOUR)
    let issued = 0
    const source = tokenSource('skew-behind', () => ({ access_token: `t${++issued}`, expires_in: 60 }))
    await world.writer.get(source)
    const adopted = await world.reader.get(source)
    expect(adopted.value).toBe('t1')
    expect(world.reader.stats().storeHits).toBe(1)
    // On the reader's clock the token expires 60 s from its read, not an hour and 60 s.
    expect(adopted.expiresAt).toBe(START - HOUR + 60_000)
    await world.advance(61_000)
    expect(world.reader.peek(source)).toBeUndefined()
    await expect(world.reader.get(source)).resolves.toMatchObject({ value: 't2' })
    await world.writer.close()
    await world.reader.close()
  })

  it('a process whose clock is an hour ahead adopts the shared token instead of fetching its own', async () => {
    const world = skewed(HOUR)
    let issued = 0
    const source = tokenSource('skew-ahead', () => ({ access_token: `t${++issued}`, expires_in: 600 }))
    await world.writer.get(source)
    await expect(world.reader.get(source)).resolves.toMatchObject({ value: 't1' })
    expect(issued).toBe(1)
    await world.writer.close()
    await world.reader.close()
  })

  it('write-if-newer goes by remaining time: a record dated by a clock an hour ahead does not block a newer one', async () => {
    const store = memoryStore({ clock: createTestClock(START) })
    const record = (value: string, expiresAt: number) => ({ tokenId: value, expiresAt, payload: value })
    // Written by a process an hour ahead: 60 s left, but dated an hour later than the truth.
    await store.set('k', record('ahead', START + HOUR + 60_000), { ttlMs: 60_000 })
    await expect(store.set('k', record('right', START + 600_000), { ttlMs: 600_000 })).resolves.toBe(true)
    await expect(store.get('k')).resolves.toMatchObject({ tokenId: 'right', remainingMs: 600_000 })
    await expect(store.set('k', record('shorter', START + HOUR * 5), { ttlMs: 1_000 })).resolves.toBe(false)
  })
})

describe('timers longer than setTimeout can hold (2^31 - 1 ms, about 24.8 days)', () => {
  const LIMIT_MS = 2 ** 31 - 1

  it('the system clock waits the whole delay, in steps, and cancels at any step', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      let fired = 0
      systemClock.setTimer(() => fired++, 2 * LIMIT_MS + 1000)
      const cancelled = systemClock.setTimer(() => fired++, LIMIT_MS + 10)
      vi.advanceTimersByTime(LIMIT_MS)
      expect(fired).toBe(0)
      cancelled.cancel()
      vi.advanceTimersByTime(LIMIT_MS + 999)
      expect(fired).toBe(0)
      vi.advanceTimersByTime(1)
      expect(fired).toBe(1)
      expect(vi.getTimerCount()).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })

  it('a proactive manager holding a one-year token sets one renewal timer, not one every millisecond', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const tokens = new TokenManager({ proactive: true })
    try {
      const source = tokenSource('one-year', () =>
        Promise.resolve(
          new AccessToken({
            value: 'one-year-token',
            type: 'Bearer',
            scopes: [],
            issuedAt: systemClock.now(),
            expiresAt: systemClock.now() + 365 * 24 * HOUR,
          }),
        ),
      )
      await tokens.get(source)
      const set = vi.spyOn(globalThis, 'setTimeout')
      vi.advanceTimersByTime(1_000)
      expect(set).not.toHaveBeenCalled()
      expect(tokens.stats().backgroundRefreshes).toBe(0)
    } finally {
      await tokens.close()
      vi.useRealTimers()
      vi.restoreAllMocks()
    }
  })
})

describe('a clock given to the manager that steps back (a test clock’s set(), a clock built on Date.now())', () => {
  function stepping() {
    const clock = createTestClock(START)
    const tokens = new TokenManager({ clock, random: () => 0.5 })
    const held = heldSource(`step-${Math.random().toString(36).slice(2)}`)
    return { clock, tokens, held }
  }

  it('an hour back while a token is cached: the token is not served past its real lifetime', async () => {
    const { clock, tokens, held } = stepping()
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(60_000, { value: 'first' })
    await first
    clock.advance(10_000)
    clock.set(clock.now() - HOUR)
    clock.advance(51_000) // 61 s of real time since the token was issued
    expect(tokens.peek(held.source)).toBeUndefined()
    const callers = [tokens.get(held.source), tokens.get(held.source)]
    await flush()
    expect(held.fetches).toHaveLength(2)
    held.last().succeed(60_000, { value: 'second' })
    for (const token of await Promise.all(callers)) expect(token.value).toBe('second')
    // The new token lives its 60 s on the manager's time, which went on from where it was.
    clock.advance(47_000)
    expect(tokens.peek(held.source)?.value).toBe('second')
    clock.advance(7_000)
    expect(tokens.peek(held.source)).toBeUndefined()
    await tokens.close()
  })

  it('an hour back with a memory store on the same clock: the token is not read back from the store either', async () => {
    const clock = createTestClock(START)
    const store = memoryStore({ clock })
    const tokens = new TokenManager({ clock, store, random: () => 0.5 })
    let calls = 0
    const source = tokenSource('step-store', () => ({ access_token: `s${++calls}`, expires_in: 60 }))
    expect((await tokens.get(source)).value).toBe('s1')
    clock.advance(40_000)
    expect((await tokens.get(source)).value).toBe('s1')
    clock.set(clock.now() - HOUR)
    clock.advance(21_000) // 61 s of real time since s1 was issued; the store's clock says 1 s
    expect((await tokens.get(source)).value).toBe('s2')
    expect(calls).toBe(2)
    // Another manager on the store adopts the new token, not the old one.
    const other = new TokenManager({ clock, store })
    expect((await other.get(source)).value).toBe('s2')
    expect(calls).toBe(2)
    await tokens.close()
    await other.close()
  })

  it('a step back of a second or less only holds the time still: the cached token stays', async () => {
    const { clock, tokens, held } = stepping()
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(60_000, { value: 'kept' })
    await first
    clock.advance(1_000)
    clock.set(clock.now() - 1_000)
    await expect(tokens.get(held.source)).resolves.toMatchObject({ value: 'kept' })
    expect(held.fetches).toHaveLength(1)
    await tokens.close()
  })

  it('an hour back during a backoff: the backoff lasts its real length, not an hour longer', async () => {
    const clock = createTestClock(START)
    const tokens = new TokenManager({ clock, random: () => 0.5, baseBackoffMs: 1_000, maxBackoffMs: 1_000 })
    let calls = 0
    const source = tokenSource('step-backoff', () => {
      calls++
      throw new TokenkeeperError('SERVER_ERROR', 'down', { retryable: true })
    })
    await expect(tokens.get(source)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    clock.set(clock.now() - HOUR)
    await expect(tokens.get(source)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    expect(calls).toBe(1)
    clock.advance(550) // the backoff at this jitter: 550 ms
    await expect(tokens.get(source)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    expect(calls).toBe(2)
    await tokens.close()
  })

  it('an hour back during a wait for another process’s lock: the wait ends within its real length', async () => {
    const clock = createTestClock(START)
    const store = memoryStore({ clock })
    const tokens = new TokenManager({ clock, store, lockTtlMs: 10_000 })
    let calls = 0
    const source = tokenSource('step-lock-wait', () => ({ access_token: `w${++calls}`, expires_in: 60 }))
    // Another process holds the lock and never writes (its lock now ends an hour later on this clock).
    await store.acquireLock!(source.key, { ttlMs: 10_000 })
    const waiting = settle(tokens.get(source))
    await flush()
    clock.set(clock.now() - HOUR)
    for (let waited = 0; waited < 20_500 && waiting.result().status === 'pending'; waited += 250) {
      await clock.advanceAsync(250)
    }
    expect(waiting.result()).toMatchObject({ status: 'fulfilled', value: { value: 'w1' } })
    expect(calls).toBe(1)
    await tokens.close()
  })

  it('an hour back while the request is out: its token arrives servable, not EXPIRED_ON_ARRIVAL', async () => {
    const { clock, tokens, held } = stepping()
    const pending = tokens.get(held.source)
    await flush()
    clock.advance(1_000)
    clock.set(clock.now() - HOUR)
    tokens.peek(held.source) // the manager reads its clock while the request is out
    clock.advance(1_000)
    held.last().succeed(60_000, { value: 'arrived' })
    await expect(pending).resolves.toMatchObject({ value: 'arrived' })
    await expect(tokens.get(held.source)).resolves.toMatchObject({ value: 'arrived' })
    expect(held.fetches).toHaveLength(1)
    await tokens.close()
  })
})

describe('a clock given to the manager that fails', () => {
  it.each([
    ['an object without now()', { setTimer: () => ({ cancel() {} }) }],
    ['an object without setTimer()', { now: () => START }],
    ['null', null],
    ['a now() that answers NaN', { now: () => Number.NaN, setTimer: () => ({ cancel() {} }) }],
    ['a now() that answers a string', { now: () => '1767225600000', setTimer: () => ({ cancel() {} }) }],
    [
      'a now() that throws',
      {
        now: () => {
          throw new Error('no time')
        },
        setTimer: () => ({ cancel() {} }),
      },
    ],
  ])('%s is a TypeError at construction', (_name, clock) => {
    expect(() => new TokenManager({ clock: clock as unknown as Clock })).toThrow(TypeError)
  })

  const failures: [string, () => number][] = [
    ['answers NaN', () => Number.NaN],
    ['answers Infinity', () => Infinity],
    ['answers -Infinity', () => -Infinity],
    ['answers a string', () => 'soon' as unknown as number],
    [
      'throws',
      () => {
        throw new Error('the clock broke')
      },
    ],
  ]
  it.each(failures)(
    'a now() that later %s: get rejects with CLOCK_FAILED, peek is undefined, no request; then it recovers',
    async (_name, broken) => {
      const inner = createTestClock(START)
      let failing = false
      const clock: Clock = {
        now: () => (failing ? broken() : inner.now()),
        setTimer: (callback, delayMs) => inner.setTimer(callback, delayMs),
      }
      const tokens = new TokenManager({ clock })
      let calls = 0
      const source = tokenSource('broken-clock', () => ({ access_token: `t${++calls}`, expires_in: 60 }))
      const cold = tokenSource('broken-clock-cold', () => ({ access_token: `c${++calls}`, expires_in: 60 }))
      await expect(tokens.get(source)).resolves.toMatchObject({ value: 't1' })
      failing = true
      for (const which of [source, cold]) {
        let pending: Promise<unknown> | undefined
        expect(() => (pending = tokens.get(which))).not.toThrow()
        await expect(pending).rejects.toMatchObject({ code: 'CLOCK_FAILED', retryable: false })
        expect(tokens.peek(which)).toBeUndefined()
      }
      await expect(tokens.get(source, { waitForRecoveryMs: Infinity })).rejects.toMatchObject({
        code: 'CLOCK_FAILED',
      })
      expect(calls).toBe(1)
      failing = false
      await expect(tokens.get(source)).resolves.toMatchObject({ value: 't1' })
      await expect(tokens.get(cold)).resolves.toMatchObject({ value: 'c2' })
      await tokens.close()
    },
  )

  const timerFailures: [string, () => unknown][] = [
    [
      'throws',
      () => {
        throw new Error('no timers left')
      },
    ],
    ['answers no timer', () => undefined],
  ]
  const configurations: [string, ConstructorParameters<typeof TokenManager>[0]][] = [
    ['by default', {}],
    ['proactive', { proactive: true }],
    ['waiting for recovery', { waitForRecoveryMs: 60_000 }],
  ]
  describe.each(timerFailures)('a setTimer() that later %s', (_name, broken) => {
    it.each(configurations)(
      '%s: get rejects with CLOCK_FAILED, nothing hangs or escapes',
      async (_config, options) => {
        const inner = createTestClock(START)
        let failing = false
        const clock: Clock = {
          now: () => inner.now(),
          setTimer: (callback, delayMs) =>
            failing ? (broken() as never) : inner.setTimer(callback, delayMs),
        }
        const tokens = new TokenManager({ clock, random: () => 0.5, ...options })
        let calls = 0
        const source = tokenSource('broken-timers', () => ({ access_token: `t${++calls}`, expires_in: 60 }))
        await expect(tokens.get(source)).resolves.toMatchObject({ value: 't1' })
        failing = true
        inner.advance(55_000) // the mandatory window: a new request, which needs its time limit
        for (const which of [
          source,
          tokenSource('broken-timers-cold', () => ({ access_token: 'c', expires_in: 60 })),
        ]) {
          await expect(tokens.get(which)).rejects.toMatchObject({ code: 'CLOCK_FAILED', retryable: false })
        }
        await flush()
        failing = false
        inner.advance(60_000)
        await expect(tokens.get(source)).resolves.toMatchObject({ value: 't2' })
        await tokens.close()
      },
    )
  })

  it('a clock whose now() answers fractions of a millisecond works', async () => {
    const inner = createTestClock(START)
    const clock: Clock = {
      now: () => inner.now() + 0.25,
      setTimer: (callback, ms) => inner.setTimer(callback, ms),
    }
    const tokens = new TokenManager({ clock })
    let calls = 0
    const source = tokenSource('fractional', () => ({ access_token: `f${++calls}`, expires_in: 60 }))
    const token = await tokens.get(source)
    await expect(tokens.get(source)).resolves.toBe(token)
    inner.advance(60_000)
    await expect(tokens.get(source)).resolves.toMatchObject({ value: 'f2' })
    await tokens.close()
  })
})

describe('a wall clock that jumps ahead a day (a resumed machine)', () => {
  it('while a token is cached: the next get renews it; the old token is never served', async () => {
    const clock = jumpingClock()
    const tokens = new TokenManager({ clock })
    const held = heldSource('jump-ahead-cached')
    const first = tokens.get(held.source)
    await flush()
    held.last().succeed(HOUR, { value: 'before' })
    await first
    clock.setWall(START + 24 * HOUR)
    await clock.advance(20)
    expect(tokens.peek(held.source)).toBeUndefined()
    const next = tokens.get(held.source)
    await flush()
    expect(held.fetches).toHaveLength(2)
    held.last().succeed(HOUR, { value: 'after' })
    await expect(next).resolves.toMatchObject({ value: 'after' })
    await tokens.close()
  })

  it('during a backoff: one new request, not one per caller', async () => {
    const clock = jumpingClock()
    const tokens = new TokenManager({ clock, random: () => 0.5, baseBackoffMs: 60_000, maxBackoffMs: 60_000 })
    let calls = 0
    const source = tokenSource('jump-ahead-backoff', () => {
      calls++
      throw new TokenkeeperError('SERVER_ERROR', 'down', { retryable: true })
    })
    await expect(tokens.get(source)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    clock.setWall(START + 24 * HOUR)
    await clock.advance(20)
    const all = await Promise.allSettled(Array.from({ length: 20 }, () => tokens.get(source)))
    expect(all.every((result) => result.status === 'rejected')).toBe(true)
    expect(calls).toBe(2)
    await tokens.close()
  })
})
