/**
 * Google service accounts: `googleServiceAccount` against `startGoogleTokenEndpoint` from
 * tokenkeeper/testing, which verifies assertions as Google documents (signature by the key named
 * by `kid`, `iss`, `aud`, exp - iat <= 3600, a scope). Bad key files are TypeErrors.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { format, inspect } from 'node:util'
import { createPrivateKey, generateKeyPairSync } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { googleServiceAccount, isOAuthError, type FetchLike } from '../../src/index.js'
import { startGoogleTokenEndpoint, type GoogleTokenEndpoint } from '../../src/testing/index.js'
import { errorsTableRows } from '../support/errors-table.js'

const CLOUD = 'https://www.googleapis.com/auth/cloud-platform'
const DRIVE = 'https://www.googleapis.com/auth/drive.readonly'
const dir = mkdtempSync(join(tmpdir(), 'tk-google-'))
let google: GoogleTokenEndpoint

const sent: string[] = []
const recordingFetch: FetchLike = (input, init) => {
  const assertion = new URLSearchParams(typeof init.body === 'string' ? init.body : '').get('assertion')
  if (assertion !== null) sent.push(assertion)
  return fetch(input, init)
}

/** Lines of the PEM body: any of them in an output is a leak of the private key. */
function keyParts(pem: string): string[] {
  return pem.split('\n').filter((line) => line.length > 20 && !line.startsWith('-----'))
}

beforeAll(async () => {
  google = await startGoogleTokenEndpoint()
})

