/**
 * The exact strings of LTI 1.3 Advantage service access: the Security Framework 1.0 token
 * request, Assignment and Grade Services 2.0 and Names and Role Provisioning Services 2.0. Copied
 * from the specifications' normative text, not their examples (several of which are wrong, e.g.
 * `…/scope/result/read`, which does not exist).
 */

/**
 * The OAuth scopes of the LTI Advantage services (AGS 2.0 §3.2–3.4, NRPS 2.0). Compared as exact
 * whitespace-delimited tokens: `lineitem.readonly` is not `lineitem`.
 *
 * @example
 * ```ts
 * import { LtiScopes } from 'tokenkeeper/lti'
 * const offered = claim.scope.includes(LtiScopes.score)
 * ```
 */
export const LtiScopes = Object.freeze({
  /** Full management of the tool's line items: GET/POST `lineitems`, GET/PUT/DELETE a `lineitem`. */
  lineItem: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem',
  /** Read-only access to line items: GET `lineitems` and GET a `lineitem`. */
  lineItemReadOnly: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly',
  /** GET `{lineitem}/results`. */
  resultReadOnly: 'https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly',
  /** POST `{lineitem}/scores`. */
  score: 'https://purl.imsglobal.org/spec/lti-ags/scope/score',
  /** GET the context membership (NRPS). */
  contextMembershipReadOnly: 'https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly',
} as const)

/**
 * The media types of AGS 2.0 (§2.3 of the reference) and NRPS 2.0. The score type is `v1`; the
 * others are `v2`.
 *
 * @example
 * ```ts
 * import { LtiMediaTypes } from 'tokenkeeper/lti'
 * const headers = { 'content-type': LtiMediaTypes.score }
 * ```
 */
export const LtiMediaTypes = Object.freeze({
  /** One line item (AGS 2.0 §3.2). */
  lineItem: 'application/vnd.ims.lis.v2.lineitem+json',
  /** A page of line items (AGS 2.0 §3.2.4). */
  lineItemContainer: 'application/vnd.ims.lis.v2.lineitemcontainer+json',
  /** A page of results (AGS 2.0 §3.3). */
  resultContainer: 'application/vnd.ims.lis.v2.resultcontainer+json',
  /** A score posted to a line item's `/scores` (AGS 2.0 §3.4). */
  score: 'application/vnd.ims.lis.v1.score+json',
  /** A page of a context's members (NRPS 2.0). */
  membershipContainer: 'application/vnd.ims.lti-nrps.v2.membershipcontainer+json',
} as const)

/**
 * Names of the launch claims and assertion claims tokenkeeper/lti reads or sends.
 *
 * @example
 * ```ts
 * import { LtiClaims } from 'tokenkeeper/lti'
 * const ags = launch[LtiClaims.ags]
 * ```
 */
export const LtiClaims = Object.freeze({
  /** The AGS endpoint claim of a launch (AGS 2.0 §3.1). */
  ags: 'https://purl.imsglobal.org/spec/lti-ags/claim/endpoint',
  /** The NRPS claim of a launch. */
  nrps: 'https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice',
  /** The deployment id (LTI Core 1.3 §6.2.1), sent in the client assertion when configured. */
  deploymentId: 'https://purl.imsglobal.org/spec/lti/claim/deployment_id',
} as const)

/**
 * `activityProgress` values of a score (AGS 2.0 §3.4.7).
 *
 * @example
 * ```ts
 * import { ACTIVITY_PROGRESS } from 'tokenkeeper/lti'
 * ACTIVITY_PROGRESS.includes('Completed') // true
 * ```
 */
export const ACTIVITY_PROGRESS = ['Initialized', 'Started', 'InProgress', 'Submitted', 'Completed'] as const
/**
 * `gradingProgress` values of a score (AGS 2.0 §3.4.8). Send `FullyGraded` for a final score.
 *
 * @example
 * ```ts
 * import { GRADING_PROGRESS } from 'tokenkeeper/lti'
 * GRADING_PROGRESS.includes('FullyGraded') // true
 * ```
 */
export const GRADING_PROGRESS = ['FullyGraded', 'Pending', 'PendingManual', 'Failed', 'NotReady'] as const

/** The grant type of the token request (SEC-10 §4.1.1). @internal */
export const GRANT_TYPE = 'client_credentials'
/** The client assertion type of the token request (RFC 7523 §2.2). @internal */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
