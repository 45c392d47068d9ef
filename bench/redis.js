/* global URL, process, console, setTimeout, performance */
// The Redis store benchmark: `npm run build && node bench/redis.js`.
// Starts its own redis-server and token server on 127.0.0.1 and prints four tables:
//   1. warm-hit cost with the Redis store, as a ratio to a memory-only manager (same run);
//   2. Redis commands per 100,000 get calls (client round trips, and INFO commandstats deltas);
//   3. cold fleet start: processes x concurrency -> token requests;
//   4. time for a fleet of 8 processes to pick up an invalidation.
// Takes well under a minute. Needs `redis-server` on PATH.
import { fork, spawn, spawnSync } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'

const root = new URL('../', import.meta.url)
const core = await import(new URL('dist/index.js', root).href)
const { redisStore } = await import(new URL('dist/stores/redis/index.js', root).href)
const { startTokenServer } = await import(new URL('dist/testing/index.js', root).href)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.error('bench/redis.js needs redis-server: sudo apt-get install redis-server')
  process.exit(1)
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function startRedis() {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'tokenkeeper-bench-'))
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]
  const child = spawn('redis-server', args, { stdio: 'ignore' })
  const admin = new Redis(port, '127.0.0.1', { retryStrategy: () => 50 })
  admin.on('error', () => {})
  for (let i = 0; i < 200 && admin.status !== 'ready'; i++) await sleep(25)
  return {
    port,
    admin,
    close: async () => {
      admin.disconnect()
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Calls per command from INFO commandstats. */
async function commandStats(admin) {
  const info = await admin.info('commandstats')
  const stats = {}
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats[match[1]] = Number(match[2])
  return stats
}

function delta(after, before, ignore = ['info', 'config|resetstat', 'ping', 'client|setinfo', 'select']) {
  const out = {}
  for (const [name, calls] of Object.entries(after)) {
    const d = calls - (before[name] ?? 0)
    if (d > 0 && !ignore.includes(name)) out[name] = d
  }
  return out
}

const sum = (object) => Object.values(object).reduce((a, b) => a + b, 0)
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

function table(title, rows) {
  console.log(`\n${title}`)
  console.table(rows)
}

// ---------------------------------------------------------------------------------------------
const redis = await startRedis()
const tokens = await startTokenServer({ clients: [{ clientId: 'bench', clientSecret: 'bench-secret' }] })
const key = randomBytes(32).toString('base64')
const source = (scope) =>
  core.clientCredentials({
    tokenUrl: tokens.tokenUrl,
    clientId: 'bench',
    auth: core.clientSecretBasic('bench-secret'),
    scopes: [scope],
  })

// 1. Warm hits -----------------------------------------------------------------------------------
{
  const client = new Redis(redis.port, '127.0.0.1')
  const memoryOnly = new core.TokenManager()
  const withRedis = new core.TokenManager({
    store: redisStore({ client, prefix: 'bench-warm', encryptionKeys: [{ id: 'b', key }] }),
  })
  const src = source('warm')
  await memoryOnly.get(src)
  await withRedis.get(src)
  const N = 1_000_000
  const run = async (manager) => {
    const started = performance.now()
    for (let i = 0; i < N; i++) await manager.get(src)
    return ((performance.now() - started) * 1e6) / N
  }
  const samples = { memory: [], redis: [] }
  // Alternate which goes first, so warm-up and GC do not favour one side.
  for (let round = 0; round < 6; round++) {
    if (round % 2 === 0) {
      samples.memory.push(await run(memoryOnly))
      samples.redis.push(await run(withRedis))
    } else {
      samples.redis.push(await run(withRedis))
      samples.memory.push(await run(memoryOnly))
    }
  }
  const memoryNs = median(samples.memory)
  const redisNs = median(samples.redis)
  table('1. Warm hit (await manager.get(source), median of 6 x 1,000,000, alternating order)', [
    {
      manager: 'memory only (no store)',
      'ns/get': memoryNs.toFixed(1),
      'gets/s': Math.round(1e9 / memoryNs).toLocaleString('en-US'),
    },
    {
      manager: 'redisStore (L1 hit)',
      'ns/get': redisNs.toFixed(1),
      'gets/s': Math.round(1e9 / redisNs).toLocaleString('en-US'),
    },
    { manager: 'ratio redis / memory', 'ns/get': (redisNs / memoryNs).toFixed(2), 'gets/s': '' },
  ])
  await memoryOnly.close()
  await withRedis.close()
  client.disconnect()
}

// 2. Commands per 100,000 gets (one process) --------------------------------------------------------
const commandRows = []
{
  const client = new Redis(redis.port, '127.0.0.1')
  const roundTrips = {}
  const call = client.call.bind(client)
  client.call = (command, ...args) => {
    roundTrips[command] = (roundTrips[command] ?? 0) + 1
    return call(command, ...args)
  }
  const manager = new core.TokenManager({
    store: redisStore({ client, prefix: 'bench-cmd', encryptionKeys: [{ id: 'b', key }] }),
  })
  const sources = Array.from({ length: 10 }, (_, i) => source(`cmd-${i}-${randomUUID()}`))
  const before = await commandStats(redis.admin)
  let next = 0
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < 100_000) await manager.get(sources[next++ % sources.length])
    }),
  )
  const server = delta(await commandStats(redis.admin), before)
  commandRows.push({
    scenario: '1 process, 10 cold keys, 100,000 gets (50 concurrent)',
    'client round trips': sum(roundTrips),
    'by command': Object.entries(roundTrips)
      .map(([c, n]) => `${c}:${n}`)
      .join(' '),
    'server commands (incl. inside scripts)': sum(server),
  })
  await manager.close()
  client.disconnect()
}

