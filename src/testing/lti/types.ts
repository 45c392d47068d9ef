import type { KeyObject } from 'node:crypto'
import type { JSONWebKeySet } from 'jose'
import type { Clock } from '../../clock.js'
import type { AgsClaim, LineItem, LineItemFields, Member, NrpsClaim } from '../../lti/types.js'
import type { FaultHandle, TokenServerFault } from '../faults.js'
import type { TokenIntrospection } from '../issued-tokens.js'
import type { HoldHandle, TokenRequestRecord } from '../types.js'
import type { LtiRateLimit, LtiServiceFault } from './throttling.js'

/**
 * A tool registered with the test LTI platform. Its keys come as a JWKS whose keys all have a
 * `kid`, or as one public key with its `kid`. `allowedScopes` (default: the four AGS scopes and
 * the NRPS scope) is what the platform permits; it grants the intersection with the request.
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto'
 * import type { LtiTool } from 'tokenkeeper/testing'
 * const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
 * const tool: LtiTool = { clientId: 'tool-1', publicKey, kid: 'k1', deploymentIds: ['dep-1'] }
 * ```
 */
export interface LtiTool {
  /** The tool's `client_id` on this platform. */
  readonly clientId: string
  /** The tool's public keys; every key needs a `kid`. */
  readonly jwks?: JSONWebKeySet
  /** One public key (a `KeyObject` or PEM), with `kid`. */
  readonly publicKey?: KeyObject | string
  /** The `kid` of `publicKey`. */
  readonly kid?: string
  /** The scopes the platform may grant the tool. Default: the four AGS scopes and the NRPS scope. */
  readonly allowedScopes?: readonly string[]
  /** When set, a `deployment_id` claim in an assertion must be one of these. */
  readonly deploymentIds?: readonly string[]
}

/**
 * Options of `startLtiPlatform`. Every duration is in milliseconds.
 *
 * @example
 * ```ts
 * import { startLtiPlatform, type LtiPlatformOptions } from 'tokenkeeper/testing'
 * const options: LtiPlatformOptions = { tools: [tool], tokenLifetimeMs: 60_000, pageSize: 5 }
 * await using platform = await startLtiPlatform(options)
 * ```
 */
export interface LtiPlatformOptions {
  /** The tools registered with the platform; at least one. */
  readonly tools: readonly LtiTool[]
  /** The platform's issuer. Default: its URL. */
  readonly issuer?: string
  /** The one `aud` accepted, compared as an exact string. Default: the token URL. */
  readonly audience?: string
  /** Lifetime of access tokens; sent as `expires_in` in whole seconds. Default 3600 s. */
  readonly tokenLifetimeMs?: number
  /** Whether responses carry `expires_in` (some toy platforms omit it). Default true. */
  readonly sendExpiresIn?: boolean
  /** Refuse assertions without a deployment id claim (platforms that scope tokens by deployment). */
  readonly requireDeploymentId?: boolean
  /** Accept form fields beyond the four of SEC-10 §4.1.1. Default false: they are refused. */
  readonly allowExtraFormFields?: boolean
  /** Oldest accepted `iat` (Canvas: 5 minutes). Default 300 000. */
  readonly maxIatAgeMs?: number
  /** Furthest in the future an `iat` may be (Canvas: 30 s). Default 30 000. */
  readonly maxIatFutureMs?: number
  /** Page size of containers when the request has no `limit`. Default 10. */
  readonly pageSize?: number
  /** Time for token expiry and assertion checks. Default: the system clock. */
  readonly clock?: Clock
  /** Rewrites every `Link` target before it is sent, to test what a client does with odd links. */
  readonly rewriteLink?: (target: string, rel: 'next' | 'first' | 'differences') => string
  /** Port on 127.0.0.1. Default 0 (ephemeral). */
  readonly port?: number
  /** How many token and service requests the logs keep. Default 100 000 each. */
  readonly maxRecordedRequests?: number
  /**
   * Canvas-style request-cost throttling of the services (a leaky bucket; `X-Request-Cost` and
   * `X-Rate-Limit-Remaining` on every answer, `403 Forbidden (Rate Limit Exceeded)` or 429 when
   * the budget is spent). Default: no throttling and no rate-limit headers.
   */
  readonly rateLimit?: LtiRateLimit
}

/**
 * A member to enrol. `roles` default to Learner (`http://purl.imsglobal.org/vocab/lis/v2/membership#Learner`).
 *
 * @example
 * ```ts
 * import type { LtiMemberSeed } from 'tokenkeeper/testing'
 * const teacher: LtiMemberSeed = { user_id: 't1', roles: ['http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor'] }
 * ```
 */
