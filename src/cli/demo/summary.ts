import { formatCount, formatMs, formatPercent, wrap, type Colors } from '../format.js'
import { CLIENT_LABELS } from './display.js'
import { LatencyHistogram } from './histogram.js'
import type { OutageReport } from './outage.js'
import type { PhaseResult } from './phase.js'
import type { DemoSettings } from './settings.js'

/** One phase in the JSON summary. Token requests are the token server's own count. */
export interface PhaseSummary {
  readonly client: string
  readonly durationMs: number
  readonly workers: number
  readonly processes: number
  readonly apiCalls: number
  readonly apiCallsPerSecond: number
  /** Calls that did not get a 2xx answer, or could not be made for want of a token. */
  readonly failedApiCalls: number
  /** Calls the API rejected because the token had expired (counted by the API). */
  readonly expiredTokenRejections: number
  /** Token requests, as counted by the token server. */
  readonly tokenRequests: number
  /** Token requests, as counted by the clients themselves (equal to the above). */
  readonly tokenRequestsCountedByClients: number
  readonly renewals: {
    readonly count: number
    readonly tokenRequestsPerRenewal: number
    readonly maxTokenRequestsInOneRenewal: number
  }
  readonly cacheHitRatio: number
  readonly backgroundRenewals: number
  /** Tokens a process took from Redis instead of asking the token endpoint. */
  readonly tokensFromRedis: number
  readonly latencyMs: {
    readonly p50: number
    readonly p95: number
    readonly p99: number
    readonly max: number
  }
  readonly outage: OutageReport | null
  /**
   * How late the event loop of the process that ran the token server ran, in ms (p99 and max): a
   * busy machine shows here first, and every latency above includes it.
   */
  readonly eventLoopDelayMs: { readonly p99: number; readonly max: number }
  /** The token server's and API's counters, as they counted them. */
  readonly server: PhaseResult['server']
}

/** The whole JSON summary. */
export interface DemoSummary {
  readonly version: string
  readonly settings: DemoSettings
  readonly tokenkeeper: PhaseSummary
  readonly naive: PhaseSummary | null
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits))

export function summarizePhase(result: PhaseResult, processes: number): PhaseSummary {
  const { report, server, settings } = result
  const latency = new LatencyHistogram()
  latency.merge(report.latency)
  const lookups = report.client.hits + report.client.misses
  const seconds = Math.max(settings.durationMs, 1) / 1000
  return {
    client: CLIENT_LABELS[settings.kind],
    durationMs: settings.durationMs,
    workers: settings.workers,
    processes,
    apiCalls: report.calls,
    apiCallsPerSecond: Math.round(report.calls / seconds),
    failedApiCalls: report.failed,
    expiredTokenRejections: server.resourceRejectedExpired,
    tokenRequests: server.tokenRequests,
    tokenRequestsCountedByClients: report.client.tokenRequests,
    renewals: { ...result.renewals, tokenRequestsPerRenewal: round(result.renewals.tokenRequestsPerRenewal) },
    cacheHitRatio: lookups === 0 ? 0 : round(report.client.hits / lookups, 6),
    backgroundRenewals: report.client.backgroundRenewals,
    tokensFromRedis: report.client.storeHits,
    latencyMs: {
      p50: round(latency.percentile(50), 3),
      p95: round(latency.percentile(95), 3),
      p99: round(latency.percentile(99), 3),
      max: round(latency.maxMs, 3),
    },
    outage: result.outage ?? null,
    eventLoopDelayMs: {
      p99: round(result.eventLoopDelayMs.p99, 1),
      max: round(result.eventLoopDelayMs.max, 1),
    },
    server,
  }
}

