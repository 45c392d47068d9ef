// A grading job posts 5,000 scores (100 chunks of 50) to an LTI platform whose service tokens
// live 60 s, for a job that runs five simulated minutes: the tokens run out several times
// mid-run. A test clock stands in for the wall clock so the job takes seconds, not minutes; the
// platform, the token manager and the score timestamps all run on it.
import { generateKeyPairSync } from 'node:crypto'
import { TokenManager } from 'tokenkeeper'
import { GradeService, type LtiRegistration } from 'tokenkeeper/lti'
import { createTestClock, startLtiPlatform } from 'tokenkeeper/testing'

const clock = createTestClock()
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
await using platform = await startLtiPlatform({
  tools: [{ clientId: 'grader', publicKey, kid: 'grader-key-1' }],
  tokenLifetimeMs: 60_000,
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
await using tokens = new TokenManager({ clock })
const grades = await GradeService.fromClaim(tokens, registration, agsClaim, { uses: ['scores'], clock })

const learners = course.members().map((member) => member.user_id)
let posted = 0
let failed = 0
for (let chunk = 0; chunk < 100; chunk++) {
  const results = await Promise.allSettled(
    learners.map((userId, i) =>
      grades.postScore({
        userId,
        scoreGiven: (chunk * 7 + i) % 101,
        scoreMaximum: 100,
        activityProgress: 'Completed',
        gradingProgress: 'FullyGraded',
      }),
    ),
  )
  posted += results.filter((result) => result.status === 'fulfilled').length
  failed += results.filter((result) => result.status === 'rejected').length
  await clock.advanceAsync(3_000) // three seconds of grading work between chunks
}

const stats = platform.stats()
const seconds = Math.round((clock.now() - platform.requests[0]!.at) / 1000)
console.log(`posted ${posted} scores in 100 chunks of 50 over ${seconds} s of job time; failed: ${failed}`)
console.log(`token requests: ${stats.tokenRequests} for 60 s tokens (the first, then one per renewal)`)
console.log(
  `scores the platform accepted: ${stats.scoresAccepted}; refused for an expired token: ${stats.rejectedUnauthorized}`,
)
console.log(
  `manager: ${tokens.stats().hits} cache hits, ${tokens.stats().backgroundRefreshes} background renewals`,
)
