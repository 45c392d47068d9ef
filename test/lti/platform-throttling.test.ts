import { describe, expect, it } from 'vitest'
import { GradeService } from '../../src/lti/index.js'
import { startLtiPlatform, type LtiPlatformOptions } from '../../src/testing/index.js'
import { CLIENT_ID, failure, KID, score, settle, startLti, toolKeys } from './helpers.js'

async function setup(platform: Omit<LtiPlatformOptions, 'tools' | 'clock'> = {}) {
  const harness = await startLti({ platform })
  const course = harness.platform.createContext({ learners: 3 })
  const item = course.addLineItem({ label: 'Quiz', scoreMaximum: 10 })
  const grades = await GradeService.fromClaim(
    harness.tokens,
    harness.registration,
    course.agsClaim({ lineItem: item.id }),
    { clock: harness.clock, retry: false, timeoutMs: 1_000 },
  )
  const token = (await harness.tokens.get(grades.source)).value
  /** A GET of the line item, by hand, to see the headers. */
  const get = (path = item.id) =>
    fetch(path, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.ims.lis.v2.lineitem+json' },
    })
  return { ...harness, course, item, grades, get }
}

describe('startLtiPlatform rateLimit (Canvas-style request cost)', () => {
  it('every answer carries X-Request-Cost and X-Rate-Limit-Remaining; a spent budget answers 403 (Rate Limit Exceeded)', async () => {
    const { get, platform } = await setup({ rateLimit: { budget: 3, refillPerSecond: 1, cost: 1 } })
    const remaining: string[] = []
    for (let i = 0; i < 3; i++) {
      const response = await get()
      expect(response.status).toBe(200)
      expect(response.headers.get('x-request-cost')).toBe('1')
      remaining.push(response.headers.get('x-rate-limit-remaining')!)
    }
    expect(remaining).toEqual(['2', '1', '0'])
    const throttled = await get()
    expect(throttled.status).toBe(403)
    expect(await throttled.text()).toBe('403 Forbidden (Rate Limit Exceeded)')
    expect(throttled.headers.get('x-rate-limit-remaining')).toBe('0')
    expect(throttled.headers.get('x-request-cost')).toBe('0')
    expect(throttled.headers.get('retry-after')).toBeNull()
    expect(platform.stats()).toMatchObject({ throttled: 1, serviceCalls: 4 })
    expect(platform.serviceRequests.at(-1)).toMatchObject({ status: 403, reason: 'rate limit exceeded' })
  })

  it('the bucket leaks refillPerSecond on the platform clock', async () => {
    const { get, clock, platform } = await setup({ rateLimit: { budget: 2, refillPerSecond: 4, cost: 1 } })
    await get()
    await get()
    expect((await get()).status).toBe(403)
    expect(platform.rateLimitRemaining()).toBe(0)
    clock.advance(250) // one unit
    expect(platform.rateLimitRemaining()).toBe(1)
    expect((await get()).status).toBe(200)
    expect((await get()).status).toBe(403)
    clock.advance(10_000)
    expect(platform.rateLimitRemaining()).toBe(2) // never above the budget
  })

  it('the pre-flight penalty throttles before the budget is spent', async () => {
    const { get } = await setup({
      rateLimit: { budget: 10, refillPerSecond: 0, cost: 1, preflightPenalty: 8 },
    })
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await get()).status)
    // Levels 1, 2, 3: the fourth would hold 3 + 8 > 10.
    expect(statuses).toEqual([200, 200, 200, 403])
  })

  it('throttleStatus 429 with Retry-After; cost per request', async () => {
    const { get, grades, learner } = await (async () => {
      const s = await setup({
        rateLimit: {
          budget: 5,
          refillPerSecond: 0,
          cost: (request) => (request.method === 'POST' ? 4 : 0.5),
          throttleStatus: 429,
          retryAfterSeconds: 3,
        },
      })
      return { ...s, learner: `${s.course.id}-learner-1` }
    })()
    expect((await get()).headers.get('x-request-cost')).toBe('0.5')
    await grades.postScore(score(learner))
    expect((await get()).headers.get('x-rate-limit-remaining')).toBe('0') // 0.5 + 4 + 0.5 of 5
    const response = await get()
    expect(response.status).toBe(429)
    expect(response.headers.get('retry-after')).toBe('3')
    expect(await response.json()).toEqual({ errors: [{ message: 'Rate Limit Exceeded' }] })
    expect(await failure(grades.getLineItem())).toMatchObject({
      status: 429,
      throttled: true,
      retryAfterMs: 3_000,
    })
  })

  it('bad rateLimit options are TypeErrors', async () => {
    const { publicKey } = toolKeys()
    const tools = [{ clientId: CLIENT_ID, publicKey, kid: KID }]
    for (const rateLimit of [
      { budget: 0, refillPerSecond: 1 },
      { budget: 10, refillPerSecond: -1 },
      { budget: 10, refillPerSecond: 1, preflightPenalty: Number.NaN },
      { budget: 10, refillPerSecond: 1, cost: -1 },
      { budget: 10, refillPerSecond: 1, throttleStatus: 500 },
      { budget: 10, refillPerSecond: 1, retryAfterSeconds: -5 },
    ]) {
      await expect(startLtiPlatform({ tools, rateLimit: rateLimit as never })).rejects.toThrow(TypeError)
    }
  })
})

