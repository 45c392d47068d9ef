/**
 * Wire types of AGS 2.0 and NRPS 2.0. They keep the wire's names (`scoreMaximum`, `user_id`):
 * what the platform sends is what you read.
 */
import type { ACTIVITY_PROGRESS, GRADING_PROGRESS } from './constants.js'

/**
 * The AGS claim of a launch, `https://purl.imsglobal.org/spec/lti-ags/claim/endpoint`
 * (AGS 2.0 §3.1).
 *
 * @example
 * ```ts
 * import { LtiClaims, type AgsClaim } from 'tokenkeeper/lti'
 * const claim = launch[LtiClaims.ags] as AgsClaim
 * ```
 */
export interface AgsClaim {
  /** The scopes the tool may ask an access token for in this context. */
  readonly scope: readonly string[]
  /** The line item container of the context. */
  readonly lineitems?: string | undefined
  /** The one line item of the launched resource link, when there is exactly one. */
  readonly lineitem?: string | undefined
}

/**
 * The NRPS claim of a launch, `https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice`.
 * (The spec's prose says `service_version`; its example and every platform use the array
 * `service_versions`.)
 *
 * @example
 * ```ts
 * import { LtiClaims, type NrpsClaim } from 'tokenkeeper/lti'
 * const claim = launch[LtiClaims.nrps] as NrpsClaim
 * ```
 */
export interface NrpsClaim {
  /** The membership container of the context: the URL `MembershipsService` reads. */
  readonly context_memberships_url: string
  /** The NRPS versions the platform offers, e.g. `['2.0']`. */
  readonly service_versions?: readonly string[] | undefined
}

/**
 * `activityProgress` of a score.
 *
 * @example
 * ```ts
 * import type { ActivityProgress } from 'tokenkeeper/lti'
 * const done: ActivityProgress = 'Completed'
 * ```
 */
export type ActivityProgress = (typeof ACTIVITY_PROGRESS)[number]
/**
 * `gradingProgress` of a score.
 *
 * @example
 * ```ts
 * import type { GradingProgress } from 'tokenkeeper/lti'
 * const final: GradingProgress = 'FullyGraded'
 * ```
 */
export type GradingProgress = (typeof GRADING_PROGRESS)[number]

/**
 * A score to post (AGS 2.0 §3.4). `timestamp` is set by tokenkeeper: ISO 8601 with microseconds,
 * strictly increasing. `scoreGiven` is optional (omitted clears the score); `scoreMaximum` is
 * required with it. Set `gradingProgress: 'FullyGraded'` for a final score (§4.7).
 *
 * @example
 * ```ts
 * import type { ScoreInput } from 'tokenkeeper/lti'
 * const score: ScoreInput = {
 *   userId: '5323497', scoreGiven: 87, scoreMaximum: 100,
 *   activityProgress: 'Completed', gradingProgress: 'FullyGraded',
 * }
 * ```
 */
export interface ScoreInput {
  /** The LTI user id (the `sub` of the user's launch). */
  readonly userId: string
  /** Where the learner is with the activity (`Initialized` ... `Completed`). */
  readonly activityProgress: ActivityProgress
  /** Where grading is (`NotReady` ... `FullyGraded`); only `FullyGraded` is a final score. */
  readonly gradingProgress: GradingProgress
  /** A number ≥ 0; may exceed `scoreMaximum`. */
  readonly scoreGiven?: number
  /** Required when `scoreGiven` is given; > 0. */
  readonly scoreMaximum?: number
  /** Plain text. Omitted clears a previous comment. */
  readonly comment?: string
  /** The LTI user id of who scored it. */
  readonly scoringUserId?: string
  /** When the learner started and submitted (for late flags); Dates or ISO 8601 strings. */
  readonly submission?: {
    /** When the learner started the attempt. */
    readonly startedAt?: Date | string
    /** When the learner submitted it. */
    readonly submittedAt?: Date | string
  }
  /** Extension properties; every key must be a fully qualified URL (AGS 2.0 §3.1.2). */
  readonly extensions?: Readonly<Record<string, unknown>>
}

