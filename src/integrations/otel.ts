/**
 * `tokenkeeper/otel`: {@link instrument} records a manager's metrics and spans through
 * `@opentelemetry/api` (an optional peer dependency). See `docs/INTEGRATIONS.md`.
 *
 * @packageDocumentation
 * @module tokenkeeper/otel
 */
import { createHash } from 'node:crypto'
import {
  context,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type MeterProvider,
  type Observable,
  type ObservableResult,
  type Span,
  type TracerProvider,
} from '@opentelemetry/api'
import type {
  HitEvent,
  InvalidateEvent,
  LockWaitEvent,
  MissEvent,
  RefreshFailureEvent,
  RefreshStartEvent,
  RefreshSuccessEvent,
  StoreErrorEvent,
} from '../manager/events.js'
import type { TokenManager } from '../manager/manager.js'

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /** Where metrics go. Default: the global provider (`metrics.getMeterProvider()`). */
  readonly meterProvider?: MeterProvider
  /** Where spans go. Default: the global provider (`trace.getTracerProvider()`). */
  readonly tracerProvider?: TracerProvider
  /** Added to every metric point and span, e.g. `{ 'tokenkeeper.manager': 'billing' }` for several managers. */
  readonly attributes?: Attributes
  /**
   * Count every lookup as it happens, with its window (`fresh` / `advisory`) or miss reason.
   * This listens to the per-call `hit` event and so costs on every cache hit (see
   * docs/BENCHMARKS.md). Default `false`: lookups are read from `stats()` at collection time,
   * by result only, at no cost per call.
   */
  readonly perLookup?: boolean
}

/** What {@link instrument} returns: stops the metrics and spans of one manager. */
export interface Instrumentation {
  /** Removes the listeners and callbacks; refreshes still in flight end their span unfinished. */
  stop(): void
  /** {@link Instrumentation.stop}, for `using instrumentation = instrument(tokens)`. */
  [Symbol.dispose](): void
}

/** The name under which the meter and tracer are registered. */
export const INSTRUMENTATION_SCOPE = 'tokenkeeper'

/** Bucket boundaries (seconds) for token request durations: OpenTelemetry's HTTP client buckets. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

/**
 * A short, stable, secret-free name of a cache key for spans: the first 16 characters of the
 * base64url SHA-256 of the key. (Keys hold no secret by design; they do name endpoints, client
 * ids and scopes, which a trace backend need not see.)
 */
export function keyFingerprint(key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 16)
}

/**
 * Metrics and spans of a {@link TokenManager} through `@opentelemetry/api`, built on the manager's
 * events: nothing is measured for a manager that is not instrumented, and a cache hit costs
 * nothing more unless `perLookup` is set.
 *
 * Metrics (attribute names in `tokenkeeper.*`, `error.type` for failure codes):
 * - `tokenkeeper.token.requests` (counter, `{request}`): refreshes by `tokenkeeper.outcome`
 *   (`success` / `failure`), `tokenkeeper.refresh.mode`, `tokenkeeper.token.origin` (`fetch`: the
 *   token endpoint; `store`: another process's token) and `error.type`;
 * - `tokenkeeper.token.request.duration` (histogram, `s`), with the same attributes;
 * - `tokenkeeper.cache.lookups` (counter, `{lookup}`) by `tokenkeeper.cache.result` (`hit` / `miss`);
 * - `tokenkeeper.cache.stale_served`, `tokenkeeper.cache.fail_fast` (counters, `{lookup}`);
 * - `tokenkeeper.cache.entries`, `tokenkeeper.refresh.active` (up-down counters, `{entry}` / `{refresh}`);
 * - `tokenkeeper.store.errors` (counter, `{error}`) by `tokenkeeper.store.operation`;
 * - `tokenkeeper.cache.invalidations` (counter, `{invalidation}`) by `tokenkeeper.invalidation.origin`
 *   and `tokenkeeper.invalidation.removed`;
 * - `tokenkeeper.store.lock.wait.duration` (histogram, `s`): waits for another process's fetch lock
 *   in a shared store, by `tokenkeeper.lock.outcome` (`store`: its token came; `fetch`: this
 *   process fetched itself).
 *
 * Spans: one `tokenkeeper refresh` span (INTERNAL) per refresh, child of the context active when
 * it started, with `tokenkeeper.key.fingerprint` (see {@link keyFingerprint}); failures set status
 * ERROR with the error's code and (scrubbed) message.
 *
 * @example
 * ```ts
 * import { instrument } from 'tokenkeeper/otel'
 * const instrumentation = instrument(tokens) // global providers, or { meterProvider, tracerProvider }
 * // ...
 * instrumentation.stop()
 * ```
 */
