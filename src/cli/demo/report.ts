import { LatencyHistogram } from './histogram.js'
import type { PhaseResult } from './phase.js'
import type { DemoSettings } from './settings.js'
import { summarizePhase, type PhaseSummary } from './summary.js'

/**
 * `tokenkeeper demo --report FILE.html`: one self-contained page (inline SVG and CSS, no script,
 * no network) that shows what the summary table says: token requests per second over time for
 * tokenkeeper and for the naive cache, with renewals and the outage window marked, caller errors,
 * and the latency distribution of both.
 */

const WIDTH = 860
const CHART_HEIGHT = 180
const PAD = { left: 56, right: 16, top: 28, bottom: 34 }
const BIN_MS = 250
const COLORS = { tokenkeeper: '#1a7f37', naive: '#9a6700', failed: '#cf222e', outage: '#d0d7de' }

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function fmt(value: number, digits = 1): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits })
}

/** Round axis steps: 1, 2 or 5 times a power of ten, about `count` of them up to `max`. */
function ticks(max: number, count = 4): number[] {
  if (max <= 0) return [0]
  const raw = max / count
  const power = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw
  const result: number[] = []
  for (let value = 0; value <= max + step / 2; value += step) result.push(value)
  return result
}

/** Token requests per second and caller errors per second of one phase, on a shared time axis. */
function requestsChart(phase: PhaseResult, kind: 'tokenkeeper' | 'naive', spanMs: number): string {
  const { tokenRequests, samples } = phase.timeline
  const bins = Math.max(1, Math.ceil(spanMs / BIN_MS))
  const ok = new Array<number>(bins).fill(0)
  const failed = new Array<number>(bins).fill(0)
  for (const request of tokenRequests) {
    if (request.atMs < 0 || request.atMs >= spanMs) continue
    const bin = Math.floor(request.atMs / BIN_MS)
    if (request.status >= 200 && request.status < 300) ok[bin] = (ok[bin] ?? 0) + 1
    else failed[bin] = (failed[bin] ?? 0) + 1
  }
  const perSecond = 1000 / BIN_MS
  const errorRates: { atMs: number; rate: number }[] = []
  for (let i = 1; i < samples.length; i++) {
    const previous = samples[i - 1]!
    const sample = samples[i]!
    const dt = sample.atMs - previous.atMs
    if (dt > 0) errorRates.push({ atMs: sample.atMs, rate: ((sample.failed - previous.failed) * 1000) / dt })
  }
  const maxRequests = Math.max(1, ...ok.map((n, i) => (n + (failed[i] ?? 0)) * perSecond))
  const plotW = WIDTH - PAD.left - PAD.right
  const plotH = CHART_HEIGHT - PAD.top - PAD.bottom
  const x = (ms: number): number => PAD.left + (ms / spanMs) * plotW
  const y = (value: number, max: number): number => PAD.top + plotH - (value / max) * plotH
  const parts: string[] = []
  const outage = phase.outage
  if (outage !== undefined) {
    const from = x(outage.startedAfterMs)
    const to = x(Math.min(spanMs, outage.startedAfterMs + outage.durationMs))
    parts.push(
      `<rect class="outage" x="${from.toFixed(1)}" y="${PAD.top}" width="${Math.max(1, to - from).toFixed(1)}" height="${plotH}" fill="${COLORS.outage}"><title>token endpoint down (503)</title></rect>`,
      `<text x="${(from + 4).toFixed(1)}" y="${PAD.top + 12}" font-size="11" fill="#57606a">outage</text>`,
    )
  }
  const barW = Math.max(1, plotW / bins - 1)
  for (let i = 0; i < bins; i++) {
    const good = (ok[i] ?? 0) * perSecond
    const bad = (failed[i] ?? 0) * perSecond
    if (good > 0) {
      parts.push(
        `<rect class="bar ok" x="${x(i * BIN_MS).toFixed(1)}" y="${y(good, maxRequests).toFixed(1)}" width="${barW.toFixed(1)}" height="${(PAD.top + plotH - y(good, maxRequests)).toFixed(1)}" fill="${COLORS[kind]}"><title>${fmt(good, 0)} token requests/s at ${fmt((i * BIN_MS) / 1000)} s</title></rect>`,
      )
    }
    if (bad > 0) {
      parts.push(
        `<rect class="bar failed" x="${x(i * BIN_MS).toFixed(1)}" y="${y(good + bad, maxRequests).toFixed(1)}" width="${barW.toFixed(1)}" height="${(y(good, maxRequests) - y(good + bad, maxRequests)).toFixed(1)}" fill="${COLORS.failed}"><title>${fmt(bad, 0)} refused token requests/s</title></rect>`,
      )
    }
  }
  const maxErrors = Math.max(1, ...errorRates.map((e) => e.rate))
  if (errorRates.some((e) => e.rate > 0)) {
    const d = errorRates
      .map(
        (e, i) =>
          `${i === 0 ? 'M' : 'L'}${x(Math.min(e.atMs, spanMs)).toFixed(1)},${y(e.rate, maxErrors).toFixed(1)}`,
      )
      .join(' ')
    parts.push(
      `<path class="errors" d="${d}" fill="none" stroke="${COLORS.failed}" stroke-width="1.5" stroke-dasharray="4 2"/>`,
    )
  }
  const axis: string[] = []
  for (const value of ticks(maxRequests)) {
    const ty = y(value, maxRequests)
    if (ty < PAD.top - 1) continue
    axis.push(
      `<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="#eaeef2"/>`,
      `<text x="${PAD.left - 6}" y="${(ty + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#57606a">${fmt(value, 0)}</text>`,
    )
  }
  for (const seconds of ticks(spanMs / 1000, 8)) {
    const tx = x(seconds * 1000)
    if (tx > WIDTH - PAD.right + 1) continue
    axis.push(
      `<text x="${tx.toFixed(1)}" y="${CHART_HEIGHT - PAD.bottom + 16}" font-size="11" text-anchor="middle" fill="#57606a">${fmt(seconds)} s</text>`,
    )
  }
  const summary = summarizePhase(phase, 1)
  const title = `${summary.client}: ${fmt(summary.tokenRequests, 0)} token requests in ${fmt(summary.renewals.count, 0)} renewals (at most ${fmt(summary.renewals.maxTokenRequestsInOneRenewal, 0)} at once), ${fmt(summary.failedApiCalls, 0)} failed API calls`
  return `<svg id="token-requests-${kind}" class="chart" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${CHART_HEIGHT}" viewBox="0 0 ${WIDTH} ${CHART_HEIGHT}" role="img" aria-label="${escapeHtml(title)}">
<text x="${PAD.left}" y="16" font-size="13" font-weight="600" fill="#1f2328">${escapeHtml(title)}</text>
${axis.join('\n')}
${parts.join('\n')}
<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH}" stroke="#8c959f"/>
<text x="14" y="${PAD.top + plotH / 2}" font-size="11" fill="#57606a" transform="rotate(-90 14 ${PAD.top + plotH / 2})" text-anchor="middle">requests/s</text>
</svg>`
}

