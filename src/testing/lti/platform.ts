import type { IncomingMessage, ServerResponse } from 'node:http'
import { listenOnLoopback } from '../listen.js'
import { systemClock } from '../../clock.js'
import { AssertionVerifier } from '../assertions.js'
import { ArrivalWaiters, Gate } from '../coordination.js'
import { dripResponse, respondWithFault } from '../fault-responses.js'
import { FaultQueue, validateFault } from '../faults.js'
import { oauthErrorResponse, readBody, writeResponse } from '../http.js'
import { IssuedTokens } from '../issued-tokens.js'
import { RequestLog, type MutableRecord } from '../request-log.js'
import { handleAgs } from './ags.js'
import { Course, type CourseIds } from './courses.js'
import { refuse, type ServiceOutcome } from './guard.js'
import { handleMemberships } from './nrps.js'
import { Pager } from './paging.js'
import {
  checkRateLimit,
  checkServiceFault,
  RequestCostBucket,
  type LtiServiceFault,
  type ServiceFaultMatch,
  stallResponse,
  throttledResponse,
  unavailableResponse,
} from './throttling.js'
import { processLtiTokenRequest, registerTools, type LtiTokenConfig } from './token.js'
import type {
  LtiPlatform,
  LtiPlatformOptions,
  LtiPlatformStats,
  LtiServiceRequestRecord,
  LtiTokenRequestRecord,
} from './types.js'

const MAX_BODY_BYTES = 1024 * 1024

type Counters = { -readonly [K in keyof Omit<LtiPlatformStats, 'byClient'>]: number }

function checkOptions(options: LtiPlatformOptions): void {
  if (typeof options !== 'object' || options === null || !Array.isArray(options.tools)) {
    throw new TypeError('startLtiPlatform: options.tools is required')
  }
  for (const name of ['tokenLifetimeMs', 'maxIatAgeMs', 'maxIatFutureMs'] as const) {
    const value = options[name]
    if (value !== undefined && (!Number.isFinite(value) || value < 0)) {
      throw new TypeError(`startLtiPlatform: ${name} must be a finite, non-negative number of milliseconds`)
    }
  }
  checkRateLimit(options.rateLimit)
  const pageSize = options.pageSize ?? 10
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new TypeError('startLtiPlatform: pageSize must be a positive integer')
}

/**
 * Starts an LTI 1.3 Advantage test platform on 127.0.0.1: a token endpoint (`/token`) and the
 * AGS 2.0 and NRPS 2.0 services of its courses, enforcing what real platforms enforce (see
 * `docs/LTI.md`, "The test platform"). Courses come from `createContext()`, which also hands
 * out the launch claims a tool would receive. Configuration mistakes throw `TypeError`.
 *
 * ⚠️ For tests and demos only: plain HTTP, everything in memory.
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto'
 * import { startLtiPlatform } from 'tokenkeeper/testing'
 * const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
 * await using platform = await startLtiPlatform({ tools: [{ clientId: 'tool', publicKey, kid: 'k1' }] })
 * const course = platform.createContext({ learners: 30 })
 * course.nrpsClaim() // { context_memberships_url, service_versions: ['2.0'] }
 * ```
 */
