// Scenario 4, token-endpoint outages (real time): the server answers 503 to every token request.
//   4a. Outage while valid: the outage starts right after a token is fetched and ends 100 ms
//       before the token's mandatory window; callers must never see an error.
//   4b. Outage across expiry: the outage lasts until 3 s after the token's expiry; callers get
//       typed errors once the token may no longer be served, the endpoint sees requests bounded by
//       the backoff, and the first get after the server returns (and the backoff allows) recovers.
// 50 loops call get() once per millisecond (setTimeout pacing) and check each token they are
// handed against the server (introspect) at once.
import {
  backoffDelayMs,
  DEFAULT_BACKOFF_POLICY,
  DEFAULT_REFRESH_POLICY,
  isTokenkeeperError,
  TokenManager,
} from '../../dist/index.js'
import {
  num,
  printTable,
  printVerdicts,
  ratio,
  runLoops,
  sleep,
  startServer,
  tokenRequestMs,
  verdict,
} from './util.js'

const LOOPS = 50
const OUTAGE = { kind: 'status', status: 503 }

/** Where the default policy puts a token's mandatory window (see docs/LIFECYCLE.md). */
function mustRefreshAtOf(token) {
  const lifetimeMs = token.expiresAt - token.issuedAt
  const marginMs = Math.min(
    DEFAULT_REFRESH_POLICY.marginMs,
    DEFAULT_REFRESH_POLICY.maxMarginRatio * lifetimeMs,
  )
  return Math.floor(token.expiresAt - marginMs)
}

/**
 * The most token requests a failing key can make within `spanMs` after its first failure: every
 * backoff delay at its smallest jitter draw (10 % of its step), plus one request allowed at the
 * start of the mandatory window (a background backoff may be cut short there).
 */
function worstCaseAttempts(spanMs) {
  let attempts = 1
  let elapsed = 0
  for (;;) {
    elapsed += backoffDelayMs({ attempt: attempts, retryable: true }, DEFAULT_BACKOFF_POLICY, () => 0)
    if (elapsed > spanMs) return attempts + 1
    attempts++
  }
}

/** Calls get() in `LOOPS` loops until `shouldStop()`; records every outcome with its epoch-ms time. */
function caller(tokens, source, server) {
  const record = { calls: [], errors: [], expired: 0 }
  const body = async () => {
    const at = Date.now()
    try {
      const token = await tokens.get(source)
      record.calls.push({ at, doneAt: Date.now(), ok: true })
      if (server.introspect(token.value)?.active !== true) record.expired++
    } catch (error) {
      record.calls.push({ at, doneAt: Date.now(), ok: false })
      record.errors.push({ at, error })
    }
    await sleep(1)
  }
  return { record, run: (shouldStop) => runLoops(LOOPS, shouldStop, body) }
}

/** One run of 4a: a fresh server and manager, the outage, the loops; returns what was seen. */
async function outageWhileValidTrial(lifetimeMs) {
  const { server, source: makeSource } = await startServer({ tokenLifetimeMs: lifetimeMs })
  const source = makeSource()
  const tokens = new TokenManager()
  const failures = []
  const successes = []
  tokens.on('refreshFailure', (event) => failures.push({ ...event, at: Date.now() }))
  tokens.on('refreshSuccess', (event) => successes.push({ ...event, at: Date.now() }))

  const token = await tokens.get(source)
  server.setFault(OUTAGE)
  successes.length = 0 // the initial fetch is not a renewal
  const outageStartedAt = Date.now()
  const requestsBefore = server.stats().tokenRequests
  const statsBefore = tokens.stats()
  const mustRefreshAt = mustRefreshAtOf(token)
  const outageEndsAt = mustRefreshAt - 100
  const stopAt = token.expiresAt + 500

  const { record, run } = caller(tokens, source, server)
  const loops = run(() => Date.now() >= stopAt)
  await sleep(outageEndsAt - Date.now())
  server.clearFaults()
  const outageEndedAt = Date.now()
  const requestsDuringOutage = server.stats().tokenRequests - requestsBefore
  await loops
  const stats = tokens.stats()
  const renewed = tokens.peek(source)
  await tokens.close()
  await server.close()

  return {
    token,
    mustRefreshAt,
    outageStartedAt,
    outageEndedAt,
    record,
    failures,
    firstRenewal: successes[0],
    requestsDuringOutage,
    callsDuringOutage: record.calls.filter((c) => c.at < outageEndedAt).length,
    staleServed: stats.staleServed - statsBefore.staleServed,
    misses: stats.misses - statsBefore.misses,
    failFast: stats.failFast - statsBefore.failFast,
    renewedOk: renewed !== undefined && renewed !== token,
  }
}

