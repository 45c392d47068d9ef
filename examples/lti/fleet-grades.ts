// 50 worker processes post scores for 50 different courses on one LTI platform, sharing tokens
// through Redis: one token request per renewal for the whole fleet. The platform's tokens live
// 10 s and the fleet posts for 10 s, so tokens are renewed while it runs.
//
// Needs Redis: set REDIS_URL, or have `redis-server` on the PATH (the example then starts one on
// a free 127.0.0.1 port and stops it at the end).
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { AgsClaim, GradeService as Grades } from 'tokenkeeper/lti'

const WORKERS = 50
const TOKEN_LIFETIME_MS = 10_000
const RUN_MS = 10_000

/** What the parent hands each worker over IPC (never printed: it holds the private key). */
interface WorkerSetup {
  readonly redisUrl: string
  readonly cacheKey: string
  readonly issuer: string
  readonly tokenUrl: string
  readonly privateKeyPem: string
  readonly claim: AgsClaim
  readonly learners: readonly string[]
}

type ToWorker =
  { readonly type: 'setup'; readonly setup: WorkerSetup } | { readonly type: 'go'; readonly until: number }
type FromWorker =
  | { readonly type: 'ready' }
  | {
      readonly type: 'done'
      readonly posted: number
      readonly failures: readonly string[]
      /**
       * Store errors, failed refreshes and waits for another process's lock given up (its holder
       * died or the wait ran out): the degraded paths on which a process fetches alone.
       */
      readonly degraded: number
    }

if (process.argv[2] === 'worker') await worker()
else await main()

async function worker(): Promise<void> {
  // Each role loads only what it uses: 50 processes start faster without the test platform.
  const [{ Redis }, { TokenManager, isTokenkeeperError }, { GradeService }, { redisStore }] =
    await Promise.all([
      import('ioredis'),
      import('tokenkeeper'),
      import('tokenkeeper/lti'),
      import('tokenkeeper/redis'),
    ])
  const setup = await new Promise<WorkerSetup>((resolve) =>
    process.once('message', (message: ToWorker) => message.type === 'setup' && resolve(message.setup)),
  )
  const client = new Redis(setup.redisUrl, { lazyConnect: true })
  await client.connect()
  const tokens = new TokenManager({
    store: redisStore({
      client,
      encryptionKeys: [{ id: 'k1', key: setup.cacheKey }],
      // 50 processes on one machine can keep Redis answers waiting; the default is 500 ms.
      commandTimeoutMs: 2_000,
    }),
  })
  let lockWaitsGivenUp = 0
  tokens.on('lockWait', (event) => {
    if (event.outcome === 'fetch') lockWaitsGivenUp += 1
  })
  const registration = {
    issuer: setup.issuer,
    clientId: 'fleet-grader',
    tokenUrl: setup.tokenUrl,
    privateKey: setup.privateKeyPem,
    kid: 'fleet-1',
  }
  // Building the service resolves a token; a busy machine can make that time out: try again.
  const build = async (attempt: number): Promise<Grades> => {
    try {
      return await GradeService.fromClaim(tokens, registration, setup.claim, { uses: ['scores'] })
    } catch (error) {
      if (attempt >= 3 || !isTokenkeeperError(error) || !error.retryable) throw error
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt))
      return build(attempt + 1)
    }
  }
  const grades = await build(1)
  const until = await new Promise<number>((resolve) => {
    process.on('message', (message: ToWorker) => message.type === 'go' && resolve(message.until))
    process.send?.({ type: 'ready' } satisfies FromWorker)
  })
  let posted = 0
  const failures: string[] = []
  for (let round = 0; Date.now() < until; round++) {
    const userId = setup.learners[round % setup.learners.length]!
    try {
      await grades.postScore({
        userId,
        scoreGiven: round % 11,
        scoreMaximum: 10,
        activityProgress: 'Completed',
        gradingProgress: 'FullyGraded',
      })
      posted += 1
    } catch (error) {
      // Error codes and messages never hold a token or a key.
      failures.push(
        error instanceof Error
          ? `${(error as { code?: string }).code ?? error.name}: ${error.message}`
          : 'unknown',
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000))
  }
  const { storeErrors, failures: refreshFailures } = tokens.stats()
  await tokens.close()
  client.disconnect()
  const degraded = storeErrors + refreshFailures + lockWaitsGivenUp
  process.send?.({ type: 'done', posted, failures, degraded } satisfies FromWorker, () =>
    process.disconnect(),
  )
}

