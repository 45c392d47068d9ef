import { TokenManager } from '../../manager/manager.js'
import type { BackoffPolicy, RefreshPolicy } from '../../manager/policy.js'
import { clientSecretBasic } from '../../sources/auth.js'
import { clientCredentials } from '../../sources/client-credentials.js'
import type { TokenStore } from '../../stores/types.js'

/** Which client a workload uses. */
export type ClientKind = 'tokenkeeper' | 'naive'

/** What a client needs to reach the demo's token server and API. Serializable (sent to child processes). */
export interface ClientSpec {
  readonly kind: ClientKind
  readonly tokenUrl: string
  readonly resourceUrl: string
  readonly clientId: string
  /** The demo client's random secret. Never printed. */
  readonly clientSecret: string
  /** Overrides of the TokenManager's policy (the outage run scales them to the short lifetime). */
  readonly policy?: Partial<RefreshPolicy & BackoffPolicy>
}

/** A client's own counters. */
export interface ClientStats {
  /** Token requests this client sent. */
  readonly tokenRequests: number
  /** Calls served a cached token. */
  readonly hits: number
  /** Calls that had to wait for a token. */
  readonly misses: number
  /** Renewals started in the background before expiry (tokenkeeper only). */
  readonly backgroundRenewals: number
  /** Tokens taken from the shared store, fetched by another process (tokenkeeper with Redis only). */
  readonly storeHits: number
  /** Token requests that failed. */
  readonly tokenFailures: number
}

/** Calls the demo API with a token, and counts. */
export interface DemoClient {
  /** One API call; resolves true for a 2xx answer, false for any other; rejects when no call could be made. */
  call(): Promise<boolean>
  stats(): ClientStats
  /** Waits for renewals in flight (so that every token request is counted), then releases everything. */
  close(): Promise<void>
}

async function settle(isBusy: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (isBusy() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
}

/** The API called through `tokens.fetch(source)`: cached token, renewal before expiry, one retry on 401. */
export function tokenkeeperClient(spec: ClientSpec, store?: TokenStore): DemoClient {
  const tokens = new TokenManager({ ...spec.policy, ...(store === undefined ? {} : { store }) })
  const source = clientCredentials({
    tokenUrl: spec.tokenUrl,
    clientId: spec.clientId,
    auth: clientSecretBasic(spec.clientSecret),
  })
  const api = tokens.fetch(source)
  return {
    async call() {
      const response = await api(spec.resourceUrl)
      await response.arrayBuffer()
      return response.ok
    },
    stats() {
      const stats = tokens.stats()
      return {
        tokenRequests: stats.fetches,
        hits: stats.hits,
        misses: stats.misses,
        backgroundRenewals: stats.backgroundRefreshes,
        storeHits: stats.storeHits,
        tokenFailures: stats.failures,
      }
    },
    async close() {
      await settle(() => tokens.stats().inFlight > 0, 5_000)
      await tokens.close()
    },
  }
}

/**
 * The token cache from a typical blog post: keep the token and its expiry (`Date.now()` when the
 * answer arrived plus `expires_in`), fetch a new one when it has expired. No single-flight (every
 * caller that finds it expired fetches), no margin, no retry.
 */
export function naiveClient(spec: ClientSpec): DemoClient {
  const basic = Buffer.from(
    `${encodeURIComponent(spec.clientId)}:${encodeURIComponent(spec.clientSecret)}`,
  ).toString('base64')
  let cached: { token: string; expiresAt: number } | undefined
  let inFlight = 0
  const counters = {
    tokenRequests: 0,
    hits: 0,
    misses: 0,
    backgroundRenewals: 0,
    storeHits: 0,
    tokenFailures: 0,
  }

  async function getToken(): Promise<string> {
    if (cached !== undefined && Date.now() < cached.expiresAt) {
      counters.hits++
      return cached.token
    }
    counters.misses++
    counters.tokenRequests++
    inFlight++
    try {
      const response = await fetch(spec.tokenUrl, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      })
      if (!response.ok) {
        await response.arrayBuffer()
        throw new Error(`token request failed with HTTP ${response.status}`)
      }
      const body = (await response.json()) as { access_token: string; expires_in: number }
      cached = { token: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 }
      return cached.token
    } catch (error) {
      counters.tokenFailures++
      throw error
    } finally {
      inFlight--
    }
  }

  return {
    async call() {
      const token = await getToken()
      const response = await fetch(spec.resourceUrl, { headers: { authorization: `Bearer ${token}` } })
      await response.arrayBuffer()
      return response.ok
    },
    stats: () => ({ ...counters }),
    async close() {
      await settle(() => inFlight > 0, 5_000)
    },
  }
}
