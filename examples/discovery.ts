// Issuer discovery: the identity provider is known by its issuer URL; the token endpoint is read
// from its metadata (RFC 8414, then OpenID Connect Discovery), once per issuer per process.
// Here the identity provider is the local token server, with an issuer that has a path.
import {
  TokenManager,
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  isTokenkeeperError,
} from 'tokenkeeper'
import { startTokenServer } from 'tokenkeeper/testing'

await using server = await startTokenServer({
  clients: [{ clientId: 'svc-a', clientSecret: 'example-secret', allowedScopes: ['read', 'write'] }],
  discovery: {
    issuerPath: '/realms/acme',
    documents: ['openid-configuration'], // like many OpenID providers: no RFC 8414 document
    metadata: { token_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'] },
  },
})
console.log(`issuer: ${server.issuer}`)

await using tokens = new TokenManager()
// Five sources of one issuer, fifty callers: one discovery request, one token request per source.
const sources = ['read', 'write', 'read write', 'write read', 'read read'].map((scopes) =>
  clientCredentials({
    issuer: server.issuer,
    clientId: 'svc-a',
    auth: clientSecretBasic(process.env.CLIENT_SECRET ?? 'example-secret'),
    scopes: scopes.split(' '),
  }),
)
await Promise.all(Array.from({ length: 50 }, (_, i) => tokens.get(sources[i % sources.length]!)))
const { discoveryRequests, tokenRequests } = server.stats()
// Two discovery requests: RFC 8414's path (404 here), then OpenID Connect's.
console.log(`discovery requests: ${discoveryRequests}; token requests: ${tokenRequests}`)

// A source built with the discovered token URL has the same key, so it shares the tokens.
const byUrl = clientCredentials({
  tokenUrl: server.tokenUrl,
  clientId: 'svc-a',
  auth: clientSecretBasic(process.env.CLIENT_SECRET ?? 'example-secret'),
  scopes: ['read'],
})
await tokens.get(byUrl)
console.log(`same key: ${byUrl.key === sources[0]!.key}; token requests: ${server.stats().tokenRequests}`)

// An auth method the issuer does not list fails before any token request, naming both.
const post = clientCredentials({
  issuer: server.issuer,
  clientId: 'svc-a',
  auth: clientSecretPost(process.env.CLIENT_SECRET ?? 'example-secret'),
})
try {
  await tokens.get(post)
} catch (error) {
  if (isTokenkeeperError(error)) console.log(`${error.code}: ${error.message}`)
}
