import { AsyncLocalStorage } from 'node:async_hooks'
import { context, ROOT_CONTEXT, trace, type Context, type ContextManager } from '@opentelemetry/api'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { instrument, keyFingerprint } from '../../src/integrations/otel.js'
import {
  clientCredentials,
  clientSecretBasic,
  memoryStore,
  TokenManager,
  type AccessToken,
  type TokenSource,
  type TokenStore,
} from '../../src/index.js'
import { createTestClock, startTokenServer, type TestClock } from '../../src/testing/index.js'
import { findLeaks } from '../sources/keys.js'

/** The context manager an application's SDK setup registers (the async-hooks one), in a few lines. */
class AsyncLocalContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>()
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.call(thisArg, ...args))
  }
  bind<T>(_ctx: Context, target: T): T {
    return target
  }
  enable(): this {
    return this
  }
  disable(): this {
    this.#storage.disable()
    return this
  }
}
context.setGlobalContextManager(new AsyncLocalContextManager())

const SECRET = 'OTELSECRET-must-not-leak-321'

let server: Awaited<ReturnType<typeof startTokenServer>>
let clock: TestClock
let exporter: InMemoryMetricExporter
let reader: PeriodicExportingMetricReader
let meterProvider: MeterProvider
let spans: InMemorySpanExporter
let tracerProvider: BasicTracerProvider
const managers: TokenManager[] = []

beforeEach(async () => {
  clock = createTestClock()
  server = await startTokenServer({ clock, clients: [{ clientId: 'otel-client', clientSecret: SECRET }] })
  exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // A long interval: the test collects by forceFlush only.
  reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  meterProvider = new MeterProvider({ readers: [reader] })
  spans = new InMemorySpanExporter()
  tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
})

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()))
  await meterProvider.shutdown()
  await tracerProvider.shutdown()
  await server.close()
})

function source(scope = 'read') {
  return clientCredentials({
    tokenUrl: server.tokenUrl,
    clientId: 'otel-client',
    auth: clientSecretBasic(SECRET),
    scopes: [scope],
  })
}

function manager(store?: TokenStore) {
  const tokens = new TokenManager({ clock, random: () => 0.5, ...(store === undefined ? {} : { store }) })
  managers.push(tokens)
  return tokens
}

/** Every metric of the last collection, by name. */
async function collect(): Promise<Map<string, MetricData>> {
  exporter.reset()
  await reader.forceFlush()
  const found = new Map<string, MetricData>()
  for (const resource of exporter.getMetrics())
    for (const scope of resource.scopeMetrics) {
      expect(scope.scope.name).toBe('tokenkeeper')
      for (const metric of scope.metrics) found.set(metric.descriptor.name, metric)
    }
  return found
}

/** The value of the point with exactly these attributes (0 when there is none). */
function point(metric: MetricData | undefined, attributes: Record<string, unknown>): unknown {
  const points = (metric?.dataPoints ?? []) as DataPoint<unknown>[]
  const match = points.find(
    (p) => JSON.stringify(sorted(p.attributes)) === JSON.stringify(sorted(attributes)),
  )
  return match?.value ?? 0
}
const sorted = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)))

