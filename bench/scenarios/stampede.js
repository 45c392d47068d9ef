// Scenario 2, cold stampede: 10,000 concurrent get() calls on a key nobody holds yet.
// Each round uses a new TokenManager (a cold key) against the same real token server; the
// baseline is one direct token request (source.fetchToken(), no cache) on the same connection pool.
/* global console, performance */
import { TokenManager } from '../../dist/index.js'
import {
  median,
  num,
  printTable,
  printVerdicts,
  ratio,
  startServer,
  tokenRequestMs,
  verdict,
} from './util.js'

const CALLERS = 10_000
const ROUNDS = 5

export async function stampede() {
  const { server, source: makeSource } = await startServer()
  const source = makeSource()
  const requestMs = await tokenRequestMs(source)

  const rounds = []
  for (let round = 1; round <= ROUNDS; round++) {
    const tokens = new TokenManager()
    const before = server.stats().tokenRequests
    const startedAt = performance.now()
    const settled = await Promise.allSettled(Array.from({ length: CALLERS }, () => tokens.get(source)))
    const settleMs = performance.now() - startedAt
    const requests = server.stats().tokenRequests - before
    const fulfilled = settled.filter((s) => s.status === 'fulfilled').map((s) => s.value)
    const distinct = new Set(fulfilled).size
    const active = fulfilled.length > 0 && server.introspect(fulfilled[0].value)?.active === true
    rounds.push({ round, requests, fulfilled: fulfilled.length, distinct, active, settleMs })
    await tokens.close()
  }

  const settleMedian = median(rounds.map((r) => r.settleMs))
  printTable(
    `2. Cold stampede: ${num(CALLERS)} concurrent get() on a cold key, ${ROUNDS} rounds (new manager each)`,
    [
      ...rounds.map((r) => ({
        round: String(r.round),
        'token requests': num(r.requests),
        fulfilled: num(r.fulfilled),
        'distinct tokens': num(r.distinct),
        'settle all': `${num(r.settleMs, 1)} ms`,
        'ratio vs 1 request': ratio(r.settleMs / requestMs),
        'settle / caller': `${num((r.settleMs * 1000) / CALLERS, 2)} µs`,
      })),
      {
        round: 'baseline',
        'token requests': '1',
        fulfilled: '',
        'distinct tokens': '',
        'settle all': `${num(requestMs, 1)} ms`,
        'ratio vs 1 request': '1.00x',
        'settle / caller': '',
      },
    ],
  )
  console.log(
    '  baseline: one direct token request (source.fetchToken()), median of 7 after 2 warm-up requests',
  )

  const exact = rounds.every((r) => r.requests === 1)
  const allServed = rounds.every((r) => r.fulfilled === CALLERS && r.distinct === 1 && r.active)
  const verdicts = [
    verdict(
      'cold stampede',
      `${num(CALLERS)} concurrent get → exactly 1 token request`,
      rounds.map((r) => r.requests).join(', ') + ' requests per round',
      exact,
      'correctness',
    ),
    verdict(
      'cold stampede',
      'every caller gets the same, active token',
      allServed ? `${num(CALLERS)} of ${num(CALLERS)} each round` : 'some callers failed or differ',
      allServed,
      'correctness',
    ),
  ]
  printVerdicts(verdicts)
  await server.close()
  return { verdicts, summary: { settleMs: settleMedian, requestMs, settleRatio: settleMedian / requestMs } }
}