afterAll(async () => {
  await google.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('googleServiceAccount', () => {
  it('signs the assertion as Google documents and gets a token from token_uri', async () => {
    const { key } = google.createServiceAccount({ email: 'reader@project.iam.gserviceaccount.com' })
    const source = googleServiceAccount({ credentials: key, scopes: [DRIVE, CLOUD], fetch: recordingFetch })
    sent.length = 0
    const token = await source.fetchToken()
    expect(token.type).toBe('Bearer')
    expect(token.lifetimeMs).toBe(3_599_000)
    const [assertion] = sent
    expect(decodeProtectedHeader(assertion!)).toEqual({ alg: 'RS256', typ: 'JWT', kid: key.private_key_id })
    const claims = decodeJwt(assertion!)
    expect(claims).toMatchObject({ iss: key.client_email, aud: key.token_uri, scope: `${CLOUD} ${DRIVE}` })
    expect(claims.exp! - claims.iat!).toBe(3600)
    expect(claims.sub).toBeUndefined()
    expect(google.requests.at(-1)).toEqual({
      serviceAccount: key.client_email,
      scopes: [CLOUD, DRIVE],
      subject: undefined,
      error: undefined,
      errorDescription: undefined,
    })
  })

  it('subject: domain-wide delegation puts the user in sub', async () => {
    const { key } = google.createServiceAccount()
    await googleServiceAccount({
      credentials: key,
      scopes: [DRIVE],
      subject: 'alice@example.com',
    }).fetchToken()
    expect(google.requests.at(-1)).toMatchObject({ subject: 'alice@example.com', error: undefined })
    const other = googleServiceAccount({ credentials: key, scopes: [DRIVE], subject: 'bob@example.com' })
    const alice = googleServiceAccount({ credentials: key, scopes: [DRIVE], subject: 'alice@example.com' })
    expect(other.key).not.toBe(alice.key)
  })

  it('credentials as a path to the JSON key file', async () => {
    const { key } = google.createServiceAccount()
    const path = join(dir, 'key.json')
    writeFileSync(path, JSON.stringify(key, null, 2))
    const source = googleServiceAccount({ credentials: path, scopes: [CLOUD] })
    await expect(source.fetchToken()).resolves.toMatchObject({ type: 'Bearer' })
    expect(source.key).toBe(googleServiceAccount({ credentials: key, scopes: [CLOUD] }).key)
  })

  it('a disabled key is refused by the endpoint as invalid_grant', async () => {
    const account = google.createServiceAccount()
    account.disable()
    const error = await googleServiceAccount({ credentials: account.key, scopes: [CLOUD] })
      .fetchToken()
      .catch((caught: unknown) => caught)
    expect(isOAuthError(error, 'invalid_grant')).toBe(true)
    expect(google.requests.at(-1)?.errorDescription).toBe('Invalid JWT Signature.')
  })

  it('the private key never reaches the key, inspect, JSON or an error', async () => {
    const account = google.createServiceAccount()
    const forbidden = keyParts(account.key.private_key)
    expect(forbidden.length).toBeGreaterThan(5)
    const source = googleServiceAccount({ credentials: account.key, scopes: [CLOUD] })
    account.disable()
    const error = await source.fetchToken().catch((caught: unknown) => caught)
    const shown = [
      source.key,
      inspect(source, { showHidden: true, depth: Infinity }),
      JSON.stringify(source),
      format('%o', source),
      inspect(error, { showHidden: true, depth: Infinity }),
      JSON.stringify(error),
    ].join('\n')
    for (const part of forbidden) expect(shown).not.toContain(part)
    expect(JSON.parse(JSON.stringify(source))).toMatchObject({
      kind: 'googleServiceAccount',
      serviceAccount: account.key.client_email,
    })
  })
})

describe('startGoogleTokenEndpoint verifies assertions as Google documents', () => {
  async function post(assertion: string, grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
    const response = await fetch(google.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: grantType, assertion }),
    })
    return { status: response.status, json: (await response.json()) as Record<string, unknown> }
  }

  function sign(
    key: { private_key: string; private_key_id: string; client_email: string; token_uri: string },
    claims: Record<string, unknown>,
    lifetime = 3600,
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    return new SignJWT({ scope: CLOUD, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: key.private_key_id })
      .setIssuer(typeof claims['iss'] === 'string' ? claims['iss'] : key.client_email)
      .setAudience(typeof claims['aud'] === 'string' ? claims['aud'] : key.token_uri)
      .setIssuedAt(now)
      .setExpirationTime(now + lifetime)
      .sign(createPrivateKey(key.private_key))
  }

  it('accepts a correct assertion, refuses each wrong claim', async () => {
    const { key } = google.createServiceAccount()
    const other = google.createServiceAccount().key
    expect((await post(await sign(key, {}))).status).toBe(200)
    const refusals: [string, string, string][] = []
    const cases: [string, Promise<string>][] = [
      ['lifetime over an hour', sign(key, {}, 3601)],
      ['wrong aud', sign(key, { aud: 'https://oauth2.googleapis.com/token' })],
      ['wrong iss', sign(key, { iss: other.client_email })],
      ['signed by another account with this kid', sign({ ...other, private_key_id: key.private_key_id }, {})],
      ['expired', sign(key, {}, -60)],
      ['no scope', sign(key, { scope: '' })],
    ]
    for (const [name, assertion] of cases) {
      const { status, json } = await post(await assertion)
      refusals.push([name, String(status), String(json['error'])])
    }
    expect(refusals).toEqual([
      ['lifetime over an hour', '400', 'invalid_grant'],
      ['wrong aud', '400', 'invalid_grant'],
      ['wrong iss', '400', 'invalid_grant'],
      ['signed by another account with this kid', '400', 'invalid_grant'],
      ['expired', '400', 'invalid_grant'],
      ['no scope', '400', 'invalid_scope'],
    ])
    expect((await post(await sign(key, {}), 'client_credentials')).json['error']).toBe(
      'unsupported_grant_type',
    )
  })
})

