// Scenario 1, warm hit: the cost of a cache hit against a bare Map holding the same token object.
//
// A hand loop rather than tinybench: tinybench times every single call with `now()` on each side,
// and one `map.get` (a few ns) is far below the cost of reading the clock (~50 ns here, kvm-clock).
// Each case is a loop of N calls timed as a batch; cases run interleaved, round after round, in a
// rotating order, and each ratio is taken against the baseline of the SAME round, so a machine
// that gets busier or quieter during the run shifts both sides alike. The result of every call is
// accumulated into a sink that is printed, so V8 cannot drop the work.
/* global console */
import { TokenManager, tokenSource } from '../../dist/index.js'
import { instrument } from '../../dist/integrations/otel.js'
import { createTestClock } from '../../dist/testing/index.js'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import {
  compareInterleaved,
  median,
  num,
  printTable,
  printVerdicts,
  ratio,
  sink,
  startServer,
  verdict,
} from './util.js'

const ASYNC_OPS = 200_000
const SYNC_OPS = 300_000
const ROUNDS = 21
const WARMUP_ROUNDS = 4
const TARGET = 2
const CLOSURE_TARGET = 1.1

function rows(results) {
  return results.map((r, i) => ({
    case: r.name,
    'ns/op': num(r.ns, 1),
    'ops/s': num(1e9 / r.ns),
    'ratio vs baseline': i === 0 ? 'baseline' : ratio(r.ratio),
    'ratio p25–p75': i === 0 ? '' : `${num(r.low, 2)}–${num(r.high, 2)}`,
  }))
}

