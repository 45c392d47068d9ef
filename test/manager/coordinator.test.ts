/**
 * The coordinator's waiting for another process's lock, on a test clock: woken by the store's
 * change events, polling when an event is lost or the store has none, taking over from a dead
 * holder, and giving up on holders that keep failing. The other process is the test, acting on
 * the same memory store directly.
 */
import { describe, expect, it } from 'vitest'
import {
  memoryStore,
  serializeToken,
  TokenManager,
  tokenId,
  type StoreLock,
  type TokenManagerEvents,
} from '../../src/index.js'
import { createTestClock, type TestClock } from '../../src/testing/index.js'
import { closeAfterTest, flush, heldSource, makeToken, settle } from './helpers.js'
import { storeView } from '../support/stores.js'

const LOCK_TTL_MS = 10_000

type Delivery = 'events' | 'lost' | 'none'

function setup(delivery: Delivery = 'events', pollIntervalMs?: number) {
  /** Runs after this manager found the lock taken, before it hears so (the gap before it waits). */
  let afterRefusal: (() => Promise<void>) | undefined
  const clock = createTestClock()
  const shared = memoryStore({ clock })
  // The store as the manager under test sees it: with change events, with events that never
  // arrive (a broken pub/sub), or with none at all.
  const store = storeView(shared, {
    acquireLock: async (key, options) => {
      const lock = await shared.acquireLock!(key, options)
      if (lock === undefined && afterRefusal !== undefined) {
        const gap = afterRefusal
        afterRefusal = undefined
        await gap()
      }
      return lock
    },
    ...(pollIntervalMs === undefined ? {} : { pollIntervalMs }),
    ...(delivery === 'none'
      ? {}
      : {
          subscribe: (listener) => (delivery === 'events' ? shared.subscribe!(listener) : () => undefined),
        }),
  })
  const tokens = new TokenManager({ clock, random: () => 0.5, store, lockTtlMs: LOCK_TTL_MS })
  closeAfterTest(tokens)
  const waits: TokenManagerEvents['lockWait'][0][] = []
  tokens.on('lockWait', (event) => waits.push(event))
  const source = heldSource(`coordinated-${Math.random().toString(36).slice(2)}`)
  /** Another process takes the key's lock. */
  const lock = async (): Promise<StoreLock> => {
    const held = await shared.acquireLock!(source.source.key, { ttlMs: LOCK_TTL_MS })
    if (held === undefined) throw new Error('the lock is taken')
    return held
  }
  /** Another process writes a token for the key. */
  const write = async (value: string): Promise<void> => {
    const token = makeToken(value, clock.now(), 3_600_000)
    const record = { tokenId: tokenId(token), expiresAt: token.expiresAt, payload: serializeToken(token) }
    await shared.set(source.source.key, record, { ttlMs: 3_600_000 })
  }
  const inGap = (action: () => Promise<void>): void => {
    afterRefusal = action
  }
  return { clock, tokens, source, lock, write, waits, inGap }
}

/** Advances `clock` by `ms` in steps of `stepMs`, letting the manager act after each. */
async function advance(clock: TestClock, ms: number, stepMs = ms): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    clock.advance(Math.min(stepMs, ms - done))
    await flush(6)
  }
}