// Fleet ---------------------------------------------------------------------------------------------
const childScript = fileURLToPath(new URL('./redis-child.js', import.meta.url))
function member() {
  const child = fork(childScript, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const pending = new Map()
  let id = 0
  const started = new Promise((resolve) => child.on('message', (m) => m.type === 'started' && resolve()))
  child.on('message', (m) => {
    if (m.type !== 'reply') return
    const waiter = pending.get(m.id)
    pending.delete(m.id)
    if (m.error) waiter?.reject(new Error(m.error))
    else waiter?.resolve(m)
  })
  return {
    child,
    request: async (cmd, args = {}) => {
      await started
      const requestId = id++
      return new Promise((resolve, reject) => {
        pending.set(requestId, { resolve, reject })
        child.send({ cmd, id: requestId, ...args })
      })
    },
  }
}
const fleet = Array.from({ length: 8 }, member)
await Promise.all(
  fleet.map((m) => m.request('setup', { redisPort: redis.port, tokenUrl: tokens.tokenUrl, key })),
)

{
  const scopes = Array.from({ length: 10 }, (_, i) => `fleet-cmd-${i}-${randomUUID()}`)
  const before = await commandStats(redis.admin)
  const requestsBefore = tokens.stats().tokenRequests
  await Promise.all(fleet.map((m) => m.request('gets', { scopes, n: 12_500, concurrency: 25 })))
  const server = delta(await commandStats(redis.admin), before)
  commandRows.push({
    scenario: '8 processes x 12,500 gets, 10 cold keys',
    'client round trips': '',
    'by command': Object.entries(server)
      .map(([c, n]) => `${c}:${n}`)
      .join(' '),
    'server commands (incl. inside scripts)': sum(server),
  })
  commandRows.push({
    scenario: '  token requests for that run',
    'client round trips': '',
    'by command': String(tokens.stats().tokenRequests - requestsBefore),
    'server commands (incl. inside scripts)': '',
  })
}
table(
  '2. Redis commands per 100,000 get calls (warm hits cost none: every command is from a cold start)',
  commandRows,
)

// 3. Cold fleet start -------------------------------------------------------------------------------
{
  const rows = []
  for (const [processes, concurrency] of [
    [1, 1_000],
    [2, 500],
    [4, 250],
    [8, 125],
    [8, 500],
    [8, 2_000],
  ]) {
    const scope = `cold-${randomUUID()}`
    const before = tokens.stats().tokenRequests
    const started = performance.now()
    const replies = await Promise.all(
      fleet.slice(0, processes).map((m) => m.request('burst', { scope, n: concurrency })),
    )
    rows.push({
      processes,
      'concurrent gets each': concurrency,
      'total gets': processes * concurrency,
      'token requests': tokens.stats().tokenRequests - before,
      'distinct tokens': new Set(replies.flatMap((r) => r.ids)).size,
      failed: replies.reduce((a, r) => a + r.failed, 0),
      'wall ms': Math.round(performance.now() - started),
    })
  }
  table('3. Cold fleet start: processes x concurrency -> token requests', rows)
  const broken = rows.filter(
    (row) => row['token requests'] !== 1 || row.failed !== 0 || row['distinct tokens'] !== 1,
  )
  console.log(
    broken.length === 0
      ? '  PASS  [correctness] every cold fleet start made exactly 1 token request, no get failed'
      : `  FAIL  [correctness] ${broken.length} cold fleet starts made other than 1 token request or had failures`,
  )
  if (broken.length > 0) process.exitCode = 1
}

// 4. Invalidation pickup ----------------------------------------------------------------------------
{
  const lags = []
  for (let round = 0; round < 15; round++) {
    const scope = `inv-${round}-${randomUUID()}`
    await Promise.all(fleet.map((m) => m.request('burst', { scope, n: 1 })))
    const { at } = await fleet[0].request('invalidate', { scope })
    let seen = []
    for (let i = 0; i < 100; i++) {
      seen = await Promise.all(fleet.slice(1).map((m) => m.request('invalidatedAt', { scope, after: at })))
      if (seen.every((s) => s.at !== null)) break
      await sleep(10)
    }
    lags.push(Math.max(...seen.map((s) => (s.at ?? Infinity) - at)))
  }
  lags.sort((a, b) => a - b)
  table(
    '4. Time for a fleet of 8 to pick up an invalidation (1 invalidates, 7 drop their L1 copy; 15 rounds)',
    [
      {
        'median ms (slowest of 7)': median(lags),
        'p90 ms': lags[Math.floor(lags.length * 0.9)],
        'max ms': lags.at(-1),
      },
    ],
  )
}

await Promise.all(fleet.map((m) => m.request('close').catch(() => {})))
await tokens.close()
await redis.close()
console.log(
  `\nnode ${process.version}, redis-server ${spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.match(/v=(\S+)/)?.[1]}`,
)