export async function warmHit() {
  const { server, source: makeSource } = await startServer()
  const source = makeSource()
  const tokens = new TokenManager()
  const token = await tokens.get(source) // a 1 h token from the real server: fresh for the whole run
  const key = source.key
  const map = new Map([[key, token]])

  // The "blog-post cache": a module variable and an async function that checks Date.now().
  let cached = { token, expiresAt: token.expiresAt }
  async function getTokenNaive() {
    if (cached !== undefined && Date.now() < cached.expiresAt) return cached.token
    const fetched = await source.fetchToken()
    cached = { token: fetched, expiresAt: fetched.expiresAt }
    return fetched
  }

  // Diagnostic: the same manager code with an injected clock whose now() reads a field (no OS time read).
  const fixedClock = createTestClock()
  const fixedTokens = new TokenManager({ clock: fixedClock })
  const fixedSource = tokenSource('bench-warm-fixed-clock', () => ({
    access_token: 'bench-fixed-clock-token',
    token_type: 'Bearer',
    expires_in: 3600,
  }))
  await fixedTokens.get(fixedSource)

  // The same hit with observability on: a manager instrumented with tokenkeeper/otel on a real SDK
  // meter and tracer provider (default: lookups read from stats(); perLookup: counted per hit),
  // and one with a logger (it listens to no per-call event).
  const meterProvider = new MeterProvider()
  const tracerProvider = new BasicTracerProvider()
  const observed = async (setup) => {
    const manager = new TokenManager(setup.options)
    await manager.get(source)
    const stop = setup.instrument?.(manager)
    return { manager, stop }
  }
  const otelTokens = await observed({ instrument: (m) => instrument(m, { meterProvider, tracerProvider }) })
  const perLookupTokens = await observed({
    instrument: (m) => instrument(m, { meterProvider, tracerProvider, perLookup: true }),
  })
  const silentLogger = { debug() {}, info() {}, warn() {}, error() {} }
  const loggedTokens = await observed({ options: { logger: silentLogger } })
  const observedGet = (manager) => async (n) => {
    let acc = 0
    for (let i = 0; i < n; i++) acc += (await manager.get(source)).expiresAt
    return acc
  }

  const asyncCases = [
    {
      name: 'await map.get(key)  [baseline]',
      loop: async (n) => {
        let acc = 0
        for (let i = 0; i < n; i++) acc += (await map.get(key)).expiresAt
        return acc
      },
    },
    {
      name: 'await tokens.get(source)',
      loop: async (n) => {
        let acc = 0
        for (let i = 0; i < n; i++) acc += (await tokens.get(source)).expiresAt
        return acc
      },
    },
    {
      name: 'await closure cache (blog-post kind)  [reference]',
      loop: async (n) => {
        let acc = 0
        for (let i = 0; i < n; i++) acc += (await getTokenNaive()).expiresAt
        return acc
      },
    },
    {
      name: 'await tokens.get(source), field clock  [diagnostic]',
      loop: async (n) => {
        let acc = 0
        for (let i = 0; i < n; i++) acc += (await fixedTokens.get(fixedSource)).expiresAt
        return acc
      },
    },
    {
      name: 'await tokens.get(source), tokenkeeper/otel instrumented',
      loop: observedGet(otelTokens.manager),
    },
    {
      name: 'await tokens.get(source), tokenkeeper/otel perLookup',
      loop: observedGet(perLookupTokens.manager),
    },
    { name: 'await tokens.get(source), with a logger', loop: observedGet(loggedTokens.manager) },
  ]
  const syncCases = [
    {
      name: 'map.get(key)  [baseline]',
      loop: (n) => {
        let acc = 0
        for (let i = 0; i < n; i++) acc += map.get(key).expiresAt
        return acc
      },
    },
    {
      name: 'tokens.peek(source)',
      loop: (n) => {
        let acc = 0
        for (let i = 0; i < n; i++) acc += tokens.peek(source).expiresAt
        return acc
      },
    },
    {
      name: 'map.get(key) + Date.now() expiry check  [reference]',
      loop: (n) => {
        let acc = 0
        for (let i = 0; i < n; i++) {
          const hit = map.get(key)
          if (Date.now() < hit.expiresAt) acc += hit.expiresAt
        }
        return acc
      },
    },
    {
      name: 'tokens.peek(source), field clock  [diagnostic]',
      loop: (n) => {
        let acc = 0
        for (let i = 0; i < n; i++) acc += fixedTokens.peek(fixedSource).expiresAt
        return acc
      },
    },
    {
      name: 'Date.now() alone  [diagnostic]',
      loop: (n) => {
        let acc = 0
        for (let i = 0; i < n; i++) acc += Date.now()
        return acc
      },
    },
  ]

  const requestsBefore = server.stats().tokenRequests
  const asyncResults = await compareInterleaved(asyncCases, {
    ops: ASYNC_OPS,
    rounds: ROUNDS,
    warmupRounds: WARMUP_ROUNDS,
  })
  const syncResults = await compareInterleaved(syncCases, {
    ops: SYNC_OPS,
    rounds: ROUNDS,
    warmupRounds: WARMUP_ROUNDS,
  })
  const requestsDuring = server.stats().tokenRequests - requestsBefore
  const hits = tokens.stats().hits

  printTable(
    `1a. Warm hit, awaited: ${num(ROUNDS)} interleaved rounds of ${num(ASYNC_OPS)} calls, medians`,
    rows(asyncResults),
  )
  printTable(
    `1b. Warm hit, synchronous: ${num(ROUNDS)} interleaved rounds of ${num(SYNC_OPS)} calls, medians`,
    rows(syncResults),
  )
  const getRatio = asyncResults[1].ratio
  const peekRatio = syncResults[1].ratio
  // Per round, peek against the cheapest correct check (map.get + Date.now()), then the median.
  const peekVsCorrect = median(syncResults[1].samples.map((ns, round) => ns / syncResults[2].samples[round]))
  console.log(`  (sink ${sink.value % 1000}; token requests during the timed loops: ${requestsDuring})`)
  // Per round, each observed manager against the plain manager of the same round, then the median.
  const vsPlain = (index) =>
    median(asyncResults[index].samples.map((ns, round) => ns / asyncResults[1].samples[round]))
  // Per round, the manager against the simplest correct cache a user would write (the closure of
  // the same round): the hit path must cost about what that costs.
  const vsClosure = median(asyncResults[1].samples.map((ns, round) => ns / asyncResults[2].samples[round]))
  printTable(
    '1d. Warm hit against the closure cache a user would write, same round (median of per-round ratios)',
    [
      {
        case: 'await tokens.get(source) / await closure cache (async fn, one token, Date.now() < expiresAt)',
        ratio: ratio(vsClosure),
      },
    ],
  )
  const otelRatio = vsPlain(4)
  const perLookupRatio = vsPlain(5)
  const loggerRatio = vsPlain(6)
  printTable('1c. Warm hit with observability on, against the plain manager of the same round (medians)', [
    { case: 'tokenkeeper/otel instrumented (default)', 'ratio vs plain get': ratio(otelRatio) },
    { case: 'tokenkeeper/otel perLookup: true', 'ratio vs plain get': ratio(perLookupRatio) },
    { case: 'logger option', 'ratio vs plain get': ratio(loggerRatio) },
  ])

  const verdicts = [
    verdict(
      'warm hit',
      `await get within ${TARGET}x of await map.get`,
      ratio(getRatio),
      getRatio <= TARGET,
      'timing',
    ),
    verdict('warm hit', `peek within ${TARGET}x of map.get`, ratio(peekRatio), peekRatio <= TARGET, 'timing'),
    verdict(
      'warm hit',
      `(informative) peek within ${TARGET}x of map.get + Date.now() check`,
      ratio(peekVsCorrect),
      peekVsCorrect <= TARGET,
      'timing',
    ),
    verdict(
      'warm hit',
      `await get within ${CLOSURE_TARGET}x of the closure cache a user would write`,
      ratio(vsClosure),
      vsClosure <= CLOSURE_TARGET,
      'timing',
    ),
    verdict(
      'warm hit',
      'instrumented (default) and logged get within 1.15x of plain get',
      `${ratio(otelRatio)}, ${ratio(loggerRatio)}`,
      otelRatio <= 1.15 && loggerRatio <= 1.15,
      'timing',
    ),
    verdict(
      'warm hit',
      'no token request while hitting a fresh token',
      `${requestsDuring} requests, ${num(hits)} hits`,
      requestsDuring === 0,
      'correctness',
    ),
  ]
  printVerdicts(verdicts)

  for (const observedManager of [otelTokens, perLookupTokens, loggedTokens]) {
    observedManager.stop?.stop()
    await observedManager.manager.close()
  }
  await meterProvider.shutdown()
  await tracerProvider.shutdown()
  await fixedTokens.close()
  await tokens.close()
  await server.close()
  return {
    verdicts,
    summary: {
      getRatio,
      peekRatio,
      peekVsCorrect,
      getNs: asyncResults[1].ns,
      peekNs: syncResults[1].ns,
      naiveRatio: asyncResults[2].ratio,
      otelRatio,
      perLookupRatio,
      loggerRatio,
    },
  }
}
