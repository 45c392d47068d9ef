/**
 * Real `redis-server` processes on free loopback ports for the Redis suites: one standalone
 * server (stop, restart on the same port) or a 3-master cluster. Nothing here touches any
 * address other than 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
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

export const REDIS_MISSING_MESSAGE =
  'redis-server is not installed: the Redis suites start their own redis-server on 127.0.0.1. ' +
  'Install it with `sudo apt-get install redis-server` (or `brew install redis`).'

/**
 * What a Redis suite should do: run, skip (a developer machine without redis-server), or fail
 * (CI without redis-server must not pass silently). Use as
 * `describe.skipIf(redisSuite() === 'skip')(...)` and call {@link requireRedis} in `beforeAll`.
 */
export function redisSuite(): 'run' | 'skip' {
  if (redisAvailable) return 'run'
  if (process.env.CI === undefined || process.env.CI === '') {
    console.warn(REDIS_MISSING_MESSAGE)
    return 'skip'
  }
  return 'run'
}

/** Throws the install hint when redis-server is missing (reached only in CI, see {@link redisSuite}). */
export function requireRedis(): void {
  if (!redisAvailable) throw new Error(REDIS_MISSING_MESSAGE)
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

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

/** One redis-server process on 127.0.0.1. */
export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
  /** Whether the process is running now. */
  readonly running: boolean
  /** SIGTERM, and resolves once the process has exited. */
  stop(): Promise<void>
  /** Starts it again on the same port (after `stop`). */
  restart(): Promise<void>
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
  const extraArgs = options.extraArgs ?? []
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

  const stop = async (): Promise<void> => {
    const current = child
    if (current === undefined) return
    child = undefined
    current.kill('SIGTERM')
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
    restart: async () => {
      await stop()
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
