// Helpers shared by the benchmark scenarios: statistics, aligned tables, verdicts, and a real
// token server on 127.0.0.1 with one registered client.
/* global console, performance, process, setTimeout */
import { clientCredentials, clientSecretBasic } from '../../dist/index.js'
import { startTokenServer } from '../../dist/testing/index.js'

export const CLIENT_ID = 'bench-client'
export const CLIENT_SECRET = 'bench-client-secret-value'

/** Resolves after `ms` of real time. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** The median of a list of numbers (the mean of the two middle values for an even count). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** The `p`-quantile (0..1) of an ascending array, nearest-rank. */
export function quantile(sorted, p) {
  if (sorted.length === 0) return NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[rank]
}

/** A number with a fixed count of decimals and thousands separators. */
export function num(value, decimals = 0) {
  if (!Number.isFinite(value)) return String(value)
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals })
}

/** A ratio such as `1.23x`. */
export const ratio = (value, decimals = 2) => `${num(value, decimals)}x`

/**
 * Prints `rows` (objects with the same keys) as an aligned text table under `title`. Columns whose
 * values look numeric are right-aligned.
 */
export function printTable(title, rows) {
  console.log(`\n${title}`)
  if (rows.length === 0) return
  const columns = Object.keys(rows[0])
  const cells = rows.map((row) => columns.map((column) => String(row[column] ?? '')))
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((line) => line[i].length)))
  const numeric = columns.map((_, i) =>
    cells.every((line) => /^[-+]?[\d,.]+(x|%| ms| µs| ns)?$|^$/.test(line[i])),
  )
  const pad = (text, i) => (numeric[i] ? text.padStart(widths[i]) : text.padEnd(widths[i]))
  console.log(`  ${columns.map((column, i) => pad(column, i)).join('  ')}`)
  console.log(`  ${widths.map((width) => '-'.repeat(width)).join('  ')}`)
  for (const line of cells) console.log(`  ${line.map((cell, i) => pad(cell, i)).join('  ')}`)
}

/**
 * One checked target. `kind: 'correctness'` failures make `npm run bench` exit non-zero;
 * `kind: 'timing'` and `kind: 'memory'` verdicts are printed only (they depend on the machine and runtime).
 */
export function verdict(scenario, target, measured, pass, kind) {
  return { scenario, target, measured, pass, kind }
}

/** Prints the verdicts of one scenario under its table. */
export function printVerdicts(verdicts) {
  for (const v of verdicts) {
    const tag = v.pass ? 'PASS' : 'FAIL'
    console.log(`  ${tag}  [${v.kind}] ${v.target}: ${v.measured}`)
  }
}

/**
 * Starts the project's own token server on 127.0.0.1 with one client, and returns it with a
 * factory of client-credentials sources (client_secret_basic) for it.
 */
export async function startServer(options = {}) {
  const server = await startTokenServer({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }],
    ...options,
  })
  const source = () =>
    clientCredentials({
      tokenUrl: server.tokenUrl,
      clientId: CLIENT_ID,
      auth: clientSecretBasic(CLIENT_SECRET),
    })
  return { server, source }
}

/** Median duration in ms of `count` direct token requests (no cache), after `warmup` unmeasured ones. */
export async function tokenRequestMs(source, count = 7, warmup = 2) {
  for (let i = 0; i < warmup; i++) await source.fetchToken()
  const durations = []
  for (let i = 0; i < count; i++) {
    const startedAt = performance.now()
    await source.fetchToken()
    durations.push(performance.now() - startedAt)
  }
  return median(durations)
}

/**
 * Runs `count` loops concurrently until `shouldStop()` is true; each loop awaits `body(loopIndex)`
 * repeatedly. Resolves when every loop has stopped.
 */
export async function runLoops(count, shouldStop, body) {
  const loop = async (index) => {
    while (!shouldStop()) await body(index)
  }
  await Promise.all(Array.from({ length: count }, (_, index) => loop(index)))
}

/** What the timed loops returned, summed: printed by the scenarios so that V8 cannot drop the work. */
export const sink = { value: 0 }

/**
 * Times every case as a batch of `case.ops ?? ops` calls, `rounds` times after `warmupRounds`,
 * interleaved in a rotating order (who goes first changes each round). Per case: the ns/op of
 * each round (`samples`), their median (`ns`), and the median and quartiles of its ratio to case
 * 0 of the same round, so a machine that gets busier or quieter shifts both sides alike.
 */
export async function compareInterleaved(cases, { ops, rounds, warmupRounds }) {
  const samples = cases.map(() => [])
  const ratios = cases.map(() => [])
  for (let round = -warmupRounds; round < rounds; round++) {
    const nsPerOp = new Array(cases.length)
    for (let k = 0; k < cases.length; k++) {
      const index = (k + Math.max(round, 0)) % cases.length
      const c = cases[index]
      const n = c.ops ?? ops
      const startedAt = process.hrtime.bigint()
      sink.value += await c.loop(n)
      nsPerOp[index] = Number(process.hrtime.bigint() - startedAt) / n
    }
    if (round < 0) continue
    for (let i = 0; i < cases.length; i++) {
      samples[i].push(nsPerOp[i])
      ratios[i].push(nsPerOp[i] / nsPerOp[0])
    }
  }
  return cases.map((c, i) => {
    const sorted = [...ratios[i]].sort((a, b) => a - b)
    return {
      name: c.name,
      samples: samples[i],
      ns: median(samples[i]),
      ratio: median(ratios[i]),
      low: quantile(sorted, 0.25),
      high: quantile(sorted, 0.75),
    }
  })
}
