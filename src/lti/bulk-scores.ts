import type { Clock } from '../clock.js'
import { checkBulkOptions, checkIterable, Pacer, runPool, type BulkOptions } from './bulk.js'
import type { ServiceRequest } from './client.js'
import { scoreKey } from './links.js'
import type { LineItemRef, ScorePostResult } from './types.js'
import type { ScoreInput } from './types.js'

/**
 * A score of a bulk post: a {@link ScoreInput}, optionally with its own line item (default: the
 * `lineItem` option, then the claim's `lineitem`). `lineItem` is not part of the score sent.
 *
 * @example
 * ```ts
 * import type { BulkScore } from 'tokenkeeper/lti'
 * const score: BulkScore = { userId: 'u1', scoreGiven: 9, scoreMaximum: 10,
 *   activityProgress: 'Completed', gradingProgress: 'FullyGraded', lineItem: quizUrl }
 * ```
 */
export type BulkScore = ScoreInput & {
  /** The line item of this score; default: the call's `lineItem` option. */
  readonly lineItem?: LineItemRef
}

/**
 * Where a bulk post stands; passed to `onProgress` after each score settles and each retry.
 *
 * @example
 * ```ts
 * const onProgress = (p: ScoresProgress) => console.log(`${p.posted} posted, ${p.failed} failed, ${p.remaining ?? '?'} to go`)
 * ```
 */
export interface ScoresProgress {
  /** Scores the platform accepted so far. */
  readonly posted: number
  /** Retries sent so far (attempts beyond each score's first). */
  readonly retried: number
  /** Scores that failed for good so far (see {@link PostScoresResult.failed}). */
  readonly failed: number
  /** Scores dropped because a newer one of the same line item and user was posted (AGS 2.0 §3.4.9). */
  readonly superseded: number
  /** Throttled answers received (429, Canvas's rate-limit 403). */
  readonly throttled: number
  /** Scores being posted now (including those waiting for a retry). */
  readonly inProgress: number
  /** Scores not settled yet; `undefined` for an async iterable (its length is unknown). */
  readonly remaining: number | undefined
  /** The concurrency the pacing allows now. */
  readonly concurrency: number
}

/**
 * Options of {@link GradeService.postScores}.
 *
 * @example
 * ```ts
 * const result = await grades.postScores(scores, { concurrency: 8, onProgress: (p) => bar.update(p.posted) })
 * ```
 */
export interface PostScoresOptions extends BulkOptions {
  /** The line item of scores that name none (default: the claim's `lineitem`). */
  readonly lineItem?: LineItemRef
  /** Called after each score settles and before each retry; a throw is ignored. */
  readonly onProgress?: (progress: ScoresProgress) => void
}

/**
 * A score of a bulk post, by its position in the input.
 *
 * @example
 * ```ts
 * for (const { index, score } of result.superseded) console.info(`score ${index} for ${score.userId}: a newer one was posted`)
 * ```
 */
export interface ScoreRef {
  /** Its position in the input (0 for the first). */
  readonly index: number
  /** The score as it was given. */
  readonly score: BulkScore
}

/**
 * A score that was not posted, with why: a typed `TokenkeeperError` (`LtiServiceError` for a
 * non-2xx answer after the retries, `TIMEOUT`, ...), a `TypeError` for a score that is not
 * valid (nothing was sent for it), or the signal's reason when the run was aborted while it
 * was in progress.
 *
 * @example
 * ```ts
 * for (const { index, error } of result.failed) console.warn(index, error instanceof Error ? error.message : error)
 * ```
 */
export interface FailedScore extends ScoreRef {
  /** Why it was not posted (see above). */
  readonly error: unknown
}

/**
 * What became of every score of a bulk post: each score read is counted in exactly one of
 * `posted`, `superseded`, `failed` and `notSent`.
 *
 * @example
 * ```ts
 * const result = await grades.postScores(scores)
 * if (result.failed.length > 0) await retryLater(result.failed.map((f) => f.score))
 * ```
 */
