import { inspect } from 'node:util'
import { TokenkeeperError } from '../errors.js'
import type { TokenManager } from '../manager/manager.js'
import type { TokenSource } from '../sources/types.js'
import {
  checkEntries,
  checkServiceOptions,
  objectOf,
  ServiceClient,
  sourceOptionsOf,
  type CallOptions,
  type LtiServiceOptions,
  type ServiceRequest,
} from './client.js'
import { syncRostersInBulk, type RosterSyncResult, type SyncRostersOptions } from './bulk-rosters.js'
import { LtiMediaTypes, LtiScopes } from './constants.js'
import { ScopeMismatchError } from './errors.js'
import { checkSameHost, checkServiceUrl, withQuery } from './links.js'
import type { LtiRegistration } from './registration.js'
import { ltiServiceSource } from './source.js'
import type { Member, MembershipContext, MembershipPage, MembersQuery, NrpsClaim } from './types.js'

function checkClaim(claim: NrpsClaim, what: string): URL {
  if (typeof claim !== 'object' || claim === null)
    throw new TypeError(`${what}: an NRPS claim object is required`)
  const versions = claim.service_versions
  if (versions !== undefined && (!Array.isArray(versions) || !versions.includes('2.0'))) {
    throw new TypeError(`${what}: the NRPS claim does not offer service version 2.0`)
  }
  return checkServiceUrl(claim.context_memberships_url, `${what}: context_memberships_url`)
}

/**
 * Names and Role Provisioning Services 2.0 for one context (course): its members, page by page,
 * and the `differences` link, on tokens cached by a {@link TokenManager}. One token (the
 * `contextmembership.readonly` scope) serves every course of the registration, so syncing the
 * rosters of many courses costs one token request. Paging follows `rel="next"` exactly as
 * given, only to https on the platform's host.
 *
 * @example
 * ```ts
 * import { MembershipsService, LtiClaims } from 'tokenkeeper/lti'
 * const roster = await MembershipsService.fromClaim(tokens, registration, launch[LtiClaims.nrps])
 * for await (const member of roster.members({ role: 'Learner' })) console.log(member.user_id)
 * ```
 */
export class MembershipsService {
  /** The context membership URL of the claim. */
  readonly membershipsUrl: string
  /** The scopes the token had been granted when the service was built or its endpoint swapped. */
  readonly grantedScopes: readonly string[]
  readonly #tokens: TokenManager
  readonly #source: TokenSource
  readonly #client: ServiceClient
  readonly #url: URL
  readonly #hosts: ReadonlySet<string>

  private constructor(
    tokens: TokenManager,
    source: TokenSource,
    client: ServiceClient,
    url: URL,
    granted: readonly string[],
  ) {
    this.#tokens = tokens
    this.#source = source
    this.#client = client
    this.#url = url
    this.#hosts = new Set([url.host])
    this.membershipsUrl = url.href
    this.grantedScopes = granted
  }

  /**
   * Builds the service from a launch's NRPS claim and resolves the token (scope
   * `https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly`); rejects with
   * {@link ScopeMismatchError} when the platform did not grant it.
   */
  static async fromClaim(
    tokens: TokenManager,
    registration: LtiRegistration,
    claim: NrpsClaim,
    options: LtiServiceOptions = {},
  ): Promise<MembershipsService> {
    const what = 'MembershipsService.fromClaim'
    checkServiceOptions(options, what)
    const url = checkClaim(claim, what)
    const source = ltiServiceSource(
      registration,
      [LtiScopes.contextMembershipReadOnly],
      sourceOptionsOf(options),
    )
    const client = new ServiceClient(tokens, source, options)
    const granted = await MembershipsService.#granted(tokens, source, what, options.signal)
    return new MembershipsService(tokens, source, client, url, granted)
  }