/**
 * The definition of a line item (AGS 2.0 §3.2.5–3.2.14), without its `id`: what is posted to
 * create one. `label` must not be blank and `scoreMaximum` must be > 0.
 *
 * @example
 * ```ts
 * import type { LineItemFields } from 'tokenkeeper/lti'
 * const item: LineItemFields = { label: 'Essay 2', scoreMaximum: 20, resourceId: 'essay-2', tag: 'final' }
 * ```
 */
export interface LineItemFields {
  /** The column's title in the platform's gradebook; not blank. */
  readonly label: string
  /** The largest score, > 0; scores are read against it. */
  readonly scoreMaximum: number
  /** The resource link the line item belongs to (a launch's `resource_link.id`). */
  readonly resourceLinkId?: string
  /** The tool's own id for the activity, to find its line items again. */
  readonly resourceId?: string
  /** The tool's own qualifier (`final`, `originality`, ...), to tell several line items of one activity apart. */
  readonly tag?: string
  /** When the activity opens: ISO 8601 with a time zone designator. */
  readonly startDateTime?: string
  /** When the activity is due: ISO 8601 with a time zone designator. */
  readonly endDateTime?: string
  /** Whether the platform may show the grades to learners. */
  readonly gradesReleased?: boolean
  readonly [extension: string]: unknown
}

/**
 * A line item as the platform sends it (AGS 2.0 §3.2). `id` is its URL: the base of its
 * `/scores` and `/results`.
 *
 * @example
 * ```ts
 * import type { LineItem } from 'tokenkeeper/lti'
 * const item: LineItem = { id: 'https://lms.example/2344/lineitems/1/lineitem', label: 'Quiz 1', scoreMaximum: 10 }
 * ```
 */
export interface LineItem extends LineItemFields {
  /** The line item's URL, assigned by the platform. */
  readonly id: string
}

/**
 * A line item to create: its fields, and no `id` (the platform assigns it).
 *
 * @example
 * ```ts
 * import type { NewLineItem } from 'tokenkeeper/lti'
 * const item: NewLineItem = { label: 'Essay 2', scoreMaximum: 20, resourceId: 'essay-2', tag: 'final' }
 * ```
 */
export type NewLineItem = LineItemFields & {
  /** Never set: the platform assigns the id. */
  readonly id?: undefined
}

/**
 * Filters of a line item container GET (AGS 2.0 §3.2.4). The platform must support them.
 *
 * @example
 * ```ts
 * import type { LineItemFilters } from 'tokenkeeper/lti'
 * const filters: LineItemFilters = { tag: 'final', limit: 50 }
 * ```
 */
export interface LineItemFilters {
  /** Only the line items of this resource link. */
  readonly resourceLinkId?: string
  /** Only the line items with this `resourceId`. */
  readonly resourceId?: string
  /** Only the line items with this `tag`. */
  readonly tag?: string
  /** A page size hint. */
  readonly limit?: number
}

/**
 * A result (AGS 2.0 §3.3.4): the platform's current grade of one user on one line item.
 *
 * @example
 * ```ts
 * import type { LtiResult } from 'tokenkeeper/lti'
 * const passed = (result: LtiResult) => (result.resultScore ?? 0) >= 0.5 * (result.resultMaximum ?? 1)
 * ```
 */
export interface LtiResult {
  /** The result's URL. */
  readonly id?: string
  /** The URL of the line item it belongs to. */
  readonly scoreOf?: string
  /** The LTI user id of the learner. */
  readonly userId: string
  /** The grade, on the scale of `resultMaximum`; `null` or absent when there is none yet. */
  readonly resultScore?: number | null
  /** The scale of `resultScore`; 1 when absent, as AGS 2.0 says. */
  readonly resultMaximum?: number
  /** The LTI user id of who scored it. */
  readonly scoringUserId?: string
  /** The comment shown with the grade, plain text. */
  readonly comment?: string
  readonly [extension: string]: unknown
}

/**
 * A member of a context (NRPS 2.0). Only `user_id` and `roles` are certain; the rest depends on
 * the platform's privacy settings. Role URIs use `http://` (`…/membership#Learner`).
 *
 * @example
 * ```ts
 * import type { Member } from 'tokenkeeper/lti'
 * const isLearner = (m: Member) => m.roles.some((role) => role.endsWith('#Learner') || role === 'Learner')
 * ```
 */
