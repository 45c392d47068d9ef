// A grading job posts 5,000 scores (100 chunks of 50, graded three seconds apart) to an LTI
// platform that throttles as Canvas does: a request-cost budget of 700 refilled at 10 per second,
// a pre-flight penalty of 50 per request in flight, `403 Forbidden (Rate Limit Exceeded)` when
// spent, plus a burst of 503s with Retry-After mid-run. Service tokens live 60 s. The job hands
// its scores to `grades.postScores` as they are graded; it paces itself by the platform's
// `X-Rate-Limit-Remaining` / `X-Request-Cost`, retries what can be retried, and accounts for every
// score. A test clock stands in for the wall clock so the job takes seconds, not minutes.
import { generateKeyPairSync } from 'node:crypto'
import { TokenManager } from 'tokenkeeper'
import { GradeService, type BulkScore, type LtiRegistration } from 'tokenkeeper/lti'
import { createTestClock, startLtiPlatform } from 'tokenkeeper/testing'

const clock = createTestClock()
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
await using platform = await startLtiPlatform({
  tools: [{ clientId: 'grader', publicKey, kid: 'grader-key-1' }],
  tokenLifetimeMs: 60_000,
  rateLimit: { budget: 700, refillPerSecond: 10, preflightPenalty: 50, cost: 1 },
  clock,
})
const course = platform.createContext({ id: 'chem-201', learners: 50 })
const quiz = course.addLineItem({ label: 'Weekly quiz', scoreMaximum: 100 })
// What the tool kept from a launch in this course:
const agsClaim = course.agsClaim({ lineItem: quiz.id })

const registration: LtiRegistration = {
  issuer: platform.issuer,
  clientId: 'grader',
  tokenUrl: platform.tokenUrl,
  privateKey,
  kid: 'grader-key-1',
}
// Time limits of requests run on the test clock too, and here it runs about 150 times faster
// than real time: give each request ten minutes of it (a few real seconds), or a busy machine's
// slow answers would time out and be retried.
const limits = { timeoutMs: 600_000, source: { timeoutMs: 600_000 } }
await using tokens = new TokenManager({ clock })
const grades = await GradeService.fromClaim(tokens, registration, agsClaim, {
  uses: ['scores'],
  clock,
  ...limits,
})

const learners = course.members().map((member) => member.user_id)
const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimer(resolve, ms))

/** The grader: a chunk of 50 scores every three seconds. */
async function* graded(): AsyncGenerator<BulkScore> {
  for (let chunk = 0; chunk < 100; chunk++) {
    if (chunk === 40)
      platform.injectServiceFault({ kind: 'unavailable', retryAfterSeconds: 5 }, { times: 10 })
    for (const [i, userId] of learners.entries()) {
      yield {
        userId,
        scoreGiven: (chunk * 7 + i) % 101,
        scoreMaximum: 100,
        activityProgress: 'Completed',
        gradingProgress: 'FullyGraded',
      }
    }
    await sleep(3_000) // three seconds of grading work between chunks
  }
}

const startedAt = clock.now()
const job = grades.postScores(graded(), { concurrency: 8 })
// The test clock does not move by itself: move it while the job runs, 100 ms at a time, but not
// while a token request is out (the platform checks the assertion's time claims on this clock).
let requesting = 0
tokens.on('refreshStart', () => requesting++)
for (const end of ['refreshSuccess', 'refreshFailure'] as const) tokens.on(end, () => requesting--)
let done = false
void job.finally(() => (done = true)).catch(() => undefined)
while (!done) {
  if (requesting === 0) await clock.advanceAsync(100)
  else await new Promise((resolve) => setImmediate(resolve))
}
const result = await job

const stats = platform.stats()
const seconds = Math.round((clock.now() - startedAt) / 1000)
console.log(
  `posted ${result.posted} of ${result.total} scores over ${seconds} s of job time; failed: ${result.failed.length}, superseded: ${result.superseded.length}`,
)
console.log(
  `retried: ${result.retried}; throttled answers: ${result.throttled} (platform: ${stats.throttled})`,
)
console.log(`token requests: ${stats.tokenRequests} for 60 s tokens (the first, then one per renewal)`)
console.log(
  `scores the platform accepted: ${stats.scoresAccepted}; refused for an expired token: ${stats.rejectedUnauthorized}`,
)