  static async #granted(
    tokens: TokenManager,
    source: TokenSource,
    where: string,
    signal: AbortSignal | undefined,
  ): Promise<readonly string[]> {
    const token = await tokens.get(source, { signal })
    if (!token.hasScope(LtiScopes.contextMembershipReadOnly)) {
      throw new ScopeMismatchError(
        `${where}: the token was not granted ${LtiScopes.contextMembershipReadOnly}; granted: ${token.scopes.join(' ') || '(none)'}`,
        {
          reason: 'not-granted',
          missingScopes: [LtiScopes.contextMembershipReadOnly],
          grantedScopes: token.scopes,
        },
      )
    }
    return token.scopes
  }

  /** The same service (same token source) on another context's NRPS claim; re-checks the token's scopes. */
  async withEndpoint(claim: NrpsClaim, options: CallOptions = {}): Promise<MembershipsService> {
    const what = 'MembershipsService.withEndpoint'
    const url = checkClaim(claim, what)
    const granted = await MembershipsService.#granted(this.#tokens, this.#source, what, options.signal)
    return new MembershipsService(this.#tokens, this.#source, this.#client, url, granted)
  }

  /** The membership container page by page, with its `differences` link. */
  pages(query: MembersQuery = {}, options: CallOptions = {}): AsyncGenerator<MembershipPage> {
    return this.#pages(withQuery(this.#url, checkQuery(query)), options)
  }

  /** Every member, following `rel="next"` pages. */
  async *members(query: MembersQuery = {}, options: CallOptions = {}): AsyncGenerator<Member> {
    for await (const page of this.pages(query, options)) yield* page.members
  }

  /**
   * What changed since an earlier answer: pages from a `differencesUrl` (opaque, used as given,
   * and only on the platform's host). Members removed since then come with status `Deleted`.
   */
  differences(differencesUrl: string, options: CallOptions = {}): AsyncGenerator<MembershipPage> {
    const url = checkSameHost(
      differencesUrl,
      this.#url,
      this.#hosts,
      'MembershipsService.differences: the URL',
    )
    return this.#pages(url, options)
  }

  /**
   * Reads the rosters of many courses of this registration (NRPS claims, an array or an async
   * iterable read as it goes) on this service's token source: one token for all of them, at
   * most `concurrency` courses at once (default 8), fewer while the platform's rate-limit
   * headers say its budget runs low or it throttles (see `docs/LTI.md`, "Bulk calls"). Each
   * page is handed to `onPage` (awaited) before the next is requested; each page request has
   * the retries of a single read. Resolves with a result per course, in input order: never
   * rejects for a course (a bad claim, a failed page or an `onPage` throw fails that course
   * only); rejects only for bad options or when reading the async iterable fails.
   *
   * @example
   * ```ts
   * const result = await roster.syncRosters(claims, async (page, { index }) => save(index, page.members), { concurrency: 4 })
   * for (const course of result.courses) if (course.outcome !== 'synced') console.warn(course.membershipsUrl, course.error)
   * ```
   */
  syncRosters(
    claims: Iterable<NrpsClaim> | AsyncIterable<NrpsClaim>,
    onPage: (page: MembershipPage, course: { readonly index: number; readonly claim: NrpsClaim }) => unknown,
    options: SyncRostersOptions = {},
  ): Promise<RosterSyncResult> {
    return syncRostersInBulk(claims, onPage, options, {
      clock: this.#client.clock,
      maxWaitMs: this.#client.maxDelayMs,
      pages: (claim, query, signal, hooks) => this.#coursePages(claim, query, signal, hooks),
    })
  }

  async *#coursePages(
    claim: NrpsClaim,
    query: MembersQuery,
    signal: AbortSignal,
    hooks: Pick<ServiceRequest, 'onRetry' | 'onAnswer' | 'pace'>,
  ): AsyncGenerator<MembershipPage> {
    const course = await this.withEndpoint(claim, { signal })
    yield* course.#pages(withQuery(course.#url, checkQuery(query)), { signal }, hooks)
  }

  /** The token source every call uses. */
  get source(): TokenSource {
    return this.#source
  }

  /** `{ membershipsUrl, key }`: what `JSON.stringify` shows; no token, no key material. */
  toJSON(): Record<string, unknown> {
    return { membershipsUrl: this.membershipsUrl, key: this.#source.key }
  }

  /** What `util.inspect` and `console.log` show: {@link MembershipsService.toJSON}. */
  [inspect.custom](): string {
    return `MembershipsService ${inspect(this.toJSON())}`
  }

  async *#pages(
    first: URL,
    options: CallOptions,
    hooks: Pick<ServiceRequest, 'onRetry' | 'onAnswer' | 'pace'> = {},
  ): AsyncGenerator<MembershipPage> {
    for await (const page of this.#client.pages(
      first,
      LtiMediaTypes.membershipContainer,
      this.#hosts,
      options.signal,
      hooks,
    )) {
      const body = objectOf(page.json, page.url)
      const context = body['context']
      const members = body['members']
      if (typeof context !== 'object' || context === null || !Array.isArray(members)) {
        throw new TokenkeeperError(
          'INVALID_SERVICE_RESPONSE',
          `GET ${page.url.host}${page.url.pathname} answered without a context object and a members array`,
        )
      }
      // NRPS 2.0: user_id and roles are the only fields a member always has.
      checkEntries(members, page.url, 'member', (member) => {
        const id = member['user_id']
        if (typeof id !== 'string' || id === '') return 'without a string user_id'
        const roles = member['roles']
        if (!Array.isArray(roles) || !roles.every((role) => typeof role === 'string'))
          return 'without a roles array of strings'
        return undefined
      })
      const differences = page.links.find((link) => link.rel.includes('differences'))?.target
      yield {
        context: context as MembershipContext,
        members: members as Member[],
        // Opaque; resolved against the page only so that it is absolute.
        differencesUrl: differences === undefined ? undefined : resolve(differences, page.url),
        nextUrl: page.next?.href,
      }
    }
  }
}

function resolve(target: string, base: URL): string | undefined {
  try {
    return new URL(target, base).href
  } catch {
    return undefined
  }
}

function checkQuery(query: MembersQuery): Record<string, string | number | undefined> {
  if (typeof query !== 'object' || query === null)
    throw new TypeError('tokenkeeper/lti: the members query must be an object')
  const { role, limit, rlid } = query
  if (role !== undefined && (typeof role !== 'string' || role.length === 0)) {
    throw new TypeError('tokenkeeper/lti: role must be a non-empty string')
  }
  if (rlid !== undefined && (typeof rlid !== 'string' || rlid.length === 0)) {
    throw new TypeError('tokenkeeper/lti: rlid must be a non-empty string')
  }
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new TypeError('tokenkeeper/lti: limit must be a positive integer')
  }
  return { role, limit, rlid }
}
