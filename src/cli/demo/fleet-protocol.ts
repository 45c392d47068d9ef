import type { ClientSpec } from './clients.js'
import type { WorkloadProgress, WorkloadReport, WorkloadShape } from './workload.js'

/** How the demo's parent process talks to its worker processes (over the IPC channel, never argv). */
export type ToWorker =
  | {
      readonly type: 'init'
      /** Redis to share tokens through, or none (each process keeps its own tokens). */
      readonly redis: { readonly url: string; readonly prefix: string; readonly key: string } | undefined
    }
  | { readonly type: 'run'; readonly spec: ClientSpec; readonly shape: WorkloadShape }
  | { readonly type: 'exit' }

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly progress: WorkloadProgress }
  | { readonly type: 'done'; readonly report: WorkloadReport }
  | { readonly type: 'error'; readonly message: string; readonly exitCode: number }

/** How often a worker process reports progress. */
export const PROGRESS_MS = 200
