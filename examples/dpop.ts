// DPoP (RFC 9449): tokens bound to a key this process holds, against the local token server,
// which demands nonces and checks every proof (at its token endpoint and its resource).
import { TokenManager, clientCredentials, clientSecretBasic, dpopKey, generateDpopKey } from 'tokenkeeper'
import { startTokenServer } from 'tokenkeeper/testing'

const server = await startTokenServer({
  clients: [{ clientId: 'svc-dpop', clientSecret: 'example-secret-value', allowedScopes: ['reports'] }],
  dpop: { requireNonce: true },
})

// One key per process; generate it at start-up and keep it in memory (never in a shared store).
const key = dpopKey(await generateDpopKey('ES256'))
await using tokens = new TokenManager()
const source = clientCredentials({
  tokenUrl: server.tokenUrl,
  clientId: 'svc-dpop',
  auth: clientSecretBasic('example-secret-value'),
  scopes: ['reports'],
  dpop: key,
  requireDpopBinding: true,
})

const token = await tokens.get(source)
console.log(
  `got a ${token.type} token bound to ${token.binding?.jkt === key.thumbprint ? 'this key' : 'another key'}`,
)
console.log(
  `the server bound it to the same thumbprint: ${server.introspect(token.value)?.jkt === key.thumbprint}`,
)

// Every API request carries a fresh proof; a nonce the resource demands costs one retry.
const api = tokens.fetch(source)
const first = await api(server.resourceUrl)
server.rotateDpopNonce()
const second = await api(server.resourceUrl, { method: 'POST', body: '{}' })
console.log(`API status: ${first.status} ${second.status}`)

// For any other HTTP client: the headers for one method and URL (a proof is for one request).
const headers = await tokens.headers(source, { method: 'GET', url: server.resourceUrl })
console.log(`headers: ${Object.keys(headers).join(', ')}`)
console.log(
  `token requests: ${server.stats().tokensIssued} issued, ${server.stats().dpopRejected} nonce demands`,
)
await server.close()
