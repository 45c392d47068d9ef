/**
 * Real `redis-server` processes on free loopback ports for the Redis suites: one standalone
 * server (stop, restart on the same port), a 3-master cluster, or a Sentinel setup (a primary, a
 * replica, three `redis-sentinel` processes). Nothing here touches any address other than 127.0.0.1.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const HOST = '127.0.0.1'

function onPath(binary: string): boolean {
  return spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0
}

/** Whether `redis-server` and `redis-cli` can be run. */
export const redisAvailable: boolean = onPath('redis-server') && onPath('redis-cli')

/** Whether `redis-sentinel` can be run too (Debian packages it apart from redis-server). */
export const sentinelAvailable: boolean = redisAvailable && onPath('redis-sentinel')

export const REDIS_MISSING_MESSAGE =
  'redis-server is not installed: the Redis suites start their own redis-server on 127.0.0.1. ' +
  'Install it with `sudo apt-get install redis-server` (or `brew install redis`).'

export const SENTINEL_MISSING_MESSAGE =
  'redis-sentinel is not installed: the Sentinel suite starts its own sentinels on 127.0.0.1. ' +
  'Install it with `sudo apt-get install redis-server redis-sentinel` (or `brew install redis`).'

/** What a suite needs: a redis-server, or also redis-sentinel. */
export type RedisNeeds = 'server' | 'sentinel'

function available(needs: RedisNeeds): boolean {
  return needs === 'sentinel' ? sentinelAvailable : redisAvailable
}

function missingMessage(needs: RedisNeeds): string {
  return needs === 'sentinel' && redisAvailable ? SENTINEL_MISSING_MESSAGE : REDIS_MISSING_MESSAGE
}

/**
 * What a Redis suite should do: run, skip (a developer machine without redis-server), or fail
 * (CI without redis-server must not pass silently). Use as
 * `describe.skipIf(redisSuite() === 'skip')(...)` and call {@link requireRedis} in `beforeAll`
 * (with `'sentinel'` for a suite that also needs redis-sentinel).
 */
export function redisSuite(needs: RedisNeeds = 'server'): 'run' | 'skip' {
  if (available(needs)) return 'run'
  if (process.env.CI === undefined || process.env.CI === '') {
    console.warn(missingMessage(needs))
    return 'skip'
  }
  return 'run'
}

/** Throws the install hint when redis-server (or redis-sentinel) is missing (reached only in CI, see {@link redisSuite}). */
export function requireRedis(needs: RedisNeeds = 'server'): void {
  if (!available(needs)) throw new Error(missingMessage(needs))
}

