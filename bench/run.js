// `npm run bench`: tokenkeeper's benchmark scenarios, against the project's real token
// server on 127.0.0.1. Every timing is printed as a ratio against a baseline measured in the same
// run. Timing verdicts are printed only; the process exits non-zero only when a correctness
// target fails (token request counts, expired tokens handed out, caller errors).
//
//   npm run bench                     all scenarios (builds first)
//   node bench/run.js warm outage     only the named scenarios (warm, stampede, expiry, outage, memory, redis, eviction, lti, dpop)
/* global console, process, performance, URL */
import { execFile, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { dpop } from './scenarios/dpop.js'
import { eviction } from './scenarios/eviction.js'
import { ltiThrottling } from './scenarios/lti-throttling.js'
import { expiryUnderLoad } from './scenarios/expiry-under-load.js'
import { outageAcrossExpiry, outageWaiting, outageWhileValid } from './scenarios/outage.js'
import { stampede } from './scenarios/stampede.js'
import { num, printTable, printVerdicts, ratio, verdict } from './scenarios/util.js'
import { warmHit } from './scenarios/warm-hit.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

async function memory() {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', fileURLToPath(new URL('memory.js', import.meta.url)), '--json'],
    { cwd: root },
  )
  const result = JSON.parse(stdout.trim().split('\n').at(-1))
  printTable(
    `5. Memory: heap bytes per cached entry at ${num(result.keys)} keys (child process, --expose-gc, function sources, no network)`,
    [
      {
        case: 'Map<string, { value, expiresAt }>  [baseline]',
        'bytes/entry': num(result.baselineBytesPerEntry),
        'ratio vs baseline': '1.00x',
      },
      {
        case: 'AccessToken alone (token string included)  [diagnostic]',
        'bytes/entry': num(result.accessTokenBytesPerEntry),
        'ratio vs baseline': ratio(result.accessTokenBytesPerEntry / result.baselineBytesPerEntry),
      },
      {
        case: 'TokenManager, maxEntries 100,000',
        'bytes/entry': num(result.managerBytesPerEntry),
        'ratio vs baseline': ratio(result.ratio),
      },
      {
        case: 'TokenManager, cleared and filled again: retained per extra token request',
        'bytes/entry': num(result.retainedBytesPerRequest),
        'ratio vs baseline': ratio(result.retainedBytesPerRequest / result.baselineBytesPerEntry),
      },
    ],
  )
  console.log(
    '  key strings and source objects exist before each snapshot and are not counted; token strings are counted',
  )
  const verdicts = [
    verdict(
      'memory',
      `all ${num(result.keys)} keys cached`,
      `${num(result.managerEntries)} entries`,
      result.managerEntries === result.keys,
      'correctness',
    ),
    verdict(
      'memory',
      'nothing retained per token request once its entry is gone (≤ 8 B, noise)',
      `${num(result.retainedBytesPerRequest, 1)} B per request`,
      result.retainedBytesPerRequest <= 8,
      'memory',
    ),
  ]
  printVerdicts(verdicts)
  return { verdicts, summary: result }
}

/** The Redis fleet benchmark in its own process: it starts redis-server and 8 children. */
async function redis() {
  console.log('\n6. Redis store and fleet (bench/redis.js, its own redis-server on 127.0.0.1)')
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('redis.js', import.meta.url))], {
      cwd: root,
      stdio: 'inherit',
    })
    child.on('error', () => resolve(-1))
    child.on('exit', (exitCode) => resolve(exitCode ?? -1))
  })
  const verdicts = [
    verdict(
      'redis',
      'cold fleet starts: exactly 1 token request each, no failed get',
      code === 0 ? 'held (see table 3)' : `bench/redis.js exited with ${code}`,
      code === 0,
      'correctness',
    ),
  ]
  printVerdicts(verdicts)
  return { verdicts }
}

const SCENARIOS = [
  ['warm', warmHit],
  ['stampede', stampede],
  ['expiry', expiryUnderLoad],
  ['outage', outageWhileValid],
  ['outage', outageAcrossExpiry],
  ['outage', outageWaiting],
  ['memory', memory],
  ['redis', redis],
  ['eviction', eviction],
  ['lti', ltiThrottling],
  ['dpop', dpop],
]

const selected = process.argv.slice(2)
const cores = cpus().length
const busyAt = (load) => load >= 0.5 * cores
const loadBefore = loadavg()

console.log(`tokenkeeper ${pkg.version} benchmark — every timing is a ratio to a baseline of the same run`)
console.log(
  `Node ${process.version} (V8 ${process.versions.v8}), ${process.platform}/${process.arch}, ` +
    `${cores} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${num(totalmem() / 2 ** 30, 1)} GiB`,
)
console.log(
  `load average at start: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}` +
    (busyAt(loadBefore[0]) ? '  ← machine BUSY: timings are not representative' : ''),
)

const startedAt = performance.now()
const verdicts = []
const durations = []
for (const [name, scenario] of SCENARIOS) {
  if (selected.length > 0 && !selected.includes(name)) continue
  const scenarioStartedAt = performance.now()
  const result = await scenario()
  durations.push(`${scenario.name} ${num((performance.now() - scenarioStartedAt) / 1000, 1)} s`)
  verdicts.push(...result.verdicts)
}

const loadAfter = loadavg()
const failedCorrectness = verdicts.filter((v) => v.kind === 'correctness' && !v.pass)
const failedTiming = verdicts.filter((v) => v.kind !== 'correctness' && !v.pass)
console.log('\nSummary (exit code 1 only when a correctness target fails)')
const scenarioWidth = Math.max(...verdicts.map((v) => v.scenario.length))
for (const v of verdicts) {
  const tag = `${v.pass ? 'PASS' : 'FAIL'}  ${v.kind.padEnd(11)}  ${v.scenario.padEnd(scenarioWidth)}`
  console.log(`  ${tag}  ${v.target}: ${v.measured}`)
}
console.log(`\n  took ${num((performance.now() - startedAt) / 1000, 1)} s (${durations.join(', ')})`)
console.log(
  `  load average at end: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}` +
    (busyAt(loadBefore[0]) ? '  ← machine was BUSY: re-run on a quiet machine' : ''),
)
console.log(
  `  correctness: ${failedCorrectness.length === 0 ? 'all held' : `${failedCorrectness.length} FAILED`}; ` +
    `timing and memory: ${failedTiming.length === 0 ? 'all held' : `${failedTiming.length} missed (reported, not fatal)`}`,
)
process.exitCode = failedCorrectness.length === 0 ? 0 : 1