describe('startLtiPlatform service faults', () => {
  it('a burst of 503s with Retry-After, then normal answers; nothing applied meanwhile', async () => {
    const { grades, platform, course, item } = await setup()
    const burst = platform.injectServiceFault({ kind: 'unavailable', retryAfterSeconds: 2 }, { times: 2 })
    const learner = `${course.id}-learner-1`
    for (let i = 0; i < 2; i++) {
      expect(await failure(grades.postScore(score(learner)))).toMatchObject({
        status: 503,
        retryAfterMs: 2_000,
      })
    }
    expect(burst.remaining).toBe(0)
    await grades.postScore(score(learner))
    expect(course.scores(item.id)).toHaveLength(1)
    expect(platform.stats()).toMatchObject({ serviceFaults: 2, scoresAccepted: 1 })
    expect(platform.serviceRequests.map((r) => r.reason)).toEqual([
      'fault: unavailable',
      'fault: unavailable',
      undefined,
    ])
  })

  it('match picks the requests a fault applies to; a standing fault applies to the rest; clearFaults ends both', async () => {
    const { grades, platform, course } = await setup()
    platform.injectServiceFault({ kind: 'throttle' }, { times: 5, match: (r) => r.method === 'POST' })
    platform.setServiceFault({ kind: 'unavailable' })
    expect(await failure(grades.getLineItem())).toMatchObject({ status: 503 })
    expect(await failure(grades.postScore(score(`${course.id}-learner-1`)))).toMatchObject({
      status: 403,
      throttled: true,
    })
    platform.clearFaults()
    await expect(grades.getLineItem()).resolves.toMatchObject({ label: 'Quiz' })
    expect(() => platform.injectServiceFault({ kind: 'explode' } as never)).toThrow(TypeError)
    expect(() => platform.injectServiceFault({ kind: 'stall' }, { times: 0 })).toThrow(TypeError)
  })

  it('stall: the request is applied, the answer stops after half its body (TIMEOUT), or never comes (a score)', async () => {
    const { grades, platform, clock, course, item } = await setup()
    platform.injectServiceFault({ kind: 'stall' }, { times: 2 })
    expect(await settle(clock, failure(grades.getLineItem()))).toMatchObject({ code: 'TIMEOUT' })
    expect(await settle(clock, failure(grades.postScore(score(`${course.id}-learner-1`))))).toMatchObject({
      code: 'TIMEOUT',
    })
    expect(course.scores(item.id)).toHaveLength(1) // applied, the answer lost
    expect(platform.stats().serviceFaults).toBe(2)
  })
})