describe('tokenkeeper/otel metrics', () => {
  it('counts token requests by outcome, their duration, lookups, fail-fast and entries against a real token server', async () => {
    const tokens = manager()
    instrument(tokens, { meterProvider, tracerProvider })
    const s = source()
    const first = await tokens.get(s)
    await tokens.get(s)
    await tokens.get(s)
    server.setFault({ kind: 'status', status: 503 })
    clock.set(first.expiresAt)
    await expect(tokens.get(s)).rejects.toMatchObject({ code: 'SERVER_ERROR' })
    await expect(tokens.get(s)).rejects.toMatchObject({ code: 'SERVER_ERROR' }) // fail fast
    server.clearFaults()

    const metrics = await collect()
    const requests = metrics.get('tokenkeeper.token.requests')
    expect(requests?.descriptor.unit).toBe('{request}')
    expect(
      point(requests, {
        'tokenkeeper.outcome': 'success',
        'tokenkeeper.refresh.mode': 'foreground',
        'tokenkeeper.token.origin': 'fetch',
      }),
    ).toBe(1)
    expect(
      point(requests, {
        'tokenkeeper.outcome': 'failure',
        'tokenkeeper.refresh.mode': 'foreground',
        'error.type': 'SERVER_ERROR',
      }),
    ).toBe(1)
    const duration = metrics.get('tokenkeeper.token.request.duration')
    expect(duration?.descriptor.unit).toBe('s')
    const histogram = duration?.dataPoints[0]?.value as Histogram
    expect(histogram.count).toBe(1)
    expect(histogram.buckets.boundaries).toContain(0.005)
    const lookups = metrics.get('tokenkeeper.cache.lookups')
    expect(point(lookups, { 'tokenkeeper.cache.result': 'hit' })).toBe(2)
    expect(point(lookups, { 'tokenkeeper.cache.result': 'miss' })).toBe(3)
    expect(point(metrics.get('tokenkeeper.cache.fail_fast'), {})).toBe(1)
    expect(point(metrics.get('tokenkeeper.cache.entries'), {})).toBe(1)
    expect(point(metrics.get('tokenkeeper.refresh.active'), {})).toBe(0)
  })

  it('counts stale hits, store errors and invalidations, with the given attributes on every point', async () => {
    const inner = memoryStore({ clock })
    let broken = true
    const store: TokenStore = {
      get: (key) => (broken ? Promise.reject(new Error('store down')) : inner.get(key)),
      set: (key, record, options) => inner.set(key, record, options),
      delete: (key, options) => inner.delete(key, options),
      clear: () => inner.clear(),
    }
    const tokens = manager(store)
    const base = { 'tokenkeeper.manager': 'billing' }
    instrument(tokens, { meterProvider, tracerProvider, attributes: base })
    const s = source()
    const token = await tokens.get(s)
    broken = false
    // Advisory window, renewal failing: the cached token is served (stale).
    server.setFault({ kind: 'status', status: 503 })
    clock.set(token.issuedAt + 0.85 * (token.expiresAt - token.issuedAt))
    await tokens.get(s)
    await vi.waitFor(() => expect(tokens.stats().failures).toBe(1)) // the background renewal's 503
    await tokens.get(s)
    server.clearFaults()
    await tokens.invalidate(s, { token })

    const metrics = await collect()
    expect(
      point(metrics.get('tokenkeeper.store.errors'), { ...base, 'tokenkeeper.store.operation': 'get' }),
    ).toBe(1)
    expect(point(metrics.get('tokenkeeper.cache.stale_served'), base)).toBe(1)
    expect(
      point(metrics.get('tokenkeeper.cache.invalidations'), {
        ...base,
        'tokenkeeper.invalidation.origin': 'local',
        'tokenkeeper.invalidation.removed': true,
      }),
    ).toBe(1)
    expect(
      point(metrics.get('tokenkeeper.token.requests'), {
        ...base,
        'tokenkeeper.outcome': 'failure',
        'tokenkeeper.refresh.mode': 'background',
        'error.type': 'SERVER_ERROR',
      }),
    ).toBe(1)
  })

  it("measures waits for another process's fetch lock, by outcome, as the lockWait event says", async () => {
    const store = memoryStore({ clock }) as Required<TokenStore> & { readonly size: number }
    // The waiter's view of the shared store, which counts the times it found the lock taken.
    let waiting = 0
    const watched: TokenStore = {
      get: (key) => store.get(key),
      set: (key, record, options) => store.set(key, record, options),
      delete: (key, options) => store.delete(key, options),
      clear: () => store.clear(),
      acquireLock: async (key, options) => {
        const lock = await store.acquireLock(key, options)
        if (lock === undefined) waiting++
        return lock
      },
      subscribe: (listener) => store.subscribe(listener),
    }
    const holder = manager(store)
    const waiter = manager(watched)
    instrument(waiter, { meterProvider, tracerProvider })
    const waits: unknown[] = []
    waiter.on('lockWait', (event) => waits.push(event))
    // The holder's token request waits for the test; the waiter finds the lock taken and waits.
    const real = source()
    let open: () => void = () => {}
    const gate = new Promise<void>((resolve) => (open = resolve))
    const s: TokenSource = {
      key: real.key,
      fetchToken: async (options) => {
        await gate
        return real.fetchToken(options)
      },
    }
    const held = holder.get(s)
    const waited = waiter.get(s)
    await vi.waitFor(() => expect(waiting).toBe(1))
    clock.advance(30)
    open()
    const [a, b] = await Promise.all([held, waited])
    expect(b.value).toBe(a.value)
    expect(server.stats().tokenRequests).toBe(1)
    expect(waits).toEqual([{ key: s.key, waitedMs: 30, outcome: 'store' }])

    // A lock whose holder died (never released, never wrote): the waiter fetches once it expires.
    await store.clear()
    const lock = await store.acquireLock(s.key, { ttlMs: 15_000 })
    expect(lock).toBeDefined()
    const other = manager(watched)
    instrument(other, { meterProvider, tracerProvider })
    other.on('lockWait', (event) => waits.push(event))
    const late = other.get(s)
    await vi.waitFor(() => expect(waiting).toBe(2))
    await clock.advanceAsync(15_300)
    expect((await late).value).not.toBe(a.value)
    expect(waits.at(-1)).toMatchObject({ key: s.key, outcome: 'fetch' })
    expect((waits.at(-1) as { waitedMs: number }).waitedMs).toBeGreaterThanOrEqual(15_000)

    const histogram = (await collect()).get('tokenkeeper.store.lock.wait.duration')
    const count = (outcome: string) =>
      (point(histogram, { 'tokenkeeper.lock.outcome': outcome }) as Histogram | 0 | undefined) || undefined
    expect(count('store')?.count).toBe(1)
    expect(count('store')?.sum).toBeCloseTo(0.03, 6)
    expect(count('fetch')?.count).toBe(1)
  })

  it('with perLookup, counts hits by window and misses by reason as they happen', async () => {
    const tokens = manager()
    instrument(tokens, { meterProvider, tracerProvider, perLookup: true })
    const s = source()
    const token = await tokens.get(s)
    await tokens.get(s)
    clock.set(token.issuedAt + 0.85 * (token.expiresAt - token.issuedAt))
    await tokens.get(s)
    const lookups = (await collect()).get('tokenkeeper.cache.lookups')
    expect(
      point(lookups, { 'tokenkeeper.cache.result': 'miss', 'tokenkeeper.cache.miss_reason': 'cold' }),
    ).toBe(1)
    expect(point(lookups, { 'tokenkeeper.cache.result': 'hit', 'tokenkeeper.cache.window': 'fresh' })).toBe(1)
    expect(
      point(lookups, { 'tokenkeeper.cache.result': 'hit', 'tokenkeeper.cache.window': 'advisory' }),
    ).toBe(1)
  })

  it('stop() ends the measurements: no listener or callback is left', async () => {
    const tokens = manager()
    const instrumentation = instrument(tokens, { meterProvider, tracerProvider, perLookup: true })
    expect(tokens.listenerCount('hit')).toBe(1)
    instrumentation.stop()
    instrumentation.stop()
    for (const name of [
      'hit',
      'miss',
      'refreshStart',
      'refreshSuccess',
      'refreshFailure',
      'storeError',
      'invalidate',
      'lockWait',
    ] as const)
      expect(tokens.listenerCount(name), name).toBe(0)
    await tokens.get(source())
    const metrics = await collect()
    expect(point(metrics.get('tokenkeeper.token.requests'), {})).toBe(0)
    expect(metrics.get('tokenkeeper.cache.entries')?.dataPoints ?? []).toEqual([])
    expect(spans.getFinishedSpans()).toEqual([])
  })
})