describe('waiting for another process’s lock', () => {
  it('wakes on the holder’s write at once, asks no source, and leaves no timer behind', async () => {
    const { clock, tokens, source, lock, write, waits } = setup()
    const holder = await lock()
    const got = settle(tokens.get(source.source))
    await flush(6)
    expect(got.result().status).toBe('pending')
    expect(source.fetches).toHaveLength(0)
    expect(clock.pendingTimers).toBe(1) // the poll, in case an event is lost
    await write('from-the-holder')
    await holder.release()
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'from-the-holder' } })
    expect(source.fetches).toHaveLength(0)
    expect(tokens.stats()).toMatchObject({ fetches: 0, storeHits: 1 })
    expect(waits).toEqual([{ key: source.source.key, waitedMs: 0, outcome: 'store' }])
    expect(clock.pendingTimers).toBe(0)
  })

  it('a holder that writes and releases between the failed lock and the wait is not waited for', async () => {
    const { clock, tokens, source, lock, write, inGap } = setup()
    const holder = await lock()
    inGap(async () => {
      await write('written-in-the-gap')
      await holder.release()
      await flush(6) // the change events are delivered before the manager begins to wait
    })
    const got = settle(tokens.get(source.source))
    await flush(12)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'written-in-the-gap' } })
    expect(source.fetches).toHaveLength(0)
    expect(clock.pendingTimers).toBe(0)
  })

  it('a lost change event costs one poll interval (250 ms), not the lock’s lifetime', async () => {
    const { clock, tokens, source, lock, write } = setup('lost')
    const holder = await lock()
    const got = settle(tokens.get(source.source))
    await flush(6)
    await write('from-the-holder')
    await holder.release()
    await advance(clock, 249)
    expect(got.result().status).toBe('pending')
    await advance(clock, 1)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'from-the-holder' } })
    expect(source.fetches).toHaveLength(0)
  })

  it('a store without change events is polled every 50 ms, or as often as it asks', async () => {
    for (const [hint, interval] of [
      [undefined, 50],
      [20, 20],
    ] as const) {
      const { clock, tokens, source, lock, write } = setup('none', hint)
      const holder = await lock()
      const got = settle(tokens.get(source.source))
      await flush(6)
      await write('from-the-holder')
      await holder.release()
      await advance(clock, interval - 1)
      expect(got.result().status, `poll every ${interval} ms`).toBe('pending')
      await advance(clock, 1)
      expect(got.result(), `poll every ${interval} ms`).toMatchObject({
        status: 'fulfilled',
        value: { value: 'from-the-holder' },
      })
    }
  })

  it('takes over from a holder that died when its lock expires, and fetches once', async () => {
    const { clock, tokens, source, lock, waits } = setup()
    await lock() // never released: its process died
    const got = settle(tokens.get(source.source))
    await flush(6)
    await advance(clock, LOCK_TTL_MS - 1, 250)
    expect(source.fetches).toHaveLength(0)
    // Within one poll of the lock's expiry, this process takes the lock and asks the source.
    await advance(clock, 250, 250)
    expect(source.fetches).toHaveLength(1)
    source.last().succeed(3_600_000, { value: 'taken-over' })
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'taken-over' } })
    expect(waits).toHaveLength(1)
    expect(waits[0]).toMatchObject({ outcome: 'fetch' })
    expect(waits[0]!.waitedMs).toBeGreaterThanOrEqual(LOCK_TTL_MS)
    expect(waits[0]!.waitedMs).toBeLessThan(LOCK_TTL_MS + 250)
  })

  it('after two holders end without a token, asks the source itself instead of queueing behind a third', async () => {
    const { tokens, source, lock, waits } = setup()
    const first = await lock()
    const got = settle(tokens.get(source.source))
    await flush(6)
    // Each holder fails (no token) and another process takes the lock before this one can.
    await first.release()
    const second = await lock()
    await flush(6)
    expect(source.fetches).toHaveLength(0)
    await second.release()
    await lock() // a third holder, still fetching
    await flush(6)
    expect(source.fetches).toHaveLength(1)
    source.last().succeed(3_600_000, { value: 'asked-itself' })
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'fulfilled', value: { value: 'asked-itself' } })
    expect(waits).toEqual([{ key: source.source.key, waitedMs: 0, outcome: 'fetch' }])
  })

  it('close() ends the wait at once: the caller gets MANAGER_CLOSED, the source is never asked', async () => {
    const { clock, tokens, source, lock } = setup()
    await lock()
    const got = settle(tokens.get(source.source))
    await flush(6)
    await tokens.close()
    await flush(6)
    expect(got.result()).toMatchObject({ status: 'rejected', reason: { code: 'MANAGER_CLOSED' } })
    expect(source.fetches).toHaveLength(0)
    expect(clock.pendingTimers).toBe(0)
  })
})
