/**
 * Assertions issued by someone else (workload identity federation) as the JWT-bearer grant
 * (`jwtBearer({ assertion })`, RFC 7523 §2.1), and the bad assertion inputs of docs/ERRORS.md
 * (`clientAssertion`, `clientAssertionFile`, `jwtBearer`), against the project's token server,
 * which verifies every assertion (signature, iss/sub, aud, exp, jti replay). The files are
 * rotated the way platforms rotate them: rewritten in place, or replaced by a rename.
 */
import { randomUUID } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  clientAssertion,
  clientAssertionFile,
  clientCredentials,
  jwtBearer,
  type FetchLike,
} from '../../src/index.js'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'
import { rsaKeyPair } from './keys.js'
import { errorsTableRows } from '../support/errors-table.js'
import { failure } from '../support/failure.js'

const CLIENT = 'workload-a'
const ROBOT = 'system:serviceaccount:ns:robot'
const key = rsaKeyPair('a')
const dir = mkdtempSync(join(tmpdir(), 'tk-jwt-bearer-assertion-'))
let server: TokenServer

/** What the client sent as `client_assertion` / `assertion`, in order. */
const sent: string[] = []
const recordingFetch: FetchLike = (input, init) => {
  const body = new URLSearchParams(typeof init.body === 'string' ? init.body : '')
  const value = body.get('client_assertion') ?? body.get('assertion')
  if (value !== null) sent.push(value)
  return fetch(input, init)
}

/** A platform-issued JWT for `iss`=`sub`=`subject`, signed with the registered key. */
function issue(subject: string, options: { expiresIn?: number; audience?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'RS256', kid: 'platform-1' })
    .setIssuer(subject)
    .setSubject(subject)
    .setAudience(options.audience ?? server.tokenUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 300))
    .sign(key.privateKey)
}

beforeAll(async () => {
  server = await startTokenServer({
    clients: [{ clientId: CLIENT, publicKey: key.publicKey, authMethods: ['private_key_jwt'] }],
    jwtBearerIssuers: [{ issuer: ROBOT, publicKey: key.publicKey }],
  })
})

