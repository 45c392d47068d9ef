import type { Clock } from '../clock.js'
import { checkBulkOptions, checkIterable, Pacer, runPool, type BulkOptions } from './bulk.js'
import type { ServiceRequest } from './client.js'
import type { MembershipPage, MembersQuery } from './types.js'
import type { NrpsClaim } from './types.js'

/**
 * Where a roster sync stands; passed to `onProgress` after each page and each course.
 *
 * @example
 * ```ts
 * const onProgress = (p: RosterProgress) => console.log(`${p.synced} courses, ${p.members} members`)
 * ```
 */
export interface RosterProgress {
  /** Courses read to their last page. */
  readonly synced: number
  /** Courses that failed for good so far. */
  readonly failed: number
  /** Member pages read so far, over every course. */
  readonly pages: number
  /** Members read so far, over every course. */
  readonly members: number
  /** Retries sent so far. */
  readonly retried: number
  /** Throttled answers received (429, Canvas's rate-limit 403). */
  readonly throttled: number
  /** Courses being read now. */
  readonly inProgress: number
  /** Courses not settled yet; `undefined` for an async iterable. */
  readonly remaining: number | undefined
  /** The concurrency the pacing allows now. */
  readonly concurrency: number
}

/**
 * Options of {@link MembershipsService.syncRosters}.
 *
 * @example
 * ```ts
 * await roster.syncRosters(claims, save, { concurrency: 4, query: { role: 'Learner' } })
 * ```
 */
export interface SyncRostersOptions extends BulkOptions {
  /** The query of every course's first page. */
  readonly query?: MembersQuery
  /** Called after each page and each course; a throw is ignored. */
  readonly onProgress?: (progress: RosterProgress) => void
}

/**
 * One course of a roster sync: `synced` (every page was read and handed over), `failed` (with
 * its error: a typed `TokenkeeperError`, a `TypeError` for a bad claim, what `onPage` threw, or
 * the signal's reason), or `notStarted` (the run was aborted first). `pages` and `members`
 * count what was handed to `onPage`, also for a course that failed later.
 *
 * @example
 * ```ts
 * for (const course of result.courses) if (course.outcome === 'failed') console.warn(course.membershipsUrl, course.error)
 * ```
 */
export interface CourseSync {
  /** Its position in the input. */
  readonly index: number
  /** The course's NRPS claim, as given. */
  readonly claim: NrpsClaim
  /** The claim's `context_memberships_url` (as given). */
  readonly membershipsUrl: string | undefined
  /** `synced`: read to its last page; `failed`: see `error`; `notStarted`: the run was aborted first. */
  readonly outcome: 'synced' | 'failed' | 'notStarted'
  /** Member pages read for this course (also for a failed one: those before the failure). */
  readonly pages: number
  /** Members read for this course. */
  readonly members: number
  /** Why a failed course failed: a typed `TokenkeeperError`, a `TypeError` for a bad claim, or the abort reason. */
  readonly error?: unknown
}

/**
 * What became of every course of a roster sync.
 *
 * @example
 * ```ts
 * const result = await roster.syncRosters(claims, save)
 * console.log(`${result.synced} synced, ${result.failed} failed, ${result.members} members`)
 * ```
 */
export interface RosterSyncResult {
  /** Every course read from the input, in input order. */
  readonly courses: readonly CourseSync[]
  /** Courses read to their last page. */
  readonly synced: number
  /** Courses that failed. */
  readonly failed: number
  /** Member pages read, over every course. */
  readonly pages: number
  /** Members read, over every course. */
  readonly members: number
  /** Retries sent (attempts beyond each request's first). */
  readonly retried: number
  /** Throttled answers received (429, Canvas's rate-limit 403). */
  readonly throttled: number
  /** Whether the signal ended the run before every course was read. */
  readonly aborted: boolean
}

