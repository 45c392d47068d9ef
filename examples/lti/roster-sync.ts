// One job syncs the rosters of 30 courses on one platform. The token is scoped to the tool's
// registration, not to a course, so one token request serves all 30 courses and every page.
import { generateKeyPairSync } from 'node:crypto'
import { TokenManager } from 'tokenkeeper'
import { MembershipsService, type LtiRegistration } from 'tokenkeeper/lti'
import { startLtiPlatform } from 'tokenkeeper/testing'

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
await using platform = await startLtiPlatform({
  tools: [{ clientId: 'roster-sync', publicKey, kid: 'rs-1' }],
  pageSize: 10,
})
// NRPS claims as the tool saved them from a launch in each course.
const claims = Array.from({ length: 30 }, (_, i) => {
  const course = platform.createContext({ id: `course-${i + 1}`, learners: 20 + (i % 7) })
  return course.nrpsClaim()
})

const registration: LtiRegistration = {
  issuer: platform.issuer,
  clientId: 'roster-sync',
  tokenUrl: platform.tokenUrl,
  privateKey,
  kid: 'rs-1',
}
await using tokens = new TokenManager()

let members = 0
let pages = 0
await Promise.all(
  claims.map(async (claim) => {
    const roster = await MembershipsService.fromClaim(tokens, registration, claim)
    for await (const page of roster.pages({ role: 'Learner' })) {
      pages += 1
      members += page.members.length
    }
  }),
)

const stats = platform.stats()
console.log(`synced ${claims.length} courses: ${members} members in ${pages} pages`)
console.log(
  `token requests: ${stats.tokenRequests}; service calls: ${stats.serviceCalls}, refused: ${stats.serviceCalls - stats.serviceAccepted}`,
)