afterAll(async () => {
  await server.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('jwtBearer with an assertion from elsewhere (RFC 7523 §2.1)', () => {
  it('from a file, rotated', async () => {
    const path = join(dir, 'grant')
    const source = jwtBearer({ tokenUrl: server.tokenUrl, assertion: { file: path }, fetch: recordingFetch })
    sent.length = 0
    const first = await issue(ROBOT)
    writeFileSync(path, first)
    await source.fetchToken()
    const second = await issue(ROBOT)
    writeFileSync(path, second)
    await source.fetchToken()
    expect(sent).toEqual([first, second])
    expect(source.key).toContain('jwt-bearer|')
    expect(source.key).not.toContain(first.split('.')[1])
  })

  it('from a Kubernetes projected volume: the ..data symlink swapped, a BOM and CR LF around the JWT', async () => {
    // The kubelet's layout: token -> ..data/token, ..data -> ..<timestamp>; a rotation writes a
    // new timestamped directory and renames a new ..data link over the old one.
    const volume = join(dir, 'projected')
    mkdirSync(volume)
    const project = (generation: string, text: string) => {
      mkdirSync(join(volume, generation))
      writeFileSync(join(volume, generation, 'token'), text)
      symlinkSync(generation, join(volume, '..data_tmp'))
      renameSync(join(volume, '..data_tmp'), join(volume, '..data'))
    }
    const first = await issue(ROBOT)
    project('..2026_01', first)
    symlinkSync(join('..data', 'token'), join(volume, 'token'))
    const source = jwtBearer({
      tokenUrl: server.tokenUrl,
      assertion: { file: join(volume, 'token') },
      fetch: recordingFetch,
    })
    sent.length = 0
    await source.fetchToken()
    const second = await issue(ROBOT)
    project('..2026_02', `\uFEFF${second}\r\n`)
    await source.fetchToken()
    expect(sent).toEqual([first, second])
  })

  it('from a provider; an expired one fails before any request', async () => {
    let expiresIn = 300
    const source = jwtBearer({
      tokenUrl: server.tokenUrl,
      assertion: () => issue(ROBOT, { expiresIn }),
      assertionId: 'robot',
    })
    await expect(source.fetchToken()).resolves.toMatchObject({ type: 'Bearer' })
    expiresIn = -5
    const before = server.stats().tokenRequests
    expect((await failure(source.fetchToken())).code).toBe('ASSERTION_EXPIRED')
    expect(server.stats().tokenRequests).toBe(before)
  })

  it('rejects options that only make sense for an assertion it signs', () => {
    expect(() => jwtBearer({ tokenUrl: server.tokenUrl, assertion: { file: '/x' }, key: key.pem })).toThrow(
      /key is for assertions jwtBearer signs/,
    )
    expect(() => jwtBearer({ tokenUrl: server.tokenUrl, assertion: () => 'x' })).toThrow(
      /assertionId must name/,
    )
  })
})

/** The rows of docs/ERRORS.md "Bad assertion inputs", in order. */
const BAD_INPUTS: readonly {
  readonly name: string
  readonly code: 'ASSERTION_EXPIRED' | 'ASSERTION_UNAVAILABLE'
  /** Prepares the input; returns the source and what the message must name. */
  readonly make: (path: string) => Promise<{ source: { fetchToken(): Promise<unknown> }; where: string }>
}[] = [
  {
    name: 'clientAssertionFile: the file holds a JWT whose exp has passed',
    code: 'ASSERTION_EXPIRED',
    make: async (path) => {
      writeFileSync(path, await issue(CLIENT, { expiresIn: -30 }))
      return { source: withAuth(clientAssertionFile(path)), where: path }
    },
  },
  {
    name: 'clientAssertionFile: the file does not exist',
    code: 'ASSERTION_UNAVAILABLE',
    make: (path) => Promise.resolve({ source: withAuth(clientAssertionFile(path)), where: path }),
  },
  {
    name: 'clientAssertionFile: the path is a directory',
    code: 'ASSERTION_UNAVAILABLE',
    make: (path) => {
      mkdirSync(path)
      return Promise.resolve({ source: withAuth(clientAssertionFile(path)), where: path })
    },
  },
  {
    name: 'clientAssertionFile: the file is empty (or only whitespace)',
    code: 'ASSERTION_UNAVAILABLE',
    make: (path) => {
      writeFileSync(path, ' \n\t')
      return Promise.resolve({ source: withAuth(clientAssertionFile(path)), where: path })
    },
  },
  {
    name: 'clientAssertion: the provider returns an expired JWT',
    code: 'ASSERTION_EXPIRED',
    make: () =>
      Promise.resolve({
        source: withAuth(clientAssertion(() => issue(CLIENT, { expiresIn: -1 }), { id: 'row-5' })),
        where: 'provider "row-5"',
      }),
  },
  {
    name: 'clientAssertion: the provider throws',
    code: 'ASSERTION_UNAVAILABLE',
    make: () =>
      Promise.resolve({
        source: withAuth(
          clientAssertion(
            () => {
              throw new Error('no token')
            },
            { id: 'row-6' },
          ),
        ),
        where: 'provider "row-6"',
      }),
  },
  {
    name: 'clientAssertion: the provider returns no string',
    code: 'ASSERTION_UNAVAILABLE',
    make: () =>
      Promise.resolve({
        source: withAuth(clientAssertion((() => null) as never, { id: 'row-7' })),
        where: 'provider "row-7"',
      }),
  },
  {
    name: 'jwtBearer assertion file: the file holds a JWT whose exp has passed',
    code: 'ASSERTION_EXPIRED',
    make: async (path) => {
      writeFileSync(path, await issue(ROBOT, { expiresIn: -30 }))
      return { source: jwtBearer({ tokenUrl: server.tokenUrl, assertion: { file: path } }), where: path }
    },
  },
  {
    name: 'jwtBearer assertion file: the file is empty',
    code: 'ASSERTION_UNAVAILABLE',
    make: (path) => {
      writeFileSync(path, '')
      return Promise.resolve({
        source: jwtBearer({ tokenUrl: server.tokenUrl, assertion: { file: path } }),
        where: path,
      })
    },
  },
  {
    name: 'clientAssertionFile: the path is a FIFO (nothing waits for a writer)',
    code: 'ASSERTION_UNAVAILABLE',
    make: (path) => {
      execFileSync('mkfifo', [path])
      return Promise.resolve({
        source: withAuth(clientAssertionFile(path)),
        where: `${path} cannot be read (not a regular file)`,
      })
    },
  },
  {
    name: 'clientAssertionFile: the path is a device that never ends (/dev/zero)',
    code: 'ASSERTION_UNAVAILABLE',
    make: () =>
      Promise.resolve({
        source: withAuth(clientAssertionFile('/dev/zero')),
        where: '/dev/zero cannot be read (not a regular file)',
      }),
  },
  {
    name: 'clientAssertionFile: the file is over 64 KiB',
    code: 'ASSERTION_UNAVAILABLE',
    make: (path) => {
      writeFileSync(path, 'a'.repeat(64 * 1024 + 1))
      return Promise.resolve({
        source: withAuth(clientAssertionFile(path)),
        where: `${path} cannot be read (over 65536 bytes)`,
      })
    },
  },
  {
    name: 'jwtBearer assertion file: the path is a FIFO',
    code: 'ASSERTION_UNAVAILABLE',
    make: (path) => {
      execFileSync('mkfifo', [path])
      return Promise.resolve({
        source: jwtBearer({ tokenUrl: server.tokenUrl, assertion: { file: path } }),
        where: `${path} cannot be read (not a regular file)`,
      })
    },
  },
]

function withAuth(auth: ReturnType<typeof clientAssertionFile>): { fetchToken(): Promise<unknown> } {
  return clientCredentials({ tokenUrl: server.tokenUrl, clientId: CLIENT, auth })
}

describe('bad assertion inputs (docs/ERRORS.md)', () => {
  it.each(BAD_INPUTS.map((row, index) => [index + 1, row] as const))('row %i', async (index, row) => {
    const path = join(dir, `row-${index}`)
    const { source, where } = await row.make(path)
    const before = server.stats().tokenRequests
    const error = await failure(source.fetchToken())
    expect(error.code).toBe(row.code)
    expect(error.retryable).toBe(true)
    expect(error.message).toContain(where)
    expect(server.stats().tokenRequests).toBe(before)
  })

  it('docs/ERRORS.md lists the same rows', () => {
    const rows = errorsTableRows('assertion-inputs')
    expect(rows).toEqual(BAD_INPUTS.map((row, index) => [String(index + 1), row.name, row.code, 'yes']))
  })
})
