import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  existsSync,
  mkdirSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type * as Testing from '../../src/testing/index.js'
import type { TokenServer } from '../../src/testing/index.js'
import { cliBuilt, runCli, sandbox } from './helpers.js'

const SECRET = 'cli-test-secret-Zq8v1Lr4'
const WRONG_SECRET = 'not-the-secret-X9d2Kp7w'

let server: TokenServer
let box: ReturnType<typeof sandbox>

const requests = (): number => server.stats().tokenRequests

function flags(...extra: string[]): string[] {
  return [
    'token',
    '--token-url',
    server.tokenUrl,
    '--client-id',
    'cli-test',
    '--client-secret-env',
    'CLI_SECRET',
    ...extra,
  ]
}

function env(more: Record<string, string> = {}): Record<string, string> {
  return { ...box.env, CLI_SECRET: SECRET, ...more }
}

function mode(path: string): number {
  return statSync(path).mode & 0o777
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 1))
    })
  })
}

describe.skipIf(!cliBuilt)('tokenkeeper token', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    // The built package, as a user's test would import tokenkeeper/testing.
    const testing = (await import(
      new URL('../../dist/testing/index.js', import.meta.url).href
    )) as typeof Testing
    server = await testing.startTokenServer({
      clients: [{ clientId: 'cli-test', clientSecret: SECRET, allowedScopes: ['read', 'write'] }],
      tokenLifetimeMs: 600_000,
    })
  })
  afterAll(async () => {
    await server.close()
  })
  beforeEach(() => {
    box = sandbox()
    return () => box.cleanup()
  })

  it('prints exactly the token and a newline, and reuses it from the cache next time', async () => {
    const before = requests()
    const first = await runCli(flags('--scope', 'read'), env())
    expect(first.stderr).toBe('')
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^\S+\n$/)
    const token = first.stdout.trim()
    expect(server.introspect(token)).toMatchObject({ active: true, clientId: 'cli-test', scopes: ['read'] })
    expect(requests()).toBe(before + 1)

    const second = await runCli(flags('--scope', 'read'), env())
    expect(second).toEqual({ code: 0, stdout: `${token}\n`, stderr: '' })
    expect(requests()).toBe(before + 1)

    const otherScopes = await runCli(flags('--scope', 'read write'), env())
    expect(otherScopes.stdout.trim()).not.toBe(token)
    expect(requests()).toBe(before + 2)
  })

  it('20 parallel invocations make exactly one token request', async () => {
    const before = requests()
    const results = await Promise.all(
      Array.from({ length: 20 }, () => runCli(flags('--scope', 'write'), env())),
    )
    for (const result of results) {
      expect(result.stderr).toBe('')
      expect(result.code).toBe(0)
    }
    expect(new Set(results.map((result) => result.stdout)).size).toBe(1)
    expect(requests()).toBe(before + 1)
  })

  it('keeps the cache private and encrypted: 0700 directories, 0600 files, no token bytes on disk', async () => {
    const { stdout } = await runCli(flags(), env())
    const token = stdout.trim()
    const cacheDir = join(box.dir, 'cache', 'tokenkeeper')
    const keyFile = join(box.dir, 'data', 'tokenkeeper', 'cache.key')
    expect(mode(cacheDir)).toBe(0o700)
    expect(mode(join(box.dir, 'data', 'tokenkeeper'))).toBe(0o700)
    expect(mode(keyFile)).toBe(0o600)
    const files = readdirSync(cacheDir)
    expect(files.filter((name) => name.endsWith('.token'))).toHaveLength(1)
    expect(files.filter((name) => !name.endsWith('.token'))).toEqual([]) // no temporary or lock file left
    for (const name of files) {
      expect(mode(join(cacheDir, name))).toBe(0o600)
      const content = readFileSync(join(cacheDir, name))
      expect(content.includes(token)).toBe(false)
      expect(content.includes(token.slice(4, 20))).toBe(false)
      expect(content.includes(Buffer.from(token).toString('base64').slice(0, 16))).toBe(false)
    }
  })

  it('treats a cache file that does not decrypt as a miss', async () => {
    const first = (await runCli(flags(), env())).stdout
    const cacheDir = join(box.dir, 'cache', 'tokenkeeper')
    const [name] = readdirSync(cacheDir)
    writeFileSync(
      join(cacheDir, name!),
      '{"v":1,"iv":"AAAAAAAAAAAAAAAA","tag":"AAAAAAAAAAAAAAAAAAAAAA==","ct":"AAAA"}',
    )
    const before = requests()
    const again = await runCli(flags(), env())
    expect(again.code).toBe(0)
    expect(again.stderr).toBe('')
    expect(again.stdout).not.toBe(first)
    expect(requests()).toBe(before + 1)
    // A new key file (say, restored from elsewhere) makes every record a miss too.
    writeFileSync(
      join(box.dir, 'data', 'tokenkeeper', 'cache.key'),
      `${Buffer.alloc(32, 7).toString('base64')}\n`,
    )
    const rekeyed = await runCli(flags(), env())
    expect(rekeyed.code).toBe(0)
    expect(requests()).toBe(before + 2)
    // A damaged key file: a warning, and the token all the same.
    writeFileSync(join(box.dir, 'data', 'tokenkeeper', 'cache.key'), 'not a key\n')
    const damaged = await runCli(flags(), env())
    expect(damaged.code).toBe(0)
    expect(server.introspect(damaged.stdout.trim())?.active).toBe(true)
    expect(damaged.stderr).toMatch(/warning: the token cache could not be used .*cache\.key is malformed/)
  })

  it('--no-cache makes a request every time and writes nothing', async () => {
    const before = requests()
    const a = await runCli(flags('--no-cache'), env())
    const b = await runCli(flags('--no-cache'), env())
    expect([a.code, b.code]).toEqual([0, 0])
    expect(a.stdout).not.toBe(b.stdout)
    expect(requests()).toBe(before + 2)
    expect(existsSync(join(box.dir, 'cache', 'tokenkeeper'))).toBe(false)
    expect(existsSync(join(box.dir, 'data', 'tokenkeeper'))).toBe(false)
  })

  it('--json prints the metadata with the token', async () => {
    const result = await runCli(flags('--json', '--scope', 'read', '--scope', 'write'), env())
    expect(result.code).toBe(0)
    const output = JSON.parse(result.stdout) as Record<string, unknown>
    expect(output).toMatchObject({ tokenType: 'Bearer', scopes: ['read', 'write'], fromCache: false })
    expect(new Date(output['expiresAt'] as string).getTime()).toBeGreaterThan(Date.now() + 500_000)
    expect(server.introspect(output['accessToken'] as string)?.active).toBe(true)
    const cached = JSON.parse(
      (await runCli(flags('--json', '--scope', 'write read'), env())).stdout,
    ) as Record<string, unknown>
    expect(cached).toMatchObject({ accessToken: output['accessToken'], fromCache: true })
  })

  it('--format exec-credential prints a Kubernetes ExecCredential with the cached token', async () => {
    const result = await runCli(flags('--format', 'exec-credential', '--scope', 'read'), env())
    expect(result.code).toBe(0)
    const credential = JSON.parse(result.stdout) as {
      apiVersion: string
      kind: string
      status: { token: string; expirationTimestamp: string }
    }
    expect(credential).toMatchObject({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
    })
    expect(server.introspect(credential.status.token)?.active).toBe(true)
    // RFC 3339 in UTC, whole seconds, as client-go reads it.
    expect(credential.status.expirationTimestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
    const expires = Date.parse(credential.status.expirationTimestamp)
    expect(expires).toBeGreaterThan(Date.now() + 500_000)
    expect(expires).toBeLessThanOrEqual(Date.now() + 3_600_000)
    const again = JSON.parse(
      (await runCli(flags('--format', 'exec-credential', '--scope', 'read'), env())).stdout,
    ) as {
      status: { token: string }
    }
    expect(again.status.token).toBe(credential.status.token)
    const bad = await runCli(flags('--format', 'yaml'), env())
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--format takes token, json or exec-credential/)
  })

  it('a refused request exits 4 and names no secret', async () => {
    const result = await runCli(flags('--no-cache'), env({ CLI_SECRET: WRONG_SECRET }))
    expect(result.code).toBe(4)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(/invalid_client/)
    expect(result.stderr).not.toContain(WRONG_SECRET)
    expect(result.stderr).not.toContain(SECRET)
    const scope = await runCli(flags('--scope', 'admin'), env())
    expect(scope.code).toBe(4)
    expect(scope.stderr).toMatch(/invalid_scope/)
  })

  it('a secret pasted where a variable name or a path belongs is never repeated on stderr', async () => {
    const pasted = 'PastedSecretValue_k29Xq7'
    const asEnv = await runCli(
      ['token', '--token-url', server.tokenUrl, '--client-id', 'cli-test', '--client-secret-env', pasted],
      env(),
    )
    expect(asEnv.code).toBe(3)
    expect(asEnv.stderr).toMatch(/named by --client-secret-env/)
    expect(asEnv.stderr).not.toContain(pasted)
    const asFile = await runCli(
      ['token', '--token-url', server.tokenUrl, '--client-id', 'cli-test', '--client-secret-file', pasted],
      env(),
    )
    expect(asFile.code).toBe(3)
    expect(asFile.stderr).toMatch(/named by --client-secret-file/)
    const asCommand = await runCli([pasted], env())
    expect(asCommand.code).toBe(2)
    expect(asCommand.stderr).toMatch(/unknown command/)
    for (const result of [asEnv, asFile, asCommand]) expect(result.stderr).not.toContain(pasted)
  })

  it('an unreachable token endpoint exits 5', async () => {
    const port = await closedPort()
    const result = await runCli(
      [
        'token',
        '--token-url',
        `http://127.0.0.1:${port}/token`,
        '--client-id',
        'x',
        '--client-secret-env',
        'CLI_SECRET',
      ],
      env(),
    )
    expect(result.code).toBe(5)
    expect(result.stderr).not.toContain(SECRET)
  })

  it('refuses secrets on the command line and reports missing settings', async () => {
    for (const args of [flags('--client-secret', SECRET), flags(`--client-secret=${SECRET}`)]) {
      const result = await runCli(args, env())
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/--client-secret is refused/)
      expect(result.stderr).not.toContain(SECRET)
    }
    const unset = await runCli(flags(), box.env)
    expect(unset.code).toBe(3)
    expect(unset.stderr).toMatch(/named by --client-secret-env .*is not set/)
    expect(unset.stderr).toMatch(/environment variable [A-Z_]+ named by/)
    const noUrl = await runCli(['token', '--client-id', 'x', '--client-secret-env', 'CLI_SECRET'], env())
    expect(noUrl.code).toBe(2)
    expect(noUrl.stderr).toMatch(/--token-url is required/)
    const insecure = await runCli(
      flags().map((arg) => arg.replace('http://127.0.0.1', 'http://example.com')),
      env(),
    )
    expect(insecure.code).toBe(3)
    const stray = await runCli([...flags(), SECRET], env())
    expect(stray.code).toBe(2)
    expect(stray.stderr).not.toContain(SECRET)
  })

  it('--profile reads the config file ($TOKENKEEPER_CONFIG or the XDG location)', async () => {
    const secretFile = join(box.dir, 'api.secret')
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 })
    const config = {
      profiles: {
        api: {
          tokenUrl: server.tokenUrl,
          clientId: 'cli-test',
          clientSecretEnv: 'CLI_SECRET',
          scopes: ['read'],
          auth: 'post',
        },
        files: {
          tokenUrl: server.tokenUrl,
          clientId: 'cli-test',
          clientSecretFile: 'api.secret',
          scopes: ['write'],
        },
        leaky: { tokenUrl: server.tokenUrl, clientId: 'cli-test', clientSecret: SECRET },
      },
    }
    const xdgConfig = join(box.dir, 'config', 'tokenkeeper')
    mkdirSync(xdgConfig, { recursive: true })
    writeFileSync(join(xdgConfig, 'config.json'), JSON.stringify(config))
    const api = await runCli(['token', '--profile', 'api', '--json'], env())
    expect(api.stderr).toBe('')
    expect(JSON.parse(api.stdout)).toMatchObject({ scopes: ['read'] })
    expect(server.requests.at(-1)?.authMethod).toBe('client_secret_post')

    const elsewhere = join(box.dir, 'elsewhere.json')
    writeFileSync(
      elsewhere,
      JSON.stringify({ profiles: { files: { ...config.profiles.files, clientSecretFile: secretFile } } }),
    )
    const files = await runCli(['token', '--profile', 'files'], { ...box.env, TOKENKEEPER_CONFIG: elsewhere })
    expect(files.code).toBe(0)
    expect(server.introspect(files.stdout.trim())?.scopes).toEqual(['write'])

    const leaky = await runCli(['token', '--profile', 'leaky'], env())
    expect(leaky.code).toBe(3)
    expect(leaky.stderr).toMatch(/"clientSecret" is not allowed/)
    expect(leaky.stderr).not.toContain(SECRET)
    // Names written in the config file are shown when they lead nowhere (they are not secrets).
    const unset = await runCli(['token', '--profile', 'api'], box.env)
    expect(unset.code).toBe(3)
    expect(unset.stderr).toMatch(
      /environment variable CLI_SECRET \(clientSecretEnv of profile "api"\) is not set/,
    )
    const gone = join(box.dir, 'gone.json')
    writeFileSync(
      gone,
      JSON.stringify({
        profiles: { files: { ...config.profiles.files, clientSecretFile: 'missing.secret' } },
      }),
    )
    const noFile = await runCli(['token', '--profile', 'files'], { ...box.env, TOKENKEEPER_CONFIG: gone })
    expect(noFile.code).toBe(3)
    expect(noFile.stderr).toContain(
      `${join(box.dir, 'missing.secret')} (clientSecretFile of profile "files") cannot be read (ENOENT)`,
    )
    // A profile name or config path that the file does not confirm may be a pasted secret: it
    // is not repeated.
    const missing = await runCli(['token', '--profile', 'Pasted-Secret-42'], env())
    expect(missing.code).toBe(3)
    expect(missing.stderr).toMatch(
      /the profile named by --profile is not in .*\(profiles: api, files, leaky\)/,
    )
    expect(missing.stderr).not.toContain('Pasted-Secret-42')
    const noConfig = await runCli(
      ['token', '--config', join(box.dir, 'Pasted-Secret-42'), '--profile', 'api'],
      env(),
    )
    expect(noConfig.code).toBe(3)
    expect(noConfig.stderr).toMatch(/the config file named by --config does not exist/)
    expect(noConfig.stderr).not.toContain('Pasted-Secret-42')
  })

  it('control characters from config files, paths, the environment and servers never reach stderr raw', async () => {
    const ESC = '\u001b'
    const hostile = `${ESC}[2J${ESC}]0;pwned\u0007\r\nforged line\u202e`
    const config = join(box.dir, 'hostile.json')
    writeFileSync(config, JSON.stringify({ profiles: { [hostile]: {}, x: { [`field${hostile}`]: 1 } } }))
    const secretFile = join(box.dir, 'config', `missing${hostile}`)
    writeFileSync(
      join(box.dir, 'secret-file.json'),
      JSON.stringify({
        profiles: { x: { tokenUrl: server.tokenUrl, clientId: 'cli-test', clientSecretFile: secretFile } },
      }),
    )
    server.inject({
      kind: 'status',
      status: 400,
      error: 'invalid_request',
      errorDescription: `bad${hostile}`,
    })
    const results = [
      await runCli(['token', '--config', config, '--profile', 'nope'], env()),
      await runCli(['token', '--config', config, '--profile', 'x'], env()),
      await runCli(['token', '--profile', 'x'], env({ TOKENKEEPER_CONFIG: join(box.dir, `none${hostile}`) })),
      await runCli(['token', '--config', join(box.dir, 'secret-file.json'), '--profile', 'x'], env()),
      await runCli(flags('--no-cache'), env()),
      await runCli(
        flags(),
        env({
          TOKENKEEPER_CACHE_DIR: join(box.dir, `cache${hostile}`, 'x'),
          TOKENKEEPER_KEY_FILE: '/dev/null/k',
        }),
      ),
    ]
    expect(results.map((result) => result.code)).toEqual([3, 3, 3, 3, 4, 0])
    for (const result of results) {
      // One line each (a warning and the token's line at most), no control character but its end.
      // eslint-disable-next-line no-control-regex -- control characters are what is looked for
      expect(result.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/)
      expect(result.stderr).not.toMatch(/\nforged line/)
    }
    expect(results[0]!.stderr).toContain('\\x1b[2J\\x1b]0;pwned\\x07\\r\\nforged line\\u202e')
    expect(results[4]!.stderr).toMatch(/invalid_request/)
    expect(results[5]!.stderr).toMatch(/warning: the token cache could not be used/)
  })

  it('a config or secret file that is a FIFO, a device or over its size cap is refused at once (exit 3)', async () => {
    const fifo = join(box.dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    const big = join(box.dir, 'big.json')
    writeFileSync(big, `{"profiles":{}}${' '.repeat(1024 * 1024)}`)
    const bigSecret = join(box.dir, 'big.secret')
    writeFileSync(bigSecret, 's'.repeat(64 * 1024 + 1))
    const secretFlags = ['token', '--token-url', server.tokenUrl, '--client-id', 'cli-test']
    const cases: [string[], RegExp][] = [
      [
        ['token', '--config', fifo, '--profile', 'x'],
        /named by --config cannot be read \(not a regular file\)/,
      ],
      [
        ['token', '--config', '/dev/zero', '--profile', 'x'],
        /named by --config cannot be read \(not a regular file\)/,
      ],
      [
        ['token', '--config', big, '--profile', 'x'],
        /named by --config cannot be read \(over 1048576 bytes\)/,
      ],
      [['token', '--config', box.dir, '--profile', 'x'], /named by --config cannot be read \(EISDIR\)/],
      [
        [...secretFlags, '--client-secret-file', fifo],
        /--client-secret-file cannot be read \(not a regular file\)/,
      ],
      [
        [...secretFlags, '--client-secret-file', '/dev/zero'],
        /--client-secret-file cannot be read \(not a regular file\)/,
      ],
      [
        [...secretFlags, '--client-secret-file', bigSecret],
        /--client-secret-file cannot be read \(over 65536 bytes\)/,
      ],
    ]
    for (const [args, message] of cases) {
      // Before the size and type checks, the FIFO blocked the command until this timeout killed it.
      const result = await runCli(args, env(), 10_000)
      expect(result.code).toBe(3)
      expect(result.stderr).toMatch(message)
    }
  })

  it('a cache key file open to other users is not used: a warning, the token fetched directly, nothing cached', async () => {
    const first = await runCli(flags(), env())
    expect(first.code).toBe(0)
    const keyFile = join(box.dir, 'data', 'tokenkeeper', 'cache.key')
    const cacheDir = join(box.dir, 'cache', 'tokenkeeper')
    for (const open of [0o644, 0o660, 0o604]) {
      chmodSync(keyFile, open)
      const before = requests()
      const result = await runCli(flags(), env())
      expect(result.code).toBe(0)
      expect(server.introspect(result.stdout.trim())?.active).toBe(true)
      expect(result.stdout).not.toBe(first.stdout)
      expect(requests()).toBe(before + 1)
      expect(result.stderr).toMatch(
        new RegExp(
          `warning: the token cache could not be used .*cache\\.key is open to other users \\(mode 0${open.toString(8)}\\)`,
        ),
      )
    }
    chmodSync(keyFile, 0o600)
    // Another user's key file (only root can give a file away).
    if (process.getuid?.() === 0) {
      chownSync(keyFile, 65534, 65534)
      const theirs = await runCli(flags(), env())
      expect(theirs.stderr).toMatch(/cache\.key belongs to another user/)
      expect(theirs.stdout).not.toBe(first.stdout)
      chownSync(keyFile, 0, 0)
    }
    const again = await runCli(flags(), env())
    expect([again.stdout, again.stderr]).toEqual([first.stdout, ''])
    expect(readdirSync(cacheDir).filter((name) => !name.endsWith('.lock'))).toHaveLength(1)
  })
})