export async function outageWhileValid() {
  const LIFETIME_MS = 4_000
  // The outcome depends on the jitter draws (where refreshAt and the backoff delays fall), so
  // the scenario runs several times with fresh managers.
  const TRIALS = 3
  const trials = []
  for (let i = 0; i < TRIALS; i++) trials.push(await outageWhileValidTrial(LIFETIME_MS))

  const row = (measure, value) =>
    Object.fromEntries([['measure', measure], ...trials.map((t, i) => [`trial ${i + 1}`, value(t)])])
  const since = (t, at) => `${num(at - t.token.issuedAt)} ms`
  const outageSeconds = (t) => (t.outageEndedAt - t.outageStartedAt) / 1000
  printTable(
    `4a. Outage while valid: ${LIFETIME_MS / 1000} s token (refreshAt at 75–85 %, mandatory from 90 %), 503 from right after the fetch until 100 ms before its mandatory window, ${LOOPS} loops, ${TRIALS} trials; instants since the token's issuedAt`,
    [
      row('outage', (t) => `${since(t, t.outageStartedAt)} → ${since(t, t.outageEndedAt)}`),
      row(
        'mustRefreshAt / expiresAt',
        (t) => `${since(t, t.mustRefreshAt)} / ${since(t, t.token.expiresAt)}`,
      ),
      row(
        'get() calls (during outage)',
        (t) => `${num(t.record.calls.length)} (${num(t.callsDuringOutage)})`,
      ),
      row('token requests during outage', (t) => num(t.requestsDuringOutage)),
      row('requests/s to the failing endpoint', (t) => num(t.requestsDuringOutage / outageSeconds(t), 2)),
      row(
        'failed background refreshes at',
        (t) => t.failures.map((f) => num(f.at - t.token.issuedAt)).join(', ') || '—',
      ),
      row('last failure: retry allowed at', (t) =>
        t.failures.length === 0 ? '—' : since(t, t.failures.at(-1).retryAt),
      ),
      row('hits served while renewal failed', (t) => num(t.staleServed)),
      row('renewed at, mode', (t) =>
        t.firstRenewal === undefined ? 'never' : `${since(t, t.firstRenewal.at)}, ${t.firstRenewal.mode}`,
      ),
      row('gets that waited / failed fast', (t) => `${num(t.misses)} / ${num(t.failFast)}`),
      row('caller errors', (t) => num(t.record.errors.length)),
      row('  … between', (t) =>
        t.record.errors.length === 0
          ? '—'
          : `${since(t, t.record.errors[0].at)}–${since(t, t.record.errors.at(-1).at)}`,
      ),
      row(
        '  … codes',
        (t) =>
          [
            ...new Set(t.record.errors.map((e) => (isTokenkeeperError(e.error) ? e.error.code : 'untyped'))),
          ].join(', ') || '—',
      ),
      row('expired or unknown tokens handed out', (t) => num(t.record.expired)),
    ],
  )

  const errors = trials.map((t) => t.record.errors.length)
  const calls = trials.reduce((sum, t) => sum + t.record.calls.length, 0)
  const expired = trials.reduce((sum, t) => sum + t.record.expired, 0)
  const renewed = trials.filter((t) => t.renewedOk).length
  const verdicts = [
    verdict(
      'outage while valid',
      'zero caller errors',
      `${errors.join(', ')} errors per trial (${num(calls)} calls)`,
      errors.every((n) => n === 0),
      'correctness',
    ),
    verdict(
      'outage while valid',
      'zero expired tokens handed out',
      `${expired}`,
      expired === 0,
      'correctness',
    ),
    verdict(
      'outage while valid',
      'renewed once the server is back',
      `${renewed} of ${TRIALS} trials`,
      renewed === TRIALS,
      'correctness',
    ),
  ]
  printVerdicts(verdicts)
  const requests = trials.reduce((sum, t) => sum + t.requestsDuringOutage, 0)
  const seconds = trials.reduce((sum, t) => sum + outageSeconds(t), 0)
  return { verdicts, summary: { errors, calls, requestsPerSecond: requests / seconds } }
}

