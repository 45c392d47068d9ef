import { getEventListeners } from 'node:events'
import { describe, expect, it } from 'vitest'
import { deadline } from '../../src/abort.js'

describe('deadline (the time limit of one request)', () => {
  it('aborts with a TimeoutError once the time is up, and says so', async () => {
    const limit = deadline(20)
    expect(limit.signal.aborted).toBe(false)
    await new Promise<void>((resolve) => limit.signal.addEventListener('abort', () => resolve()))
    expect(limit.timedOut).toBe(true)
    expect((limit.signal.reason as DOMException).name).toBe('TimeoutError')
    limit.dispose()
  })

  it('follows the outer signal with its reason, and that is not a timeout', () => {
    const outer = new AbortController()
    const limit = deadline(60_000, outer.signal)
    const reason = new Error('manager closed')
    outer.abort(reason)
    expect(limit.signal.aborted).toBe(true)
    expect(limit.signal.reason).toBe(reason)
    expect(limit.timedOut).toBe(false)
    limit.dispose()
  })

  it('starts aborted when the outer signal already is', () => {
    const outer = new AbortController()
    outer.abort(new Error('gone'))
    const limit = deadline(60_000, outer.signal)
    expect(limit.signal.aborted).toBe(true)
    limit.dispose()
  })

  it('leaves no listener on a long-lived outer signal after many requests', () => {
    const outer = new AbortController()
    const limits = Array.from({ length: 1_000 }, () => deadline(60_000, outer.signal))
    expect(getEventListeners(outer.signal, 'abort')).toHaveLength(1)
    for (const limit of limits) limit.dispose()
    expect(getEventListeners(outer.signal, 'abort')).toHaveLength(0)
    expect(limits.every((limit) => !limit.signal.aborted)).toBe(true)
  })
})
