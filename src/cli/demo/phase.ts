import { randomBytes } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { BackoffPolicy, RefreshPolicy } from '../../manager/policy.js'
import { startTokenServer } from '../../testing/token-server.js'
import type { TokenServer, TokenServerStats } from '../../testing/types.js'
import type { ClientKind, ClientSpec } from './clients.js'
import { OUTAGE_PLANS, scheduleOutage, type OutageReport } from './outage.js'
import type { Workload, WorkloadProgress, WorkloadReport, WorkloadShape } from './workload.js'

/** Runs a workload somewhere: in this process, or spread over child processes. */
export interface WorkloadRunner {
  run(spec: ClientSpec, shape: WorkloadShape): Workload
}

/** The settings of one phase (one client, against the shared demo server). */
export interface PhaseSettings extends WorkloadShape {
  readonly kind: ClientKind
  readonly tokenLifetimeMs: number
  readonly latencyMs: number
  readonly outage: boolean
}

/** What the live display shows. */
export interface LiveSnapshot {
  readonly kind: ClientKind
  readonly elapsedMs: number
  readonly durationMs: number
  readonly progress: WorkloadProgress
  /** Token requests counted by the token server. */
  readonly serverTokenRequests: number
  readonly outageActive: boolean
}

/** Token requests grouped into renewals: requests closer than a quarter of the lifetime belong to one. */
export interface Renewals {
  readonly count: number
  readonly tokenRequestsPerRenewal: number
  readonly maxTokenRequestsInOneRenewal: number
}

/** One finished phase. */
export interface PhaseResult {
  readonly settings: PhaseSettings
  readonly elapsedMs: number
  readonly report: WorkloadReport
  /** The token server's own counters: the ground truth for token requests and expired-token rejections. */
  readonly server: TokenServerStats
  readonly renewals: Renewals
  readonly outage: OutageReport | undefined
  /**
   * How late this process's event loop ran (timers firing late, I/O waiting), in ms: a machine too
   * busy to run the process on time shows here, and every latency above includes it.
   */
  readonly eventLoopDelayMs: { readonly p99: number; readonly max: number }
  /** What happened when, for the report: times in ms after the phase started. */
  readonly timeline: PhaseTimeline
}

/** A phase over time. */
export interface PhaseTimeline {
  /** Every token request the server received, with its HTTP status (0: no answer). */
  readonly tokenRequests: readonly { readonly atMs: number; readonly status: number }[]
  /** The workload's counters, sampled every 250 ms. */
  readonly samples: readonly { readonly atMs: number; readonly calls: number; readonly failed: number }[]
}

const CLIENT_ID = 'demo-service'
const TICK_MS = 250

/** Groups request arrival times into renewals (gaps longer than a quarter of the lifetime split them). */
export function groupRenewals(arrivals: readonly number[], lifetimeMs: number): Renewals {
  const sorted = [...arrivals].sort((a, b) => a - b)
  const sizes: number[] = []
  let previous = Number.NEGATIVE_INFINITY
  for (const at of sorted) {
    if (at - previous > lifetimeMs / 4 || sizes.length === 0) sizes.push(0)
    sizes[sizes.length - 1] = (sizes.at(-1) ?? 0) + 1
    previous = at
  }
  const count = sizes.length
  return {
    count,
    tokenRequestsPerRenewal: count === 0 ? 0 : sorted.length / count,
    maxTokenRequestsInOneRenewal: Math.max(0, ...sizes),
  }
}

/**
 * The outage run's manager policy, scaled to seconds-long tokens: renew at 45–55 % of the
 * lifetime and back off 1 % of it doubling up to 5 %. (The defaults, 75–85 % and 250 ms doubling
 * up to 10 s, are made for tokens that live minutes to hours.)
 */
export function outagePolicy(lifetimeMs: number): Partial<RefreshPolicy & BackoffPolicy> {
  return {
    refreshRatioMin: 0.45,
    refreshRatioMax: 0.55,
    baseBackoffMs: Math.max(1, Math.round(lifetimeMs * 0.01)),
    maxBackoffMs: Math.max(1, Math.round(lifetimeMs * 0.05)),
  }
}