export function instrument(tokens: TokenManager, options: InstrumentOptions = {}): Instrumentation {
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE)
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_SCOPE)
  const base: Attributes = { ...options.attributes }
  const withBase = (attributes: Attributes): Attributes => ({ ...base, ...attributes })

  const requests = meter.createCounter('tokenkeeper.token.requests', {
    description:
      'Token refreshes: requests to the token endpoint, or reads of a token another process stored',
    unit: '{request}',
  })
  const duration = meter.createHistogram('tokenkeeper.token.request.duration', {
    description: 'Duration of token refreshes',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  })
  const storeErrors = meter.createCounter('tokenkeeper.store.errors', {
    description: 'Token store operations that failed (each treated as a cache miss)',
    unit: '{error}',
  })
  const invalidations = meter.createCounter('tokenkeeper.cache.invalidations', {
    description: 'Invalidations of cached tokens',
    unit: '{invalidation}',
  })
  const lockWaits = meter.createHistogram('tokenkeeper.store.lock.wait.duration', {
    description: "Waits for another process's fetch lock in the shared store",
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  })
  const observables = {
    stale: meter.createObservableCounter('tokenkeeper.cache.stale_served', {
      description: 'Hits served while the renewal of their key was failing',
      unit: '{lookup}',
    }),
    failFast: meter.createObservableCounter('tokenkeeper.cache.fail_fast', {
      description: 'Callers given the remembered error at once during a backoff',
      unit: '{lookup}',
    }),
    entries: meter.createObservableUpDownCounter('tokenkeeper.cache.entries', {
      description: 'Keys held in memory',
      unit: '{entry}',
    }),
    active: meter.createObservableUpDownCounter('tokenkeeper.refresh.active', {
      description: 'Refreshes in progress',
      unit: '{refresh}',
    }),
  }
  const perLookup = options.perLookup === true
  const lookupOptions = {
    description: 'Calls to get(), by whether the token was in memory',
    unit: '{lookup}',
  }
  const lookupCounter = perLookup
    ? meter.createCounter('tokenkeeper.cache.lookups', lookupOptions)
    : undefined
  const lookupObservable = perLookup
    ? undefined
    : meter.createObservableCounter('tokenkeeper.cache.lookups', lookupOptions)
  const hitAttributes = {
    fresh: withBase({ 'tokenkeeper.cache.result': 'hit', 'tokenkeeper.cache.window': 'fresh' }),
    advisory: withBase({ 'tokenkeeper.cache.result': 'hit', 'tokenkeeper.cache.window': 'advisory' }),
  }
  const missAttributes = {
    cold: withBase({ 'tokenkeeper.cache.result': 'miss', 'tokenkeeper.cache.miss_reason': 'cold' }),
    expired: withBase({ 'tokenkeeper.cache.result': 'miss', 'tokenkeeper.cache.miss_reason': 'expired' }),
  }
  const hitOnly = withBase({ 'tokenkeeper.cache.result': 'hit' })
  const missOnly = withBase({ 'tokenkeeper.cache.result': 'miss' })
  const collect = (result: ObservableResult, value: (stats: ReturnType<TokenManager['stats']>) => number) => {
    result.observe(value(tokens.stats()), base)
  }
  const callbacks: [Observable, (result: ObservableResult) => void][] = [
    [observables.stale, (result) => collect(result, (stats) => stats.staleServed)],
    [observables.failFast, (result) => collect(result, (stats) => stats.failFast)],
    [observables.entries, (result) => collect(result, (stats) => stats.entries)],
    [observables.active, (result) => collect(result, (stats) => stats.inFlight)],
  ]
  if (lookupObservable !== undefined)
    callbacks.push([
      lookupObservable,
      (result) => {
        const stats = tokens.stats()
        result.observe(stats.hits, hitOnly)
        result.observe(stats.misses, missOnly)
      },
    ])
  for (const [observable, callback] of callbacks) observable.addCallback(callback)

  // One refresh per key at a time in a manager; a list covers an evicted entry's flight ending late.
  const open = new Map<string, Span[]>()
  const startedAt = new Map<Span, RefreshStartEvent>()
  const take = (key: string): Span | undefined => {
    const list = open.get(key)
    const span = list?.shift()
    if (list?.length === 0) open.delete(key)
    return span
  }

  const listeners = {
    refreshStart: (event: RefreshStartEvent) => {
      const span = tracer.startSpan(
        'tokenkeeper refresh',
        {
          kind: SpanKind.INTERNAL,
          attributes: withBase({
            'tokenkeeper.key.fingerprint': keyFingerprint(event.key),
            'tokenkeeper.refresh.mode': event.mode,
          }),
        },
        context.active(),
      )
      const list = open.get(event.key)
      if (list === undefined) open.set(event.key, [span])
      else list.push(span)
      startedAt.set(span, event)
    },
    refreshSuccess: (event: RefreshSuccessEvent) => {
      const attributes = withBase({
        'tokenkeeper.outcome': 'success',
        'tokenkeeper.refresh.mode': event.mode,
        'tokenkeeper.token.origin': event.origin,
      })
      requests.add(1, attributes)
      duration.record(event.durationMs / 1000, attributes)
      const span = take(event.key)
      if (span === undefined) return
      startedAt.delete(span)
      span.setAttribute('tokenkeeper.token.origin', event.origin)
      span.end()
    },
    refreshFailure: (event: RefreshFailureEvent) => {
      const attributes = withBase({
        'tokenkeeper.outcome': 'failure',
        'tokenkeeper.refresh.mode': event.mode,
        'error.type': event.code,
      })
      requests.add(1, attributes)
      duration.record(event.durationMs / 1000, attributes)
      const span = take(event.key)
      if (span === undefined) return
      startedAt.delete(span)
      span.setAttributes({
        'error.type': event.code,
        'tokenkeeper.retryable': event.retryable,
        'tokenkeeper.serving_cached': event.servingCached,
      })
      span.setStatus({ code: SpanStatusCode.ERROR, message: event.message })
      span.end()
    },
    storeError: (event: StoreErrorEvent) => {
      storeErrors.add(1, withBase({ 'tokenkeeper.store.operation': event.operation }))
    },
    invalidate: (event: InvalidateEvent) => {
      invalidations.add(
        1,
        withBase({
          'tokenkeeper.invalidation.origin': event.origin,
          'tokenkeeper.invalidation.removed': event.removed,
        }),
      )
    },
    lockWait: (event: LockWaitEvent) => {
      lockWaits.record(event.waitedMs / 1000, withBase({ 'tokenkeeper.lock.outcome': event.outcome }))
    },
    hit: (event: HitEvent) => lookupCounter?.add(1, hitAttributes[event.window]),
    miss: (event: MissEvent) => lookupCounter?.add(1, missAttributes[event.reason]),
  }
  tokens.on('refreshStart', listeners.refreshStart)
  tokens.on('refreshSuccess', listeners.refreshSuccess)
  tokens.on('refreshFailure', listeners.refreshFailure)
  tokens.on('storeError', listeners.storeError)
  tokens.on('invalidate', listeners.invalidate)
  tokens.on('lockWait', listeners.lockWait)
  if (perLookup) {
    tokens.on('hit', listeners.hit)
    tokens.on('miss', listeners.miss)
  }

  let stopped = false
  const stop = (): void => {
    if (stopped) return
    stopped = true
    tokens.off('refreshStart', listeners.refreshStart)
    tokens.off('refreshSuccess', listeners.refreshSuccess)
    tokens.off('refreshFailure', listeners.refreshFailure)
    tokens.off('storeError', listeners.storeError)
    tokens.off('invalidate', listeners.invalidate)
    tokens.off('lockWait', listeners.lockWait)
    tokens.off('hit', listeners.hit)
    tokens.off('miss', listeners.miss)
    for (const [observable, callback] of callbacks) observable.removeCallback(callback)
    for (const span of startedAt.keys()) {
      span.setAttribute('tokenkeeper.outcome', 'abandoned')
      span.end()
    }
    startedAt.clear()
    open.clear()
  }
  return { stop, [Symbol.dispose]: stop }
}
