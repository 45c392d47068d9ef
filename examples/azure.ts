// One TokenCredential for every Azure SDK client: they share the manager's cached token.
// With a real SDK: new BlobServiceClient(accountUrl, credential), new SecretClient(vaultUrl, credential), ...
import { TokenManager, clientCredentials, clientSecretBasic } from 'tokenkeeper'
import { tokenCredential } from 'tokenkeeper/azure'
import { startTokenServer } from 'tokenkeeper/testing'

const server = await startTokenServer({
  clients: [
    {
      clientId: 'svc-a',
      clientSecret: 'example-secret',
      allowedScopes: ['storage/.default', 'vault/.default'],
    },
  ],
})
const tokens = new TokenManager()
const credential = tokenCredential(tokens, (scopes) =>
  clientCredentials({
    tokenUrl: server.tokenUrl,
    clientId: 'svc-a',
    auth: clientSecretBasic('example-secret'),
    scopes,
  }),
)

// What 20 SDK clients' pipelines do: ask the credential for a token for their scope set.
const answers = await Promise.all(
  Array.from({ length: 20 }, (_, i) =>
    credential.getToken(i % 2 === 0 ? 'storage/.default' : ['vault/.default']),
  ),
)
const first = answers[0]!
console.log('distinct tokens:', new Set(answers.map((answer) => answer?.token)).size)
console.log('token requests:', server.stats().tokenRequests)
console.log(
  'refresh after',
  Math.round((first.refreshAfterTimestamp! - Date.now()) / 60_000),
  'min of',
  Math.round((first.expiresOnTimestamp - Date.now()) / 60_000),
)

await tokens.close()
await server.close()
