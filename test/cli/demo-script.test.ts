/**
 * `npm run demo` (scripts/demo.mjs) builds dist/ only when it is missing or older than its
 * sources, then runs `tokenkeeper demo` with the arguments given. Tested on a copy of the script
 * in a scratch project whose `build` script only counts its runs and writes a stand-in dist/, so
 * every case is decided by the file times the test sets, never by the clock.
 */
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

const script = fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url))

/** Writes the stand-in dist/: each source's .js, and a main.js that prints the arguments it got. */
const BUILD = `
const fs = require('node:fs')
fs.appendFileSync('builds.log', 'build\\n')
fs.mkdirSync('dist/cli', { recursive: true })
fs.writeFileSync('dist/index.js', '')
fs.writeFileSync('dist/cli/args.js', '')
fs.writeFileSync('dist/cli/main.js', 'process.stdout.write(JSON.stringify(process.argv.slice(2)))')
`

let project: string

/** Sets the modification time of a file of the project, in seconds since the epoch. */
function setTime(path: string, seconds: number): void {
  utimesSync(join(project, path), seconds, seconds)
}

function demo(...args: string[]): { builds: number; argv: unknown; stderr: string; status: number | null } {
  const run = spawnSync(process.execPath, [join(project, 'scripts', 'demo.mjs'), ...args], {
    cwd: project,
    encoding: 'utf8',
  })
  const log = join(project, 'builds.log')
  return {
    builds: existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0,
    argv: run.stdout === '' ? undefined : JSON.parse(run.stdout),
    stderr: run.stderr,
    status: run.status,
  }
}

beforeEach(() => {
  project = mkdtempSync(join(tmpdir(), 'tokenkeeper-demo-script-'))
  mkdirSync(join(project, 'scripts'))
  mkdirSync(join(project, 'src', 'cli'), { recursive: true })
  copyFileSync(script, join(project, 'scripts', 'demo.mjs'))
  writeFileSync(join(project, 'build.cjs'), BUILD)
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'scratch', private: true, scripts: { build: 'node build.cjs' } }),
  )
  for (const file of ['tsconfig.json', 'tsconfig.build.json']) writeFileSync(join(project, file), '{}')
  for (const file of ['src/index.ts', 'src/cli/args.ts', 'src/cli/main.ts', 'src/cli/args.test.ts'])
    writeFileSync(join(project, file), '')
  for (const file of [
    'tsconfig.json',
    'tsconfig.build.json',
    'src/index.ts',
    'src/cli/args.ts',
    'src/cli/main.ts',
  ])
    setTime(file, 1_000)
})

afterEach(() => {
  rmSync(project, { recursive: true, force: true })
})

/** Builds once through the script, then dates every output after every input. */
function builtUpToDate(): void {
  expect(demo().builds).toBe(1)
  for (const file of ['dist/index.js', 'dist/cli/args.js', 'dist/cli/main.js']) setTime(file, 2_000)
}

describe('npm run demo', { timeout: 60_000 }, () => {
  it('builds a missing dist/, then runs the demo with the arguments given', () => {
    const run = demo('--help')
    expect(run).toMatchObject({ builds: 1, argv: ['demo', '--help'], status: 0 })
    expect(run.stderr).toMatch(/building dist\/ first \(dist\/(index|cli\/\w+)\.js is missing\)/)
  })

  it('does not build when dist/ is newer than every source (a test file does not count)', () => {
    builtUpToDate()
    setTime('src/cli/args.test.ts', 3_000)
    const run = demo('--help')
    expect(run).toMatchObject({ builds: 1, argv: ['demo', '--help'], stderr: '', status: 0 })
  })

  it('builds when one source changed after its output', () => {
    builtUpToDate()
    setTime('src/cli/args.ts', 3_000)
    const run = demo('--workers', '4')
    expect(run).toMatchObject({ builds: 2, argv: ['demo', '--workers', '4'], status: 0 })
    expect(run.stderr).toMatch(/src\/cli\/args\.ts changed/)
  })

  it('builds when a tsconfig changed after the outputs', () => {
    builtUpToDate()
    setTime('tsconfig.build.json', 3_000)
    expect(demo().builds).toBe(2)
  })

  it('builds when one output is missing', () => {
    builtUpToDate()
    rmSync(join(project, 'dist', 'cli', 'args.js'))
    const run = demo()
    expect(run.builds).toBe(2)
    expect(run.stderr).toMatch(/dist\/cli\/args\.js is missing/)
  })

  it('stops with the build failure and runs nothing when the build fails', () => {
    writeFileSync(join(project, 'build.cjs'), 'process.exit(3)')
    const run = demo('--help')
    expect(run.argv).toBeUndefined()
    expect(run.status).toBe(3)
    expect(run.stderr).toMatch(/the build failed/)
  })
})
