// OpenTelemetry metrics and spans for a TokenManager (tokenkeeper/otel, @opentelemetry/api).
// A real application registers its SDK (NodeSDK, an OTLP exporter) and calls instrument(tokens);
// here an in-memory exporter shows what is recorded.
import { metrics } from '@opentelemetry/api'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { TokenManager, tokenSource } from 'tokenkeeper'
import { instrument } from 'tokenkeeper/otel'

const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 })
const meterProvider = new MeterProvider({ readers: [reader] })
metrics.setGlobalMeterProvider(meterProvider) // what an SDK setup does
const spans = new InMemorySpanExporter()
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })

const tokens = new TokenManager()
const instrumentation = instrument(tokens, { tracerProvider }) // metrics: the global provider

const source = tokenSource('example:otel', () => ({ access_token: 'example-otel-token', expires_in: 300 }))
await tokens.get(source)
await tokens.get(source)

await reader.forceFlush()
for (const metric of exporter.getMetrics()[0]?.scopeMetrics[0]?.metrics ?? []) {
  const points = metric.dataPoints.map((p) => (typeof p.value === 'number' ? p.value : 'histogram'))
  console.log(`${metric.descriptor.name} (${metric.descriptor.unit}): ${points.join(', ')}`)
}
for (const span of spans.getFinishedSpans())
  console.log(`span ${span.name} key ${String(span.attributes['tokenkeeper.key.fingerprint'])}`)

instrumentation.stop()
await tokens.close()
await meterProvider.shutdown()