/** The summary as a table for people. */
export function renderSummary(summary: DemoSummary, colors: Colors): string {
  const phases = summary.naive === null ? [summary.tokenkeeper] : [summary.tokenkeeper, summary.naive]
  const { settings } = summary
  const good = (value: number, text: string): string => (value === 0 ? colors.green(text) : colors.red(text))
  const rows: [string, (phase: PhaseSummary) => string][] = [
    ['run', (p) => `${(p.durationMs / 1000).toFixed(1)} s`],
    ['API calls', (p) => formatCount(p.apiCalls)],
    ['API calls per second', (p) => formatCount(p.apiCallsPerSecond)],
    ['failed API calls', (p) => good(p.failedApiCalls, formatCount(p.failedApiCalls))],
    [
      '  rejected: token expired',
      (p) => good(p.expiredTokenRejections, formatCount(p.expiredTokenRejections)),
    ],
    ['token requests', (p) => colors.bold(formatCount(p.tokenRequests))],
    [
      '  per renewal: mean (max)',
      (p) =>
        `${p.renewals.tokenRequestsPerRenewal} (${formatCount(p.renewals.maxTokenRequestsInOneRenewal)})`,
    ],
    ['cache hit ratio', (p) => formatPercent(p.cacheHitRatio)],
    ['latency p50', (p) => formatMs(p.latencyMs.p50)],
    ['latency p95', (p) => formatMs(p.latencyMs.p95)],
    ['latency p99', (p) => formatMs(p.latencyMs.p99)],
    ['latency max', (p) => formatMs(p.latencyMs.max)],
  ]
  const width = 26
  const columns = phases.map((phase) => Math.max(14, phase.client.length + 2))
  // eslint-disable-next-line no-control-regex -- measures text without its color codes
  const visible = (text: string): number => text.replace(/\x1b\[[0-9;]*m/g, '').length
  const pad = (text: string, size: number): string => ' '.repeat(Math.max(0, size - visible(text))) + text
  const fleet =
    settings.processes > 1
      ? ` in ${settings.processes} processes${settings.redis ? ' sharing Redis' : ''}`
      : ''
  const lines = [
    colors.bold(
      `Summary: ${formatCount(settings.workers)} workers${fleet}, ${settings.tokenLifetimeMs / 1000} s tokens, ` +
        `token endpoint latency ${formatMs(settings.latencyMs)}${settings.fault === null ? '' : ', token endpoint outage'}`,
    ),
    '',
    ' '.repeat(width) +
      phases.map((phase, index) => pad(colors.bold(phase.client), columns[index] ?? 14)).join(''),
    ...rows.map(
      ([label, value]) =>
        label.padEnd(width) + phases.map((phase, index) => pad(value(phase), columns[index] ?? 14)).join(''),
    ),
    '',
  ]
  const tk = summary.tokenkeeper
  const naive = summary.naive
  if (naive !== null && tk.tokenRequests > 0) {
    // One sentence on what the table shows, per token lifetime of work.
    const ratio =
      naive.tokenRequests / Math.max(1, naive.durationMs) / (tk.tokenRequests / Math.max(1, tk.durationMs))
    lines.push(
      colors.bold(
        `In short: per second of work, the naive cache asked the token endpoint ${ratio.toFixed(ratio >= 10 ? 0 : 1)}x as often as tokenkeeper` +
          (naive.failedApiCalls > tk.failedApiCalls
            ? `, and ${formatCount(naive.failedApiCalls)} of its API calls failed against tokenkeeper's ${formatCount(tk.failedApiCalls)}.`
            : '.'),
      ),
    )
  }
  lines.push(
    `Token requests counted by the token server: ${formatCount(tk.tokenRequests)} (the clients counted ${formatCount(tk.tokenRequestsCountedByClients)}). ` +
      `${formatCount(tk.backgroundRenewals)} renewal ${tk.backgroundRenewals === 1 ? 'attempt' : 'attempts'} ran in the background, before expiry, while callers were served the cached token.`,
  )
  if (settings.processes > 1 && settings.redis) {
    lines.push(
      `Fleet: ${formatCount(tk.renewals.count)} renewals for ${settings.processes} processes took ${formatCount(tk.tokenRequests)} token requests; ` +
        `${formatCount(tk.tokensFromRedis)} times a process took the token another one had fetched, from Redis.`,
    )
  }
  for (const phase of phases) {
    if (phase.outage === null) continue
    const { outage } = phase
    lines.push(
      `Outage (${phase.client}): the token endpoint answered 503 for ${formatMs(outage.durationMs)} from ${formatMs(outage.startedAfterMs)}; ` +
        `${formatCount(outage.failedTokenRequests)} token requests refused, ${good(phase.failedApiCalls, formatCount(phase.failedApiCalls))} API calls failed.`,
    )
  }
  if (settings.fault !== null && phases.every((phase) => phase.outage === null)) {
    lines.push(
      colors.yellow('The outage did not fit in this run: give it at least two token lifetimes (--duration).'),
    )
  }
  if (naive !== null && tk.latencyMs.p95 > naive.latencyMs.p95 && tk.latencyMs.p99 <= naive.latencyMs.p99) {
    lines.push(
      `Latency: tokenkeeper's median and p95 (${formatMs(tk.latencyMs.p50)}, ${formatMs(tk.latencyMs.p95)}) are a little above the naive cache's ` +
        `(${formatMs(naive.latencyMs.p50)}, ${formatMs(naive.latencyMs.p95)}): each call goes through tokens.fetch (the token lookup, its header, the 401 handling); ` +
        'the tails (p99, max) are where the naive cache waits for its stampedes.',
    )
  }
  const stalled = phases.filter((phase) => phase.eventLoopDelayMs.max >= STALL_NOTE_MS)
  if (stalled.length > 0) {
    lines.push(
      colors.yellow(
        `This machine was busy: the event loop ran up to ${stalled.map((p) => `${formatMs(p.eventLoopDelayMs.max)} late (${p.client})`).join(', ')}; ` +
          "the latencies above include those stalls, and a stall longer than a token's last tenth of life can fail calls in an outage.",
      ),
    )
  }
  return `${lines.map((line) => wrap(line)).join('\n')}\n`
}

/** From how late a run of the event loop the summary says that the machine was busy. */
const STALL_NOTE_MS = 100