/** The share of API calls at or below each latency, for both clients, on a log scale. */
function latencyChart(phases: readonly { kind: 'tokenkeeper' | 'naive'; phase: PhaseResult }[]): string {
  const height = 240
  const plotW = WIDTH - PAD.left - PAD.right
  const plotH = height - PAD.top - PAD.bottom
  const histograms = phases.map(({ kind, phase }) => {
    const histogram = new LatencyHistogram()
    histogram.merge(phase.report.latency)
    return { kind, histogram }
  })
  const percents = Array.from({ length: 199 }, (_, i) => 0.5 + i * 0.5).concat([99.9, 100])
  const all = histograms.flatMap(({ histogram }) => [histogram.percentile(0.5), histogram.maxMs])
  const low = Math.max(0.01, Math.min(...all.filter((v) => v > 0), 1))
  const high = Math.max(low * 10, ...all)
  const x = (ms: number): number =>
    PAD.left +
    ((Math.log10(Math.max(ms, low)) - Math.log10(low)) / (Math.log10(high) - Math.log10(low))) * plotW
  const y = (percent: number): number => PAD.top + plotH - (percent / 100) * plotH
  const series = histograms.map(({ kind, histogram }) => {
    if (histogram.count === 0) return ''
    const d = percents
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(histogram.percentile(p)).toFixed(1)},${y(p).toFixed(1)}`)
      .join(' ')
    return `<path class="cdf ${kind}" d="${d}" fill="none" stroke="${COLORS[kind]}" stroke-width="2"><title>${kind}: p50 ${fmt(histogram.percentile(50), 2)} ms, p99 ${fmt(histogram.percentile(99), 2)} ms, max ${fmt(histogram.maxMs, 2)} ms</title></path>`
  })
  const axis: string[] = []
  for (let power = Math.ceil(Math.log10(low)); 10 ** power <= high; power++) {
    const value = 10 ** power
    axis.push(
      `<line x1="${x(value).toFixed(1)}" x2="${x(value).toFixed(1)}" y1="${PAD.top}" y2="${PAD.top + plotH}" stroke="#eaeef2"/>`,
      `<text x="${x(value).toFixed(1)}" y="${height - PAD.bottom + 16}" font-size="11" text-anchor="middle" fill="#57606a">${fmt(value, 2)} ms</text>`,
    )
  }
  for (const percent of [0, 50, 90, 100]) {
    axis.push(
      `<text x="${PAD.left - 6}" y="${(y(percent) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#57606a">${percent} %</text>`,
    )
  }
  const legend = histograms
    .map(
      ({ kind, histogram }, i) =>
        `<text x="${WIDTH - PAD.right - 8}" y="${PAD.top + plotH - 34 + i * 16}" text-anchor="end" font-size="12" fill="${COLORS[kind]}">${kind === 'tokenkeeper' ? 'tokenkeeper' : 'naive cache'}: p50 ${fmt(histogram.percentile(50), 2)} ms · p99 ${fmt(histogram.percentile(99), 2)} ms · max ${fmt(histogram.maxMs, 2)} ms</text>`,
    )
    .join('\n')
  return `<svg id="latency" class="chart" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="API call latency distribution">
<text x="${PAD.left}" y="16" font-size="13" font-weight="600" fill="#1f2328">API call latency: share of calls at or below (log scale)</text>
${axis.join('\n')}
${legend}
${series.join('\n')}
<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH}" stroke="#8c959f"/>
</svg>`
}

/** The report page for a finished demo. */
export function renderReport(
  settings: DemoSettings,
  tokenkeeper: PhaseResult,
  naive: PhaseResult | undefined,
): string {
  const phases = [
    { kind: 'tokenkeeper' as const, phase: tokenkeeper },
    ...(naive === undefined ? [] : [{ kind: 'naive' as const, phase: naive }]),
  ]
  const spanMs = Math.max(...phases.map(({ phase }) => Math.max(phase.settings.durationMs, phase.elapsedMs)))
  const summaries: PhaseSummary[] = phases.map(({ phase }) => summarizePhase(phase, settings.processes))
  const rows = summaries
    .map(
      (s) =>
        `<tr><th scope="row">${escapeHtml(s.client)}</th><td>${fmt(s.apiCalls, 0)}</td><td>${fmt(s.failedApiCalls, 0)}</td><td>${fmt(s.tokenRequests, 0)}</td><td>${fmt(s.renewals.count, 0)}</td><td>${fmt(s.renewals.maxTokenRequestsInOneRenewal, 0)}</td><td>${fmt(s.latencyMs.p50, 2)}</td><td>${fmt(s.latencyMs.p99, 2)}</td><td>${fmt(s.latencyMs.max, 2)}</td></tr>`,
    )
    .join('\n')
  const setup = `${fmt(settings.workers, 0)} workers${settings.processes > 1 ? ` in ${settings.processes} processes` : ''}${settings.redis ? ' sharing tokens through Redis' : ''}, ${fmt(settings.tokenLifetimeMs / 1000)} s tokens, token endpoint latency ${fmt(settings.latencyMs)} ms${settings.fault === 'outage' ? ', one outage of the token endpoint' : ''}`
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tokenkeeper demo report</title>
<style>
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 24px; max-width: ${WIDTH + 20}px; }
h1 { font-size: 20px; margin: 0 0 4px; }
p.setup { color: #57606a; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 12px 0 20px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #d0d7de; text-align: right; }
th[scope="row"], thead th:first-child { text-align: left; }
svg.chart { display: block; margin: 8px 0 16px; }
.key span { display: inline-block; margin-right: 16px; }
.key i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
</style>
</head>
<body>
<h1>tokenkeeper demo</h1>
<p class="setup">${escapeHtml(setup)}</p>
<table>
<thead><tr><th>client</th><th>API calls</th><th>failed</th><th>token requests</th><th>renewals</th><th>most in one renewal</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<p class="key"><span><i style="background:${COLORS.tokenkeeper}"></i>tokenkeeper's token requests</span><span><i style="background:${COLORS.naive}"></i>naive cache's token requests</span><span><i style="background:${COLORS.failed}"></i>refused token requests; dashed: failed API calls per second</span><span><i style="background:${COLORS.outage}"></i>outage</span></p>
${phases.map(({ kind, phase }) => requestsChart(phase, kind, spanMs)).join('\n')}
${latencyChart(phases)}
</body>
</html>
`
}