export interface LtiMemberSeed {
  /** The member's LTI user id; not empty. A seed with an id already enrolled replaces that member. */
  readonly user_id: string
  /** Role URIs. Default: Learner. */
  readonly roles?: readonly string[]
  /** Full name. Default `User <user_id>`. */
  readonly name?: string
  /** E-mail address. Default: none. */
  readonly email?: string
  /** Default `Active`. */
  readonly status?: 'Active' | 'Inactive'
}

/**
 * A course to create on the platform.
 *
 * @example
 * ```ts
 * import type { LtiContextSeed } from 'tokenkeeper/testing'
 * const course: LtiContextSeed = { id: 'bio-101', learners: 25, lineItems: [{ label: 'Quiz', scoreMaximum: 10 }] }
 * ```
 */
export interface LtiContextSeed {
  /** Default `course-N`. */
  readonly id?: string
  /** The course's title. Default `Course <id>`. */
  readonly title?: string
  /** The course's label. Default: the id in upper case. */
  readonly label?: string
  /** Members to enrol. */
  readonly members?: readonly LtiMemberSeed[]
  /** Also enrol this many learners, `${id}-learner-1`, `${id}-learner-2`, ... */
  readonly learners?: number
  /** Line items to create, in this order. */
  readonly lineItems?: readonly LineItemFields[]
  /** Resource link ids the tool owns in this course (for `rlid` queries). */
  readonly resourceLinks?: readonly string[]
  /** The scopes its AGS claim offers. Default: lineitem, lineitem.readonly, result.readonly, score. */
  readonly agsScopes?: readonly string[]
}

/**
 * A score the platform accepted, as it was posted.
 *
 * @example
 * ```ts
 * const last = course.scores(item.id).at(-1) // { userId, timestamp, scoreGiven, ... }
 * ```
 */
export interface LtiRecordedScore {
  /** The learner's LTI user id. */
  readonly userId: string
  /** The score's `timestamp`, as posted (ISO 8601). */
  readonly timestamp: string
  /** The score's `activityProgress`. */
  readonly activityProgress: string
  /** The score's `gradingProgress`. */
  readonly gradingProgress: string
  /** The score's `scoreGiven`, when posted. */
  readonly scoreGiven?: number
  /** The score's `scoreMaximum`, when posted. */
  readonly scoreMaximum?: number
  /** The score's `comment`, when posted. */
  readonly comment?: string
  /** Arrival time by the platform clock. */
  readonly receivedAt: number
}

/**
 * A course on the test platform, and the launch claims a tool would get in it.
 *
 * @example
 * ```ts
 * const course = platform.createContext({ learners: 3 })
 * const grades = await GradeService.fromClaim(tokens, registration, course.agsClaim({ lineItem: item.id }))
 * ```
 */
export interface LtiPlatformContext {
  /** The course's id. */
  readonly id: string
  /** The line item container URL (the AGS claim's `lineitems`). */
  readonly lineItemsUrl: string
  /** The membership container URL (the NRPS claim's `context_memberships_url`). */
  readonly membershipsUrl: string
  /** The AGS claim of a launch: `lineItem` (a URL from `addLineItem`) for a single-item launch. */
  agsClaim(options?: { readonly lineItem?: string; readonly scope?: readonly string[] }): AgsClaim
  /** The NRPS claim of a launch. */
  nrpsClaim(): NrpsClaim
  /** Enrols a member (or replaces the one with its `user_id`); a change the differences link shows. */
  addMember(member: LtiMemberSeed): void
  /** Marks a member `Deleted` (visible through the differences link); false if unknown. */
  removeMember(userId: string): boolean
  /** The members now, `Deleted` ones left out. */
  members(): readonly Member[]
  /** Creates a line item, as a tool's POST would; returns it with its `id` (URL). */
  addLineItem(item: LineItemFields): LineItem
  /** The course's line items, oldest first. */
  lineItems(): readonly LineItem[]
  /** Accepted scores of a line item (by URL or id), oldest first. */
  scores(lineItem: string): readonly LtiRecordedScore[]
}

/**
 * A token request as logged, plus the names of the form fields it sent (never their values).
 *
 * @example
 * ```ts
 * expect(platform.requests[0]?.formFields).toEqual(['grant_type', 'scope', 'client_assertion_type', 'client_assertion'])
 * ```
 */
export interface LtiTokenRequestRecord extends TokenRequestRecord {
  /** The names of the form fields, in the order sent. */
  readonly formFields: readonly string[]
  /** The `error_description` of a refusal. */
  readonly errorDescription: string | undefined
}

/**
 * An AGS or NRPS request as logged (never its token).
 *
 * @example
 * ```ts
 * const pages = platform.serviceRequests.filter((r) => r.path.includes('/memberships')).length
 * ```
 */
export interface LtiServiceRequestRecord {
  /** Arrival time by the platform clock (epoch ms). */
  readonly at: number
  /** The HTTP method, e.g. `GET`. */
  readonly method: string
  /** Path and query, exactly as received. */
  readonly path: string
  /** The HTTP status answered. */
  readonly status: number
  /** Why it was refused, when it was. */
  readonly reason: string | undefined
}

