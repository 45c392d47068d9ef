import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { InsufficientScopeError } from '../../src/index.js'
import { GradeService, LtiServiceError, UnsafeServiceUrlError } from '../../src/lti/index.js'
import { collect, score, startLti, type LtiHarnessOptions } from './helpers.js'

async function setup(options: LtiHarnessOptions = {}, learners = 5) {
  const harness = await startLti(options)
  const course = harness.platform.createContext({ learners })
  const item = course.addLineItem({ label: 'Quiz 1', scoreMaximum: 10, tag: 'quiz', resourceLinkId: 'rl-1' })
  const grades = await GradeService.fromClaim(
    harness.tokens,
    harness.registration,
    course.agsClaim({ lineItem: item.id }),
  )
  const learner = (n: number) => `${course.id}-learner-${n}`
  return { ...harness, course, item, grades, learner }
}

describe('GradeService.postScore', () => {
  it('posts to {lineitem}/scores before the query string, as application/vnd.ims.lis.v1.score+json', async () => {
    const { platform, course, item, grades, learner } = await setup()
    await grades.postScore({
      ...score(learner(1), 87),
      comment: 'Well done',
      submission: { submittedAt: new Date(0) },
    })
    const [record] = platform.serviceRequests
    expect(record).toMatchObject({ method: 'POST', status: 204 })
    expect(record!.path).toMatch(/\/lineitem\/scores\?type_id=\d+$/)
    expect(item.id).toMatch(/\/lineitem\?type_id=\d+$/)
    const [stored] = course.scores(item.id)
    expect(stored).toMatchObject({
      userId: learner(1),
      scoreGiven: 87,
      scoreMaximum: 10,
      comment: 'Well done',
    })
    expect(stored!.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
  })

  it('keeps timestamps strictly increasing when many scores are posted in the same millisecond', async () => {
    const { course, item, grades, learner } = await setup({}, 3)
    // The test clock does not move: every post happens in the same millisecond.
    for (let i = 0; i < 20; i++) await grades.postScore(score(learner(1), i))
    await Promise.all([1, 2, 3].map((n) => grades.postScore(score(learner(n), 10))))
    const stamps = course.scores(item.id).map((s) => s.timestamp)
    expect(stamps).toHaveLength(23)
    expect(new Set(stamps).size).toBe(23)
    const own = course
      .scores(item.id)
      .filter((s) => s.userId === learner(1))
      .map((s) => s.timestamp)
    expect([...own].sort()).toEqual(own)
  })

  it('shares one timestamp sequence between services of one token manager', async () => {
    const { platform, tokens, registration, course, item, grades, learner } = await setup()
    const again = await GradeService.fromClaim(tokens, registration, course.agsClaim({ lineItem: item.id }))
    await grades.postScore(score(learner(1)))
    await again.postScore(score(learner(1)))
    expect(course.scores(item.id)).toHaveLength(2)
    expect(platform.stats().rejectedInvalid).toBe(0)
  })

  it('posts to another line item of the platform, and refuses one on another host', async () => {
    const { course, grades, learner, platform } = await setup()
    const other = course.addLineItem({ label: 'Quiz 2', scoreMaximum: 5 })
    await grades.postScore(score(learner(2)), { lineItem: other })
    expect(course.scores(other.id)).toHaveLength(1)
    const foreign = other.id.replace('127.0.0.1', 'localhost')
    await expect(grades.postScore(score(learner(2)), { lineItem: foreign })).rejects.toBeInstanceOf(
      UnsafeServiceUrlError,
    )
    expect(platform.serviceRequests).toHaveLength(1)
  })

  it('checks the score before sending (TypeError)', async () => {
    const { grades, platform } = await setup()
    const bad = [
      { ...score('u'), userId: '' },
      { ...score('u'), activityProgress: 'Done' },
      { ...score('u'), scoreMaximum: undefined },
      { ...score('u'), scoreGiven: -1 },
      { ...score('u'), submission: { startedAt: '2026-01-01T00:00:00Z' } },
      { ...score('u'), extensions: { custom: 1 } },
    ]
    for (const given of bad) await expect(grades.postScore(given as never)).rejects.toThrow(TypeError)
    expect(platform.serviceRequests).toHaveLength(0)
  })

  it('reports a platform refusal as an LtiServiceError without the token', async () => {
    const { grades, tokens } = await setup()
    const error = await grades.postScore(score('not-enrolled')).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LtiServiceError)
    expect(error).toMatchObject({
      code: 'SERVICE_REQUEST_FAILED',
      status: 400,
      method: 'POST',
      retryable: false,
    })
    const token = await tokens.get(grades.source)
    for (const shown of [
      String(error),
      inspect(error),
      JSON.stringify(error),
      inspect(grades),
      JSON.stringify(grades),
    ]) {
      expect(shown).not.toContain(token.value)
    }
  })
})

