import { Writable } from 'node:stream'
import { format } from 'node:util'
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  memoryStore,
  TokenManager,
  type AccessToken,
  type TokenkeeperLogger,
  type TokenStore,
} from '../../src/index.js'
import { createTestClock, startTokenServer, type TestClock } from '../../src/testing/index.js'
import { findLeaks } from '../sources/keys.js'

const SECRET = 'LOGSECRET-must-not-leak-789'
const HOUR = 3_600_000

type Server = Awaited<ReturnType<typeof startTokenServer>>
let server: Server
let clock: TestClock
const managers: TokenManager[] = []

beforeEach(async () => {
  clock = createTestClock()
  server = await startTokenServer({ clock, clients: [{ clientId: 'log-client', clientSecret: SECRET }] })
})

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()))
  await server.close()
})

function source(scope = 'read') {
  return clientCredentials({
    tokenUrl: server.tokenUrl,
    clientId: 'log-client',
    auth: clientSecretBasic(SECRET),
    scopes: [scope],
  })
}

interface Line {
  readonly level: string
  readonly args: unknown[]
}

/** A console-shaped logger that keeps every call. */
function capture(): { logger: TokenkeeperLogger; lines: Line[] } {
  const lines: Line[] = []
  const method =
    (level: string) =>
    (...args: unknown[]) =>
      void lines.push({ level, args })
  return {
    lines,
    logger: { debug: method('debug'), info: method('info'), warn: method('warn'), error: method('error') },
  }
}

function manager(logger: TokenkeeperLogger, store?: TokenStore) {
  const tokens = new TokenManager({
    clock,
    random: () => 0.5,
    logger,
    ...(store === undefined ? {} : { store }),
  })
  managers.push(tokens)
  return tokens
}

/** A store that fails every call while `broken` is set (a fault a real store cannot be told to show). */
function breakableStore(): { store: TokenStore; state: { broken: boolean } } {
  const inner = memoryStore({ clock })
  const state = { broken: false }
  const guard =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      state.broken ? Promise.reject(new Error('store unreachable')) : call(...args)
  return {
    state,
    store: {
      get: guard(inner.get.bind(inner)),
      set: guard(inner.set.bind(inner)),
      delete: guard(inner.delete.bind(inner)),
      clear: guard(inner.clear.bind(inner)),
    },
  }
}

const text = (line: Line) => format(...line.args)

describe('the logger option', () => {
  it('logs renewals at debug, failures at warn, and fail-fast once per backoff with a count', async () => {
    const { logger, lines } = capture()
    const tokens = manager(logger)
    const s = source()
    const tokens1 = await tokens.get(s)
    await tokens.get(s) // a hit: nothing logged
    expect(lines.map((l) => l.level)).toEqual(['debug'])
    expect(text(lines[0]!)).toMatch(/obtained a token for .*log-client.* in \d+ ms \(fetch\)/)
    expect(lines[0]!.args[1]).toMatchObject({ event: 'refreshSuccess', key: s.key, origin: 'fetch' })

    server.setFault({ kind: 'status', status: 503 })
    clock.set(tokens1.expiresAt) // expired: callers must wait for a new one
    await expect(tokens.get(s)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    for (let i = 0; i < 3; i++) await expect(tokens.get(s)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    expect(lines.slice(1).map((l) => l.level)).toEqual(['warn', 'debug'])
    expect(text(lines[1]!)).toMatch(
      /foreground token refresh for .* failed: SERVER_ERROR: .*retryable.*no valid token/,
    )
    expect(text(lines[2]!)).toMatch(/failing fast for .* with SERVER_ERROR for \d+ ms more/)
    expect(tokens.stats().failFast).toBe(3)

    server.clearFaults()
    clock.advance(HOUR)
    await tokens.get(s)
    expect(lines.slice(3).map(text)).toEqual([
      expect.stringMatching(/2 more callers for .* were failed fast/),
      expect.stringMatching(/obtained a token for/),
    ])
  })

  it('warns once when the store fails, stays quiet while it keeps failing, and says when it recovers', async () => {
    const { logger, lines } = capture()
    const { store, state } = breakableStore()
    const tokens = manager(logger, store)
    const a = source('a')
    const b = source('b')
    state.broken = true
    await tokens.get(a) // store read and write fail: a direct fetch, no failed get
    await tokens.get(b)
    const warnings = lines.filter((l) => l.level === 'warn')
    expect(warnings.map(text)).toEqual([
      expect.stringMatching(/token store failed \(get for .*: store unreachable\)/),
    ])
    expect(tokens.stats().storeErrors).toBe(4)

    state.broken = false
    clock.advance(1000)
    await tokens.invalidate(a)
    await tokens.get(a)
    const info = lines.filter((l) => l.level === 'info')
    expect(info.map(text)).toEqual([
      expect.stringMatching(/token store answers again after 4 errors in 1000 ms/),
    ])
  })

  it('rejects a logger without the four methods, and survives one that throws', async () => {
    expect(() => new TokenManager({ logger: { debug() {}, info() {}, warn() {} } as never })).toThrow(
      /logger must have debug, info, warn and error methods \(error is missing\)/,
    )
    const throwing = () => {
      throw new Error('logger down')
    }
    const tokens = manager({ debug: throwing, info: throwing, warn: throwing, error: throwing })
    await expect(tokens.get(source())).resolves.toBeDefined()
  })

  it('writes structured pino lines with the fields under `tokenkeeper`', async () => {
    const chunks: string[] = []
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk.toString())
        done()
      },
    })
    const tokens = manager(pino({ level: 'debug' }, stream))
    const s = source()
    await tokens.get(s)
    await new Promise((resolve) => setImmediate(resolve))
    const lines = chunks
      .join('')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(lines).toEqual([
      expect.objectContaining({
        level: 20,
        msg: expect.stringMatching(/obtained a token for/) as unknown,
        tokenkeeper: expect.objectContaining({
          event: 'refreshSuccess',
          key: s.key,
          origin: 'fetch',
        }) as unknown,
      }),
    ])
  })
})

