// Workload identity federation: the platform (Kubernetes, Entra workload identity, a CI system)
// writes a short-lived JWT to a file and rotates it; the client sends it as client_assertion.
// Here the "platform" is this script, signing with a key registered at the local token server.
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { TokenManager, clientAssertionFile, clientCredentials, isTokenkeeperError } from 'tokenkeeper'
import { startTokenServer } from 'tokenkeeper/testing'

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const server = await startTokenServer({
  clients: [{ clientId: 'workload', publicKey, authMethods: ['private_key_jwt'] }],
})
const dir = mkdtempSync(join(tmpdir(), 'workload-identity-'))
const tokenFile = join(dir, 'token') // e.g. process.env.AZURE_FEDERATED_TOKEN_FILE

/** What the platform does: writes a fresh JWT, replacing the file atomically. */
async function platformWrites(expiresIn: number): Promise<void> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = await new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('workload')
    .setSubject('workload')
    .setAudience(server.tokenUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .sign(privateKey)
  writeFileSync(`${tokenFile}.new`, jwt)
  renameSync(`${tokenFile}.new`, tokenFile)
}

const source = clientCredentials({
  tokenUrl: server.tokenUrl,
  clientId: 'workload',
  auth: clientAssertionFile(tokenFile),
})

await platformWrites(-60) // a stale file: the platform has not rotated it yet
try {
  await source.fetchToken()
} catch (error) {
  if (isTokenkeeperError(error)) console.log(`stale file: ${error.code} retryable: ${error.retryable}`)
}

await platformWrites(600) // rotated: used at once
await using tokens = new TokenManager()
const token = await tokens.get(source)
console.log(`got a ${token.type} token; token requests: ${server.stats().tokenRequests}`)
console.log('source key (names the file, not the assertion):', source.key.includes('workload'))
await server.close()
rmSync(dir, { recursive: true, force: true })