/** A course's pages, as the roster service reads them. @internal */
export interface RosterReader {
  readonly clock: Clock
  /** The retry policy's `maxDelayMs`: the longest a pacing wait lasts. */
  readonly maxWaitMs: number
  /** The pages of one course (throws `TypeError` for a bad claim). */
  pages(
    claim: NrpsClaim,
    query: MembersQuery,
    signal: AbortSignal,
    hooks: Pick<ServiceRequest, 'onRetry' | 'onAnswer' | 'pace'>,
  ): AsyncIterable<MembershipPage>
}

const never = new AbortController().signal

/**
 * Reads the rosters of many courses, at most `concurrency` at once, paced by the platform's
 * rate-limit headers; the pages of one course one after another. @internal
 */
export async function syncRostersInBulk(
  claims: Iterable<NrpsClaim> | AsyncIterable<NrpsClaim>,
  onPage: (page: MembershipPage, course: { readonly index: number; readonly claim: NrpsClaim }) => unknown,
  options: SyncRostersOptions,
  reader: RosterReader,
): Promise<RosterSyncResult> {
  const what = 'MembershipsService.syncRosters'
  const concurrency = checkBulkOptions(options, what)
  checkIterable(claims, what)
  if (typeof onPage !== 'function') throw new TypeError(`${what}: onPage must be a function`)
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new TypeError(`${what}: onProgress must be a function`)
  }
  const signal = options.signal ?? never
  const known = Array.isArray(claims) ? claims.length : undefined
  const courses: CourseSync[] = []
  const totals = { synced: 0, failed: 0, pages: 0, members: 0, retried: 0, inProgress: 0 }
  const pacer = new Pacer(concurrency, reader.clock, signal, reader.maxWaitMs)
  const progress = (): void => {
    if (options.onProgress === undefined) return
    try {
      options.onProgress({
        ...totals,
        throttled: pacer.throttled,
        remaining: known === undefined ? undefined : known - totals.synced - totals.failed,
        concurrency: pacer.allowed,
      })
    } catch {
      // a hook's failure must not change the run
    }
  }
  const urlOf = (claim: NrpsClaim): string | undefined => {
    const url: unknown =
      typeof claim === 'object' && claim !== null ? claim.context_memberships_url : undefined
    return typeof url === 'string' ? url : undefined
  }
  const run = async (claim: NrpsClaim, index: number): Promise<void> => {
    totals.inProgress += 1
    let pages = 0
    let members = 0
    const hooks = pacer.hooks(() => {
      totals.retried += 1
      progress()
    })
    try {
      for await (const page of reader.pages(claim, options.query ?? {}, signal, hooks)) {
        await onPage(page, { index, claim })
        pages += 1
        members += page.members.length
        totals.pages += 1
        totals.members += page.members.length
        progress()
      }
      totals.synced += 1
      courses.push({ index, claim, membershipsUrl: urlOf(claim), outcome: 'synced', pages, members })
    } catch (error) {
      if (signal.aborted && !hooks.sent && error === signal.reason) {
        // Aborted before its first request got past the pacing: nothing was asked for.
        courses.push({ index, claim, membershipsUrl: urlOf(claim), outcome: 'notStarted', pages, members })
        return
      }
      totals.failed += 1
      courses.push({ index, claim, membershipsUrl: urlOf(claim), outcome: 'failed', pages, members, error })
    } finally {
      hooks.release()
      totals.inProgress -= 1
      progress()
    }
  }
  // Courses are independent: no key, so any number of them may be read at once.
  const end = await runPool(claims, { keyOf: () => undefined, run, pacer, signal })
  for (const { item, index } of end.notStarted) {
    courses.push({
      index,
      claim: item,
      membershipsUrl: urlOf(item),
      outcome: 'notStarted',
      pages: 0,
      members: 0,
    })
  }
  courses.sort((a, b) => a.index - b.index)
  const { inProgress: _inProgress, ...counts } = totals
  return { courses, ...counts, throttled: pacer.throttled, aborted: signal.aborted }
}
