// Token exchange (RFC 8693): a gateway holds a user's token and trades it for one meant for the
// orders API, through the same TokenManager. Here the "identity provider" is tokenkeeper/testing's
// token server, which exchanges the access tokens it issued; in production, use your IdP's URL.
import {
  TOKEN_TYPES,
  TokenManager,
  clientCredentials,
  clientSecretBasic,
  isTokenkeeperError,
  tokenExchange,
} from 'tokenkeeper'
import { startTokenServer } from 'tokenkeeper/testing'

const server = await startTokenServer({
  clients: [
    { clientId: 'frontend', clientSecret: 'frontend-example-secret', tokenLifetimeMs: 600_000 },
    { clientId: 'gateway', clientSecret: 'gateway-example-secret' },
  ],
  exchangeTargets: ['orders-api'],
})
await using tokens = new TokenManager()

// The user's token: here the frontend's own, from the same manager (cached and renewed).
const user = clientCredentials({
  tokenUrl: server.tokenUrl,
  clientId: 'frontend',
  auth: clientSecretBasic('frontend-example-secret'),
})
const forOrders = tokenExchange({
  tokenUrl: server.tokenUrl,
  clientId: 'gateway',
  auth: clientSecretBasic('gateway-example-secret'),
  subjectToken: user, // or a function: (ctx) => request.headers.authorization.slice(7)
  subjectTokenType: TOKEN_TYPES.accessToken,
  audience: 'orders-api',
})

const [a, b] = await Promise.all([tokens.get(forOrders), tokens.get(forOrders)])
const subject = await tokens.get(user)
console.log(`same exchanged token: ${a === b}; token requests: ${server.stats().tokenRequests}`)
console.log(`issued_token_type: ${String(a.extra['issued_token_type'])}`)
console.log(`expires with its subject: ${a.expiresAt === subject.expiresAt}`)

// Another user's token is another exchange, cached under its own key.
const other = await user.fetchToken()
const forOther = tokenExchange({
  tokenUrl: server.tokenUrl,
  clientId: 'gateway',
  auth: clientSecretBasic('gateway-example-secret'),
  subjectToken: () => other.value,
  subjectTokenType: TOKEN_TYPES.accessToken,
  audience: 'orders-api',
})
const c = await tokens.get(forOther)
console.log(`another subject, another token: ${c.value !== a.value}`)

// An audience the server does not know: an RFC 8693 §2.2.2 error, typed.
const nowhere = tokenExchange({
  tokenUrl: server.tokenUrl,
  clientId: 'gateway',
  auth: clientSecretBasic('gateway-example-secret'),
  subjectToken: user,
  subjectTokenType: TOKEN_TYPES.accessToken,
  audience: 'billing-api',
})
try {
  await tokens.get(nowhere)
} catch (error) {
  if (isTokenkeeperError(error) && error.code === 'OAUTH_ERROR')
    console.log(`unknown audience: ${error.error}`)
}
await server.close()