export async function outageAcrossExpiry() {
  const LIFETIME_MS = 2_000
  const AFTER_EXPIRY_MS = 3_000
  const RECOVERY_TIMEOUT_MS = 15_000
  const { server, source: makeSource } = await startServer({ tokenLifetimeMs: LIFETIME_MS })
  const source = makeSource()
  const requestMs = await tokenRequestMs(source, 5, 1)
  const tokens = new TokenManager()
  const failures = []
  tokens.on('refreshFailure', (event) => failures.push({ ...event, at: Date.now() }))

  const token = await tokens.get(source)
  server.setFault(OUTAGE)
  const outageStartedAt = Date.now()
  const requestsBefore = server.stats().tokenRequests
  const statsBefore = tokens.stats()
  const mustRefreshAt = mustRefreshAtOf(token)
  const outageEndsAt = token.expiresAt + AFTER_EXPIRY_MS

  let recoveredAt
  let stopAt = Infinity
  const { record, run } = caller(tokens, source, server)
  const loops = run(() => Date.now() >= stopAt)
  await sleep(outageEndsAt - Date.now())
  server.clearFaults()
  const outageEndedAt = Date.now()
  const requestsDuringOutage = server.stats().tokenRequests - requestsBefore
  const scheduledRetryAt = failures.at(-1)?.retryAt ?? outageEndedAt
  stopAt = outageEndedAt + RECOVERY_TIMEOUT_MS
  while (Date.now() < stopAt) {
    const first = record.calls.find((c) => c.ok && c.doneAt >= outageEndedAt)
    if (first !== undefined) {
      recoveredAt = first.doneAt
      stopAt = Date.now() + 200 // a little traffic on the new token, then stop
      break
    }
    await sleep(1)
  }
  await loops
  const stats = tokens.stats()
  await tokens.close()
  await server.close()

  const outageSeconds = (outageEndedAt - outageStartedAt) / 1000
  const afterMustSeconds = (outageEndedAt - mustRefreshAt) / 1000
  const requestsAfterMust = failures.filter((f) => f.at >= mustRefreshAt && f.at < outageEndedAt).length
  const callsDuringOutage = record.calls.filter((c) => c.at >= outageStartedAt && c.at < outageEndedAt).length
  const typed = record.errors.filter((e) => isTokenkeeperError(e.error) && e.error.retryable)
  const codes = [
    ...new Set(record.errors.map((e) => (isTokenkeeperError(e.error) ? e.error.code : 'untyped'))),
  ]
  const errorsBeforeMust = record.errors.filter((e) => e.at < mustRefreshAt).length
  const firstFailureAt = failures[0]?.at ?? outageStartedAt
  const attemptBound = worstCaseAttempts(outageEndedAt - firstFailureAt)
  const recoveryMs = recoveredAt === undefined ? NaN : recoveredAt - outageEndedAt
  const scheduledMs = Math.max(0, scheduledRetryAt - outageEndedAt)
  const since = (at) => `${num(at - token.issuedAt)} ms`

  printTable(
    `4b. Outage across expiry: ${LIFETIME_MS / 1000} s token, 503 from right after the fetch until ${AFTER_EXPIRY_MS / 1000} s after expiry, ${LOOPS} loops`,
    [
      {
        measure: 'outage (since token issuedAt)',
        value: `${since(outageStartedAt)} → ${since(outageEndedAt)}`,
        ratio: '',
      },
      {
        measure: 'mustRefreshAt / expiresAt',
        value: `${since(mustRefreshAt)} / ${since(token.expiresAt)}`,
        ratio: '',
      },
      { measure: 'get() calls during outage', value: num(callsDuringOutage), ratio: '' },
      {
        measure: 'token requests during outage (all failed)',
        value: num(requestsDuringOutage),
        ratio: ratio(requestsDuringOutage / Math.max(1, callsDuringOutage), 5) + ' of calls',
      },
      {
        measure: 'requests/s to the failing endpoint (whole outage)',
        value: num(requestsDuringOutage / outageSeconds, 2),
        ratio: '',
      },
      {
        measure: 'requests/s once the token was unusable',
        value: num(requestsAfterMust / afterMustSeconds, 2),
        ratio: '',
      },
      { measure: 'worst-case bound by the backoff policy', value: `${attemptBound} requests`, ratio: '' },
      {
        measure: 'caller errors (typed, retryable) / codes',
        value: `${num(record.errors.length)} (${num(typed.length)}) / ${codes.join(', ') || '—'}`,
        ratio: '',
      },
      { measure: 'errors before the mandatory window', value: num(errorsBeforeMust), ratio: '' },
      {
        measure: 'failed fast (no request) during backoff',
        value: num(stats.failFast - statsBefore.failFast),
        ratio: '',
      },
      {
        measure: 'backoff retry scheduled after the server returned',
        value: `${num(scheduledMs)} ms`,
        ratio: '',
      },
      {
        measure: 'time to recover after clearFaults()',
        value: Number.isNaN(recoveryMs) ? 'not recovered' : `${num(recoveryMs)} ms`,
        ratio: ratio(recoveryMs / (scheduledMs + requestMs)) + ' of (retry + 1 request)',
      },
      { measure: 'baseline: one direct token request', value: `${num(requestMs, 1)} ms`, ratio: '' },
      { measure: 'expired or unknown tokens handed out', value: num(record.expired), ratio: '' },
    ],
  )

  const verdicts = [
    verdict(
      'outage across expiry',
      'every caller error is typed and retryable',
      `${typed.length} of ${record.errors.length}`,
      typed.length === record.errors.length,
      'correctness',
    ),
    verdict(
      'outage across expiry',
      'no error while the token may still be served',
      `${errorsBeforeMust}`,
      errorsBeforeMust === 0,
      'correctness',
    ),
    verdict(
      'outage across expiry',
      'requests to the failing endpoint bounded by the backoff',
      `${requestsDuringOutage} ≤ ${attemptBound}`,
      requestsDuringOutage <= attemptBound,
      'correctness',
    ),
    verdict(
      'outage across expiry',
      'zero expired tokens handed out',
      `${record.expired}`,
      record.expired === 0,
      'correctness',
    ),
    verdict(
      'outage across expiry',
      'recovers after the server returns',
      Number.isNaN(recoveryMs)
        ? `not within ${RECOVERY_TIMEOUT_MS} ms`
        : `${num(recoveryMs)} ms (retry was due in ${num(scheduledMs)} ms)`,
      !Number.isNaN(recoveryMs),
      'correctness',
    ),
    verdict(
      'outage across expiry',
      'recovers at the first retry the backoff allows (≤ retry + 1 request + 50 ms)',
      Number.isNaN(recoveryMs) ? '—' : `${num(recoveryMs)} ms`,
      recoveryMs <= scheduledMs + requestMs + 50,
      'timing',
    ),
  ]
  printVerdicts(verdicts)
  return {
    verdicts,
    summary: {
      requestsDuringOutage,
      requestsPerSecond: requestsDuringOutage / outageSeconds,
      recoveryMs,
      scheduledMs,
      errors: record.errors.length,
    },
  }
}

