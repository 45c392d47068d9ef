import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { systemClock } from '../clock.js'
import { AssertionVerifier } from './assertions.js'
import { presentedCredentials, registerClients } from './client-auth.js'
import { dripResponse, respondWithFault } from './fault-responses.js'
import { FaultQueue, type TokenServerFault } from './faults.js'
import {
  BodyTooLargeError,
  mediaType,
  oauthErrorResponse,
  readBody,
  sanitizeHeaders,
  sleep,
  writeResponse,
} from './http.js'
import { IssuedTokens } from './issued-tokens.js'
import { handleResourceRequest, type ResourceCounters } from './resource.js'
import {
  CLIENT_CREDENTIALS,
  JWT_BEARER_GRANT,
  parseScope,
  processTokenRequest,
  registerIssuers,
  strictScopePolicy,
  type TokenRequestInput,
} from './token-endpoint.js'
import type {
  HoldHandle,
  TokenRequestRecord,
  TokenServer,
  TokenServerOptions,
  TokenServerStats,
} from './types.js'

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

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** Requests wait on a gate until it is released. */
class Gate implements HoldHandle {
  #waiters: (() => void)[] = []
  #released = false

  get waiting(): number {
    return this.#waiters.length
  }

  get released(): boolean {
    return this.#released
  }

  wait(): Promise<void> {
    if (this.#released) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  release(): void {
    this.#released = true
    const waiters = this.#waiters
    this.#waiters = []
    for (const resolve of waiters) resolve()
  }
}

const checkDuration = (value: number | undefined, name: string): void => {
  if (value !== undefined && (!Number.isFinite(value) || value < 0)) {
    throw new TypeError(`startTokenServer: ${name} must be a finite, non-negative number of milliseconds`)
  }
}

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
  const clock = options.clock ?? systemClock
  for (const name of [
    'tokenLifetimeMs',
    'refreshInMs',
    'latencyMs',
    'clockToleranceMs',
    'maxAssertionLifetimeMs',
  ] as const) {
    checkDuration(options[name], name)
  }
  const port = options.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new TypeError('startTokenServer: invalid port')
  const maxRecorded = options.maxRecordedRequests ?? 100_000
  if (!Number.isInteger(maxRecorded) || maxRecorded < 0) {
    throw new TypeError('startTokenServer: maxRecordedRequests must be a non-negative integer')
  }
  const clients = registerClients(options.clients ?? [])
  const issuers = registerIssuers(options.jwtBearerIssuers ?? [])
  const latencyMs = options.latencyMs ?? 0

  let tokenUrl = ''
  const audiences =
    options.audience === undefined
      ? undefined
      : typeof options.audience === 'string'
        ? [options.audience]
        : [...options.audience]
  const tokens = new IssuedTokens(clock)
  const faults = new FaultQueue()
  const verifier = new AssertionVerifier({
    clock,
    clockToleranceMs: options.clockToleranceMs ?? 5_000,
    maxAssertionLifetimeMs: options.maxAssertionLifetimeMs ?? 600_000,
    algorithms: options.assertionAlgorithms ?? DEFAULT_ALGORITHMS,
    audiences: () => audiences ?? [tokenUrl],
  })
  const config = {
    clients,
    issuers,
    verifier,
    tokens,
    tokenLifetimeMs: options.tokenLifetimeMs ?? 3_600_000,
    refreshInMs: options.refreshInMs,
    includeScopeInResponse: options.includeScopeInResponse ?? true,
    tokenType: options.tokenType ?? 'Bearer',
    grantScopes: options.grantScopes ?? strictScopePolicy,
  }

  const counters: ResourceCounters & {
    tokenRequests: number
    tokensIssued: number
    failures: number
    inFlight: number
  } = {
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
  const byClient = new Map<string, number>()
  const requests: TokenRequestRecord[] = []
  const arrivalWaiters = new Set<{ count: number; resolve: () => void; reject: (error: Error) => void }>()
  const sockets = new Set<Socket>()
  let gate: Gate | undefined
  let closed = false
  let closing: Promise<void> | undefined

  const handleToken = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Everything up to the first await runs synchronously on arrival: counts, log, fault, hold.
    counters.tokenRequests += 1
    counters.inFlight += 1
    res.once('close', () => (counters.inFlight -= 1))
    const record: Mutable<TokenRequestRecord> = {
      at: clock.now(),
      method: req.method ?? 'GET',
      clientId: undefined,
      grantType: undefined,
      authMethod: undefined,
      scopes: [],
      status: undefined,
      error: undefined,
      fault: undefined,
      headers: sanitizeHeaders(req),
      contentType: req.headers['content-type'],
    }
    requests.push(record)
    if (requests.length > maxRecorded) requests.shift()
    const fault: TokenServerFault | undefined = faults.next()
    record.fault = fault?.kind
    for (const waiter of arrivalWaiters) {
      if (counters.tokenRequests >= waiter.count) {
        arrivalWaiters.delete(waiter)
        waiter.resolve()
      }
    }
    if (gate !== undefined) await gate.wait()
    if (closed) return
    if (fault?.kind === 'hang') {
      req.resume()
      return
    }

    let body: string
    try {
      body = await readBody(req, MAX_BODY_BYTES)
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) return
      counters.failures += 1
      record.status = 413
      record.error = 'invalid_request'
      res.setHeader('connection', 'close')
      const tooLarge = { status: 413, error: 'invalid_request', errorDescription: 'request body too large' }
      return writeResponse(res, oauthErrorResponse(tooLarge))
    }
    const isForm = mediaType(req.headers['content-type']) === 'application/x-www-form-urlencoded'
    const input: TokenRequestInput = {
      method: req.method ?? 'GET',
      contentType: req.headers['content-type'],
      authorization: req.headers.authorization,
      form: new URLSearchParams(isForm ? body : ''),
    }
    describeRequest(record, input)
    if (record.clientId !== undefined) byClient.set(record.clientId, (byClient.get(record.clientId) ?? 0) + 1)

