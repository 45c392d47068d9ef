import { ACTIVITY_PROGRESS, GRADING_PROGRESS } from './constants.js'
import type { LineItem, NewLineItem, ScoreInput } from './types.js'

/** ISO 8601 date-time with a fractional second and a time zone designator (AGS 2.0 §3.4.9). */
const ISO_SUBSECOND = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+(?:Z|[+-]\d{2}(?::?\d{2})?)$/

function fail(why: string): never {
  throw new TypeError(`tokenkeeper/lti: ${why}`)
}

function nonEmptyString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) fail(`${name} must be a non-empty string`)
  return value
}

function instant(value: Date | string, name: string): string {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) fail(`${name} is an invalid Date`)
    return value.toISOString()
  }
  if (typeof value !== 'string' || !ISO_SUBSECOND.test(value) || Number.isNaN(Date.parse(value))) {
    fail(`${name} must be a Date or an ISO 8601 string with sub-second precision and a time zone`)
  }
  return value
}

function extensions(values: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const result: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(values ?? {})) {
    // AGS 2.0 §3.1.2: extension properties are named by fully qualified URLs.
    if (!/^https?:\/\/[^\s/]+\/\S*$/.test(name))
      fail(`extension property "${name.slice(0, 60)}" must be a URL`)
    result[name] = value
  }
  return result
}

/**
 * Checks a score (caller mistakes are `TypeError`s, before anything is sent) and builds its
 * JSON body with the given `timestamp`. Pure. @internal
 */
export function scoreBody(score: ScoreInput, timestamp: string): string {
  if (typeof score !== 'object' || score === null) fail('postScore needs a score object')
  const body: Record<string, unknown> = { ...extensions(score.extensions) }
  body['userId'] = nonEmptyString(score.userId, 'score.userId')
  if (!(ACTIVITY_PROGRESS as readonly string[]).includes(score.activityProgress)) {
    fail(`score.activityProgress must be one of ${ACTIVITY_PROGRESS.join(', ')}`)
  }
  if (!(GRADING_PROGRESS as readonly string[]).includes(score.gradingProgress)) {
    fail(`score.gradingProgress must be one of ${GRADING_PROGRESS.join(', ')}`)
  }
  body['activityProgress'] = score.activityProgress
  body['gradingProgress'] = score.gradingProgress
  body['timestamp'] = timestamp
  if (score.scoreGiven !== undefined) {
    if (typeof score.scoreGiven !== 'number' || !Number.isFinite(score.scoreGiven) || score.scoreGiven < 0) {
      fail('score.scoreGiven must be a finite number ≥ 0')
    }
    if (score.scoreMaximum === undefined) fail('score.scoreMaximum is required when scoreGiven is given')
    body['scoreGiven'] = score.scoreGiven
  }
  if (score.scoreMaximum !== undefined) {
    if (
      typeof score.scoreMaximum !== 'number' ||
      !Number.isFinite(score.scoreMaximum) ||
      score.scoreMaximum <= 0
    ) {
      fail('score.scoreMaximum must be a finite number > 0')
    }
    body['scoreMaximum'] = score.scoreMaximum
  }
  if (score.comment !== undefined) {
    if (typeof score.comment !== 'string') fail('score.comment must be a string')
    body['comment'] = score.comment
  }
  if (score.scoringUserId !== undefined)
    body['scoringUserId'] = nonEmptyString(score.scoringUserId, 'score.scoringUserId')
  if (score.submission !== undefined) {
    const { startedAt, submittedAt } = score.submission
    const submission: Record<string, string> = {}
    if (startedAt !== undefined) submission['startedAt'] = instant(startedAt, 'score.submission.startedAt')
    if (submittedAt !== undefined)
      submission['submittedAt'] = instant(submittedAt, 'score.submission.submittedAt')
    const started = submission['startedAt']
    const submitted = submission['submittedAt']
    if (started !== undefined && submitted !== undefined && Date.parse(submitted) < Date.parse(started)) {
      fail('score.submission.submittedAt must not be before startedAt')
    }
    body['submission'] = submission
  }
  return JSON.stringify(body)
}

/**
 * Checks a line item to create or update (`label` non-blank, `scoreMaximum` > 0, AGS 2.0
 * §3.2.6–3.2.7) and returns its JSON body. Pure. @internal
 */
export function lineItemBody(item: NewLineItem | LineItem, what: string): string {
  if (typeof item !== 'object' || item === null) fail(`${what} needs a line item object`)
  if (typeof item.label !== 'string' || item.label.trim().length === 0)
    fail(`${what}: label must not be blank`)
  if (
    typeof item.scoreMaximum !== 'number' ||
    !Number.isFinite(item.scoreMaximum) ||
    item.scoreMaximum <= 0
  ) {
    fail(`${what}: scoreMaximum must be a finite number > 0`)
  }
  for (const name of ['startDateTime', 'endDateTime'] as const) {
    const value = item[name]
    if (value !== undefined && (typeof value !== 'string' || Number.isNaN(Date.parse(value)))) {
      fail(`${what}: ${name} must be an ISO 8601 date-time`)
    }
  }
  return JSON.stringify(item)
}
