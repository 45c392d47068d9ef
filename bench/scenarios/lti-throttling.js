// LTI bulk scores against a platform that throttles at a fixed request-cost budget (Canvas-style
// leaky bucket): the bulk API (`grades.postScores`) against a naive loop of `postScore` calls
// with the same concurrency, each on a fresh platform, in the same run.
/* global performance, process */
import { generateKeyPairSync } from 'node:crypto'
import { TokenManager } from '../../dist/index.js'
import { GradeService } from '../../dist/lti/index.js'
import { startLtiPlatform } from '../../dist/testing/index.js'
import { num, printTable, printVerdicts, ratio, verdict } from './util.js'

const SCORES = Number(process.env.BENCH_LTI_SCORES ?? 5_000)
const CONCURRENCY = 16
const LEARNERS = 100
/** The bucket: 50 units refilled at 250 per second, below what this machine serves; every request costs 1 and holds 1 while in flight (Canvas: 700, 10/s, 50). */
const RATE_LIMIT = { budget: 50, refillPerSecond: 250, cost: 1, preflightPenalty: 1 }

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })

async function platformAndGrades() {
  const platform = await startLtiPlatform({
    tools: [{ clientId: 'bench-tool', publicKey, kid: 'k1' }],
    rateLimit: RATE_LIMIT,
  })
  const course = platform.createContext({ id: 'bench', learners: LEARNERS })
  const item = course.addLineItem({ label: 'Quiz', scoreMaximum: 100 })
  const tokens = new TokenManager()
  const registration = {
    issuer: platform.issuer,
    clientId: 'bench-tool',
    tokenUrl: platform.tokenUrl,
    privateKey,
    kid: 'k1',
  }
  const grades = await GradeService.fromClaim(tokens, registration, course.agsClaim({ lineItem: item.id }), {
    uses: ['scores'],
  })
  const scores = Array.from({ length: SCORES }, (_, i) => ({
    userId: `bench-learner-${(i % LEARNERS) + 1}`,
    scoreGiven: i % 101,
    scoreMaximum: 100,
    activityProgress: 'Completed',
    gradingProgress: 'FullyGraded',
  }))
  const close = async () => {
    await tokens.close()
    await platform.close()
  }
  return { platform, course, item, grades, scores, close }
}

async function naive() {
  const setup = await platformAndGrades()
  const { grades, scores } = setup
  let next = 0
  const counts = { posted: 0, superseded: 0, failed: 0 }
  const startedAt = performance.now()
  const worker = async () => {
    while (next < scores.length) {
      const score = scores[next++]
      try {
        const result = await grades.postScore(score)
        counts[result.outcome] += 1
      } catch {
        counts.failed += 1
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  const ms = performance.now() - startedAt
  return finish(setup, { ms, ...counts })
}

async function bulk() {
  const setup = await platformAndGrades()
  const startedAt = performance.now()
  const result = await setup.grades.postScores(setup.scores, { concurrency: CONCURRENCY })
  const ms = performance.now() - startedAt
  return finish(setup, {
    ms,
    posted: result.posted,
    superseded: result.superseded.length,
    failed: result.failed.length + result.notSent.length,
  })
}

async function finish(setup, counts) {
  const stats = setup.platform.stats()
  const accepted = setup.course.scores(setup.item.id).length
  await setup.close()
  // Lost: neither accepted by the platform nor replaced by a newer grade of the same user.
  return {
    ...counts,
    throttled: stats.throttled,
    requests: stats.serviceCalls,
    tokenRequests: stats.tokenRequests,
    accepted,
    lost: SCORES - counts.posted - counts.superseded,
  }
}

export async function ltiThrottling() {
  const loop = await naive()
  const bulked = await bulk()
  const row = (name, r, baseline) => ({
    case: name,
    'time ms': num(r.ms),
    'ratio vs naive': ratio(r.ms / baseline),
    posted: num(r.posted),
    superseded: num(r.superseded),
    lost: num(r.lost),
    throttled: num(r.throttled),
    'service requests': num(r.requests),
    'token requests': num(r.tokenRequests),
  })
  printTable(
    `7. LTI: ${num(SCORES)} scores, concurrency ${CONCURRENCY}, platform bucket ${RATE_LIMIT.budget} units refilled at ${RATE_LIMIT.refillPerSecond}/s, cost 1 (real clock, 127.0.0.1)`,
    [
      row('naive loop of postScore (retries on)  [baseline]', loop, loop.ms),
      row('grades.postScores (paced)', bulked, loop.ms),
    ],
  )
  const verdicts = [
    verdict(
      'lti',
      'bulk: 0 scores lost',
      `${bulked.lost} lost, ${bulked.accepted} accepted`,
      bulked.lost === 0 && bulked.accepted === bulked.posted,
      'correctness',
    ),
    verdict(
      'lti',
      'bulk: at most 1 token request',
      `${bulked.tokenRequests}`,
      bulked.tokenRequests <= 1,
      'correctness',
    ),
    verdict(
      'lti',
      "bulk: at most a fifth of the naive loop's throttled answers",
      `${bulked.throttled} vs ${loop.throttled}`,
      bulked.throttled * 5 <= loop.throttled,
      'timing',
    ),
    verdict(
      'lti',
      'bulk: as fast as the naive loop (ratio ≤ 1.10x; both are bound by the refill)',
      ratio(bulked.ms / loop.ms),
      bulked.ms <= 1.1 * loop.ms,
      'timing',
    ),
  ]
  printVerdicts(verdicts)
  return { verdicts, summary: { naive: loop, bulk: bulked } }
}
