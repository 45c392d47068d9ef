// Starts a local token server, then gets tokens the way a service would.
import { TokenManager, clientCredentials, clientSecretBasic } from 'tokenkeeper'
import { startTokenServer } from 'tokenkeeper/testing'

const server = await startTokenServer({
  clients: [{ clientId: 'svc-a', clientSecret: 'example-secret', allowedScopes: ['read', 'write'] }],
  tokenLifetimeMs: 60_000,
})

const tokens = new TokenManager()
const source = clientCredentials({
  tokenUrl: server.tokenUrl,
  clientId: 'svc-a',
  auth: clientSecretBasic('example-secret'),
  scopes: ['read'],
})

// 1,000 concurrent callers, one token request.
const results = await Promise.all(Array.from({ length: 1_000 }, () => tokens.get(source)))
console.log('distinct tokens:', new Set(results.map((token) => token.value)).size)
console.log('token requests:', server.stats().tokenRequests)
console.log('token:', results[0]) // printed redacted

// A fetch with Authorization handled, against the server's protected resource.
const api = tokens.fetch(source)
const response = await api(server.resourceUrl)
console.log('API status:', response.status)
console.log(tokens.stats())

await tokens.close()
await server.close()
