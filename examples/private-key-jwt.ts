// private_key_jwt client authentication (RFC 7523 §2.2) against the local token server.
import { generateKeyPairSync } from 'node:crypto'
import { TokenManager, clientCredentials, privateKeyJwt } from 'tokenkeeper'
import { startTokenServer } from 'tokenkeeper/testing'

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const server = await startTokenServer({
  clients: [{ clientId: 'svc-jwt', publicKey, authMethods: ['private_key_jwt'], allowedScopes: ['reports'] }],
})

await using tokens = new TokenManager()
const source = clientCredentials({
  tokenUrl: server.tokenUrl,
  clientId: 'svc-jwt',
  auth: privateKeyJwt({ key: privateKey, kid: 'key-2026-11', alg: 'ES256' }),
  scopes: ['reports'],
})

const token = await tokens.get(source)
console.log(
  `got a ${token.type} token for ${token.scopes.join(' ')}, expires ${new Date(token.expiresAt).toISOString()}`,
)
console.log('source key (no secret in it):', source.key)
await server.close()
