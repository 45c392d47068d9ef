import { parseDurationMs, parseFlags, parseIntegerFlag, stringFlag } from '../args.js'
import { usageError } from '../errors.js'

export const DEMO_HELP = `Usage: tokenkeeper demo [options]

Starts a token server (from tokenkeeper/testing) and its protected API on 127.0.0.1, then runs
many concurrent workers that call the API, first through tokenkeeper, then through a naive token
cache (the blog-post kind: refresh once expired), and compares them: API calls, failed calls,
expired-token rejections, token requests (as the token server counted them), latency percentiles.

Options:
  --workers N             Concurrent workers (default 200)
  --duration D            How long tokenkeeper's run lasts (default 20s)
  --naive-duration D      How long the naive cache's run lasts (default half of --duration; 0 skips it)
  --token-lifetime D      Lifetime of the tokens the server issues, whole seconds (default 5s)
  --latency D             Token endpoint latency (default 30ms)
  --think-time D          Mean pause of a worker between two calls (default 200ms)
  --fault outage          The token endpoint answers 503 for about 45 % of a token lifetime, once,
                          mid-run, over the moment each client needs a new token (and on until
                          it has refused a token request)
  --redis URL             Share tokens between worker processes through this Redis (needs ioredis)
  --processes N           Run the workers in N child processes (default 1)
  --json                  Print the summary as JSON only (no live display)
  --report FILE           Also write the run as one self-contained HTML page (charts, no network)
  -h, --help              Show this help

Durations: a bare number is seconds (20, 1.5); suffixes ms, s and m are accepted (500ms, 2m).
On a terminal the status lines are redrawn in place; piped output gets a plain line every 5 s.

Exit codes: 0 ok, 1 unexpected error, 2 usage, 3 configuration (--redis without ioredis
installed), 5 Redis unreachable.
`

/** The demo's settings, as the JSON summary reports them. */
export interface DemoSettings {
  readonly workers: number
  readonly processes: number
  readonly durationMs: number
  readonly naiveDurationMs: number
  readonly tokenLifetimeMs: number
  readonly latencyMs: number
  readonly thinkTimeMs: number
  readonly fault: 'outage' | null
  /** Whether the processes share tokens through Redis. */
  readonly redis: boolean
}

/** Parsed command line: settings, plus what stays out of the summary. */
export interface DemoCommandLine {
  readonly help: boolean
  readonly json: boolean
  readonly settings: DemoSettings
  /** May hold a password: never printed. */
  readonly redisUrl: string | undefined
  /** Where to write the HTML report, if anywhere. */
  readonly reportPath: string | undefined
}

const OPTIONS = {
  workers: { type: 'string' },
  duration: { type: 'string' },
  'naive-duration': { type: 'string' },
  'token-lifetime': { type: 'string' },
  latency: { type: 'string' },
  'think-time': { type: 'string' },
  fault: { type: 'string' },
  redis: { type: 'string' },
  processes: { type: 'string' },
  json: { type: 'boolean' },
  report: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

const HOUR_MS = 3_600_000

export function parseDemoCommandLine(argv: readonly string[]): DemoCommandLine {
  const values = parseFlags('demo', argv, OPTIONS)
  const text = (name: string): string | undefined => stringFlag(values, name)
  const duration = (name: string, fallback: number, min: number, max: number): number => {
    const value = text(name)
    return value === undefined ? fallback : parseDurationMs(value, name, { min, max })
  }
  const workers =
    text('workers') === undefined ? 200 : parseIntegerFlag(text('workers') ?? '', 'workers', 1, 10_000)
  const processes =
    text('processes') === undefined ? 1 : parseIntegerFlag(text('processes') ?? '', 'processes', 1, 64)
  if (processes > workers) throw usageError('--processes must not exceed --workers')
  const durationMs = duration('duration', 20_000, 200, HOUR_MS)
  const tokenLifetimeMs = duration('token-lifetime', 5_000, 1_000, 24 * HOUR_MS)
  if (tokenLifetimeMs % 1000 !== 0) {
    throw usageError('--token-lifetime must be whole seconds (expires_in is sent in seconds)')
  }
  const fault = text('fault')
  if (fault !== undefined && fault !== 'outage') throw usageError('--fault takes one value: outage')
  const redisUrl = text('redis')
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw usageError('--redis takes a URL such as redis://127.0.0.1:6379')
  }
  return {
    help: values['help'] === true,
    json: values['json'] === true,
    redisUrl,
    reportPath: text('report'),
    settings: {
      workers,
      processes,
      durationMs,
      naiveDurationMs: duration('naive-duration', Math.round(durationMs / 2), 0, HOUR_MS),
      tokenLifetimeMs,
      latencyMs: duration('latency', 30, 0, 10_000),
      thinkTimeMs: duration('think-time', 200, 0, 60_000),
      fault: fault === 'outage' ? 'outage' : null,
      redis: redisUrl !== undefined,
    },
  }
}
