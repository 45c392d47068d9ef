import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisSuite, requireRedis, startRedisServer, type RedisServer } from '../support/redis-server.js'

// The LTI examples are type-checked by `npm run typecheck`; here each one also runs, compiled to
// JavaScript inside the package so that `import 'tokenkeeper/lti'` resolves to the built package
// (run `npm run build` first). test/package/examples.test.ts covers examples/*.ts only.
const root = fileURLToPath(new URL('../../', import.meta.url))
const examples = fileURLToPath(new URL('../../examples/lti/', import.meta.url))
const out = fileURLToPath(new URL('../../.tmp/examples/lti/', import.meta.url))

const expected: Record<string, RegExp> = {
  'batch-grades.ts':
    /posted 5000 of 5000 scores over \d+ s of job time; failed: 0, superseded: 0\nretried: \d+; throttled answers: \d+ \(platform: \d+\)\ntoken requests: \d+ for 60 s tokens \(the first, then one per renewal\)\nscores the platform accepted: 5000; refused for an expired token: 0/,
  'roster-sync.ts':
    /synced 30 of 30 courses: \d+ members in \d+ pages; failed: 0\nretried: \d+; throttled answers: \d+ \(platform: \d+\)\ntoken requests: 1; service calls: \d+, refused: \d+/,
  'fleet-grades.ts':
    /50 worker processes posted \d+ scores to 50 courses; failed: 0\ntoken requests for the whole fleet: \d+ [\s\S]*refused for an expired token: \d+/,
}

function run(
  name: string,
  env: Record<string, string> = {},
): { stdout: string; stderr: string; status: number | null } {
  const source = readFileSync(examples + name, 'utf8')
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  })
  const file = out + name.replace(/\.ts$/, '.mjs')
  writeFileSync(file, outputText)
  const result = spawnSync(process.execPath, [file], {
    cwd: root,
    encoding: 'utf8',
    timeout: 200_000,
    env: { ...process.env, ...env },
  })
  return {
    stdout: result.stdout,
    stderr: result.stderr.replace(/^.*ExperimentalWarning.*$/gm, '').trim(),
    status: result.status,
  }
}

describe('LTI examples run', () => {
  mkdirSync(out, { recursive: true })

  it('every example has an expectation', () => {
    const files = readdirSync(examples).filter((name) => name.endsWith('.ts'))
    expect(files.sort()).toEqual(Object.keys(expected).sort())
  })

  it.each(['batch-grades.ts', 'roster-sync.ts'])('%s', { timeout: 60_000 }, (name) => {
    const result = run(name)
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(expected[name]!)
    expect(result.stdout).not.toMatch(/PRIVATE KEY|tkt_/)
    const figure = (pattern: RegExp): number => Number(pattern.exec(result.stdout)?.[1])
    const throttled = figure(/throttled answers: (\d+)/)
    const retried = figure(/retried: (\d+)/)
    // Both jobs ask more of the platform than its budget allows: paced by its headers, they are
    // throttled a few times while they learn its limits, not once per request over the budget.
    expect(figure(/\(platform: (\d+)\)/)).toBe(throttled)
    // Every throttled answer and each of the injected 503s was retried (none failed).
    if (name === 'batch-grades.ts') {
      expect(throttled).toBeLessThanOrEqual(50)
      expect(retried).toBe(throttled + 10)
      // The budget stretches the job: 4,300 scores past the first 700 at 10 per second.
      const seconds = figure(/over (\d+) s of job time/)
      expect(seconds).toBeGreaterThanOrEqual(430)
      expect(seconds).toBeLessThanOrEqual(600)
      // Posting on 60 s tokens renewed at 75-85 % of their lifetime (45-51 s): the first, then one per renewal.
      const requests = figure(/token requests: (\d+)/)
      expect(requests).toBeGreaterThanOrEqual(Math.floor(seconds / 51) + 1)
      expect(requests).toBeLessThanOrEqual(Math.ceil(seconds / 45) + 1)
    } else {
      expect(throttled).toBeLessThanOrEqual(10)
      expect(retried).toBe(throttled + 5)
      expect(figure(/refused: (\d+)/)).toBe(retried)
    }
  })
})

// The fleet needs Redis: skipped (with the install hint) where redis-server is missing, except in CI.
describe.skipIf(redisSuite() === 'skip')('LTI fleet example (50 processes sharing Redis)', () => {
  let redis: RedisServer | undefined

  beforeAll(async () => {
    requireRedis()
    redis = await startRedisServer()
  })

  afterAll(async () => {
    await redis?.close()
  })

  it('fleet-grades.ts: one token request per renewal for the whole fleet', { timeout: 240_000 }, () => {
    const result = run('fleet-grades.ts', { REDIS_URL: redis!.url })
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(expected['fleet-grades.ts']!)
    // Tokens live 10 s and are renewed at 75-85 % of that: two requests closer than half a
    // lifetime would be two processes fetching for the same renewal.
    const closest = Number(/closest two token requests: (\d+) ms/.exec(result.stdout)?.[1])
    const degraded = Number(
      /store errors, failed refreshes and lock waits given up across the fleet: (\d+)/.exec(
        result.stdout,
      )?.[1],
    )
    expect(degraded).toBeGreaterThanOrEqual(0)
    // Only a process that lost Redis (a command timed out on a starved machine) or gave up
    // waiting for another's lock may fetch beside another: the documented fallbacks, counted.
    if (degraded === 0) expect(closest).toBeGreaterThanOrEqual(5_000)
    expect(result.stdout).not.toMatch(/PRIVATE KEY|tkt_/)
  })
})
