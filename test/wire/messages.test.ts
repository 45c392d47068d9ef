import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientCredentials, clientSecretBasic, isOAuthError } from '../../src/index.js'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'

const SECRET = 'SECRET-messages-Hy7q'
let server: TokenServer

beforeAll(async () => {
  server = await startTokenServer({ clients: [{ clientId: 'svc', clientSecret: SECRET }] })
})
afterAll(async () => {
  await server.close()
})

const source = (tokenUrl: string) =>
  clientCredentials({ tokenUrl, clientId: 'svc', auth: clientSecretBasic(SECRET) })

describe('messages that say what to check', () => {
  it('a typo in the token URL path: UNEXPECTED_STATUS 404, not an OAuth refusal, and the message says to check the URL', async () => {
    const error = await source(server.tokenUrl.replace(/\/token$/, '/tokn'))
      .fetchToken()
      .catch((caught: unknown) => caught)
    expect(isOAuthError(error)).toBe(false)
    expect(error).toMatchObject({ code: 'UNEXPECTED_STATUS', status: 404, retryable: false })
    expect((error as Error).message).toMatch(/answered 404; is the token URL right\?/)
  })

  it('a transport failure without a system error code says why (here: a port fetch refuses to use)', async () => {
    // Port 1 is on fetch's list of bad ports: the request is refused locally, nothing is sent.
    const error = await source('http://127.0.0.1:1/token')
      .fetchToken()
      .catch((caught: unknown) => caught)
    expect(error).toMatchObject({ code: 'NETWORK_ERROR', retryable: true })
    expect((error as Error).message).toMatch(/network error \(.*bad port.*\)/i)
    expect((error as Error).message).not.toContain(SECRET)
  })
})
