// Scenario 3, expiry under load (real time by nature): 2 s tokens from an endpoint that takes
// 20 ms to answer, 50 concurrent loops for 10 s. Each iteration times one get() with
// performance.now(), asks the server at once whether the token it was handed is expired
// (server.introspect), then yields to the event loop (setImmediate: I/O, timers and the
// background refresh all get their turn, as between real requests). Every USE_EVERY-th
// iteration of a loop also uses the token on the server's protected resource (a real HTTP call).
/* global fetch, performance, setImmediate */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { TokenManager } from '../../dist/index.js'
import {
  num,
  printTable,
  printVerdicts,
  quantile,
  ratio,
  runLoops,
  startServer,
  tokenRequestMs,
  verdict,
} from './util.js'

const LIFETIME_MS = 2_000
const LATENCY_MS = 20
const LOOPS = 50
const DURATION_MS = 10_000
/** One iteration in this many per loop also calls the protected resource with the token. */
const USE_EVERY = 20
/** "Far below the endpoint latency": the slowest get under a quarter of it. */
const FAR_BELOW = 0.25
/** The default margin for a 2 s token: min(60 s, 10 % of the lifetime). */
const MARGIN_MS = 0.1 * LIFETIME_MS

export async function expiryUnderLoad() {
  const { server, source: makeSource } = await startServer({
    tokenLifetimeMs: LIFETIME_MS,
    latencyMs: LATENCY_MS,
  })
  const source = makeSource()
  const requestMs = await tokenRequestMs(source, 5, 1)

  const tokens = new TokenManager()
  const refreshes = []
  tokens.on('refreshSuccess', (event) => refreshes.push(event))
  await tokens.get(source) // the cold fetch is not part of the measurement
  refreshes.length = 0
  const loopDelay = monitorEventLoopDelay({ resolution: 1 })
  loopDelay.enable()
  const statsBefore = tokens.stats()
  const serverBefore = server.stats()

  const latenciesUs = []
  let expiredAtHandOut = 0
  let unknownAtHandOut = 0
  let resourceErrors = 0
  let callerErrors = 0
  let minLeftMs = Infinity
  const iterations = new Array(LOOPS).fill(0)
  const startedAt = performance.now()
  const stopAt = startedAt + DURATION_MS
  await runLoops(
    LOOPS,
    () => performance.now() >= stopAt,
    async (loop) => {
      let token
      const before = performance.now()
      try {
        token = await tokens.get(source)
      } catch {
        callerErrors++
        return
      }
      latenciesUs.push((performance.now() - before) * 1000)
      const info = server.introspect(token.value)
      if (info === undefined) unknownAtHandOut++
      else if (info.expired) expiredAtHandOut++
      else minLeftMs = Math.min(minLeftMs, info.expiresAt - Date.now())
      if (++iterations[loop] % USE_EVERY === 0) {
        try {
          const response = await fetch(server.resourceUrl, {
            headers: { authorization: token.authorization },
          })
          await response.arrayBuffer()
        } catch {
          resourceErrors++
        }
      } else {
        await new Promise((resolve) => setImmediate(resolve))
      }
    },
  )
  const elapsedMs = performance.now() - startedAt
  loopDelay.disable()
  const loopDelayMaxUs = loopDelay.max / 1000
  const stats = tokens.stats()
  const serverStats = server.stats()
  await tokens.close()
  await server.close()

  const requests = serverStats.tokenRequests - serverBefore.tokenRequests
  const resourceExpired = serverStats.resourceRejectedExpired - serverBefore.resourceRejectedExpired
  const resourceCalls = serverStats.resourceCalls - serverBefore.resourceCalls
  const misses = stats.misses - statsBefore.misses
  const cycles = elapsedMs / (0.8 * LIFETIME_MS)
  const allowedRequests = Math.ceil(cycles)
  latenciesUs.sort((a, b) => a - b)
  const p50 = quantile(latenciesUs, 0.5)
  const p99 = quantile(latenciesUs, 0.99)
  const p999 = quantile(latenciesUs, 0.999)
  const max = latenciesUs.at(-1) ?? NaN
  const maxRatio = max / 1000 / LATENCY_MS
  const waited = latenciesUs.filter((us) => us >= LATENCY_MS * 1000).length
  const modes = refreshes.reduce((acc, e) => ({ ...acc, [e.mode]: (acc[e.mode] ?? 0) + 1 }), {})

  printTable(
    `3. Expiry under load: ${LIFETIME_MS / 1000} s tokens, ${LATENCY_MS} ms endpoint latency, ${LOOPS} loops, ${num(elapsedMs / 1000, 1)} s real time`,
    [
      { measure: 'get() calls', value: num(latenciesUs.length), 'ratio / baseline': '' },
      {
        measure: 'get() latency p50',
        value: `${num(p50, 1)} µs`,
        'ratio / baseline': ratio(p50 / 1000 / LATENCY_MS, 4),
      },
      {
        measure: 'get() latency p99',
        value: `${num(p99, 1)} µs`,
        'ratio / baseline': ratio(p99 / 1000 / LATENCY_MS, 4),
      },
      {
        measure: 'get() latency p99.9',
        value: `${num(p999, 1)} µs`,
        'ratio / baseline': ratio(p999 / 1000 / LATENCY_MS, 4),
      },
      { measure: 'get() latency max', value: `${num(max, 1)} µs`, 'ratio / baseline': ratio(maxRatio, 4) },
      { measure: `gets taking ≥ ${LATENCY_MS} ms`, value: num(waited), 'ratio / baseline': '' },
      {
        measure: 'event-loop delay max (process stalls, same run)',
        value: `${num(loopDelayMaxUs, 1)} µs`,
        'ratio / baseline': ratio(loopDelayMaxUs / 1000 / LATENCY_MS, 4),
      },
      { measure: 'gets that waited on a fetch (misses)', value: num(misses), 'ratio / baseline': '' },
      {
        measure: 'baseline: endpoint latency (nominal)',
        value: `${LATENCY_MS} ms`,
        'ratio / baseline': '1.00x',
      },
      {
        measure: 'one direct token request (measured)',
        value: `${num(requestMs, 1)} ms`,
        'ratio / baseline': ratio(requestMs / LATENCY_MS),
      },
      { measure: 'token requests', value: num(requests), 'ratio / baseline': '' },
      {
        measure: 'renewal cycles: elapsed / (0.8 × lifetime)',
        value: num(cycles, 2),
        'ratio / baseline': '',
      },
      {
        measure: 'refreshes (background / foreground)',
        value: `${modes.background ?? 0} / ${modes.foreground ?? 0}`,
        'ratio / baseline': '',
      },
      { measure: 'expired at hand-out (introspect)', value: num(expiredAtHandOut), 'ratio / baseline': '' },
      { measure: 'unknown to the server at hand-out', value: num(unknownAtHandOut), 'ratio / baseline': '' },
      {
        measure: 'least time left at hand-out (server expiry)',
        value: `${num(minLeftMs)} ms`,
        'ratio / baseline': ratio(minLeftMs / MARGIN_MS) + ' of margin',
      },
      {
        measure: 'resource calls / rejected as expired',
        value: `${num(resourceCalls)} / ${num(resourceExpired)}`,
        'ratio / baseline': '',
      },
      {
        measure: 'caller errors / resource call errors',
        value: `${callerErrors} / ${resourceErrors}`,
        'ratio / baseline': '',
      },
    ],
  )

  const verdicts = [
    verdict(
      'expiry under load',
      'zero expired tokens handed out (server introspection at hand-out)',
      `${expiredAtHandOut} expired, ${unknownAtHandOut} unknown; least time left ${num(minLeftMs)} ms`,
      expiredAtHandOut === 0 && unknownAtHandOut === 0,
      'correctness',
    ),
    verdict(
      'expiry under load',
      `no token rejected as expired at use (needs use within the ${MARGIN_MS} ms margin of hand-out)`,
      `${resourceExpired} of ${num(resourceCalls)} resource calls`,
      resourceExpired === 0,
      'timing',
    ),
    verdict(
      'expiry under load',
      'token requests ≤ one per renewal cycle',
      `${requests} requests ≤ ${allowedRequests} (ceil of ${num(cycles, 2)} cycles)`,
      requests <= allowedRequests,
      'correctness',
    ),
    verdict(
      'expiry under load',
      'no caller errors',
      `${callerErrors} errors in ${num(latenciesUs.length)} calls`,
      callerErrors === 0,
      'correctness',
    ),
    verdict(
      'expiry under load',
      'no get waits on a refresh while a valid token exists (manager misses)',
      `${misses} misses`,
      misses === 0,
      'timing',
    ),
    verdict(
      'expiry under load',
      `max get latency far below endpoint latency (≤ ${FAR_BELOW}x)`,
      `${num(max, 1)} µs = ${ratio(maxRatio, 4)} of ${LATENCY_MS} ms (p99 ${num(p99, 1)} µs; event-loop stall max ${num(loopDelayMaxUs, 1)} µs)`,
      maxRatio <= FAR_BELOW,
      'timing',
    ),
  ]
  printVerdicts(verdicts)
  return {
    verdicts,
    summary: {
      calls: latenciesUs.length,
      p50,
      p99,
      max,
      maxRatio,
      requests,
      cycles,
      expiredAtHandOut,
      misses,
    },
  }
}