export interface PostScoresResult {
  /** Scores read from the input. */
  readonly total: number
  /** Scores the platform accepted. */
  readonly posted: number
  /** Retries sent (attempts beyond each score's first). */
  readonly retried: number
  /** Throttled answers received (429, Canvas's rate-limit 403). */
  readonly throttled: number
  /** Every score that was not posted, with its error, in input order. */
  readonly failed: readonly FailedScore[]
  /**
   * Scores whose retry was dropped because a newer score of the same line item and user had
   * been posted meanwhile (AGS 2.0 §3.4.9): the newer grade stands.
   */
  readonly superseded: readonly ScoreRef[]
  /** Scores read but not sent because the run was aborted. */
  readonly notSent: readonly ScoreRef[]
  /** Whether `signal` ended the run. */
  readonly aborted: boolean
}

/** What the grade service lends a bulk post. @internal */
export interface ScorePoster {
  readonly clock: Clock
  /** The retry policy's `maxDelayMs`: the longest a pacing wait lasts. */
  readonly maxWaitMs: number
  /** The line item URL of a score (throws `TypeError` for a bad one). */
  lineItemOf(score: BulkScore): URL
  post(
    score: ScoreInput,
    lineItem: URL,
    signal: AbortSignal,
    hooks: Pick<ServiceRequest, 'onRetry' | 'onAnswer' | 'pace'>,
  ): Promise<ScorePostResult>
}

const never = new AbortController().signal

/**
 * Posts many scores: at most `concurrency` at once, paced by the platform's rate-limit headers,
 * each with the retries of a single post, the scores of one (line item, user) one after another
 * in input order. @internal
 */
export async function postScoresInBulk(
  scores: Iterable<BulkScore> | AsyncIterable<BulkScore>,
  options: PostScoresOptions,
  poster: ScorePoster,
): Promise<PostScoresResult> {
  const what = 'GradeService.postScores'
  const concurrency = checkBulkOptions(options, what)
  checkIterable(scores, what)
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new TypeError(`${what}: onProgress must be a function`)
  }
  const signal = options.signal ?? never
  const known = Array.isArray(scores) ? scores.length : undefined
  const failed: FailedScore[] = []
  const superseded: ScoreRef[] = []
  const aborted: ScoreRef[] = []
  let posted = 0
  let retried = 0
  let inProgress = 0
  const pacer = new Pacer(concurrency, poster.clock, signal, poster.maxWaitMs)
  const progress = (): void => {
    if (options.onProgress === undefined) return
    const settled = posted + failed.length + superseded.length
    try {
      options.onProgress({
        posted,
        retried,
        failed: failed.length,
        superseded: superseded.length,
        throttled: pacer.throttled,
        inProgress,
        remaining: known === undefined ? undefined : known - settled,
        concurrency: pacer.allowed,
      })
    } catch {
      // a hook's failure must not change the run
    }
  }
  const lineItems = new Map<BulkScore, URL>()
  const keyOf = (score: BulkScore): string | undefined => {
    try {
      if (typeof score !== 'object' || score === null) return undefined // reported when it runs
      const url = poster.lineItemOf(score)
      lineItems.set(score, url)
      return typeof score.userId === 'string' ? scoreKey(url, score.userId) : undefined
    } catch {
      return undefined // reported when it runs
    }
  }
  const run = async (score: BulkScore, index: number): Promise<void> => {
    inProgress += 1
    const hooks = pacer.hooks(() => {
      retried += 1
      progress()
    })
    try {
      const lineItem = lineItems.get(score) ?? poster.lineItemOf(score)
      lineItems.delete(score)
      const result = await poster.post(score, lineItem, signal, hooks)
      if (result.outcome === 'posted') posted += 1
      else superseded.push({ index, score })
    } catch (error) {
      // Aborted while it waited for the pacing, before anything was sent: not sent, not failed.
      if (signal.aborted && !hooks.sent && error === signal.reason) aborted.push({ index, score })
      else failed.push({ index, score, error })
    } finally {
      hooks.release()
      inProgress -= 1
      progress()
    }
  }
  const end = await runPool(scores, { keyOf, run, pacer, signal })
  const byIndex = (a: ScoreRef, b: ScoreRef): number => a.index - b.index
  return {
    total: end.read,
    posted,
    retried,
    throttled: pacer.throttled,
    failed: failed.sort(byIndex),
    superseded: superseded.sort(byIndex),
    notSent: [...aborted, ...end.notStarted.map(({ item, index }) => ({ index, score: item }))].sort(byIndex),
    aborted: signal.aborted,
  }
}