describe('no secret in a log line', () => {
  it('shows no client secret, Basic credentials or token, console-style or pino, through failures and recovery', async () => {
    const { logger, lines } = capture()
    const chunks: string[] = []
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk.toString())
        done()
      },
    })
    const { store, state } = breakableStore()
    const issued: AccessToken[] = []
    const pinoLogger = pino({ level: 'debug' }, stream)
    const both: TokenkeeperLogger = {
      debug: (...args: unknown[]) =>
        void [logger.debug, pinoLogger.debug.bind(pinoLogger)].forEach((f) => f(...(args as never[]))),
      info: (...args: unknown[]) =>
        void [logger.info, pinoLogger.info.bind(pinoLogger)].forEach((f) => f(...(args as never[]))),
      warn: (...args: unknown[]) =>
        void [logger.warn, pinoLogger.warn.bind(pinoLogger)].forEach((f) => f(...(args as never[]))),
      error: logger.error,
    }
    const viaBoth = manager(both, store)
    const direct = manager(pinoLogger, store)
    const s = source()
    for (const tokens of [viaBoth, direct]) {
      issued.push(await tokens.get(s))
      // A server that echoes the credentials in its error description.
      server.setFault({
        kind: 'status',
        status: 401,
        error: 'invalid_client',
        errorDescription: `bad secret ${SECRET} / ${Buffer.from(`log-client:${SECRET}`).toString('base64')}`,
      })
      await tokens.invalidate(s)
      await expect(tokens.get(s)).rejects.toMatchObject({ code: 'OAUTH_ERROR' })
      await expect(tokens.get(s)).rejects.toBeDefined()
      server.clearFaults()
      state.broken = true
      clock.advance(HOUR)
      issued.push(await tokens.get(s))
      state.broken = false
      await tokens.invalidate(s)
      issued.push(await tokens.get(s))
    }
    await new Promise((resolve) => setImmediate(resolve))
    const forbidden = [
      SECRET,
      encodeURIComponent(SECRET),
      Buffer.from(`log-client:${SECRET}`).toString('base64'),
      ...issued.map((token) => token.value),
    ]
    const rendered = [...lines.map(text), ...lines.map((l) => JSON.stringify(l.args)), ...chunks]
    expect(rendered.length).toBeGreaterThan(10)
    expect(rendered.join('\n')).toMatch(/invalid_client|OAUTH_ERROR/)
    expect(findLeaks(rendered, forbidden)).toEqual([])
  })
})