export async function startLtiPlatform(options: LtiPlatformOptions): Promise<LtiPlatform> {
  checkOptions(options)
  const clock = options.clock ?? systemClock
  const tokens = new IssuedTokens(clock)
  let origin = '' // known once listening
  let tokenUrl = ''
  const audience = (): string => options.audience ?? tokenUrl
  const config: LtiTokenConfig = {
    tools: registerTools(options.tools),
    verifier: new AssertionVerifier({
      clock,
      // As lenient as the iat rule below (Canvas: 30 s); the stricter checks run before.
      clockToleranceMs: options.maxIatFutureMs ?? 30_000,
      maxAssertionLifetimeMs: 300_000,
      algorithms: ['RS256'],
      audiences: () => [audience()],
    }),
    tokens,
    audience,
    now: () => clock.now(),
    tokenLifetimeMs: options.tokenLifetimeMs ?? 3_600_000,
    sendExpiresIn: options.sendExpiresIn ?? true,
    requireDeploymentId: options.requireDeploymentId ?? false,
    allowExtraFormFields: options.allowExtraFormFields ?? false,
    maxIatAgeMs: options.maxIatAgeMs ?? 300_000,
    maxIatFutureMs: options.maxIatFutureMs ?? 30_000,
  }
  const pager = new Pager(options.pageSize ?? 10, options.rewriteLink)
  const courses = new Map<string, Course>()
  const ids: CourseIds = { nextCourse: 0, nextLineItem: 0 }
  const counters: Counters = {
    tokenRequests: 0,
    tokensIssued: 0,
    tokenFailures: 0,
    serviceCalls: 0,
    serviceAccepted: 0,
    rejectedUnauthorized: 0,
    rejectedForbidden: 0,
    rejectedMediaType: 0,
    rejectedInvalid: 0,
    rejectedNotFound: 0,
    scoresAccepted: 0,
    throttled: 0,
    serviceFaults: 0,
  }
  const rateLimit = options.rateLimit
  const bucket = rateLimit === undefined ? undefined : new RequestCostBucket(rateLimit, () => clock.now())
  const serviceFaults = new FaultQueue<LtiServiceFault, ServiceFaultMatch>(
    checkServiceFault,
    'injectServiceFault()',
  )
  const maxRecorded = options.maxRecordedRequests ?? 100_000
  const log = new RequestLog(maxRecorded)
  const serviceLog: LtiServiceRequestRecord[] = []
  const faults = new FaultQueue(validateFault, 'inject()')
  const arrivals = new ArrivalWaiters()
  let gate: Gate | undefined
  let closed = false

  const handleToken = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    counters.tokenRequests += 1
    const record = log.start(req, clock.now()) as MutableRecord & {
      formFields: string[]
      errorDescription: string | undefined
    }
    record.formFields = []
    record.errorDescription = undefined
    const fault = faults.next()
    record.fault = fault?.kind
    arrivals.notify(counters.tokenRequests)
    if (gate !== undefined) await gate.wait()
    if (closed) return
    if (fault?.kind === 'hang') return void req.resume()
    const body = await readBody(req, MAX_BODY_BYTES)
    const contentType = req.headers['content-type']
    const form = new URLSearchParams(
      /^application\/x-www-form-urlencoded\b/i.test(contentType ?? '') ? body : '',
    )
    log.describe(record, {
      method: req.method ?? 'GET',
      contentType,
      authorization: req.headers.authorization,
      form,
    })
    record.formFields = [...form.keys()]
    if (
      fault !== undefined &&
      fault.kind !== 'token' &&
      fault.kind !== 'latency' &&
      fault.kind !== 'slow-body'
    ) {
      counters.tokenFailures += 1
      if (fault.kind === 'reset') return void req.socket.resetAndDestroy()
      record.status = await respondWithFault(res, fault)
      return
    }
    if (fault?.kind === 'latency') await new Promise((resolve) => setTimeout(resolve, fault.ms))
    const outcome = await processLtiTokenRequest(
      config,
      req.method ?? 'GET',
      contentType,
      form,
      fault?.kind === 'token' ? fault : undefined,
    )
    if (outcome.clientId === undefined) counters.tokenFailures += 1
    else counters.tokensIssued += 1
    record.status = outcome.response.status
    record.error = outcome.error
    record.errorDescription = outcome.errorDescription
    if (fault?.kind === 'slow-body') await dripResponse(res, outcome.response, fault.ms)
    else writeResponse(res, outcome.response)
  }

  const route = (req: IncomingMessage, url: URL, body: string): ServiceOutcome => {
    const match = /^\/(ags|nrps)\/([^/]+)(\/.*)$/.exec(url.pathname)
    const course = match === null ? undefined : courses.get(decodeURIComponent(match[2] ?? ''))
    if (match === null || course === undefined) return refuse(404, 'notFound', 'no such course or route')
    const context = { tokens, pager, origin, now: () => clock.now() }
    if (match[1] === 'ags') return handleAgs(context, course, match[3] ?? '', req, url, body)
    if (match[3] !== '/memberships') return refuse(404, 'notFound', 'no such NRPS route')
    return handleMemberships(context, course, req, url)
  }

  const record = (at: number, req: IncomingMessage, status: number, reason: string | undefined): void => {
    serviceLog.push({ at, method: req.method ?? 'GET', path: req.url ?? '', status, reason })
    if (serviceLog.length > maxRecorded) serviceLog.shift()
  }

  const handleService = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    counters.serviceCalls += 1
    const at = clock.now()
    const request = { method: req.method ?? 'GET', path: req.url ?? '' }
    if (bucket !== undefined && !bucket.admit()) {
      counters.throttled += 1
      await readBody(req, MAX_BODY_BYTES)
      const response = throttledResponse(
        rateLimit?.throttleStatus ?? 403,
        bucket.headers(0),
        rateLimit?.retryAfterSeconds,
      )
      record(at, req, response.status, 'rate limit exceeded')
      return writeResponse(res, response)
    }
    const fault = serviceFaults.next(request)
    const body = await readBody(req, MAX_BODY_BYTES)
    if (closed) return
    const rateHeaders = (): Record<string, string> =>
      bucket === undefined ? {} : bucket.headers(bucket.settle(request))
    if (fault !== undefined && fault.kind !== 'stall') {
      counters.serviceFaults += 1
      if (fault.kind === 'throttle') counters.throttled += 1
      const response =
        fault.kind === 'unavailable'
          ? unavailableResponse(fault.retryAfterSeconds)
          : throttledResponse(fault.status ?? 403, rateHeaders(), fault.retryAfterSeconds)
      if (fault.kind === 'unavailable') Object.assign(response.headers, rateHeaders())
      record(at, req, response.status, `fault: ${fault.kind}`)
      return writeResponse(res, response)
    }
    const outcome = route(req, url, body)
    const refusal = outcome.refusal
    if (refusal === undefined) counters.serviceAccepted += 1
    else if (refusal === 'unauthorized') counters.rejectedUnauthorized += 1
    else if (refusal === 'forbidden') counters.rejectedForbidden += 1
    else if (refusal === 'mediaType') counters.rejectedMediaType += 1
    else if (refusal === 'invalid') counters.rejectedInvalid += 1
    else counters.rejectedNotFound += 1
    if (refusal === undefined && req.method === 'POST' && url.pathname.endsWith('/scores'))
      counters.scoresAccepted += 1
    const response = {
      ...outcome.response,
      headers: { ...outcome.response.headers, ...rateHeaders() },
    }
    if (fault?.kind === 'stall') {
      counters.serviceFaults += 1
      record(at, req, response.status, 'fault: stall')
      return stallResponse(res, response)
    }
    record(at, req, response.status, outcome.reason)
    writeResponse(res, response)
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', origin)
    const handled = url.pathname === '/token' ? handleToken(req, res) : handleService(req, res, url)
    handled.catch(() => {
      // The client went away or the body was too large: answer without details if still possible.
      writeResponse(
        res,
        oauthErrorResponse({
          status: 500,
          error: 'server_error',
          errorDescription: 'internal error in the test platform',
        }),
      )
    })
  }

  const listening = await listenOnLoopback(onRequest, options.port ?? 0, () => {
    closed = true
    gate?.release()
    arrivals.close()
  })
  origin = listening.origin
  tokenUrl = `${origin}/token`
  const close = (): Promise<void> => listening.close()

  return {
    url: origin,
    issuer: options.issuer ?? origin,
    tokenUrl,
    audience: audience(),
    createContext(seed = {}) {
      const course = new Course(seed, origin, ids)
      if (courses.has(course.id)) throw new TypeError(`createContext: a course '${course.id}' exists already`)
      courses.set(course.id, course)
      return course
    },
    context: (id) => courses.get(id),
    requests: log.records as unknown as readonly LtiTokenRequestRecord[],
    serviceRequests: serviceLog,
    stats: () => ({ ...counters, byClient: log.byClient() }),
    introspect: (token) => tokens.introspect(token),
    revoke: (token) => tokens.revoke(token),
    revokeAll: () => tokens.revokeAll(),
    inject: (fault, injectOptions) => faults.inject(fault, injectOptions?.times ?? 1),
    setFault: (fault) => faults.setStanding(fault),
    clearFaults() {
      faults.clear()
      serviceFaults.clear()
    },
    injectServiceFault: (fault, injectOptions) =>
      serviceFaults.inject(fault, injectOptions?.times ?? 1, injectOptions?.match),
    setServiceFault: (fault) => serviceFaults.setStanding(fault),
    rateLimitRemaining: () => bucket?.remaining(),
    hold() {
      if (gate === undefined || gate.released) gate = new Gate()
      return gate
    },
    waitForTokenRequests: (count, waitOptions) =>
      arrivals.wait(count, () => counters.tokenRequests, waitOptions?.timeoutMs ?? 10_000),
    close,
    [Symbol.asyncDispose]: close,
  }
}