describe('GradeService: 401 invalidates that token and retries once', () => {
  it('a revoked token: one new token, the post succeeds', async () => {
    const { platform, tokens, course, item, grades, learner } = await setup()
    const before = await tokens.get(grades.source)
    platform.revoke(before.value)
    await grades.postScore(score(learner(1)))
    expect(platform.stats()).toMatchObject({ tokenRequests: 2, rejectedUnauthorized: 1, scoresAccepted: 1 })
    expect((await tokens.get(grades.source)).value).not.toBe(before.value)
    expect(course.scores(item.id)).toHaveLength(1)
  })

  it('20 concurrent posts that all meet a revoked token cause one token request', async () => {
    const { platform, tokens, grades, learner } = await setup({}, 20)
    platform.revoke((await tokens.get(grades.source)).value)
    await Promise.all(Array.from({ length: 20 }, (_, i) => grades.postScore(score(learner(i + 1)))))
    expect(platform.stats()).toMatchObject({ tokenRequests: 2, rejectedUnauthorized: 20, scoresAccepted: 20 })
  })

  it('a second 401 is not retried again: LtiServiceError 401', async () => {
    const harness = await startLti()
    const course = harness.platform.createContext({ learners: 1 })
    const item = course.addLineItem({ label: 'Quiz', scoreMaximum: 1 })
    let serviceCalls = 0
    const fetch: typeof globalThis.fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input)
      if (url.includes('/token')) return globalThis.fetch(input, init)
      serviceCalls += 1
      return new Response('{"error":"invalid_token"}', { status: 401 })
    }
    const grades = await GradeService.fromClaim(
      harness.tokens,
      harness.registration,
      course.agsClaim({ lineItem: item.id }),
      { fetch },
    )
    const error = await grades.postScore(score(`${course.id}-learner-1`)).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'SERVICE_REQUEST_FAILED', status: 401 })
    expect(serviceCalls).toBe(2)
    expect(harness.platform.stats().tokenRequests).toBe(2)
  })
})

describe('GradeService: 403 insufficient_scope', () => {
  it('is an InsufficientScopeError, not retried, when the platform refuses a scope it claimed to grant', async () => {
    const SCORE = 'https://purl.imsglobal.org/spec/lti-ags/scope/score'
    const READ = 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly'
    const { platform, tokens, registration } = await startLti({ tool: { allowedScopes: [READ] } })
    const course = platform.createContext({ learners: 1 })
    const item = course.addLineItem({ label: 'Quiz', scoreMaximum: 10 })
    // The platform grants only lineitem.readonly but its response claims score too.
    platform.inject({ kind: 'token', scope: `${READ} ${SCORE}` })
    const grades = await GradeService.fromClaim(
      tokens,
      registration,
      course.agsClaim({ lineItem: item.id }),
      {
        uses: ['scores', 'readLineItems'],
      },
    )
    const error = await grades.postScore(score(`${course.id}-learner-1`)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InsufficientScopeError)
    expect(error).toMatchObject({ code: 'INSUFFICIENT_SCOPE', requiredScopes: [SCORE] })
    expect(platform.stats()).toMatchObject({ rejectedForbidden: 1, tokenRequests: 1 })
  })
})

