// Tokens for every undici-based client without changing call sites: one global dispatcher.
import { TokenManager, clientCredentials, clientSecretBasic } from 'tokenkeeper'
import { startTokenServer } from 'tokenkeeper/testing'
import { tokenInterceptor } from 'tokenkeeper/undici'
import { Agent, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici'

const server = await startTokenServer({ clients: [{ clientId: 'svc-a', clientSecret: 'example-secret' }] })
const tokens = new TokenManager()
const source = clientCredentials({
  tokenUrl: server.tokenUrl,
  clientId: 'svc-a',
  auth: clientSecretBasic('example-secret'),
})

// Requests under server.resourceUrl get a token; everything else is sent as it is.
const previous = getGlobalDispatcher()
setGlobalDispatcher(new Agent().compose(tokenInterceptor(tokens, { [server.resourceUrl]: source })))

const viaRequest = await request(server.resourceUrl)
await viaRequest.body.dump()
const viaFetch = await fetch(server.resourceUrl) // Node's global fetch (checked on Node 20)
await viaFetch.body?.cancel()
console.log('undici request:', viaRequest.statusCode, 'global fetch:', viaFetch.status)

// A revoked token: 50 concurrent 401s, one renewal, every request retried once.
server.revoke((await tokens.get(source)).value)
const statuses = await Promise.all(
  Array.from({ length: 50 }, async () => {
    const res = await request(server.resourceUrl)
    await res.body.dump()
    return res.statusCode
  }),
)
console.log('after revocation:', statuses.filter((status) => status === 200).length, 'of 50 ok')
console.log('token requests:', server.stats().tokenRequests)

setGlobalDispatcher(previous)
await tokens.close()
await server.close()
