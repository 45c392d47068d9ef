/**
 * A fleet of child processes, each a TokenManager with a Redis store on the built package
 * (`dist/`, made by `npm run build`), driven over IPC. Used by the fleet tests.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const childScript = fileURLToPath(new URL('./fleet-child.js', import.meta.url))
const distFiles = ['dist/index.js', 'dist/stores/redis/index.js', 'dist/testing/index.js'].map((file) =>
  fileURLToPath(new URL(`../../${file}`, import.meta.url)),
)

/** Throws unless `npm run build` has produced what the children import. */
export function requireBuild(): void {
  const missing = distFiles.filter((file) => !existsSync(file))
  if (missing.length > 0)
    throw new Error(
      `the fleet tests run the built package: run \`npm run build\` first (missing ${missing.join(', ')})`,
    )
}

export interface SetupMessage {
  readonly redisPort?: number
  readonly cluster?: readonly { readonly host: string; readonly port: number }[]
  readonly client?: 'ioredis' | 'node-redis'
  /** Redis behind Sentinel: the sentinels' addresses and the monitored primary's name. */
  readonly sentinels?: readonly { readonly host: string; readonly port: number }[]
  readonly sentinelName?: string
  readonly tokenUrl: string
  readonly prefix: string
  /** base64 */
  readonly key: string
  readonly lockTtlMs?: number
  readonly commandTimeoutMs?: number
}

export interface FleetEvent {
  readonly type: 'fetching' | 'invalidated'
  readonly pid?: number
  readonly scope?: string
  readonly at?: number
}

type Reply = Record<string, unknown>

/** One child process. */
export class Member {
  readonly child: ChildProcess
  readonly events: FleetEvent[] = []
  readonly #pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>()
  readonly #started: Promise<void>
  #next = 0

  constructor(onEvent: (member: Member, event: FleetEvent) => void) {
    this.child = fork(childScript, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    })
    this.#started = new Promise((resolve, reject) => {
      this.child.once('error', reject)
      this.child.once('exit', (code) => reject(new Error(`fleet child exited early (${code})`)))
      this.child.on('message', (message: Reply) => {
        if (message.type === 'started') return resolve()
        if (message.type === 'reply') {
          const waiter = this.#pending.get(message.id as number)
          this.#pending.delete(message.id as number)
          if (typeof message.error === 'string') waiter?.reject(new Error(`fleet child: ${message.error}`))
          else waiter?.resolve(message)
          return
        }
        const event = message as unknown as FleetEvent
        this.events.push(event)
        onEvent(this, event)
      })
    })
    this.#started.catch(() => {})
    this.child.once('exit', () => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error('fleet child exited'))
      this.#pending.clear()
    })
  }

  get pid(): number {
    return this.child.pid ?? -1
  }

  async request<T extends object = Reply>(
    cmd: string,
    args: Record<string, unknown> = {},
    timeoutMs = 20_000,
  ): Promise<T> {
    await this.#started
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`fleet child ${this.pid}: ${cmd} got no reply in ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer)
          resolve(reply as T)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      this.child.send({ cmd, id, ...args })
    })
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve()
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.kill(signal)
    return exited
  }
}

/** `size` children, each set up with `setup` (all of them ready: store subscribed). */
export async function startFleet(
  size: number,
  setup: (index: number) => SetupMessage,
  onEvent: (member: Member, event: FleetEvent) => void = () => {},
): Promise<Member[]> {
  requireBuild()
  const members = Array.from({ length: size }, () => new Member(onEvent))
  try {
    await Promise.all(members.map((member, index) => member.request('setup', { ...setup(index) })))
  } catch (error) {
    await stopFleet(members)
    throw error
  }
  return members
}

/** Closes every child (gracefully, then SIGKILL after a bound). */
export async function stopFleet(members: readonly Member[]): Promise<void> {
  await Promise.all(
    members.map(async (member) => {
      if (member.child.exitCode !== null || member.child.signalCode !== null) return
      await Promise.race([
        member.request('close', {}, 3_000).catch(() => {}),
        new Promise((r) => setTimeout(r, 3_000)),
      ])
      await member.kill()
    }),
  )
}
