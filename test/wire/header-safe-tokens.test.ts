/**
 * A token is something that can go into an `Authorization` header. Values that cannot (non-ASCII
 * whose latin1 bytes are CR LF, C1 controls, spaces) are a typed bad-response error when they
 * arrive, whatever the way in (a token endpoint, a hand-written source, a store), and never an
 * untyped `TypeError` from `fetch` on every call for the token's whole life.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AccessToken,
  clientCredentials,
  clientSecretBasic,
  isTokenkeeperError,
  memoryStore,
  tokenSource,
  TokenManager,
} from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import { serializeToken } from '../../src/token/serialize.js'
import { startLocalServer, type LocalServer } from './local-server.js'

const BAD_VALUES: [string, string][] = [
  ['U+010D U+010A (latin1 bytes CR LF)', 'abc\u010d\u010adef'],
  ['a euro sign', 'abc€def'],
  ['U+0085', 'abc\u0085def'],
  ['U+009B', 'abc\u009bdef'],
  ['a space', 'abc def'],
  ['CR LF', 'abc\r\nX-Injected: 1'],
  ['a tab', 'abc\tdef'],
  ['empty', ''],
]

const GOOD_VALUES = [
  'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl',
  'a-b_c~d+e/f==',
  'gho_16C7e42F292c6912E7710c838347Ae178B4a',
  '!#$%&\'*+-.^_`|~:;<>?@[]{}"()x',
]

let server: LocalServer
let answer: unknown

beforeAll(async () => {
  server = await startLocalServer()
  server.route('/token', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(answer))
  })
  server.route('/api', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(req.headers['authorization'] ?? 'none')
  })
})

afterAll(async () => {
  await server.close()
})

function source() {
  return clientCredentials({
    tokenUrl: `${server.origin}/token`,
    clientId: 'svc',
    auth: clientSecretBasic('s3cret'),
  })
}

describe('token values that cannot go into a header', () => {
  it.each(BAD_VALUES)(
    'from a token endpoint: %s is INVALID_ACCESS_TOKEN, and the next good token is used',
    async (_name, value) => {
      const clock = createTestClock(Date.now())
      const tokens = new TokenManager({ clock })
      const api = tokens.fetch(source())
      answer = { access_token: value, token_type: 'Bearer', expires_in: 3600 }
      const caught = await api(`${server.origin}/api`).catch((error: unknown) => error)
      expect(isTokenkeeperError(caught)).toBe(true)
      expect(caught).toMatchObject({ code: 'INVALID_ACCESS_TOKEN', retryable: false })
      if (value !== '') expect((caught as Error).message).not.toContain(value)
      // Nothing was cached: once the server answers a good token, calls go through.
      answer = { access_token: 'good-token', token_type: 'Bearer', expires_in: 3600 }
      clock.advance(3_600_000)
      const response = await api(`${server.origin}/api`)
      await expect(response.text()).resolves.toBe('Bearer good-token')
      await tokens.close()
    },
  )

  it.each(BAD_VALUES)('from a hand-written source: %s is INVALID_ACCESS_TOKEN', async (_name, value) => {
    const tokens = new TokenManager()
    const caught = await tokens
      .get(tokenSource('vault', () => ({ access_token: value, expires_in: 60 })))
      .catch((error: unknown) => error)
    expect(caught).toMatchObject({ code: 'INVALID_ACCESS_TOKEN' })
    await tokens.close()
  })

  it.each(BAD_VALUES)('built by hand: %s is a TypeError that does not quote the value', (_name, value) => {
    const build = () => new AccessToken({ value, type: 'Bearer', scopes: [], issuedAt: 0, expiresAt: 1000 })
    expect(build).toThrow(TypeError)
    expect(build).toThrow(/visible ASCII/)
    if (value !== '') expect(build).not.toThrow(value)
  })

  it('a token_type that is not an HTTP token is refused at construction', () => {
    for (const type of ['Bearer x', 'Bear\u010d', '', 'a,b']) {
      expect(() => new AccessToken({ value: 'v', type, scopes: [], issuedAt: 0, expiresAt: 1 })).toThrow(
        TypeError,
      )
    }
  })

  it('a forged store record with such a value is a miss, not a token', async () => {
    const store = memoryStore()
    const good = new AccessToken({
      value: 'good-token',
      type: 'Bearer',
      scopes: [],
      issuedAt: Date.now(),
      expiresAt: Date.now() + 600_000,
    })
    const forged = serializeToken(good).replace('good-token', 'bad\u010d\u010atoken')
    const theSource = source()
    await store.set(
      theSource.key,
      { tokenId: 'forged', expiresAt: good.expiresAt, payload: forged },
      { ttlMs: 600_000 },
    )
    answer = { access_token: 'from-the-server', token_type: 'Bearer', expires_in: 3600 }
    const tokens = new TokenManager({ store })
    const token = await tokens.get(theSource)
    expect(token.value).toBe('from-the-server')
    await tokens.close()
  })
})

describe('token values real servers send', () => {
  it.each(GOOD_VALUES)('%s is accepted and sent as it is', async (value) => {
    answer = { access_token: value, token_type: 'Bearer', expires_in: 3600 }
    const tokens = new TokenManager()
    const response = await tokens.fetch(source())(`${server.origin}/api`)
    await expect(response.text()).resolves.toBe(`Bearer ${value}`)
    await tokens.close()
  })
})
