import { performance } from 'node:perf_hooks'
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises'
import type { ClientStats, DemoClient } from './clients.js'
import { LatencyHistogram, type HistogramData } from './histogram.js'

/** The shape of a workload. */
export interface WorkloadShape {
  /** Concurrent workers, each calling the API in a loop. */
  readonly workers: number
  readonly durationMs: number
  /** Mean pause of a worker between two calls (uniform over 0 to twice this). */
  readonly thinkMs: number
}

/** Counters while a workload runs. */
export interface WorkloadProgress {
  readonly calls: number
  /** Calls answered 2xx. */
  readonly ok: number
  /** Calls answered otherwise, or that could not be made (no token). */
  readonly failed: number
  readonly client: ClientStats
}

/** What a finished workload reports. */
export interface WorkloadReport extends WorkloadProgress {
  readonly latency: HistogramData
}

/** A running workload. */
export interface Workload {
  progress(): WorkloadProgress
  readonly done: Promise<WorkloadReport>
}

/**
 * Runs `shape.workers` concurrent workers for `shape.durationMs`, each calling `client.call()` in
 * a loop with a random pause, and measures every call's latency (token wait included).
 */
export function runWorkload(client: DemoClient, shape: WorkloadShape): Workload {
  const histogram = new LatencyHistogram()
  const counts = { calls: 0, ok: 0, failed: 0 }
  const deadline = performance.now() + shape.durationMs

  const pause = async (): Promise<void> => {
    if (shape.thinkMs > 0) await sleep(Math.random() * 2 * shape.thinkMs)
    else await yieldToLoop()
  }

  const worker = async (): Promise<void> => {
    if (shape.thinkMs > 0) await sleep(Math.random() * shape.thinkMs)
    while (performance.now() < deadline) {
      const started = performance.now()
      let ok = false
      try {
        ok = await client.call()
      } catch {
        ok = false
      }
      histogram.record(performance.now() - started)
      counts.calls++
      if (ok) counts.ok++
      else counts.failed++
      await pause()
    }
  }

  const progress = (): WorkloadProgress => ({ ...counts, client: client.stats() })
  const done = (async (): Promise<WorkloadReport> => {
    await Promise.all(Array.from({ length: shape.workers }, worker))
    await client.close()
    return { ...progress(), latency: histogram.toJSON() }
  })()
  return { progress, done }
}

/** Adds up the progress of several processes. */
export function sumProgress(parts: readonly WorkloadProgress[]): WorkloadProgress {
  const client = {
    tokenRequests: 0,
    hits: 0,
    misses: 0,
    backgroundRenewals: 0,
    storeHits: 0,
    tokenFailures: 0,
  }
  const total = { calls: 0, ok: 0, failed: 0 }
  for (const part of parts) {
    total.calls += part.calls
    total.ok += part.ok
    total.failed += part.failed
    for (const name of Object.keys(client) as (keyof typeof client)[]) client[name] += part.client[name]
  }
  return { ...total, client }
}
