import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { CliError, ExitCode, type ExitCodeValue } from '../errors.js'
import type { ClientSpec } from './clients.js'
import type { FromWorker, ToWorker } from './fleet-protocol.js'
import { LatencyHistogram } from './histogram.js'
import type { WorkloadRunner } from './phase.js'
import {
  sumProgress,
  type Workload,
  type WorkloadProgress,
  type WorkloadReport,
  type WorkloadShape,
} from './workload.js'

/** Worker processes that run a workload between them. */
export interface Fleet extends WorkloadRunner {
  close(): Promise<void>
}

interface Member {
  readonly child: ChildProcess
  progress: WorkloadProgress | undefined
  stderr: string
}

const EMPTY_PROGRESS: WorkloadProgress = sumProgress([])

function failure(member: Member, message: FromWorker | undefined): CliError {
  if (message?.type === 'error') return new CliError(message.exitCode as ExitCodeValue, message.message)
  const detail = member.stderr.trim().split('\n').at(-1) ?? ''
  return new CliError(
    ExitCode.failure,
    `a demo worker process exited unexpectedly${detail === '' ? '' : `: ${detail}`}`,
  )
}

/** Resolves with the next message of `type` from `member`, rejects on an error message or exit. */
function next<T extends FromWorker['type']>(
  member: Member,
  type: T,
): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromWorker): void => {
      if (message.type === type) {
        cleanup()
        resolve(message as Extract<FromWorker, { type: T }>)
      } else if (message.type === 'error') {
        cleanup()
        reject(failure(member, message))
      }
    }
    const onExit = (): void => {
      cleanup()
      reject(failure(member, undefined))
    }
    const cleanup = (): void => {
      member.child.off('message', onMessage)
      member.child.off('exit', onExit)
    }
    member.child.on('message', onMessage)
    member.child.on('exit', onExit)
  })
}

function share(total: number, parts: number, index: number): number {
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0)
}

/**
 * Starts `processes` worker processes (this package's `fleet-worker.js`, over IPC). With
 * `redisUrl`, each one's TokenManager uses `redisStore` on one shared Redis (a fresh key prefix
 * and encryption key per run); without, each keeps its own tokens.
 */
export async function startFleet(processes: number, redisUrl: string | undefined): Promise<Fleet> {
  const runId = randomBytes(6).toString('hex')
  const redis =
    redisUrl === undefined
      ? undefined
      : { url: redisUrl, prefix: `tokenkeeper-demo-${runId}`, key: randomBytes(32).toString('base64') }
  const members: Member[] = []
  const workerUrl = new URL('./fleet-worker.js', import.meta.url)
  for (let index = 0; index < processes; index++) {
    const child = fork(workerUrl, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' })
    const member: Member = { child, progress: undefined, stderr: '' }
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (chunk: string) => {
      member.stderr = (member.stderr + chunk).slice(-4_000)
    })
    child.on('message', (message: FromWorker) => {
      if (message.type === 'progress') member.progress = message.progress
    })
    members.push(member)
  }
  const send = (member: Member, message: ToWorker): void => {
    member.child.send(message)
  }
  const close = async (): Promise<void> => {
    await Promise.all(
      members.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = new Promise((resolve) => child.once('exit', resolve))
        if (child.connected) child.send({ type: 'exit' } satisfies ToWorker)
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
        await exited
        clearTimeout(timer)
      }),
    )
  }
  try {
    const ready = members.map((member) => next(member, 'ready'))
    for (const member of members) send(member, { type: 'init', redis })
    await Promise.all(ready)
  } catch (error) {
    await close()
    throw error
  }

  return {
    close,
    run(spec: ClientSpec, shape: WorkloadShape): Workload {
      for (const member of members) member.progress = undefined
      const done = members.map((member) => next(member, 'done'))
      members.forEach((member, index) =>
        send(member, {
          type: 'run',
          spec,
          shape: { ...shape, workers: share(shape.workers, members.length, index) },
        }),
      )
      return {
        progress: () => sumProgress(members.map((member) => member.progress ?? EMPTY_PROGRESS)),
        done: Promise.all(done).then((messages): WorkloadReport => {
          const histogram = new LatencyHistogram()
          for (const { report } of messages) histogram.merge(report.latency)
          return { ...sumProgress(messages.map(({ report }) => report)), latency: histogram.toJSON() }
        }),
      }
    },
  }
}