/** A free TCP port on 127.0.0.1 (bind to port 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, HOST, () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** Sends one inline command over a fresh socket and returns the raw reply (or throws). */
async function rawCommand(port: number, command: string, timeoutMs = 500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port })
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply from 127.0.0.1:${port}`))
    }, timeoutMs)
    socket.setEncoding('utf8')
    socket.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on('data', (chunk: string) => {
      reply += chunk
      if (reply.endsWith('\r\n')) {
        clearTimeout(timer)
        socket.end()
        resolve(reply)
      }
    })
    socket.write(`${command}\r\n`)
  })
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(intervalMs)
  }
}

/** One redis-server process on 127.0.0.1. */
export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
  /** Whether the process is running now. */
  readonly running: boolean
  /** SIGTERM (or `signal`, e.g. SIGKILL for a crash), and resolves once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again on the same port (after `stop`), with other `extraArgs` if given. */
  restart(options?: { readonly extraArgs?: readonly string[] }): Promise<void>
  /** Stops it for good and removes its files. */
  close(): Promise<void>
}

interface ServerOptions {
  readonly port?: number
  readonly extraArgs?: readonly string[]
  readonly dir?: string
}

function launch(port: number, dir: string, extraArgs: readonly string[]): ChildProcess {
  const args = [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--protected-mode',
    'yes',
    ...extraArgs,
  ]
  const child = spawn('redis-server', args, { stdio: 'ignore' })
  child.on('error', () => {})
  return child
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>((resolve) => child.once('exit', () => resolve()))
}

/** Starts a standalone redis-server on a free loopback port and waits until it answers PING. */
export async function startRedisServer(options: ServerOptions = {}): Promise<RedisServer> {
  requireRedis()
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tokenkeeper-redis-'))
  const ownsDir = options.dir === undefined
  let extraArgs = options.extraArgs ?? []
  let port = options.port ?? (await freePort())
  let child: ChildProcess | undefined
  /** Only the first start may move to another port; a restart keeps its port. */
  let mayMove = options.port === undefined

  const start = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const started = launch(port, dir, extraArgs)
      child = started
      try {
        await waitFor(`redis-server on port ${port}`, async () => {
          if (started.exitCode !== null) throw new Error('exited')
          return (await rawCommand(port, 'PING')).startsWith('+PONG')
        })
        return
      } catch (error) {
        started.kill('SIGKILL')
        await exited(started)
        // The free port was taken between probing and binding: take another one (first start only).
        if (attempt >= 3 || !mayMove) throw error
        port = await freePort()
      }
    }
  }
  await start()
  mayMove = false

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const current = child
    if (current === undefined) return
    child = undefined
    current.kill(signal)
    await exited(current)
  }

  return {
    get port() {
      return port
    },
    get url() {
      return `redis://${HOST}:${port}`
    },
    get running() {
      return child !== undefined
    },
    stop,
    restart: async (again = {}) => {
      await stop()
      if (again.extraArgs !== undefined) extraArgs = again.extraArgs
      await start()
    },
    close: async () => {
      await stop()
      if (ownsDir) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A Redis Cluster of masters (no replicas) on loopback ports. */
export interface RedisCluster {
  readonly ports: readonly number[]
  readonly nodes: readonly { readonly host: string; readonly port: number }[]
  close(): Promise<void>
}

/** Starts `masters` cluster-enabled servers, joins them with `redis-cli --cluster create`, waits for `cluster_state:ok`. */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  requireRedis()
  const dir = mkdtempSync(join(tmpdir(), 'tokenkeeper-cluster-'))
  const servers: RedisServer[] = []
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort()
      servers.push(
        await startRedisServer({
          port,
          dir,
          extraArgs: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '2000',
          ],
        }),
      )
    }
    const addresses = servers.map((server) => `${HOST}:${server.port}`)
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 20_000 },
    )
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}`)
    for (const server of servers) {
      await waitFor(
        `cluster_state:ok on ${server.port}`,
        async () => (await rawCommand(server.port, 'CLUSTER INFO')).includes('cluster_state:ok'),
        15_000,
      )
    }
  } catch (error) {
    for (const server of servers) await server.close()
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return {
    ports: servers.map((server) => server.port),
    nodes: servers.map((server) => ({ host: HOST, port: server.port })),
    close: async () => {
      for (const server of servers) await server.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Runs `redis-cli` against one loopback port and returns its output lines. */
async function cli(port: number, args: readonly string[], timeoutMs = 2_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(
      'redis-cli',
      ['-h', HOST, '-p', String(port), ...args],
      { encoding: 'utf8', timeout: timeoutMs },
      (error, stdout) => {
        if (error !== null) reject(new Error(`redis-cli failed on port ${port}: ${error.message}`))
        else resolve(stdout.split('\n').filter((line) => line !== ''))
      },
    )
  })
}

/** A flat `key value key value` reply (`SENTINEL MASTER`, ...) as a map. */
function fields(lines: readonly string[]): Map<string, string> {
  const map = new Map<string, string>()
  for (let i = 0; i + 1 < lines.length; i += 2) map.set(lines[i]!, lines[i + 1]!)
  return map
}

/** `INFO replication` of one server as a map (`role`, `master_link_status`, ...). */
async function replicationInfo(port: number): Promise<Map<string, string>> {
  const map = new Map<string, string>()
  for (const line of await cli(port, ['INFO', 'replication'])) {
    const at = line.indexOf(':')
    if (at > 0) map.set(line.slice(0, at), line.slice(at + 1).trim())
  }
  return map
}

/** A primary, its replica and three sentinels monitoring them, all on 127.0.0.1. */
export interface SentinelSetup {
  /** The name the sentinels monitor the primary under (the clients' `name`). */
  readonly name: string
  /** The sentinels' addresses (ioredis `sentinels`, node-redis `sentinelRootNodes`). */
  readonly sentinels: readonly { readonly host: string; readonly port: number }[]
  /** The server that was primary at the start. */
  readonly primary: RedisServer
  /** The server that was the replica at the start. */
  readonly replica: RedisServer
  /** The port of the server the sentinels name primary now (asked of the first that answers). */
  primaryPort(): Promise<number>
  /**
   * Waits (bounded) until every sentinel names the server on `port` primary and that server says
   * `role:master`; resolves with the milliseconds it took.
   */
  waitForPrimary(port: number, timeoutMs?: number): Promise<number>
  /**
   * Starts `server` (stopped) again as a replica of the current primary, and waits (bounded) until
   * it is in sync and every sentinel lists it as a healthy replica.
   */
  rejoin(server: RedisServer, timeoutMs?: number): Promise<void>
  /** `SENTINEL FAILOVER`: a switchover to a replica, the primary staying up (retried, bounded, until accepted). */
  switchover(timeoutMs?: number): Promise<void>
  /** Stops every process and removes their files. */
  close(): Promise<void>
}

/** Options of {@link startSentinelSetup}. */
export interface SentinelSetupOptions {
  /** Sentinel `down-after-milliseconds`: how long a silent primary takes to be judged down. Default 500. */
  readonly downAfterMs?: number
  /** Sentinel `failover-timeout`. Default 3 000. */
  readonly failoverTimeoutMs?: number
}

/**
 * Starts a primary, a replica of it, and three `redis-sentinel` processes (quorum 2) monitoring
 * them, on free loopback ports in a temporary directory; resolves once the replica is in sync and
 * every sentinel knows the replica and the two other sentinels (so a failover can happen at once).
 */
export async function startSentinelSetup(options: SentinelSetupOptions = {}): Promise<SentinelSetup> {
  requireRedis('sentinel')
  const name = 'tk-primary'
  const dir = mkdtempSync(join(tmpdir(), 'tokenkeeper-sentinel-'))
  const servers: RedisServer[] = []
  const sentinels: { port: number; child: ChildProcess }[] = []
  const stopSentinels = async (): Promise<void> => {
    for (const sentinel of sentinels) {
      sentinel.child.kill('SIGKILL')
      await exited(sentinel.child)
    }
  }
  try {
    // No delay before a full sync (the default waits 5 s for more replicas to join one).
    const sync = ['--repl-diskless-sync-delay', '0']
    const primary = await startRedisServer({ dir: mkdtempSync(join(dir, 'primary-')), extraArgs: sync })
    servers.push(primary)
    const replica = await startRedisServer({
      dir: mkdtempSync(join(dir, 'replica-')),
      extraArgs: [...sync, '--replicaof', HOST, String(primary.port)],
    })
    servers.push(replica)
    await waitFor(
      'the replica to sync',
      async () => (await replicationInfo(replica.port)).get('master_link_status') === 'up',
      10_000,
      50,
    )
    const startSentinel = async (): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        const port = await freePort()
        const config = join(dir, `sentinel-${port}.conf`)
        writeFileSync(
          config,
          [
            `port ${port}`,
            `bind ${HOST}`,
            `dir ${dir}`,
            `sentinel monitor ${name} ${HOST} ${primary.port} 2`,
            `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 500}`,
            `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 3_000}`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'),
        )
        const child = spawn('redis-sentinel', [config], { stdio: 'ignore' })
        child.on('error', () => {})
        try {
          await waitFor(`redis-sentinel on port ${port}`, async () => {
            if (child.exitCode !== null) throw new Error('exited')
            return (await rawCommand(port, 'PING')).startsWith('+PONG')
          })
          sentinels.push({ port, child })
          return
        } catch (error) {
          child.kill('SIGKILL')
          await exited(child)
          // The free port was taken between probing and binding: take another one.
          if (attempt >= 3) throw error
        }
      }
    }
    await Promise.all([startSentinel(), startSentinel(), startSentinel()])
    // Sentinels find the replica through the primary's INFO and each other through hello messages
    // on the primary (every 2 s): a failover needs the quorum to know each other.
    for (const sentinel of sentinels) {
      await waitFor(
        `sentinel ${sentinel.port} to know the replica and the other sentinels`,
        async () => {
          const master = fields(await cli(sentinel.port, ['SENTINEL', 'MASTER', name]))
          return master.get('num-slaves') === '1' && master.get('num-other-sentinels') === '2'
        },
        20_000,
        100,
      )
    }
    const primaryPort = async (): Promise<number> => {
      for (const sentinel of sentinels) {
        try {
          const [, port] = await cli(sentinel.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name])
          if (port !== undefined) return Number(port)
        } catch {
          // ask the next one
        }
      }
      throw new Error('no sentinel answered')
    }
    return {
      name,
      sentinels: sentinels.map((sentinel) => ({ host: HOST, port: sentinel.port })),
      primary,
      replica,
      primaryPort,
      waitForPrimary: async (port, timeoutMs = 20_000) => {
        const startedAt = performance.now()
        await waitFor(
          `the sentinels to name ${port} primary`,
          async () => {
            for (const sentinel of sentinels) {
              const [, named] = await cli(sentinel.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name])
              if (Number(named) !== port) return false
            }
            return (await replicationInfo(port)).get('role') === 'master'
          },
          timeoutMs,
          50,
        )
        return Math.round(performance.now() - startedAt)
      },
      rejoin: async (server, timeoutMs = 20_000) => {
        const primaryAt = await primaryPort()
        await server.restart({ extraArgs: [...sync, '--replicaof', HOST, String(primaryAt)] })
        await waitFor(
          `${server.port} to sync with ${primaryAt}`,
          async () => (await replicationInfo(server.port)).get('master_link_status') === 'up',
          timeoutMs,
          50,
        )
        await waitFor(
          `the sentinels to see ${server.port} as a healthy replica`,
          async () => {
            for (const sentinel of sentinels) {
              const lines = await cli(sentinel.port, ['SENTINEL', 'REPLICAS', name])
              const healthy = lines.some((line, at) => {
                if (line !== 'name' || lines[at + 1] !== `${HOST}:${server.port}`) return false
                const flags = lines.slice(at).findIndex((item) => item === 'flags')
                return flags >= 0 && lines[at + flags + 1] === 'slave'
              })
              if (!healthy) return false
            }
            return true
          },
          timeoutMs,
          100,
        )
      },
      switchover: async (timeoutMs = 20_000) => {
        await waitFor(
          'a sentinel to accept SENTINEL FAILOVER',
          async () => (await cli(sentinels[0]!.port, ['SENTINEL', 'FAILOVER', name]))[0] === 'OK',
          timeoutMs,
          250,
        )
      },
      close: async () => {
        await stopSentinels()
        for (const server of servers) await server.close()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (error) {
    await stopSentinels()
    for (const server of servers) await server.close()
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}
