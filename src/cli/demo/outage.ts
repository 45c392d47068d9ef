import type { TokenServer } from '../../testing/types.js'

/**
 * Where the outage falls, as fractions of the token lifetime after the latest token was issued.
 * It is placed over the moment each client needs a new token, the worst moment for it:
 * tokenkeeper's renewal point (the outage run's manager renews at 45–55 % of the lifetime and
 * must have a new token by 90 %), and the naive cache's expiry (100 %). Both outages last up to
 * 45 % of the lifetime. tokenkeeper's ends at 60 %, leaving 30 % of the lifetime before its
 * token may no longer be served: a busy machine that runs the process late must not turn the
 * demo of an outage survived into one of calls failed.
 *
 * An outage that has refused no token request by its planned end stays on until it refuses one
 * (or the phase ends). A process stalled over the renewal point otherwise runs the renewal timer
 * and the outage's end together, and the embedded token server then reads the renewal only after
 * the outage is over: the demo of an outage that no request met.
 */
export interface OutagePlan {
  readonly from: number
  /** The latest it may still begin (a late start, say on a busy machine, must still come first). */
  readonly latestStart: number
  readonly to: number
}

export const OUTAGE_PLANS = {
  tokenkeeper: { from: 0.15, latestStart: 0.35, to: 0.6 },
  naive: { from: 0.8, latestStart: 0.95, to: 1.25 },
} as const satisfies Record<string, OutagePlan>

/** What happened during the outage. */
export interface OutageReport {
  /** When it began, in ms after the phase started. */
  readonly startedAfterMs: number
  readonly durationMs: number
  /** Token requests the server refused during it (503). */
  readonly failedTokenRequests: number
}

/** A scheduled outage. */
export interface Outage {
  /** Whether the token endpoint is down now. */
  active(): boolean
  /** Cancels what has not happened yet, and reports what did (undefined when it never began). */
  stop(): OutageReport | undefined
}

const POLL_MS = 5

/** When the latest token since `since` was issued (the server serves earlier phases too). */
function latestIssuance(server: TokenServer, since: number): number | undefined {
  const requests = server.requests
  for (let index = requests.length - 1; index >= 0; index--) {
    const request = requests[index]
    if (request === undefined || request.at < since) return undefined
    if (request.status === 200) return request.at
  }
  return undefined
}

/**
 * Makes the token endpoint answer 503 for up to 45 % of the token lifetime, once, mid-run: it waits for
 * the first token issued late enough that the outage window (see {@link OUTAGE_PLANS}) starts
 * after the first 30 % of the phase and ends before the phase does. It stays on past its planned
 * end until it has refused a token request.
 */
export function scheduleOutage(
  server: TokenServer,
  options: { lifetimeMs: number; plan: OutagePlan; phaseStartedAt: number; phaseDurationMs: number },
): Outage {
  const { lifetimeMs, plan, phaseStartedAt, phaseDurationMs } = options
  const earliest = phaseStartedAt + phaseDurationMs * 0.3
  const latest = phaseStartedAt + phaseDurationMs
  const timers: NodeJS.Timeout[] = []
  let state: 'waiting' | 'scheduled' | 'active' | 'over' = 'waiting'
  let window: { start: number; end: number } | undefined
  let failuresBefore = 0

  const finish = (): void => {
    if (state !== 'active') return
    server.setFault(undefined)
    state = 'over'
    if (window !== undefined) window = { start: window.start, end: Date.now() }
  }
  const end = (): void => {
    if (state !== 'active') return
    if (server.stats().failures > failuresBefore) finish()
    else timers.push(setTimeout(end, POLL_MS))
  }
  const begin = (): void => {
    if (state !== 'scheduled') return
    server.setFault({
      kind: 'status',
      status: 503,
      error: 'temporarily_unavailable',
      errorDescription: 'demo outage',
    })
    state = 'active'
    failuresBefore = server.stats().failures
    if (window === undefined) return
    window = { start: Date.now(), end: window.end }
    timers.push(setTimeout(end, Math.max(0, window.end - window.start)))
  }
  const poll = setInterval(() => {
    // Decide only once the token requests in flight have been answered (a naive cache's stampede
    // ends with the token it keeps: the last one to arrive).
    if (server.stats().inFlight > 0) return
    const issuedAt = latestIssuance(server, phaseStartedAt)
    if (issuedAt === undefined) return
    const now = Date.now()
    const start = Math.max(issuedAt + plan.from * lifetimeMs, now, earliest)
    const stop = issuedAt + plan.to * lifetimeMs
    if (start > issuedAt + plan.latestStart * lifetimeMs) return // too late for this token: the next one
    if (stop > latest) {
      clearInterval(poll)
      return
    }
    clearInterval(poll)
    window = { start, end: stop }
    state = 'scheduled'
    timers.push(setTimeout(begin, Math.max(0, start - now)))
  }, POLL_MS)

  return {
    active: () => state === 'active',
    stop() {
      clearInterval(poll)
      for (const timer of timers) clearTimeout(timer)
      const began = state === 'active' || state === 'over'
      finish()
      if (!began || window === undefined) return undefined
      const failed = server.requests.filter(
        (request) => request.at >= phaseStartedAt && request.fault !== undefined,
      ).length
      return {
        startedAfterMs: Math.round(window.start - phaseStartedAt),
        durationMs: Math.round(window.end - window.start),
        failedTokenRequests: failed,
      }
    },
  }
}
