// Using tokenkeeper/testing in your own tests: a real token server, faults, and a test clock.
import { TokenManager, clientCredentials, clientSecretPost, isTokenkeeperError } from 'tokenkeeper'
import { createTestClock, startTokenServer } from 'tokenkeeper/testing'

const clock = createTestClock()
await using server = await startTokenServer({
  clients: [{ clientId: 'worker', clientSecret: 'test-secret' }],
  tokenLifetimeMs: 60_000,
  clock,
})
await using tokens = new TokenManager({ clock, random: () => 0.5 })
const source = clientCredentials({
  tokenUrl: server.tokenUrl,
  clientId: 'worker',
  auth: clientSecretPost('test-secret'),
})

const first = await tokens.get(source)
server.setFault({ kind: 'status', status: 503 }) // the identity provider goes down
clock.advance(50_000) // into the advisory window: the cached token is still served
const during = await tokens.get(source)
console.log('same token during the outage:', during.value === first.value)

clock.advance(20_000) // past expiry: now callers see a typed, retryable error
try {
  await tokens.get(source)
} catch (error) {
  if (isTokenkeeperError(error)) console.log('after expiry:', error.code, 'retryable:', error.retryable)
}
server.clearFaults()
clock.advance(15_000) // past the backoff window
console.log('recovered:', (await tokens.get(source)).value !== first.value)