/**
 * Counters of the test platform; exact, counted on arrival.
 *
 * @example
 * ```ts
 * expect(platform.stats().tokenRequests).toBe(1)
 * ```
 */
export interface LtiPlatformStats {
  /** Token requests received, any outcome. */
  readonly tokenRequests: number
  /** Tokens issued. */
  readonly tokensIssued: number
  /** Token requests refused or answered with a fault (no token issued). */
  readonly tokenFailures: number
  /** AGS and NRPS requests received, any outcome. */
  readonly serviceCalls: number
  /** Service requests answered with success. */
  readonly serviceAccepted: number
  /** 401: no, unknown, expired or revoked token. */
  readonly rejectedUnauthorized: number
  /** 403: a scope the token lacks, or an rlid the tool does not own. */
  readonly rejectedForbidden: number
  /** 406/415: wrong Accept or Content-Type. */
  readonly rejectedMediaType: number
  /** 400: an invalid body or query (a score out of order, a bad cursor). */
  readonly rejectedInvalid: number
  /** 404/405: unknown route, course, line item or method. */
  readonly rejectedNotFound: number
  /** Scores accepted (successful POSTs to a `/scores` URL). */
  readonly scoresAccepted: number
  /** Throttled service answers (by `rateLimit` or a `throttle` fault). */
  readonly throttled: number
  /** Service requests a service fault applied to. */
  readonly serviceFaults: number
  /** Token requests per claimed client id. */
  readonly byClient: Readonly<Record<string, number>>
}

/**
 * A running LTI 1.3 test platform on 127.0.0.1: token endpoint (`/token`), AGS and NRPS, with
 * fault injection on the token endpoint, holds and counters. Start one with `startLtiPlatform`.
 *
 * @example
 * ```ts
 * await using platform = await startLtiPlatform({ tools: [tool] })
 * const course = platform.createContext({ learners: 30 })
 * ```
 */
export interface LtiPlatform extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** The platform's issuer: `options.issuer`, or its URL. */
  readonly issuer: string
  /** `${url}/token`: the registration's token URL. */
  readonly tokenUrl: string
  /** The exact `aud` assertions must carry. */
  readonly audience: string
  /**
   * Creates a course (context).
   *
   * @throws TypeError when the id is taken or not 1 to 64 of `[A-Za-z0-9_.-]`, or a member seed has no `user_id`.
   */
  createContext(seed?: LtiContextSeed): LtiPlatformContext
  /** The course with this id, or `undefined`. */
  context(id: string): LtiPlatformContext | undefined
  /** Token requests, oldest first (live view). */
  readonly requests: readonly LtiTokenRequestRecord[]
  /** AGS/NRPS requests, oldest first (live view). */
  readonly serviceRequests: readonly LtiServiceRequestRecord[]
  /** The counters now, as a snapshot. */
  stats(): LtiPlatformStats
  /** What the platform knows about a token it issued, or `undefined`. */
  introspect(token: string): TokenIntrospection | undefined
  /** Revokes a token early: service calls with it get 401. */
  revoke(token: string): boolean
  /** Revokes every token issued so far; returns how many. */
  revokeAll(): number
  /** Queues `fault` for the next `times` token requests (default 1; `Infinity` allowed). */
  inject(fault: TokenServerFault, options?: { readonly times?: number }): FaultHandle
  /** Sets (or with `undefined` clears) a fault applied to every token request not given a queued one. */
  setFault(fault: TokenServerFault | undefined): void
  /** Removes every token-endpoint and service fault. */
  clearFaults(): void
  /**
   * Queues a fault for the next `times` service requests (default 1) that `match` accepts
   * (default: every one): `{ kind: 'unavailable', retryAfterSeconds: 2 }, { times: 20 }` is a
   * burst of 503s.
   */
  injectServiceFault(
    fault: LtiServiceFault,
    options?: {
      readonly times?: number
      readonly match?: (request: { readonly method: string; readonly path: string }) => boolean
    },
  ): FaultHandle
  /** A fault for every service request that no queued fault takes; `undefined` ends it. */
  setServiceFault(fault: LtiServiceFault | undefined): void
  /** What is left of the `rateLimit` budget now; `undefined` without `rateLimit`. */
  rateLimitRemaining(): number | undefined
  /** Makes token requests wait, unanswered, until `release()`; a second call returns the same hold. */
  hold(): HoldHandle
  /** Resolves once `count` token requests have arrived in total; rejects after `timeoutMs` (default 10 s) or on close. */
  waitForTokenRequests(count: number, options?: { readonly timeoutMs?: number }): Promise<void>
  /** Stops listening and destroys every open socket. Idempotent. */
  close(): Promise<void>
}