/** The rows of docs/ERRORS.md "Bad Google key files", in order. */
const BAD_KEY_FILES: readonly {
  readonly name: string
  readonly content: unknown
  readonly message: RegExp
  /** Makes the path itself (a FIFO, a device) instead of writing `content` to it. */
  readonly path?: (path: string) => string
}[] = [
  {
    name: 'an authorized_user file (gcloud auth application-default login)',
    content: {
      type: 'authorized_user',
      client_id: 'x',
      client_secret: 'user-secret-0123',
      refresh_token: 'rt-0123456',
    },
    message:
      /expected a "service_account" key \(.*\), got a key of type "authorized_user" \(a user credential/,
  },
  {
    name: 'an external_account file (workload identity federation configuration)',
    content: {
      type: 'external_account',
      audience: '//iam.googleapis.com/x',
      credential_source: { file: '/t' },
    },
    message: /got a key of type "external_account" \(a workload identity federation configuration\)/,
  },
  {
    name: 'a file without type',
    content: { client_email: 'a@b', private_key: 'x', private_key_id: 'y' },
    message: /got a key without "type"/,
  },
  {
    name: 'a service_account file without private_key and private_key_id',
    content: { type: 'service_account', client_email: 'a@b' },
    message: /lacks private_key, private_key_id/,
  },
  { name: 'a file that is not JSON', content: 'not json {', message: /is not JSON/ },
  { name: 'a path that does not exist', content: undefined, message: /could not be read \(ENOENT\)/ },
  {
    name: 'a FIFO (nothing waits for a writer)',
    content: undefined,
    message: /could not be read \(not a regular file\)/,
    path: (path) => {
      execFileSync('mkfifo', [path])
      return path
    },
  },
  {
    name: 'a device that never ends (/dev/zero)',
    content: undefined,
    message: /could not be read \(not a regular file\)/,
    path: () => '/dev/zero',
  },
  {
    name: 'a directory',
    content: undefined,
    message: /could not be read \(EISDIR\)/,
    path: (path) => {
      mkdirSync(path)
      return path
    },
  },
  {
    name: 'a file over 64 KiB',
    content: JSON.stringify({ type: 'service_account', padding: 'x'.repeat(64 * 1024) }),
    message: /could not be read \(over 65536 bytes\)/,
  },
]

describe('bad Google key files (docs/ERRORS.md)', () => {
  it.each(BAD_KEY_FILES.map((row, index) => [index + 1, row] as const))('row %i', (index, row) => {
    const path = row.path?.(join(dir, `bad-${index}.json`)) ?? join(dir, `bad-${index}.json`)
    if (row.content !== undefined) {
      writeFileSync(path, typeof row.content === 'string' ? row.content : JSON.stringify(row.content))
    }
    let caught: unknown
    try {
      googleServiceAccount({ credentials: path, scopes: [CLOUD] })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(TypeError)
    expect((caught as Error).message).toMatch(row.message)
    expect((caught as Error).message).toContain(path)
    expect((caught as Error).message).not.toMatch(/user-secret-0123|rt-0123456/)
    // The parsed object gives the same TypeError.
    if (typeof row.content === 'object') {
      expect(() => googleServiceAccount({ credentials: row.content as never, scopes: [CLOUD] })).toThrow(
        TypeError,
      )
    }
  })

  it('no scopes, a broken private key: TypeErrors that do not show the key', () => {
    const { key } = google.createServiceAccount()
    expect(() => googleServiceAccount({ credentials: key, scopes: [] })).toThrow(/at least one scope/)
    const broken = { ...key, private_key: key.private_key.replace('MII', 'XII') }
    let caught: unknown
    try {
      googleServiceAccount({ credentials: broken, scopes: [CLOUD] })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(TypeError)
    expect((caught as Error).message).toMatch(/^googleServiceAccount: the private key could not be read/)
    for (const part of keyParts(broken.private_key)) expect(inspect(caught)).not.toContain(part)
  })

  it('a private_key that is encrypted, a public key, an EC key or not PEM: TypeErrors that do not show it', () => {
    const { key } = google.createServiceAccount()
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const cases: [string, RegExp][] = [
      [
        rsa.privateKey
          .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' })
          .toString(),
        /the private key could not be read/,
      ],
      [rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(), /the private key could not be read/],
      [ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), /cannot sign RS256/],
      ['not a key at all, but long enough to be one', /the private key could not be read/],
    ]
    for (const [privateKey, message] of cases) {
      let caught: unknown
      try {
        googleServiceAccount({ credentials: { ...key, private_key: privateKey }, scopes: [CLOUD] })
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(TypeError)
      expect((caught as Error).message).toMatch(message)
      for (const part of keyParts(privateKey)) expect(format(caught)).not.toContain(part)
    }
  })

  it('docs/ERRORS.md lists the same rows', () => {
    const rows = errorsTableRows('google-key-files')
    expect(rows.map((cells) => cells.slice(0, 2))).toEqual(
      BAD_KEY_FILES.map((row, index) => [String(index + 1), row.name]),
    )
  })
})
