import { describe, expect, it } from 'vitest'
import {
  GradeService,
  LtiServiceError,
  type BulkScore,
  type PostScoresResult,
  type ScoresProgress,
} from '../../src/lti/index.js'
import type { LtiPlatformOptions } from '../../src/testing/index.js'
import { failure, score, settle, startLti } from './helpers.js'

async function setup(platform: Omit<LtiPlatformOptions, 'tools' | 'clock'> = {}, learners = 20) {
  const harness = await startLti({ platform })
  const course = harness.platform.createContext({ learners })
  const item = course.addLineItem({ label: 'Quiz', scoreMaximum: 10 })
  const grades = await GradeService.fromClaim(
    harness.tokens,
    harness.registration,
    course.agsClaim({ lineItem: item.id }),
    { uses: ['scores'], clock: harness.clock, retry: { random: () => 0.5 } },
  )
  const learner = (n: number) => `${course.id}-learner-${n}`
  const scores = (count: number): BulkScore[] =>
    Array.from({ length: count }, (_, i) => score(learner((i % learners) + 1), i % 11))
  return { ...harness, course, item, grades, learner, scores }
}

/** Every score read is in exactly one outcome. */
function accounted(result: PostScoresResult): number {
  return result.posted + result.failed.length + result.superseded.length + result.notSent.length
}

