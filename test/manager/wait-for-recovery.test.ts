/**
 * `waitForRecoveryMs`: callers who would rather wait through an outage than fail at once. They
 * wait for the attempt the backoff schedule allows, join it, and make no extra requests.
 */
import { describe, expect, it } from 'vitest'
import { isTokenkeeperError, TokenManager } from '../../src/index.js'

import { flush, heldSource, manager, permanentError, settle, transientError } from './helpers.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

describe('waitForRecoveryMs', () => {
  it('by default a caller in the backoff window fails at once', async () => {
    const { tokens } = manager()
    const held = heldSource('api')
    const first = settle(tokens.get(held.source))
    await flush()
    held.last().fail(transientError())
    await flush()
    expect(first.result().status).toBe('rejected')
    await expect(tokens.get(held.source)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    expect(held.fetches).toHaveLength(1)
    expect(tokens.stats()).toMatchObject({ failFast: 1, waitedForRecovery: 0 })
  })

  it('100 waiting callers through three failed attempts: no error, one request per attempt', async () => {
    const { tokens, clock, start } = manager({ waitForRecoveryMs: MINUTE })
    const held = heldSource('api')
    const callers = Array.from({ length: 100 }, () => settle(tokens.get(held.source)))
    await flush()
    held.last().fail(transientError())
    await flush()
    // More callers arrive during the backoff window: they wait too, without a request.
    const late = Array.from({ length: 50 }, () => settle(tokens.get(held.source)))
    await flush()
    expect(held.fetches).toHaveLength(1)
    await clock.advanceAsync(137)
    expect(held.fetches).toHaveLength(1)
    await clock.advanceAsync(1)
    expect(held.fetches).toHaveLength(2)
    expect(held.last().startedAt).toBe(start + 138)
    held.last().fail(transientError())
    await flush()
    await clock.advanceAsync(275)
    expect(held.fetches).toHaveLength(3)
    held.last().fail(transientError())
    await flush()
    await clock.advanceAsync(550)
    expect(held.fetches).toHaveLength(4)
    const token = held.last().succeed(HOUR)
    await flush()
    for (const caller of [...callers, ...late])
      expect(caller.result()).toEqual({ status: 'fulfilled', value: token })
    expect(tokens.stats().failFast).toBe(0)
    expect(tokens.stats().waitedForRecovery).toBeGreaterThanOrEqual(150)
  })

  it('honours Retry-After: the next attempt starts when the server said, not sooner', async () => {
    const { tokens, clock, start } = manager({ waitForRecoveryMs: MINUTE })
    const held = heldSource('api')
    const caller = settle(tokens.get(held.source))
    await flush()
    held.last().fail(transientError(7_000))
    await flush()
    await clock.advanceAsync(6_999)
    expect(held.fetches).toHaveLength(1)
    await clock.advanceAsync(1)
    expect(held.fetches).toHaveLength(2)
    expect(held.last().startedAt).toBe(start + 7_000)
    const token = held.last().succeed(HOUR)
    await flush()
    expect(caller.result()).toEqual({ status: 'fulfilled', value: token })
  })

  it('gives the last error at once when the next attempt is due after the caller’s bound', async () => {
    const { tokens, clock } = manager({ waitForRecoveryMs: 5_000 })
    const held = heldSource('api')
    const caller = settle(tokens.get(held.source))
    await flush()
    held.last().fail(transientError(30_000))
    await flush()
    expect(caller.result()).toMatchObject({ status: 'rejected', reason: { code: 'SERVER_ERROR' } })
    expect(clock.nextTimerAt()).toBeUndefined()
  })

  it('a non-retryable error is given at once', async () => {
    const { tokens } = manager({ waitForRecoveryMs: HOUR })
    const held = heldSource('api')
    const caller = settle(tokens.get(held.source))
    await flush()
    held.last().fail(permanentError())
    await flush()
    expect(caller.result()).toMatchObject({ status: 'rejected', reason: { code: 'OAUTH_ERROR' } })
    await expect(tokens.get(held.source)).rejects.toMatchObject({ code: 'OAUTH_ERROR' })
    expect(held.fetches).toHaveLength(1)
  })

  it('the caller’s signal ends its wait, with its reason and no extra request', async () => {
    const { tokens, clock } = manager({ waitForRecoveryMs: HOUR })
    const held = heldSource('api')
    const controller = new AbortController()
    const caller = settle(tokens.get(held.source, { signal: controller.signal }))
    await flush()
    held.last().fail(transientError(10_000))
    await flush()
    const reason = new Error('job cancelled')
    controller.abort(reason)
    await flush()
    expect(caller.result()).toEqual({ status: 'rejected', reason })
    await clock.advanceAsync(20_000)
    expect(held.fetches).toHaveLength(1)
  })

  it('close() ends the wait with MANAGER_CLOSED', async () => {
    const { tokens } = manager({ waitForRecoveryMs: HOUR })
    const held = heldSource('api')
    const caller = settle(tokens.get(held.source))
    await flush()
    held.last().fail(transientError(10_000))
    await flush()
    await tokens.close()
    await flush()
    const result = caller.result()
    expect(result.status).toBe('rejected')
    const reason = (result as { reason: unknown }).reason
    expect(isTokenkeeperError(reason) && reason.code).toBe('MANAGER_CLOSED')
    expect(held.fetches).toHaveLength(1)
  })

  it('per call: a waiting call on a fail-fast manager, and a fail-fast call on a waiting one', async () => {
    const { tokens, clock } = manager()
    const held = heldSource('api')
    const first = settle(tokens.get(held.source))
    await flush()
    held.last().fail(transientError())
    await flush()
    expect(first.result().status).toBe('rejected')
    const patient = settle(tokens.get(held.source, { waitForRecoveryMs: MINUTE }))
    await flush()
    expect(patient.result().status).toBe('pending')
    expect(held.fetches).toHaveLength(1)
    await clock.advanceAsync(138)
    const token = held.last().succeed(HOUR)
    await flush()
    expect(patient.result()).toEqual({ status: 'fulfilled', value: token })

    const waiting = manager({ waitForRecoveryMs: MINUTE })
    const other = heldSource('other')
    const a = settle(waiting.tokens.get(other.source))
    await flush()
    other.last().fail(transientError())
    await flush()
    await expect(waiting.tokens.get(other.source, { waitForRecoveryMs: 0 })).rejects.toMatchObject({
      code: 'SERVER_ERROR',
    })
    await waiting.clock.advanceAsync(138)
    other.last().succeed(HOUR)
    await flush()
    expect(a.result().status).toBe('fulfilled')
  })

  it('a negative or non-numeric wait is a TypeError', async () => {
    expect(() => new TokenManager({ waitForRecoveryMs: -1 })).toThrow(TypeError)
    expect(() => new TokenManager({ waitForRecoveryMs: Number.NaN })).toThrow(TypeError)
    const { tokens } = manager()
    expect(() => tokens.get(heldSource('x').source, { waitForRecoveryMs: '5' as never })).toThrow(TypeError)
  })
})
