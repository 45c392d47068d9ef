// A Google service account, tested against tokenkeeper/testing's Google-shaped token endpoint,
// which verifies each assertion as Google does. In production, pass the key file's path:
// googleServiceAccount({ credentials: process.env.GOOGLE_APPLICATION_CREDENTIALS!, scopes }).
import { TokenManager, googleServiceAccount } from 'tokenkeeper'
import { startGoogleTokenEndpoint } from 'tokenkeeper/testing'

const google = await startGoogleTokenEndpoint()
const { key } = google.createServiceAccount({ email: 'reports@my-project.iam.gserviceaccount.com' })

await using tokens = new TokenManager()
const source = googleServiceAccount({
  credentials: key,
  scopes: ['https://www.googleapis.com/auth/cloud-platform'],
})
const token = await tokens.get(source)
const [request] = google.requests
console.log(`got a ${token.type} token for ${request?.serviceAccount ?? '?'} (${request?.scopes.join(' ')})`)

try {
  googleServiceAccount({ credentials: { type: 'authorized_user' } as never, scopes: ['x'] })
} catch (error) {
  console.log((error as Error).message)
}
await google.close()