describe('GradeService: line items and results', () => {
  it('creates, reads, updates and deletes line items with the line item media type', async () => {
    const { grades, course } = await setup()
    const created = await grades.createLineItem({
      label: 'Essay',
      scoreMaximum: 20,
      resourceId: 'essay',
      tag: 'final',
    })
    expect(created.id).toMatch(/\/lineitem\?type_id=/)
    expect(await grades.getLineItem(created)).toMatchObject({ label: 'Essay', scoreMaximum: 20 })
    const updated = await grades.updateLineItem({ ...created, label: 'Essay (revised)' })
    expect(updated.label).toBe('Essay (revised)')
    await grades.deleteLineItem(created)
    expect(course.lineItems().map((i) => i.label)).toEqual(['Quiz 1'])
    await expect(grades.getLineItem(created)).rejects.toMatchObject({ status: 404 })
    await expect(grades.createLineItem({ label: ' ', scoreMaximum: 1 })).rejects.toThrow(TypeError)
  })

  it('lists line items with filters, following next pages exactly as given', async () => {
    const { grades, course, platform } = await setup({ platform: { pageSize: 4 } })
    for (let i = 0; i < 9; i++) course.addLineItem({ label: `Item ${i}`, scoreMaximum: 1, tag: 'batch' })
    const items = await collect(grades.lineItems({ tag: 'batch' }))
    expect(items.map((i) => i.label)).toEqual(Array.from({ length: 9 }, (_, i) => `Item ${i}`))
    const paths = platform.serviceRequests.map((r) => r.path)
    expect(paths).toHaveLength(3)
    expect(paths[0]).toMatch(/\/lineitems\?tag=batch$/)
    expect(paths[1]).toMatch(/\/lineitems\?tag=batch&Cursor=Pg[\w-]+$/)
    expect(await collect(grades.lineItems({ resourceLinkId: 'rl-1' }))).toHaveLength(1)
    expect(await collect(grades.lineItems({ tag: 'batch', limit: 100 }))).toHaveLength(9)
  })

  it('reads results at {lineitem}/results, by user', async () => {
    const { grades, item, learner } = await setup()
    await grades.postScore(score(learner(1), 3))
    await grades.postScore(score(learner(2), 9))
    const results = await collect(grades.results())
    expect(results.map((r) => [r.userId, r.resultScore])).toEqual([
      [learner(1), 3],
      [learner(2), 9],
    ])
    expect(results[0]!.scoreOf).toBe(item.id)
    expect(await collect(grades.results({ userId: learner(2) }))).toHaveLength(1)
  })
})

describe('GradeService: tokens expire mid-batch', () => {
  it('posts 600 scores in chunks of 50 over 3 token lifetimes: no failure, one token request per renewal', async () => {
    const { platform, clock, grades, learner, course, item } = await setup(
      { platform: { tokenLifetimeMs: 60_000 } },
      50,
    )
    for (let chunk = 0; chunk < 12; chunk++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => grades.postScore(score(learner(i + 1), chunk))))
      clock.advance(15_000)
    }
    expect(course.scores(item.id)).toHaveLength(600)
    const stats = platform.stats()
    expect(stats).toMatchObject({
      rejectedUnauthorized: 0,
      rejectedInvalid: 0,
      scoresAccepted: 600,
      tokenFailures: 0,
    })
    // Chunks every 15 s from 0 s to 165 s on 60 s tokens: the first token, and one renewal each
    // at 60 s and 120 s (the first chunk after each token's refresh point).
    expect(stats.tokenRequests).toBe(3)
  })
})
