// Scenario: eviction under load. 10,000 cold keys requested at once from a manager bounded to
// 100 entries; every source answers in 10 ms (a timer, no network, so the figure is the manager's
// own cost). The baseline is the same load on a manager large enough to never evict.
/* global performance, setTimeout, setInterval, clearInterval */
import { AccessToken, TokenManager, tokenSource } from '../../dist/index.js'
import { num, printTable, printVerdicts, ratio, verdict } from './util.js'

const KEYS = 10_000
const MAX_ENTRIES = 100
const ANSWER_MS = 10

function sources(round) {
  return Array.from({ length: KEYS }, (_, i) =>
    tokenSource(
      `evict-${round}-${i}`,
      ({ clock }) =>
        new Promise((resolve) =>
          setTimeout(() => {
            const now = clock.now()
            resolve(
              new AccessToken({
                value: `t${i}`,
                type: 'Bearer',
                scopes: [],
                issuedAt: now,
                expiresAt: now + 3_600_000,
              }),
            )
          }, ANSWER_MS),
        ),
    ),
  )
}

async function run(maxEntries, round) {
  const list = sources(round)
  const tokens = new TokenManager({ maxEntries })
  // Event-loop delay: how late a 5 ms interval fires, the synchronous get() loop included.
  let maxDelayMs = 0
  let expected = performance.now() + 5
  const sampler = setInterval(() => {
    const now = performance.now()
    maxDelayMs = Math.max(maxDelayMs, now - expected)
    expected = now + 5
  }, 5)
  await new Promise((resolve) => setTimeout(resolve, 20))
  const startedAt = performance.now()
  let peak = 0
  const calls = list.map((source) => {
    const call = tokens.get(source)
    peak = Math.max(peak, tokens.stats().entries)
    return call
  })
  const callMs = performance.now() - startedAt
  const settled = await Promise.allSettled(calls)
  const settleMs = performance.now() - startedAt
  clearInterval(sampler)
  const failures = settled.filter((s) => s.status === 'rejected').length
  const entries = tokens.stats().entries
  await tokens.close()
  return { callMs, settleMs, failures, peak, entries, maxDelayMs }
}

export async function eviction() {
  const baseline = await run(KEYS * 2, 'baseline')
  const bounded = await run(MAX_ENTRIES, 'bounded')
  printTable(
    `7. Eviction under load: ${num(KEYS)} concurrent cold keys, maxEntries ${MAX_ENTRIES}, sources answer in ${ANSWER_MS} ms`,
    [
      ['no eviction (maxEntries 20,000)  [baseline]', baseline],
      [`maxEntries ${MAX_ENTRIES}`, bounded],
    ].map(([name, r]) => ({
      case: name,
      'issue all get()': `${num(r.callMs, 1)} ms`,
      'settle all': `${num(r.settleMs, 1)} ms`,
      'ratio vs baseline': ratio(r.settleMs / baseline.settleMs),
      'max event-loop delay': `${num(r.maxDelayMs, 1)} ms`,
      failures: num(r.failures),
      'peak entries': num(r.peak),
    })),
  )
  const verdicts = [
    verdict(
      'eviction',
      `every caller gets a token (${num(KEYS)} keys, maxEntries ${MAX_ENTRIES})`,
      `${num(bounded.failures)} failures`,
      bounded.failures === 0,
      'correctness',
    ),
    verdict(
      'eviction',
      `never more than ${MAX_ENTRIES} entries, in flight or not`,
      `peak ${num(bounded.peak)}, ${num(bounded.entries)} after`,
      bounded.peak <= MAX_ENTRIES && bounded.entries <= MAX_ENTRIES,
      'correctness',
    ),
    verdict(
      'eviction',
      'max event-loop delay within 2x the no-eviction run (+50 ms)',
      `${num(bounded.maxDelayMs, 1)} ms vs ${num(baseline.maxDelayMs, 1)} ms`,
      bounded.maxDelayMs <= 2 * baseline.maxDelayMs + 50,
      'timing',
    ),
  ]
  printVerdicts(verdicts)
  return { verdicts, summary: { baseline, bounded } }
}