    await sleep(latencyMs)
    if (fault?.kind === 'latency') await sleep(fault.ms)
    if (closed) return

    if (
      fault !== undefined &&
      fault.kind !== 'latency' &&
      fault.kind !== 'token' &&
      fault.kind !== 'slow-body'
    ) {
      counters.failures += 1
      if (fault.kind === 'reset') {
        req.socket.resetAndDestroy()
        return
      }
      record.status = await respondWithFault(res, fault)
      return
    }
    const outcome = await processTokenRequest(config, input, fault?.kind === 'token' ? fault : undefined)
    if (outcome.issuedTo === undefined) counters.failures += 1
    else counters.tokensIssued += 1
    record.status = outcome.response.status
    record.error = outcome.error
    if (fault?.kind === 'slow-body') await dripResponse(res, outcome.response, fault.ms)
    else writeResponse(res, outcome.response)
  }

  const metadata = (): unknown => ({
    issuer: tokenUrl.slice(0, -'/token'.length),
    token_endpoint: tokenUrl,
    grant_types_supported: [CLIENT_CREDENTIALS, JWT_BEARER_GRANT],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: options.assertionAlgorithms ?? DEFAULT_ALGORITHMS,
  })

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname === '/token') {
      handleToken(req, res).catch(() => {
        // An unexpected failure: answer 500 without details (they could echo request data).
        const failure = {
          status: 500,
          error: 'server_error',
          errorDescription: 'internal error in the test token server',
        }
        writeResponse(res, oauthErrorResponse(failure))
      })
      return
    }
    if (url.pathname === '/resource') return handleResourceRequest(req, res, url, tokens, counters)
    req.resume()
    if (url.pathname === '/.well-known/oauth-authorization-server') {
      return writeResponse(res, {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(metadata()),
      })
    }
    writeResponse(res, {
      status: 404,
      headers: { 'content-type': 'application/json' },
      body: '{"error":"not_found"}',
    })
  }

  const server = createServer(onRequest)
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('clientError', (_error, socket) => socket.destroy())

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port, host: '127.0.0.1', backlog: 16_384 }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  tokenUrl = `${url}/token`

  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      closed = true
      gate?.release()
      for (const waiter of arrivalWaiters) waiter.reject(new Error('token server closed'))
      arrivalWaiters.clear()
      server.close(() => resolve())
      server.closeAllConnections()
      for (const socket of sockets) socket.destroy()
    })
    return closing
  }

  return {
    url,
    tokenUrl,
    resourceUrl: `${url}/resource`,
    requests,
    stats: (): TokenServerStats => ({ ...counters, byClient: Object.fromEntries(byClient) }),
    introspect: (token) => tokens.introspect(token),
    revoke: (token) => tokens.revoke(token),
    revokeAll: () => tokens.revokeAll(),
    inject: (fault, injectOptions) => faults.inject(fault, injectOptions?.times ?? 1),
    setFault: (fault) => faults.setStanding(fault),
    clearFaults: () => faults.clear(),
    hold() {
      if (gate === undefined || gate.released) gate = new Gate()
      return gate
    },
    waitForRequests(count, waitOptions) {
      if (counters.tokenRequests >= count) return Promise.resolve()
      if (closed) return Promise.reject(new Error('token server closed'))
      const timeoutMs = waitOptions?.timeoutMs ?? 10_000
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          arrivalWaiters.delete(waiter)
          reject(
            new Error(
              `waitForRequests: ${counters.tokenRequests} of ${count} token requests arrived in ${timeoutMs} ms`,
            ),
          )
        }, timeoutMs)
        const waiter = {
          count,
          resolve: () => (clearTimeout(timer), resolve()),
          reject: (error: Error) => (clearTimeout(timer), reject(error)),
        }
        arrivalWaiters.add(waiter)
      })
    },
    close,
    [Symbol.asyncDispose]: close,
  }
}

/** Fills in what the log may know about a request: never a secret, assertion or token. */
function describeRequest(record: Mutable<TokenRequestRecord>, input: TokenRequestInput): void {
  const credentials = presentedCredentials(input.authorization, input.form)
  record.clientId = credentials.claimedClientId
  record.authMethod = credentials.method
  record.grantType = input.form.get('grant_type') ?? undefined
  record.scopes = parseScope(input.form.get('scope')) ?? []
}