/** The same scores posted by a naive loop: `concurrency` workers, one postScore after another. */
async function naiveLoop(grades: GradeService, scores: readonly BulkScore[], concurrency: number) {
  let next = 0
  const counts = { failed: 0, superseded: 0 }
  const worker = async (): Promise<void> => {
    while (next < scores.length) {
      const item = scores[next++]!
      await grades.postScore(item).then(
        (result) => {
          if (result.outcome === 'superseded') counts.superseded += 1
        },
        () => (counts.failed += 1),
      )
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return counts
}

describe('GradeService.postScores', () => {
  it('posts every score of an array, with progress after each one', async () => {
    const { grades, course, item, scores, platform } = await setup()
    const seen: ScoresProgress[] = []
    const result = await grades.postScores(scores(60), { concurrency: 4, onProgress: (p) => seen.push(p) })
    expect(result).toMatchObject({ total: 60, posted: 60, retried: 0, throttled: 0, aborted: false })
    expect(result.failed).toEqual([])
    expect(course.scores(item.id)).toHaveLength(60)
    expect(platform.stats().scoresAccepted).toBe(60)
    expect(seen).toHaveLength(60)
    expect(seen.at(-1)).toMatchObject({ posted: 60, remaining: 0, inProgress: 0, failed: 0 })
    expect(seen.map((p) => p.remaining)).toEqual(Array.from({ length: 60 }, (_, i) => 59 - i))
    expect(Math.max(...seen.map((p) => p.inProgress))).toBeLessThanOrEqual(4)
  })

  it('reads an async iterable as it goes (remaining unknown)', async () => {
    const { grades, course, item, scores } = await setup()
    const all = scores(25)
    let pulled = 0
    async function* generate(): AsyncGenerator<BulkScore> {
      for (const entry of all) {
        pulled += 1
        yield entry
      }
    }
    const seen: ScoresProgress[] = []
    const result = await grades.postScores(generate(), { onProgress: (p) => seen.push(p) })
    expect(result).toMatchObject({ total: 25, posted: 25 })
    expect(pulled).toBe(25)
    expect(course.scores(item.id)).toHaveLength(25)
    expect(seen.every((p) => p.remaining === undefined)).toBe(true)
  })

  it('posts the scores of one line item and user one after another, in input order', async () => {
    const { grades, course, item, learner } = await setup({}, 2)
    const input = [3, 5, 7, 9].flatMap((given) => [score(learner(1), given), score(learner(2), given + 1)])
    const result = await grades.postScores(input, { concurrency: 8 })
    expect(result.posted).toBe(8)
    const mine = course.scores(item.id).filter((s) => s.userId === learner(1))
    expect(mine.map((s) => s.scoreGiven)).toEqual([3, 5, 7, 9])
    const stamps = mine.map((s) => s.timestamp)
    expect([...stamps].sort()).toEqual(stamps)
  })

  it('timestamps stay strictly increasing per line item and user across retries and concurrency', async () => {
    const { grades, course, item, learner, platform, clock } = await setup({}, 4)
    // 80 scores for 4 learners at concurrency 16, with 503s and throttled answers forcing retries.
    platform.injectServiceFault({ kind: 'unavailable', retryAfterSeconds: 1 }, { times: 6 })
    platform.injectServiceFault({ kind: 'throttle', status: 429 }, { times: 6 })
    const input = Array.from({ length: 80 }, (_, i) => score(learner((i % 4) + 1), i % 11))
    const result = await settle(clock, grades.postScores(input, { concurrency: 16 }))
    expect(result).toMatchObject({ posted: 80, retried: 12 })
    // The platform refuses a timestamp not later than the last of that user (400): none was refused.
    expect(platform.stats().rejectedInvalid).toBe(0)
    for (let n = 1; n <= 4; n++) {
      const mine = course.scores(item.id).filter((s) => s.userId === learner(n))
      const stamps = mine.map((s) => s.timestamp)
      expect(new Set(stamps).size).toBe(20)
      expect([...stamps].sort()).toEqual(stamps)
      // and in input order
      expect(mine.map((s) => s.scoreGiven)).toEqual(
        input.filter((s) => s.userId === learner(n)).map((s) => s.scoreGiven),
      )
    }
  })

  it('lists every failure with its typed error, and posts the rest', async () => {
    const { grades, learner } = await setup({}, 3)
    const input: BulkScore[] = [
      score(learner(1)),
      score('not-enrolled'), // the platform refuses: 400
      { ...score(learner(2)), scoreGiven: -1 }, // a caller mistake: nothing sent
      score(learner(3)),
    ]
    const result = await grades.postScores(input)
    expect(result.posted).toBe(2)
    expect(result.failed.map((f) => f.index)).toEqual([1, 2])
    expect(result.failed[0]!.error).toBeInstanceOf(LtiServiceError)
    expect(result.failed[0]!.error).toMatchObject({ status: 400, code: 'SERVICE_REQUEST_FAILED' })
    expect(result.failed[1]!.error).toBeInstanceOf(TypeError)
    expect(accounted(result)).toBe(4)
  })

  it('a score may name its own line item', async () => {
    const { grades, course, item, learner } = await setup({}, 2)
    const other = course.addLineItem({ label: 'Essay', scoreMaximum: 10 })
    const result = await grades.postScores([score(learner(1)), { ...score(learner(1)), lineItem: other.id }])
    expect(result.posted).toBe(2)
    expect(course.scores(item.id)).toHaveLength(1)
    expect(course.scores(other.id)).toHaveLength(1)
  })

  it('a 503 burst with Retry-After: every score is posted after waiting, retries counted', async () => {
    const { grades, platform, clock, scores } = await setup()
    platform.injectServiceFault({ kind: 'unavailable', retryAfterSeconds: 2 }, { times: 5 })
    const pending = grades.postScores(scores(20), { concurrency: 4 })
    const result = await settle(clock, pending)
    expect(result).toMatchObject({ posted: 20, retried: 5, throttled: 0 })
    expect(result.failed).toEqual([])
    expect(platform.stats().serviceFaults).toBe(5)
    // Retry-After held the whole run: nothing was sent in the 2 s after the 503s.
    const requests = platform.serviceRequests
    const lastFault = requests.filter((r) => r.status === 503).at(-1)!
    const afterFault = requests.filter((r) => r.at > lastFault.at)
    expect(afterFault.every((r) => r.at >= lastFault.at + 2_000)).toBe(true)
  })

  it("Canvas's throttling 403 and a 429 are retried: nothing lost", async () => {
    for (const status of [403, 429] as const) {
      const { grades, platform, clock, scores } = await setup()
      platform.injectServiceFault({ kind: 'throttle', status }, { times: 3 })
      const result = await settle(clock, grades.postScores(scores(10)))
      expect(result).toMatchObject({ posted: 10, retried: 3, throttled: 3 })
    }
  })

  it('a stalled answer times out and is retried; the score posted twice is the same grade', async () => {
    const harness = await setup()
    const grades = await GradeService.fromClaim(
      harness.tokens,
      harness.registration,
      harness.course.agsClaim({ lineItem: harness.item.id }),
      { uses: ['scores'], clock: harness.clock, timeoutMs: 1_000, retry: { random: () => 0 } },
    )
    harness.platform.injectServiceFault({ kind: 'stall' })
    const result = await settle(harness.clock, grades.postScores([score(harness.learner(1), 6)]))
    expect(result).toMatchObject({ posted: 1, retried: 1 })
    const stored = harness.course.scores(harness.item.id)
    expect(stored.map((s) => s.scoreGiven)).toEqual([6, 6])
    expect(stored[1]!.timestamp > stored[0]!.timestamp).toBe(true)
  })

  it('a retry is superseded when a newer score of that user was posted meanwhile: reported, not sent', async () => {
    const { grades, platform, clock, learner, course, item } = await setup()
    platform.injectServiceFault({ kind: 'unavailable', retryAfterSeconds: 5 })
    const pending = grades.postScores([score(learner(1), 3)])
    while (platform.serviceRequests.length === 0) await clock.advanceAsync(0)
    await grades.postScore(score(learner(1), 9))
    const result = await settle(clock, pending)
    expect(result.posted).toBe(0)
    expect(result.superseded).toEqual([{ index: 0, score: score(learner(1), 3) }])
    expect(accounted(result)).toBe(1)
    expect(course.scores(item.id).map((s) => s.scoreGiven)).toEqual([9])
  })

  it('an abort ends the run: scores in progress fail with its reason, the rest are listed as not sent', async () => {
    const { grades, platform, clock, scores } = await setup()
    platform.setServiceFault({ kind: 'unavailable', retryAfterSeconds: 10 })
    const controller = new AbortController()
    const pending = grades.postScores(scores(30), { concurrency: 3, signal: controller.signal })
    while (platform.serviceRequests.length < 2) await clock.advanceAsync(0)
    const reason = new Error('shutting down')
    controller.abort(reason)
    const result = await pending
    expect(result.aborted).toBe(true)
    expect(result.total).toBe(30)
    expect(accounted(result)).toBe(30)
    expect(result.failed.length).toBeGreaterThan(0)
    expect(result.failed.every((f) => f.error === reason)).toBe(true)
    expect(result.notSent.length).toBe(30 - result.failed.length)
    expect(result.notSent.map((n) => n.index)).toEqual(
      [...result.notSent.map((n) => n.index)].sort((a, b) => a - b),
    )
  })

  it('an abort while the async iterable is slow to yield: the item it yields then is not sent', async () => {
    const { grades, learner, platform } = await setup()
    const controller = new AbortController()
    let release: () => void = () => undefined
    async function* slow(): AsyncGenerator<BulkScore> {
      yield score(learner(1))
      await new Promise<void>((resolve) => (release = resolve))
      yield score(learner(2))
      yield score(learner(3))
    }
    let posted = 0
    const pending = grades.postScores(slow(), {
      signal: controller.signal,
      onProgress: (p) => (posted = p.posted),
    })
    while (posted === 0) await new Promise((resolve) => setImmediate(resolve))
    controller.abort(new Error('stop'))
    release()
    const result = await pending
    expect(result).toMatchObject({ aborted: true, total: 2, posted: 1 })
    expect(result.notSent).toEqual([{ index: 1, score: score(learner(2)) }])
    expect(platform.stats().scoresAccepted).toBe(1)
  })

  it('against a request-cost budget: paced below it (almost no throttled answer) where a naive loop is throttled', async () => {
    const rateLimit = { budget: 20, refillPerSecond: 100 }
    const bulk = await setup({ rateLimit })
    const result = await settle(bulk.clock, bulk.grades.postScores(bulk.scores(300), { concurrency: 8 }))
    expect(result).toMatchObject({ total: 300, posted: 300 })
    expect(result.failed).toEqual([])

    const naive = await setup({ rateLimit })
    const { failed, superseded } = await settle(naive.clock, naiveLoop(naive.grades, naive.scores(300), 8))
    const naiveThrottled = naive.platform.stats().throttled
    expect(naiveThrottled).toBeGreaterThan(20)
    expect(result.throttled).toBe(bulk.platform.stats().throttled)
    expect(result.throttled).toBeLessThan(naiveThrottled / 5)
    expect(failed + superseded + naive.course.scores(naive.item.id).length).toBe(300)
  }, 60_000)

  it('bad options are TypeErrors before anything is sent', async () => {
    const { grades, scores, platform } = await setup()
    for (const options of [
      { concurrency: 0 },
      { concurrency: 1.5 },
      { concurrency: 65 },
      { onProgress: 1 },
    ]) {
      await expect(grades.postScores(scores(1), options as never)).rejects.toThrow(TypeError)
    }
    await expect(grades.postScores(42 as never)).rejects.toThrow(TypeError)
    expect(platform.serviceRequests).toHaveLength(0)
  })

  it('a failing async iterable rejects the run once the scores in progress settled', async () => {
    const { grades, course, item, learner } = await setup()
    async function* broken(): AsyncGenerator<BulkScore> {
      yield score(learner(1))
      throw new Error('source broke')
    }
    expect(await failure(grades.postScores(broken()))).toMatchObject({ message: 'source broke' })
    expect(course.scores(item.id)).toHaveLength(1)
  })
})