/**
 * 4c. Callers who would rather wait (batch jobs): a cold key during a 5 s outage whose 503s carry
 * `Retry-After: 1`. The same 50 loops run twice, with the default (fail at once) and with
 * `waitForRecoveryMs: 30_000`; the waiting run must give each loop at most one error, make at
 * most 10 token requests, and recover within Retry-After + one request time.
 */
export async function outageWaiting() {
  const OUTAGE_MS = 5_000
  const RETRY_AFTER_S = 1
  const run = async (waitForRecoveryMs) => {
    const { server, source: makeSource } = await startServer({ tokenLifetimeMs: 60_000 })
    const source = makeSource()
    const requestMs = await tokenRequestMs(source, 5, 1)
    const tokens = new TokenManager({ waitForRecoveryMs })
    const fault = { ...OUTAGE, retryAfter: RETRY_AFTER_S }
    server.setFault(fault)
    const requestsBefore = server.stats().tokenRequests
    const startedAt = Date.now()
    let outageEndedAt = Infinity
    const errorsPerLoop = new Map()
    let calls = 0
    let loopIndex = 0
    let recoveredAt
    const stopAt = () => (recoveredAt === undefined ? Infinity : recoveredAt + 200)
    const loops = Array.from({ length: LOOPS }, async () => {
      const loop = loopIndex++
      while (Date.now() < stopAt() && Date.now() < startedAt + OUTAGE_MS + 15_000) {
        calls++
        try {
          await tokens.get(source)
          if (Date.now() >= outageEndedAt && recoveredAt === undefined) recoveredAt = Date.now()
        } catch {
          errorsPerLoop.set(loop, (errorsPerLoop.get(loop) ?? 0) + 1)
        }
        await sleep(1)
      }
    })
    await sleep(OUTAGE_MS)
    server.clearFaults()
    outageEndedAt = Date.now()
    await Promise.all(loops)
    const requests = server.stats().tokenRequests - requestsBefore
    const errors = [...errorsPerLoop.values()].reduce((a, b) => a + b, 0)
    const stats = tokens.stats()
    await tokens.close()
    await server.close()
    return {
      calls,
      errors,
      worstLoop: Math.max(0, ...errorsPerLoop.values()),
      requests,
      recoveryMs: recoveredAt === undefined ? NaN : recoveredAt - outageEndedAt,
      requestMs,
      waited: stats.waitedForRecovery,
    }
  }
  const failing = await run(0)
  const waiting = await run(30_000)
  const bound = RETRY_AFTER_S * 1000 + waiting.requestMs
  printTable(
    `4c. Callers who would rather wait: cold key, ${OUTAGE_MS / 1000} s of 503 with Retry-After: ${RETRY_AFTER_S}, ${LOOPS} loops; default (fail at once) vs waitForRecoveryMs: 30 000`,
    [
      { measure: 'get() calls', default: num(failing.calls), waiting: num(waiting.calls) },
      { measure: 'caller errors', default: num(failing.errors), waiting: num(waiting.errors) },
      {
        measure: 'most errors in one loop',
        default: num(failing.worstLoop),
        waiting: num(waiting.worstLoop),
      },
      { measure: 'token requests', default: num(failing.requests), waiting: num(waiting.requests) },
      {
        measure: 'recovery after the server returned',
        default: `${num(failing.recoveryMs)} ms`,
        waiting: `${num(waiting.recoveryMs)} ms`,
      },
      { measure: 'waits for the next attempt', default: num(failing.waited), waiting: num(waiting.waited) },
    ],
  )
  const verdicts = [
    verdict(
      'outage, waiting callers',
      'at most 1 error per caller',
      `${waiting.worstLoop}`,
      waiting.worstLoop <= 1,
      'correctness',
    ),
    verdict(
      'outage, waiting callers',
      'at most 10 token requests',
      `${waiting.requests}`,
      waiting.requests <= 10,
      'correctness',
    ),
    verdict(
      'outage, waiting callers',
      'recovers within Retry-After + one request time (+ 50 ms)',
      `${num(waiting.recoveryMs)} ms ≤ ${num(bound + 50)} ms`,
      waiting.recoveryMs <= bound + 50,
      'timing',
    ),
  ]
  printVerdicts(verdicts)
  return { verdicts, summary: { failing, waiting } }
}
