import type { AgsClaim, LineItem, LineItemFields, Member, NrpsClaim } from '../../lti/types.js'
import { ALL_LTI_SCOPES } from './token.js'
import type { LtiContextSeed, LtiMemberSeed, LtiPlatformContext, LtiRecordedScore } from './types.js'

const LEARNER = 'http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'
const AGS_SCOPES = ALL_LTI_SCOPES.slice(0, 4)

/** A line item and its scores. @internal */
export interface LineItemRecord {
  readonly num: number
  readonly typeId: number
  item: LineItemFields
  readonly scores: LtiRecordedScore[]
  /** Last accepted timestamp per user, in epoch nanoseconds. */
  readonly lastTimestamp: Map<string, bigint>
}

/** A membership with the roster version at which it last changed. @internal */
export interface MemberRecord {
  member: Member
  changedAt: number
}

/** Counters shared by every course of a platform. @internal */
export interface CourseIds {
  nextCourse: number
  nextLineItem: number
}

/** A course (LTI context) of the test platform: roster, line items and scores. @internal */
export class Course implements LtiPlatformContext {
  readonly id: string
  readonly title: string
  readonly label: string
  readonly agsScopes: readonly string[]
  readonly resourceLinks: ReadonlySet<string>
  readonly lineItemsUrl: string
  readonly membershipsUrl: string
  readonly roster = new Map<string, MemberRecord>()
  readonly items = new Map<number, LineItemRecord>()
  /** Incremented on every roster change; `since` of the differences link. */
  version = 0
  readonly #base: string
  readonly #ids: CourseIds

  constructor(seed: LtiContextSeed, base: string, ids: CourseIds) {
    this.#ids = ids
    this.id = seed.id ?? `course-${++ids.nextCourse}`
    if (!/^[\w.-]{1,64}$/.test(this.id))
      throw new TypeError('createContext: id must be 1-64 of [A-Za-z0-9_.-]')
    this.title = seed.title ?? `Course ${this.id}`
    this.label = seed.label ?? this.id.toUpperCase()
    this.agsScopes = [...(seed.agsScopes ?? AGS_SCOPES)]
    this.resourceLinks = new Set(seed.resourceLinks ?? [])
    this.#base = `${base}/ags/${this.id}`
    this.lineItemsUrl = `${this.#base}/lineitems`
    this.membershipsUrl = `${base}/nrps/${this.id}/memberships`
    for (const member of seed.members ?? []) this.addMember(member)
    for (let i = 1; i <= (seed.learners ?? 0); i++) this.addMember({ user_id: `${this.id}-learner-${i}` })
    for (const item of seed.lineItems ?? []) this.addLineItem(item)
  }

  agsClaim(options: { readonly lineItem?: string; readonly scope?: readonly string[] } = {}): AgsClaim {
    return {
      scope: [...(options.scope ?? this.agsScopes)],
      lineitems: this.lineItemsUrl,
      ...(options.lineItem === undefined ? {} : { lineitem: options.lineItem }),
    }
  }

  nrpsClaim(): NrpsClaim {
    return { context_memberships_url: this.membershipsUrl, service_versions: ['2.0'] }
  }

  addMember(seed: LtiMemberSeed): void {
    if (typeof seed.user_id !== 'string' || seed.user_id === '')
      throw new TypeError('addMember: user_id is required')
    const member: Member = {
      status: seed.status ?? 'Active',
      name: seed.name ?? `User ${seed.user_id}`,
      ...(seed.email === undefined ? {} : { email: seed.email }),
      user_id: seed.user_id,
      roles: [...(seed.roles ?? [LEARNER])],
    }
    this.roster.set(seed.user_id, { member, changedAt: ++this.version })
  }

  removeMember(userId: string): boolean {
    const record = this.roster.get(userId)
    if (record === undefined || record.member.status === 'Deleted') return false
    record.member = { ...record.member, status: 'Deleted' }
    record.changedAt = ++this.version
    return true
  }

  members(): readonly Member[] {
    return [...this.roster.values()].filter((r) => r.member.status !== 'Deleted').map((r) => r.member)
  }

  addLineItem(item: LineItemFields): LineItem {
    const num = ++this.#ids.nextLineItem
    const record: LineItemRecord = {
      num,
      typeId: 7 + num * 3,
      item: { ...item },
      scores: [],
      lastTimestamp: new Map(),
    }
    this.items.set(num, record)
    return this.view(record)
  }

  lineItems(): readonly LineItem[] {
    return [...this.items.values()].map((record) => this.view(record))
  }

  scores(lineItem: string): readonly LtiRecordedScore[] {
    const num = /\/lineitems\/(\d+)\/lineitem/.exec(lineItem)?.[1] ?? lineItem
    return [...(this.items.get(Number(num))?.scores ?? [])]
  }

  /** The line item URL: with a query string, as Moodle's and Canvas's are. */
  lineItemUrl(record: LineItemRecord): string {
    return `${this.#base}/lineitems/${record.num}/lineitem?type_id=${record.typeId}`
  }

  view(record: LineItemRecord): LineItem {
    return { ...record.item, id: this.lineItemUrl(record) }
  }

  /** Whether a member may be graded (an active Learner), as Canvas, D2L and Moodle require. */
  gradable(userId: string): boolean {
    const member = this.roster.get(userId)?.member
    return (
      member !== undefined &&
      member.status === 'Active' &&
      member.roles.some((r) => r === LEARNER || r === 'Learner')
    )
  }
}

/** Whether a member has `role`: a full URI, or the short form of a context role (`Learner`). @internal */
export function hasRole(member: Member, role: string): boolean {
  return member.roles.some((held) => held === role || (!role.includes(':') && held.endsWith(`#${role}`)))
}