async function settle(server: TokenServer): Promise<void> {
  const deadline = Date.now() + 5_000
  while (server.stats().inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
}

/** The token server and protected API every phase of one demo runs against. */
export interface DemoServer {
  readonly server: TokenServer
  /** The demo client's random secret. Never printed. */
  readonly clientSecret: string
}

/**
 * Starts the token server (with its protected API, which rejects expired tokens) that the warm-up
 * and every phase share: each client then finds the process and its connections as warm as the
 * other did, and the comparison measures token handling, not who opened connections first.
 */
export async function startDemoServer(options: {
  tokenLifetimeMs: number
  latencyMs: number
}): Promise<DemoServer> {
  const clientSecret = randomBytes(24).toString('base64url')
  const server = await startTokenServer({
    clients: [{ clientId: CLIENT_ID, clientSecret }],
    tokenLifetimeMs: options.tokenLifetimeMs,
    latencyMs: options.latencyMs,
  })
  return { server, clientSecret }
}

/** What the server counted between two snapshots of its counters (`inFlight` is the later one). */
export function countedSince(before: TokenServerStats, after: TokenServerStats): TokenServerStats {
  const byClient: Record<string, number> = {}
  for (const [client, count] of Object.entries(after.byClient)) {
    const delta = count - (before.byClient[client] ?? 0)
    if (delta !== 0) byClient[client] = delta
  }
  const counted: Record<string, unknown> = { ...after, byClient }
  for (const [name, value] of Object.entries(after)) {
    const earlier: unknown = before[name as keyof TokenServerStats]
    if (name !== 'inFlight' && typeof value === 'number' && typeof earlier === 'number')
      counted[name] = value - earlier
  }
  return counted as unknown as TokenServerStats
}

/**
 * Runs the workload of one phase against the shared demo server, and reports the client's counts
 * next to what the server counted during the phase.
 */
export async function runPhase(
  settings: PhaseSettings,
  demoServer: DemoServer,
  runner: WorkloadRunner,
  onTick: (snapshot: LiveSnapshot) => void,
): Promise<PhaseResult> {
  const { server, clientSecret } = demoServer
  await settle(server)
  const before = server.stats()
  try {
    const spec: ClientSpec = {
      kind: settings.kind,
      tokenUrl: server.tokenUrl,
      resourceUrl: server.resourceUrl,
      clientId: CLIENT_ID,
      clientSecret,
      ...(settings.outage && settings.kind === 'tokenkeeper'
        ? { policy: outagePolicy(settings.tokenLifetimeMs) }
        : {}),
    }
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    const startedAt = Date.now()
    const workload = runner.run(spec, settings)
    const outage = settings.outage
      ? scheduleOutage(server, {
          lifetimeMs: settings.tokenLifetimeMs,
          plan: OUTAGE_PLANS[settings.kind],
          phaseStartedAt: startedAt,
          phaseDurationMs: settings.durationMs,
        })
      : undefined
    const samples: { atMs: number; calls: number; failed: number }[] = []
    const tick = (): void => {
      const progress = workload.progress()
      const elapsedMs = Math.min(Date.now() - startedAt, settings.durationMs)
      samples.push({ atMs: elapsedMs, calls: progress.calls, failed: progress.failed })
      onTick({
        kind: settings.kind,
        elapsedMs,
        durationMs: settings.durationMs,
        progress,
        serverTokenRequests: server.stats().tokenRequests - before.tokenRequests,
        outageActive: outage?.active() ?? false,
      })
    }
    const ticker = setInterval(tick, TICK_MS)
    let report: WorkloadReport
    try {
      report = await workload.done
    } finally {
      clearInterval(ticker)
    }
    const outageReport = outage?.stop()
    delay.disable()
    const elapsedMs = Date.now() - startedAt
    await settle(server)
    tick()
    // This phase's token requests (the earlier ones were all answered before it began).
    const requests = server.requests.filter((request) => request.at >= startedAt)
    const renewals = groupRenewals(
      requests.map((request) => request.at),
      settings.tokenLifetimeMs,
    )
    const tokenRequests = requests.map((request) => ({
      atMs: request.at - startedAt,
      status: request.status ?? 0,
    }))
    return {
      settings,
      elapsedMs,
      report,
      server: countedSince(before, server.stats()),
      renewals,
      outage: outageReport,
      // The histogram counts in ns, and its resolution is included in every sample.
      eventLoopDelayMs: {
        p99: Math.max(0, delay.percentile(99) / 1e6 - 10),
        max: Math.max(0, delay.max / 1e6 - 10),
      },
      timeline: { tokenRequests, samples },
    }
  } finally {
    server.setFault(undefined)
  }
}