export interface Member {
  /** The LTI user id: the `sub` of the member's launches. */
  readonly user_id: string
  /** Role URIs in the context, e.g. `http://purl.imsglobal.org/vocab/lis/v2/membership#Learner`. */
  readonly roles: readonly string[]
  /** `Active` (default), `Inactive`, or `Deleted` (differences only). */
  readonly status?: 'Active' | 'Inactive' | 'Deleted'
  /** Full name, when the platform shares it. */
  readonly name?: string
  /** Given name, when the platform shares it. */
  readonly given_name?: string
  /** Family name, when the platform shares it. */
  readonly family_name?: string
  /** Middle name, when the platform shares it. */
  readonly middle_name?: string
  /** E-mail address, when the platform shares it. */
  readonly email?: string
  /** URL of the member's picture, when the platform shares it. */
  readonly picture?: string
  /** The member's id in the institution's student information system, when shared. */
  readonly lis_person_sourcedid?: string
  /** The member's LTI 1.1 `user_id`, for tools migrating from LTI 1.1. */
  readonly lti11_legacy_user_id?: string
  /** Launch claims for this member when the roster was read with a resource link (`rlid`). */
  readonly message?: readonly Readonly<Record<string, unknown>>[]
  readonly [extension: string]: unknown
}

/**
 * The context of a membership container.
 *
 * @example
 * ```ts
 * import type { MembershipContext } from 'tokenkeeper/lti'
 * const describe = (context: MembershipContext) => context.title ?? context.id
 * ```
 */
export interface MembershipContext {
  /** The context's id (the `context.id` of its launches). */
  readonly id: string
  /** The context's short label, e.g. a course code. */
  readonly label?: string
  /** The context's full title. */
  readonly title?: string
}

/**
 * A line item by URL, or the line item object (its `id` is its URL).
 *
 * @example
 * ```ts
 * for await (const item of grades.lineItems({ tag: 'final' })) await grades.postScore(score, { lineItem: item })
 * ```
 */
export type LineItemRef = string | Pick<LineItem, 'id'>

/**
 * What became of a score: `posted` (the platform accepted it, after `attempts` attempts), or
 * `superseded` (a retry was dropped, nothing more sent, because a newer score for that line item
 * and user had been posted meanwhile: AGS 2.0 §3.4.9).
 *
 * @example
 * ```ts
 * const { outcome, attempts } = await grades.postScore(score)
 * if (outcome === 'superseded') console.info('a newer grade was posted first')
 * ```
 */
export interface ScorePostResult {
  /** `posted`: the platform accepted the score; `superseded`: a newer score was posted first, this one was dropped. */
  readonly outcome: 'posted' | 'superseded'
  /** How many times the score was sent (1 when the first attempt was accepted). */
  readonly attempts: number
  /** The timestamp of the last attempt sent. */
  readonly timestamp: string
}

/**
 * Query of a membership GET (NRPS 2.0): sent on the first page only; later pages use the
 * platform's `next` link exactly as given.
 *
 * @example
 * ```ts
 * import type { MembersQuery } from 'tokenkeeper/lti'
 * const learners: MembersQuery = { role: 'http://purl.imsglobal.org/vocab/lis/v2/membership#Learner', limit: 100 }
 * ```
 */
export interface MembersQuery {
  /** A role URI, or the short form of a context role (`Learner`). */
  readonly role?: string
  /** A page size hint; the platform may send more or fewer. */
  readonly limit?: number
  /** A resource link id: the members who can access that link (and its `message` claims). */
  readonly rlid?: string
}

/**
 * One page of a membership container.
 *
 * @example
 * ```ts
 * for await (const page of roster.pages()) {
 *   save(page.members)
 *   if (page.differencesUrl !== undefined) remember(page.differencesUrl)
 * }
 * ```
 */
export interface MembershipPage {
  /** The context (course) the roster belongs to. */
  readonly context: MembershipContext
  /** The members on this page. */
  readonly members: readonly Member[]
  /** The `rel="differences"` link: where to ask later for what changed since this answer. */
  readonly differencesUrl: string | undefined
  /** The `rel="next"` link, checked; `undefined` on the last page (or when it was refused: then iteration throws). */
  readonly nextUrl: string | undefined
}
