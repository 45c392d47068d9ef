/**
 * `tokenkeeper/lti`: LTI 1.3 Advantage service access on cached tokens. A signed-JWT
 * client-credentials grant against the platform (`ltiServiceSource`), and the two services that
 * use its tokens: Assignment and Grade Services 2.0 (`GradeService`) and Names and Role
 * Provisioning Services 2.0 (`MembershipsService`). See `docs/LTI.md`.
 *
 * @example
 * ```ts
 * import { TokenManager } from 'tokenkeeper'
 * import { GradeService, LtiClaims } from 'tokenkeeper/lti'
 *
 * const tokens = new TokenManager()
 * const grades = await GradeService.fromClaim(tokens, registration, launch[LtiClaims.ags])
 * await grades.postScore({ userId, scoreGiven: 87, scoreMaximum: 100,
 *   activityProgress: 'Completed', gradingProgress: 'FullyGraded' })
 * ```
 *
 * @packageDocumentation
 * @module tokenkeeper/lti
 */
export { ACTIVITY_PROGRESS, GRADING_PROGRESS, LtiClaims, LtiMediaTypes, LtiScopes } from './constants.js'
export {
  LtiServiceError,
  ScopeMismatchError,
  UnsafeServiceUrlError,
  type LtiErrorCode,
  type ScopeMismatchReason,
} from './errors.js'
export type { LtiRegistration, LtiSourceOptions } from './registration.js'
export { ltiServiceSource } from './source.js'
export { deriveGradeScopes, type GradeUse } from './scopes.js'
export { findLink, parseLinkHeader, type WebLink } from './links.js'
export type { CallOptions, LtiRetryEvent, LtiRetryOptions, LtiServiceOptions } from './client.js'
export type { GradeEndpoint } from './ags-claim.js'
export { GradeService, type GradeServiceOptions } from './grades.js'
export { MembershipsService } from './memberships.js'
export type { BulkOptions } from './bulk.js'
export type {
  BulkScore,
  FailedScore,
  PostScoresOptions,
  PostScoresResult,
  ScoreRef,
  ScoresProgress,
} from './bulk-scores.js'
export type { CourseSync, RosterProgress, RosterSyncResult, SyncRostersOptions } from './bulk-rosters.js'
export type {
  ActivityProgress,
  AgsClaim,
  GradingProgress,
  LineItem,
  LineItemFields,
  LineItemFilters,
  LineItemRef,
  LtiResult,
  Member,
  MembershipContext,
  MembershipPage,
  MembersQuery,
  NewLineItem,
  NrpsClaim,
  ScoreInput,
  ScorePostResult,
} from './types.js'
