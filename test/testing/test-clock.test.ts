import { describe, expect, it } from 'vitest'
import { createTestClock } from '../../src/testing/index.js'

describe('createTestClock', () => {
  it('starts at 2026-01-01T00:00:00Z by default, or at the given instant', () => {
    expect(createTestClock().now()).toBe(Date.UTC(2026, 0, 1))
    expect(createTestClock(1_000).now()).toBe(1_000)
    expect(() => createTestClock(Number.NaN)).toThrow(TypeError)
  })

  it('runs due timers in due order, each seeing now() equal to its due time', () => {
    const clock = createTestClock(0)
    const seen: [string, number][] = []
    clock.setTimer(() => seen.push(['c', clock.now()]), 300)
    clock.setTimer(() => seen.push(['a', clock.now()]), 100)
    clock.setTimer(() => seen.push(['b1', clock.now()]), 200)
    clock.setTimer(() => seen.push(['b2', clock.now()]), 200)
    clock.advance(199)
    expect(seen).toEqual([['a', 100]])
    expect(clock.now()).toBe(199)
    clock.advance(1)
    expect(seen).toEqual([
      ['a', 100],
      ['b1', 200],
      ['b2', 200],
    ])
    expect(clock.pendingTimers).toBe(1)
    expect(clock.nextTimerAt()).toBe(300)
  })

  it('runs timers scheduled by callbacks when they fall due within the same advance', () => {
    const clock = createTestClock(0)
    const seen: number[] = []
    clock.setTimer(() => {
      seen.push(clock.now())
      clock.setTimer(() => seen.push(clock.now()), 50)
      clock.setTimer(() => seen.push(clock.now()), 500)
    }, 100)
    clock.advance(200)
    expect(seen).toEqual([100, 150])
    expect(clock.now()).toBe(200)
    expect(clock.pendingTimers).toBe(1)
  })

  it('treats negative or NaN delays as 0 and cancels timers', () => {
    const clock = createTestClock(0)
    let fired = 0
    clock.setTimer(() => fired++, -5)
    clock.setTimer(() => fired++, Number.NaN)
    const cancelled = clock.setTimer(() => fired++, 10)
    cancelled.cancel()
    cancelled.cancel()
    expect(clock.pendingTimers).toBe(2)
    clock.advance(0)
    expect(fired).toBe(2)
    clock.advance(100)
    expect(fired).toBe(2)
    expect(() => clock.advance(-1)).toThrow(TypeError)
  })

  it('set() forward runs due timers; set() backward runs none', () => {
    const clock = createTestClock(1_000)
    let fired = 0
    clock.setTimer(() => fired++, 500)
    clock.set(500)
    expect(clock.now()).toBe(500)
    expect(fired).toBe(0)
    clock.set(1_500)
    expect(fired).toBe(1)
  })

  it('set() backward keeps the time each pending timer had left, as Node’s timers do', () => {
    const clock = createTestClock(10_000)
    const seen: [string, number][] = []
    clock.setTimer(() => seen.push(['short', clock.now()]), 250)
    clock.setTimer(() => seen.push(['long', clock.now()]), 1_000)
    clock.advance(100)
    clock.set(clock.now() - 3_600_000)
    expect(clock.nextTimerAt()).toBe(clock.now() + 150)
    clock.advance(149)
    expect(seen).toEqual([])
    clock.advance(1)
    expect(seen).toEqual([['short', 10_000 - 3_600_000 + 250]])
    clock.advance(750)
    expect(seen.map(([name]) => name)).toEqual(['short', 'long'])
    expect(clock.pendingTimers).toBe(0)
  })

  it('keeps running due timers when one throws, then rethrows the first error', () => {
    const clock = createTestClock(0)
    const seen: number[] = []
    clock.setTimer(() => {
      throw new Error('first')
    }, 10)
    clock.setTimer(() => seen.push(clock.now()), 20)
    expect(() => clock.advance(30)).toThrow('first')
    expect(seen).toEqual([20])
    expect(clock.now()).toBe(30)
  })

  it('runAll() runs everything and stops a timer that reschedules itself forever', () => {
    const clock = createTestClock(0)
    const seen: number[] = []
    clock.setTimer(() => seen.push(clock.now()), 5_000)
    clock.setTimer(() => seen.push(clock.now()), 10)
    clock.runAll()
    expect(seen).toEqual([10, 5_000])
    expect(clock.now()).toBe(5_000)
    const loop = (): void => void clock.setTimer(loop, 1)
    loop()
    expect(() => clock.runAll(100)).toThrow(/re-scheduling/)
  })

  it('advanceAsync lets promise chains started by a timer schedule and run further timers', async () => {
    const run = async (advance: (clock: ReturnType<typeof createTestClock>) => Promise<void> | void) => {
      const clock = createTestClock(0)
      const seen: number[] = []
      clock.setTimer(() => {
        void Promise.resolve()
          .then(() => undefined)
          .then(() => clock.setTimer(() => seen.push(clock.now()), 100))
      }, 100)
      await advance(clock)
      return seen
    }
    expect(await run((clock) => clock.advance(1_000))).toEqual([])
    expect(await run((clock) => clock.advanceAsync(1_000))).toEqual([200])
  })
})