async function main(): Promise<void> {
  const { startLtiPlatform } = await import('tokenkeeper/testing')
  const redis = await redisUrl()
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  await using platform = await startLtiPlatform({
    tools: [{ clientId: 'fleet-grader', publicKey, kid: 'fleet-1' }],
    tokenLifetimeMs: TOKEN_LIFETIME_MS,
  })
  const cacheKey = randomBytes(32).toString('base64')
  const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  const workers: Worker[] = []
  try {
    // Start the fleet ten processes at a time, so that booting 50 Node.js processes does not
    // starve the machine (and the platform in this process) of CPU.
    for (let i = 0; i < WORKERS; i++) {
      const course = platform.createContext({ id: `course-${i + 1}`, learners: 5 })
      const item = course.addLineItem({ label: 'Lab report', scoreMaximum: 10 })
      workers.push(
        startWorker({
          redisUrl: redis.url,
          cacheKey,
          issuer: platform.issuer,
          tokenUrl: platform.tokenUrl,
          privateKeyPem,
          claim: course.agsClaim({ lineItem: item.id }),
          learners: course.members().map((member) => member.user_id),
        }),
      )
      if (workers.length % 10 === 0) await Promise.all(workers.slice(-10).map((w) => w.ready))
    }
    await Promise.all(workers.map((w) => w.ready))
    const startedAt = Date.now()
    for (const w of workers) w.child.send({ type: 'go', until: startedAt + RUN_MS } satisfies ToWorker)
    const results = await Promise.all(workers.map((w) => w.done))

    const posted = results.reduce((sum, r) => sum + r.posted, 0)
    const failures = results.flatMap((r) => r.failures)
    const failed = failures.length
    const times = platform.requests.map((request) => request.at)
    const gaps = times.slice(1).map((at, i) => at - times[i]!)
    const during = times.filter((at) => at >= startedAt).length
    console.log(
      `${WORKERS} worker processes posted ${posted} scores to ${WORKERS} courses; failed: ${failed}`,
    )
    console.log(
      `token requests for the whole fleet: ${times.length} (${during} during the ${RUN_MS / 1000} s run, tokens live ${TOKEN_LIFETIME_MS / 1000} s)`,
    )
    console.log(
      `closest two token requests: ${gaps.length === 0 ? 'n/a' : `${Math.min(...gaps)} ms`} apart (one per renewal)`,
    )
    // A process whose Redis calls time out (a starved machine) fetches on its own: a miss, by design.
    const degraded = results.reduce((sum, r) => sum + r.degraded, 0)
    console.log(`store errors, failed refreshes and lock waits given up across the fleet: ${degraded}`)
    console.log(
      `scores accepted: ${platform.stats().scoresAccepted}; refused for an expired token: ${platform.stats().rejectedUnauthorized}`,
    )
    const counted = new Map<string, number>()
    for (const failure of failures) counted.set(failure, (counted.get(failure) ?? 0) + 1)
    for (const [failure, count] of counted) console.log(`failure x${count}: ${failure}`)
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill()
    await Promise.all(workers.map((w) => w.exited))
    await redis.stop()
  }
}

interface Worker {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  readonly done: Promise<{
    readonly posted: number
    readonly failures: readonly string[]
    readonly degraded: number
  }>
  readonly exited: Promise<void>
}

/** Forks this file as a worker and hands it its setup; `ready` and `done` reject if it dies first. */
function startWorker(setup: WorkerSetup): Worker {
  const child = fork(fileURLToPath(import.meta.url), ['worker'], { stdio: 'inherit' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const died = exited.then(() => {
    throw new Error(`worker ${child.pid ?? '?'} exited with code ${child.exitCode ?? child.signalCode}`)
  })
  died.catch(() => {}) // observed through ready and done
  const message = <T extends FromWorker['type']>(type: T) =>
    Promise.race([
      new Promise<Extract<FromWorker, { type: T }>>((resolve) =>
        child.on(
          'message',
          (m: FromWorker) => m.type === type && resolve(m as Extract<FromWorker, { type: T }>),
        ),
      ),
      died,
    ])
  const ready = message('ready').then(() => undefined)
  const done = message('done')
  ready.catch(() => {})
  done.catch(() => {})
  child.send({ type: 'setup', setup } satisfies ToWorker)
  return { child, ready, done, exited }
}

/** REDIS_URL, or a redis-server of our own on a free loopback port. */
async function redisUrl(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { Redis } = await import('ioredis')
  const given = process.env['REDIS_URL']
  if (given !== undefined && given !== '') return { url: given, stop: async () => {} }
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer().once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  )
  await new Promise<void>((resolve, reject) => {
    const missing = new Error('set REDIS_URL or install redis-server to run this example')
    server.once('error', () => reject(missing))
    const deadline = Date.now() + 10_000
    const ping = async (): Promise<void> => {
      if (Date.now() > deadline) return reject(missing)
      const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null })
      probe.on('error', () => {})
      try {
        await probe.connect()
        probe.disconnect()
        resolve()
      } catch {
        probe.disconnect()
        setTimeout(() => void ping(), 50)
      }
    }
    void ping()
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        server.once('exit', () => resolve())
        server.kill('SIGTERM')
      }),
  }
}
