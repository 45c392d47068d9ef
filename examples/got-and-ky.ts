// got through its hooks, ky through its fetch option: both renew once for many concurrent 401s.
import got from 'got'
import ky from 'ky'
import { TokenManager, clientCredentials, clientSecretBasic } from 'tokenkeeper'
import { gotTokens } from 'tokenkeeper/got'
import { startTokenServer } from 'tokenkeeper/testing'

const server = await startTokenServer({ clients: [{ clientId: 'svc-a', clientSecret: 'example-secret' }] })
const tokens = new TokenManager()
const source = clientCredentials({
  tokenUrl: server.tokenUrl,
  clientId: 'svc-a',
  auth: clientSecretBasic('example-secret'),
})

const viaGot = got.extend(gotTokens(tokens, { [server.resourceUrl]: source }))
const viaKy = ky.create({ fetch: tokens.fetch(source) })

// The first call gets a token; then it is revoked, and 50 concurrent calls each meet a 401.
await viaGot.get(server.resourceUrl)
server.revoke((await tokens.get(source)).value)
const gotAnswers = await Promise.all(Array.from({ length: 50 }, () => viaGot.get(server.resourceUrl)))
console.log('got:', gotAnswers.filter((res) => res.statusCode === 200).length, 'of 50 ok')

server.revoke((await tokens.get(source)).value)
const kyAnswers = await Promise.all(Array.from({ length: 50 }, () => viaKy.get(server.resourceUrl)))
console.log('ky:', kyAnswers.filter((res) => res.status === 200).length, 'of 50 ok')
console.log('token requests:', server.stats().tokenRequests)

await tokens.close()
await server.close()
