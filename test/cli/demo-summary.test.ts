import { describe, expect, it } from 'vitest'
import { LatencyHistogram } from '../../src/cli/demo/histogram.js'
import type { PhaseResult } from '../../src/cli/demo/phase.js'
import { renderSummary, summarizePhase } from '../../src/cli/demo/summary.js'
import type { DemoSettings } from '../../src/cli/demo/settings.js'
import { colorsFor } from '../../src/cli/format.js'

const settings: DemoSettings = {
  workers: 4,
  processes: 1,
  durationMs: 1000,
  naiveDurationMs: 1000,
  tokenLifetimeMs: 2000,
  latencyMs: 5,
  thinkTimeMs: 0,
  fault: null,
  redis: false,
}

function phase(
  kind: 'tokenkeeper' | 'naive',
  maxDelayMs: number,
  latencies: readonly number[] = [2],
): PhaseResult {
  const latency = new LatencyHistogram()
  for (const ms of latencies) latency.record(ms)
  return {
    settings: {
      kind,
      workers: 4,
      durationMs: 1000,
      thinkMs: 0,
      tokenLifetimeMs: 2000,
      latencyMs: 5,
      outage: false,
    },
    elapsedMs: 1000,
    report: {
      calls: 1,
      ok: 1,
      failed: 0,
      client: { tokenRequests: 1, hits: 0, misses: 1, backgroundRenewals: 0, storeHits: 0, tokenFailures: 0 },
      latency: latency.toJSON(),
    },
    server: {
      tokenRequests: 1,
      tokensIssued: 1,
      failures: 0,
      inFlight: 0,
      resourceCalls: 1,
      resourceAccepted: 1,
      resourceRejectedExpired: 0,
      resourceRejectedUnknown: 0,
      resourceRejectedRevoked: 0,
      dpopRejected: 0,
      resourceRejectedScope: 0,
      discoveryRequests: 0,
      byClient: {},
    },
    renewals: { count: 1, tokenRequestsPerRenewal: 1, maxTokenRequestsInOneRenewal: 1 },
    outage: undefined,
    eventLoopDelayMs: { p99: maxDelayMs / 2, max: maxDelayMs },
    timeline: { tokenRequests: [], samples: [] },
  }
}

const plain = colorsFor({ isTTY: false } as never, {})

describe('the demo summary', () => {
  it('says how late a busy machine ran the event loop, and only then', () => {
    const render = (tk: number, naive: number): string =>
      renderSummary(
        {
          version: '0',
          settings,
          tokenkeeper: summarizePhase(phase('tokenkeeper', tk), 1),
          naive: summarizePhase(phase('naive', naive), 1),
        },
        plain,
      )
    expect(render(12, 30)).not.toMatch(/busy/)
    const busy = render(12, 250)
    expect(busy).toMatch(/This machine was busy: the event loop ran up to 250 ms late \(naive/)
    expect(busy).not.toMatch(/12 ms/)
    expect(summarizePhase(phase('tokenkeeper', 123.456), 1).eventLoopDelayMs).toEqual({
      p99: 61.7,
      max: 123.5,
    })
  })

  it('explains a higher median and p95 for tokenkeeper when its tail is no worse, and only then', () => {
    const many = (ms: number, n: number): number[] => Array.from({ length: n }, () => ms)
    const render = (tk: number[], naive: number[]): string =>
      renderSummary(
        {
          version: '0',
          settings,
          tokenkeeper: summarizePhase(phase('tokenkeeper', 0, tk), 1),
          naive: summarizePhase(phase('naive', 0, naive), 1),
        },
        plain,
      )
    const tk = [...many(0.5, 90), ...many(2, 10)]
    const naiveWithStampede = [...many(0.4, 90), ...many(1, 8), ...many(50, 2)]
    expect(render(tk, naiveWithStampede)).toMatch(/each call goes through tokens\.fetch/)
    // A worse tail is not explained away.
    expect(render([...tk.slice(0, 97), ...many(80, 3)], naiveWithStampede)).not.toMatch(/tokens\.fetch/)
    // Nor is anything said when tokenkeeper is as fast.
    expect(render(naiveWithStampede, naiveWithStampede)).not.toMatch(/tokens\.fetch/)
  })
})
