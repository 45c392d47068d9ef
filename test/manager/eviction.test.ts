import { describe, expect, it } from 'vitest'
import { TokenManager } from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import { flush, heldSource, instantSource } from './helpers.js'

describe('eviction bound', () => {
  it('holds under thousands of concurrent cold keys, and no waiting caller fails because of it', async () => {
    const clock = createTestClock()
    const tokens = new TokenManager({ clock, maxEntries: 100 })
    const sources = Array.from({ length: 3_000 }, (_, i) => heldSource(`cold-${i}`))
    let peak = 0
    const calls = sources.map((held) => {
      const call = tokens.get(held.source)
      peak = Math.max(peak, tokens.stats().entries)
      return call
    })
    expect(peak).toBeLessThanOrEqual(100)
    expect(tokens.stats().inFlight).toBe(3_000)
    await flush()
    for (const held of sources) held.last().succeed(60_000)
    const results = await Promise.allSettled(calls)
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(0)
    expect(tokens.stats().entries).toBeLessThanOrEqual(100)
    await tokens.close()
  })

  it('an evicted key that is asked for again gets a token (a new request), the bound still holds', async () => {
    const clock = createTestClock()
    const tokens = new TokenManager({ clock, maxEntries: 10 })
    const first = instantSource('first', 60_000)
    await tokens.get(first.source)
    for (let i = 0; i < 50; i++) await tokens.get(instantSource(`other-${i}`, 60_000).source)
    expect(tokens.stats().entries).toBe(10)
    await expect(tokens.get(first.source)).resolves.toBeDefined()
    expect(first.calls()).toBe(2)
    expect(tokens.stats().entries).toBe(10)
    await tokens.close()
  })

  it('keeps a key that is used between evictions (second chance) over one that is not', async () => {
    const clock = createTestClock()
    const tokens = new TokenManager({ clock, maxEntries: 4 })
    const hot = instantSource('hot', 60_000)
    await tokens.get(hot.source)
    for (let i = 0; i < 40; i++) {
      await tokens.get(instantSource(`cold-${i}`, 60_000).source)
      await tokens.get(hot.source)
    }
    expect(hot.calls()).toBe(1)
    await tokens.close()
  })

  it('close() settles callers of flights that eviction detached, with MANAGER_CLOSED', async () => {
    const clock = createTestClock()
    const tokens = new TokenManager({ clock, maxEntries: 2 })
    const sources = Array.from({ length: 20 }, (_, i) => heldSource(`k-${i}`, { ignoreAbort: true }))
    const calls = sources.map((held) => tokens.get(held.source))
    await flush()
    await tokens.close()
    const results = await Promise.allSettled(calls)
    for (const result of results) {
      expect(result.status).toBe('rejected')
      if (result.status === 'rejected') expect(result.reason).toMatchObject({ code: 'MANAGER_CLOSED' })
    }
  })
})