describe('tokenkeeper/otel spans', () => {
  it('one span per token request, child of the caller, with the key fingerprint and no secret', async () => {
    const tokens = manager()
    instrument(tokens, { meterProvider, tracerProvider })
    const s = source()
    const tracer = tracerProvider.getTracer('app')
    const issued: AccessToken[] = []
    const parent = tracer.startSpan('handle request')
    await context.with(trace.setSpan(context.active(), parent), async () => {
      issued.push(...(await Promise.all([tokens.get(s), tokens.get(s), tokens.get(s)])))
    })
    parent.end()
    server.setFault({
      kind: 'status',
      status: 401,
      error: 'invalid_client',
      errorDescription: `wrong secret ${SECRET}`,
    })
    clock.set(issued[0]!.expiresAt)
    await expect(tokens.get(s)).rejects.toMatchObject({ code: 'OAUTH_ERROR' })

    const refreshes = spans.getFinishedSpans().filter((span) => span.name === 'tokenkeeper refresh')
    expect(refreshes).toHaveLength(2)
    const [ok, failed] = refreshes
    expect(ok!.parentSpanContext?.spanId).toBe(parent.spanContext().spanId)
    expect(ok!.attributes).toEqual({
      'tokenkeeper.key.fingerprint': keyFingerprint(s.key),
      'tokenkeeper.refresh.mode': 'foreground',
      'tokenkeeper.token.origin': 'fetch',
    })
    expect(ok!.status.code).toBe(0)
    expect(failed!.status.code).toBe(2) // ERROR
    expect(failed!.attributes).toMatchObject({ 'error.type': 'OAUTH_ERROR', 'tokenkeeper.retryable': false })
    expect(keyFingerprint(s.key)).toMatch(/^[\w-]{16}$/)
    expect(JSON.stringify(refreshes.map((span) => span.attributes))).not.toContain('otel-client')

    const rendered = [
      JSON.stringify(refreshes.map((span) => ({ a: span.attributes, s: span.status, e: span.events }))),
    ]
    const forbidden = [
      SECRET,
      Buffer.from(`otel-client:${SECRET}`).toString('base64'),
      ...issued.map((t) => t.value),
    ]
    expect(findLeaks(rendered, forbidden)).toEqual([])
    expect(rendered[0]).toMatch(/invalid_client|401/)
  })
})
