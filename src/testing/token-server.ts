import type { IncomingMessage, ServerResponse } from 'node:http'
import { listenOnLoopback } from './listen.js'
import { systemClock } from '../clock.js'
import { AssertionVerifier } from './assertions.js'
import { registerClients } from './client-auth.js'
import { ArrivalWaiters, Gate } from './coordination.js'
import { dripResponse, respondWithFault } from './fault-responses.js'
import { FaultQueue, validateFault } from './faults.js'
import { BodyTooLargeError, mediaType, oauthErrorResponse, readBody, sleep, writeResponse } from './http.js'
import { IssuedTokens } from './issued-tokens.js'
import { DpopVerifier } from './dpop.js'
import { RequestLog } from './request-log.js'
import { handleResourceRequest, type ResourceCounters } from './resource.js'
import {
  CLIENT_CREDENTIALS,
  JWT_BEARER_GRANT,
  processTokenRequest,
  registerIssuers,
  strictScopePolicy,
  type TokenEndpointConfig,
  type TokenRequestInput,
} from './token-endpoint.js'
import type { TokenServer, TokenServerOptions } from './types.js'

const MAX_BODY_BYTES = 1024 * 1024
const DEFAULT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]
const DURATIONS = [
  'tokenLifetimeMs',
  'refreshInMs',
  'latencyMs',
  'clockToleranceMs',
  'maxAssertionLifetimeMs',
] as const

function validateOptions(options: TokenServerOptions): void {
  for (const name of DURATIONS) {
    const value = options[name]
    if (value !== undefined && (!Number.isFinite(value) || value < 0)) {
      throw new TypeError(`startTokenServer: ${name} must be a finite, non-negative number of milliseconds`)
    }
  }
  const { port = 0, maxRecordedRequests = 0 } = options
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new TypeError('startTokenServer: invalid port')
  if (!Number.isInteger(maxRecordedRequests) || maxRecordedRequests < 0) {
    throw new TypeError('startTokenServer: maxRecordedRequests must be a non-negative integer')
  }
}

interface TokenCounters {
  tokenRequests: number
  tokensIssued: number
  failures: number
  inFlight: number
}

const json = (status: number, body: unknown) => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

/**
 * Starts a real OAuth 2.0 token endpoint (RFC 6749 §4.4 client credentials with
 * client_secret_basic, client_secret_post and private_key_jwt; RFC 7523 §2.1 JWT-bearer grant) on
 * 127.0.0.1, with a protected resource, fault injection, holds and exact counters. Configuration
 * mistakes throw `TypeError`. It never logs; close it with `close()` or `await using`.
 *
 * ⚠️ For tests and demos only: tokens live in memory and it speaks plain HTTP.
 *
 * @example
 * ```ts
 * import { startTokenServer } from 'tokenkeeper/testing'
 * const server = await startTokenServer({
 *   clients: [{ clientId: 'svc-a', clientSecret: 's3cret', allowedScopes: ['read', 'write'] }],
 * })
 * server.inject({ kind: 'status', status: 503, retryAfter: 1 })
 * // …exercise a client against server.tokenUrl…
 * await server.close()
 * ```
 */
