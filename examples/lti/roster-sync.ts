// One job syncs the rosters of 30 courses on one platform with `roster.syncRosters`. The token is
// scoped to the tool's registration, not to a course, so one token request serves all 30 courses
// and every page. The platform throttles as Canvas does (a request-cost budget with a pre-flight
// penalty per request in flight; roster pages cost 2) and answers a burst of 503s with
// Retry-After: the sync paces itself by the platform's headers, retries, and reports each
// course. A test clock stands in for the wall clock.
import { generateKeyPairSync } from 'node:crypto'
import { TokenManager } from 'tokenkeeper'
import { MembershipsService, type LtiRegistration } from 'tokenkeeper/lti'
import { createTestClock, startLtiPlatform } from 'tokenkeeper/testing'

const clock = createTestClock()
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
await using platform = await startLtiPlatform({
  tools: [{ clientId: 'roster-sync', publicKey, kid: 'rs-1' }],
  pageSize: 10,
  rateLimit: { budget: 100, refillPerSecond: 5, preflightPenalty: 10, cost: 2 },
  clock,
})
// NRPS claims as the tool saved them from a launch in each course.
const claims = Array.from({ length: 30 }, (_, i) => {
  const course = platform.createContext({ id: `course-${i + 1}`, learners: 20 + (i % 7) })
  return course.nrpsClaim()
})
platform.injectServiceFault({ kind: 'unavailable', retryAfterSeconds: 2 }, { times: 5 })

const registration: LtiRegistration = {
  issuer: platform.issuer,
  clientId: 'roster-sync',
  tokenUrl: platform.tokenUrl,
  privateKey,
  kid: 'rs-1',
}
// Time limits of requests run on the test clock too, and here it runs about 150 times faster
// than real time: give each request ten minutes of it (a few real seconds), or a busy machine's
// slow answers would time out and be retried.
const limits = { timeoutMs: 600_000, source: { timeoutMs: 600_000 } }
await using tokens = new TokenManager({ clock })
const roster = await MembershipsService.fromClaim(tokens, registration, claims[0]!, { clock, ...limits })

const saved = new Map<number, number>()
const job = roster.syncRosters(
  claims,
  (page, course) => {
    saved.set(course.index, (saved.get(course.index) ?? 0) + page.members.length)
  },
  { concurrency: 6, query: { role: 'Learner' } },
)
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
console.log(
  `synced ${result.synced} of ${result.courses.length} courses: ${result.members} members in ${result.pages} pages; failed: ${result.failed}`,
)
console.log(
  `retried: ${result.retried}; throttled answers: ${result.throttled} (platform: ${stats.throttled})`,
)
console.log(
  `token requests: ${stats.tokenRequests}; service calls: ${stats.serviceCalls}, refused: ${stats.serviceCalls - stats.serviceAccepted}`,
)
