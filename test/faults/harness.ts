import { afterEach } from 'vitest'
import {
  backoffDelayMs,
  clientCredentials,
  clientSecretBasic,
  DEFAULT_BACKOFF_POLICY,
  TokenManager,
  type BackoffPolicy,
  type ClientCredentialsOptions,
  type TokenManagerOptions,
  type TokenSource,
} from '../../src/index.js'
import {
  createTestClock,
  startTokenServer,
  type TestClock,
  type TokenServer,
  type TokenServerOptions,
} from '../../src/testing/index.js'

export const CLIENT_ID = 'svc-a'
export const CLIENT_SECRET = 'svc-a-secret-value'
/** The jitter draw every manager here uses: backoff = 55 % of its step, refresh at 80 % of the lifetime. */
export const RANDOM = 0.5

/**
 * One shared test clock for the manager, the source (the manager passes its clock to
 * `fetchToken`) and the token server, a real token server on 127.0.0.1, and a manager.
 */
export interface Harness {
  readonly clock: TestClock
  readonly server: TokenServer
  readonly tokens: TokenManager
  /** A client-credentials source for `svc-a` at the harness server. */
  readonly source: (options?: Partial<ClientCredentialsOptions>) => TokenSource
}

export interface HarnessOptions {
  readonly server?: Omit<TokenServerOptions, 'clock'>
  readonly manager?: Omit<TokenManagerOptions, 'clock' | 'random'>
}

const cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  const pending = cleanups.splice(0).reverse()
  for (const cleanup of pending) await cleanup()
})

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const clock = createTestClock()
  const server = await startTokenServer({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }],
    ...options.server,
    clock,
  })
  // Warm up this process's fetch (undici loads lazily on first use) so that a short token
  // request timeout measures the server, not a cold start.
  const warmUp = await fetch(`${server.url}/.well-known/oauth-authorization-server`)
  await warmUp.body?.cancel()
  const tokens = new TokenManager({ ...options.manager, clock, random: () => RANDOM })
  cleanups.push(
    () => server.close(),
    () => tokens.close(),
  )
  return {
    clock,
    server,
    tokens,
    source: (extra = {}) =>
      clientCredentials({
        tokenUrl: server.tokenUrl,
        clientId: CLIENT_ID,
        auth: clientSecretBasic(CLIENT_SECRET),
        ...extra,
      }),
  }
}

/** Registers a cleanup that runs after the current test (after the harness is torn down). */
export function onCleanup(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup)
}

/**
 * Waits (real time, bounded) until the manager has no refresh in flight: background refreshes
 * do real loopback I/O, which must finish before logical time moves on. Never moves the clock.
 */
export async function idle(tokens: TokenManager, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (tokens.stats().inFlight > 0) {
    if (Date.now() > deadline) throw new Error(`a refresh was still in flight after ${timeoutMs} ms`)
    await new Promise<void>((resolve) => setTimeout(resolve, 1))
  }
}

/** Records every event a manager emits, by name (the manager tests' recorder). */
export { recordEvents } from '../manager/helpers.js'

/** The rejection reason of `promise` (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the promise to reject, but it resolved')
}

/**
 * The most token requests a failing key can make in `durationMs` of clock time after its first
 * failed attempt, by the pure backoff policy: attempt k+1 cannot start before attempt k plus its
 * backoff delay. (Callers arriving only at discrete steps can make fewer, never more.)
 */
export function maxAttemptsWithin(
  durationMs: number,
  facts: { readonly retryable: boolean; readonly retryAfterMs?: number } = { retryable: true },
  policy: BackoffPolicy = DEFAULT_BACKOFF_POLICY,
): number {
  let attempts = 1
  let elapsed = 0
  for (;;) {
    elapsed += backoffDelayMs({ attempt: attempts, ...facts }, policy, () => RANDOM)
    if (elapsed > durationMs) return attempts
    attempts++
  }
}

/**
 * The fewest token requests a failing key makes in `durationMs` when a caller arrives every
 * `stepMs`: attempt k+1 starts at the first step at or after attempt k plus its backoff delay.
 */
export function minAttemptsWithin(
  durationMs: number,
  stepMs: number,
  facts: { readonly retryable: boolean } = { retryable: true },
  policy: BackoffPolicy = DEFAULT_BACKOFF_POLICY,
): number {
  let attempts = 1
  let elapsed = 0
  for (;;) {
    const delay = backoffDelayMs({ attempt: attempts, ...facts }, policy, () => RANDOM)
    elapsed += Math.ceil(delay / stepMs) * stepMs
    if (elapsed > durationMs) return attempts
    attempts++
  }
}