export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  validateOptions(options)
  const clock = options.clock ?? systemClock
  const latencyMs = options.latencyMs ?? 0
  const algorithms = options.assertionAlgorithms ?? DEFAULT_ALGORITHMS
  const audience = options.audience
  let tokenUrl = '' // known once listening; the default assertion audience
  const tokens = new IssuedTokens(clock)
  const config: TokenEndpointConfig = {
    clients: registerClients(options.clients ?? []),
    issuers: registerIssuers(options.jwtBearerIssuers ?? []),
    verifier: new AssertionVerifier({
      clock,
      clockToleranceMs: options.clockToleranceMs ?? 5_000,
      maxAssertionLifetimeMs: options.maxAssertionLifetimeMs ?? 600_000,
      algorithms,
      audiences: () =>
        audience === undefined ? [tokenUrl] : typeof audience === 'string' ? [audience] : audience,
    }),
    tokens,
    tokenLifetimeMs: options.tokenLifetimeMs ?? 3_600_000,
    refreshInMs: options.refreshInMs,
    includeScopeInResponse: options.includeScopeInResponse ?? true,
    tokenType: options.tokenType ?? 'Bearer',
    grantScopes: options.grantScopes ?? strictScopePolicy,
    exchangeTargets: options.exchangeTargets,
  }

  const dpop =
    options.dpop === undefined || options.dpop === false
      ? undefined
      : new DpopVerifier(options.dpop === true ? {} : options.dpop, clock, options.clockToleranceMs ?? 60_000)
  const counters: ResourceCounters & TokenCounters = {
    dpopRejected: 0,
    tokenRequests: 0,
    tokensIssued: 0,
    failures: 0,
    inFlight: 0,
    resourceCalls: 0,
    resourceAccepted: 0,
    resourceRejectedExpired: 0,
    resourceRejectedUnknown: 0,
    resourceRejectedRevoked: 0,
    resourceRejectedScope: 0,
  }
  const faults = new FaultQueue(validateFault, 'inject()')
  const log = new RequestLog(options.maxRecordedRequests ?? 100_000)
  const arrivals = new ArrivalWaiters()
  let gate: Gate | undefined
  let closed = false

  const handleToken = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Everything up to the first await runs synchronously on arrival: count, log, fault, hold.
    counters.tokenRequests += 1
    counters.inFlight += 1
    res.once('close', () => (counters.inFlight -= 1))
    const record = log.start(req, clock.now())
    const fault = faults.next()
    record.fault = fault?.kind
    arrivals.notify(counters.tokenRequests)
    if (gate !== undefined) await gate.wait()
    if (closed) return
    if (fault?.kind === 'hang') return void req.resume()

    let body: string
    try {
      body = await readBody(req, MAX_BODY_BYTES)
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) return // the client went away
      counters.failures += 1
      record.status = 413
      record.error = 'invalid_request'
      res.setHeader('connection', 'close')
      const tooLarge = { status: 413, error: 'invalid_request', errorDescription: 'request body too large' }
      return writeResponse(res, oauthErrorResponse(tooLarge))
    }
    const contentType = req.headers['content-type']
    const input: TokenRequestInput = {
      method: req.method ?? 'GET',
      contentType,
      authorization: req.headers.authorization,
      form: new URLSearchParams(mediaType(contentType) === 'application/x-www-form-urlencoded' ? body : ''),
    }
    log.describe(record, input)
    let checked: TokenRequestInput = input
    if (dpop !== undefined && input.method === 'POST') {
      const proofs = req.headersDistinct['dpop'] ?? []
      if (proofs.length > 0 || dpop.required) {
        const check = await dpop.check(proofs, 'POST', tokenUrl)
        if (!check.ok) {
          counters.failures += 1
          counters.dpopRejected += 1
          record.status = 400
          record.error = check.error
          const refused = {
            status: 400,
            error: check.error,
            errorDescription: check.reason,
            headers: dpop.headers,
          }
          return writeResponse(res, oauthErrorResponse(refused))
        }
        checked = { ...input, dpopJkt: check.jkt }
      }
    }

    await sleep(latencyMs + (fault?.kind === 'latency' ? fault.ms : 0))
    if (closed) return
    if (
      fault !== undefined &&
      fault.kind !== 'latency' &&
      fault.kind !== 'token' &&
      fault.kind !== 'slow-body'
    ) {
      counters.failures += 1
      if (fault.kind === 'reset') return void req.socket.resetAndDestroy()
      record.status = await respondWithFault(res, fault)
      return
    }
    const processed = await processTokenRequest(config, checked, fault?.kind === 'token' ? fault : undefined)
    const outcome =
      dpop === undefined
        ? processed
        : {
            ...processed,
            response: { ...processed.response, headers: { ...processed.response.headers, ...dpop.headers } },
          }
    if (outcome.issuedTo === undefined) counters.failures += 1
    else counters.tokensIssued += 1
    record.status = outcome.response.status
    record.error = outcome.error
    if (fault?.kind === 'slow-body') await dripResponse(res, outcome.response, fault.ms)
    else writeResponse(res, outcome.response)
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname === '/token') {
      handleToken(req, res).catch(() => {
        counters.failures += 1
        // Unexpected: answer 500 without details (they could echo request data).
        const failure = {
          status: 500,
          error: 'server_error',
          errorDescription: 'internal error in the test server',
        }
        writeResponse(res, oauthErrorResponse(failure))
      })
      return
    }
    if (url.pathname === '/resource') return handleResourceRequest(req, res, url, tokens, counters, dpop)
    req.resume()
    const notFound = { status: 404, headers: { 'content-type': 'text/plain' }, body: 'not found' }
    if (!wellKnownPaths.has(url.pathname)) return writeResponse(res, notFound)
    discoveryRequests += 1
    if (!discoveryPaths.has(url.pathname)) return writeResponse(res, notFound)
    handleDiscovery(res).catch(() => {
      if (!res.headersSent) writeResponse(res, { status: 500, headers: {}, body: '' })
    })
  }

  const discoveryOptions = options.discovery ?? {}
  const issuerPath = (discoveryOptions.issuerPath ?? '').replace(/\/$/, '')
  if (issuerPath !== '' && !/^\/[A-Za-z0-9._~/-]+$/.test(issuerPath)) {
    throw new TypeError("startTokenServer: discovery.issuerPath must be a path such as '/tenant-a'")
  }
  const documents = discoveryOptions.documents ?? ['oauth-authorization-server']
  const wellKnown = {
    'oauth-authorization-server': `/.well-known/oauth-authorization-server${issuerPath}`,
    'openid-configuration': `${issuerPath}/.well-known/openid-configuration`,
  }
  const wellKnownPaths = new Set(Object.values(wellKnown))
  const discoveryPaths = new Set(documents.map((name) => wellKnown[name]))
  const discoveryFaults = new FaultQueue(validateFault, 'injectDiscovery()')
  let discoveryRequests = 0

  const handleDiscovery = async (res: ServerResponse): Promise<void> => {
    const fault = discoveryFaults.next()
    if (fault?.kind === 'hang') return
    if (fault?.kind === 'reset') return void res.socket?.resetAndDestroy()
    if (fault?.kind === 'latency') await sleep(fault.ms)
    if (closed) return
    if (
      fault !== undefined &&
      fault.kind !== 'latency' &&
      fault.kind !== 'token' &&
      fault.kind !== 'slow-body'
    ) {
      await respondWithFault(res, fault)
      return
    }
    const document: Record<string, unknown> = {
      issuer: `${tokenUrl.slice(0, -'/token'.length)}${issuerPath}`,
      token_endpoint: tokenUrl,
      grant_types_supported: [CLIENT_CREDENTIALS, JWT_BEARER_GRANT],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: algorithms,
    }
    for (const [name, value] of Object.entries(discoveryOptions.metadata ?? {})) {
      if (value === undefined) delete document[name]
      else document[name] = value
    }
    writeResponse(res, json(200, document))
  }

  const listening = await listenOnLoopback(onRequest, options.port ?? 0, () => {
    closed = true
    gate?.release()
    arrivals.close()
  })
  const url = listening.origin
  tokenUrl = `${url}/token`
  const close = (): Promise<void> => listening.close()

  return {
    url,
    tokenUrl,
    issuer: `${url}${issuerPath}`,
    resourceUrl: `${url}/resource`,
    requests: log.records,
    stats: () => ({ ...counters, byClient: log.byClient(), discoveryRequests }),
    introspect: (token) => tokens.introspect(token),
    revoke: (token) => tokens.revoke(token),
    revokeAll: () => tokens.revokeAll(),
    inject: (fault, injectOptions) => faults.inject(fault, injectOptions?.times ?? 1),
    setFault: (fault) => faults.setStanding(fault),
    clearFaults: () => {
      faults.clear()
      discoveryFaults.clear()
    },
    injectDiscovery: (fault, injectOptions) => discoveryFaults.inject(fault, injectOptions?.times ?? 1),
    hold() {
      if (gate === undefined || gate.released) gate = new Gate()
      return gate
    },
    rotateDpopNonce() {
      if (dpop === undefined) throw new TypeError('rotateDpopNonce: the server was started without dpop')
      return dpop.rotate()
    },
    waitForRequests: (count, waitOptions) =>
      arrivals.wait(count, () => counters.tokenRequests, waitOptions?.timeoutMs ?? 10_000),
    close,
    [Symbol.asyncDispose]: close,
  }
}
