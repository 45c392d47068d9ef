import type { IncomingMessage } from 'node:http'
import type { LineItemFields } from '../../lti/types.js'
import type { IssuedTokens } from '../issued-tokens.js'
import type { Course, LineItemRecord } from './courses.js'
import {
  authorize,
  isOutcome,
  ok,
  parseObject,
  refuse,
  requireAccept,
  requireContentType,
  timestampNanos,
  type ServiceOutcome,
} from './guard.js'
import type { Pager } from './paging.js'

const SCOPE = {
  lineItem: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem',
  lineItemReadOnly: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly',
  result: 'https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly',
  score: 'https://purl.imsglobal.org/spec/lti-ags/scope/score',
}
const MT = {
  lineItem: 'application/vnd.ims.lis.v2.lineitem+json',
  container: 'application/vnd.ims.lis.v2.lineitemcontainer+json',
  results: 'application/vnd.ims.lis.v2.resultcontainer+json',
  score: 'application/vnd.ims.lis.v1.score+json',
}
const ACTIVITY = ['Initialized', 'Started', 'InProgress', 'Submitted', 'Completed']
const GRADING = ['FullyGraded', 'Pending', 'PendingManual', 'Failed', 'NotReady']
const READ = [SCOPE.lineItem, SCOPE.lineItemReadOnly]

/** What the AGS routes need. @internal */
export interface AgsContext {
  readonly tokens: IssuedTokens
  readonly pager: Pager
  readonly origin: string
  readonly now: () => number
}

const notAllowed = (allow: string): ServiceOutcome => refuse(405, 'notFound', 'method not allowed', { allow })

/** Handles `/ags/{course}/lineitems[/{n}/lineitem[/scores|/results]]`. @internal */
export function handleAgs(
  context: AgsContext,
  course: Course,
  rest: string,
  req: IncomingMessage,
  url: URL,
  body: string,
): ServiceOutcome {
  const method = req.method ?? 'GET'
  if (rest === '/lineitems') {
    if (method === 'GET') return listLineItems(context, course, req, url)
    if (method === 'POST') return createLineItem(context, course, req, body)
    return notAllowed('GET, POST')
  }
  const match = /^\/lineitems\/(\d+)\/lineitem(\/scores|\/results)?$/.exec(rest)
  if (match === null) return refuse(404, 'notFound', 'no such AGS route')
  const sub = match[2]
  const allowed = sub === '/scores' ? ['POST'] : sub === '/results' ? ['GET'] : ['GET', 'PUT', 'DELETE']
  if (!allowed.includes(method)) return notAllowed(allowed.join(', '))
  const scopes =
    sub === '/scores'
      ? [SCOPE.score]
      : sub === '/results'
        ? [SCOPE.result]
        : method === 'GET'
          ? READ
          : [SCOPE.lineItem]
  const denied = authorize(req, context.tokens, scopes)
  if (denied !== undefined) return denied
  const media =
    sub === '/scores'
      ? requireContentType(req, MT.score)
      : sub === '/results'
        ? requireAccept(req, MT.results)
        : method === 'GET'
          ? requireAccept(req, MT.lineItem)
          : method === 'PUT'
            ? (requireContentType(req, MT.lineItem) ?? requireAccept(req, MT.lineItem))
            : undefined
  if (media !== undefined) return media
  const record = course.items.get(Number(match[1]))
  // The query string is part of the line item URL: `…/lineitem?type_id=7/scores` finds nothing.
  if (record === undefined || url.searchParams.get('type_id') !== String(record.typeId)) {
    return refuse(404, 'notFound', 'line item not found')
  }
  if (sub === '/scores') return postScore(context, course, record, body)
  if (sub === '/results') return listResults(context, course, record, url)
  if (method === 'GET') return ok(200, course.view(record), MT.lineItem)
  if (method === 'DELETE') {
    course.items.delete(record.num)
    return ok(204, undefined, 'application/json')
  }
  return updateLineItem(course, record, body)
}

function listLineItems(context: AgsContext, course: Course, req: IncomingMessage, url: URL): ServiceOutcome {
  const refused = authorize(req, context.tokens, READ) ?? requireAccept(req, MT.container)
  if (refused !== undefined) return refused
  const filters = {
    resourceLinkId: url.searchParams.get('resource_link_id'),
    resourceId: url.searchParams.get('resource_id'),
    tag: url.searchParams.get('tag'),
  }
  const items = [...course.items.values()]
    .map((record) => course.view(record))
    .filter((item) =>
      (Object.keys(filters) as (keyof typeof filters)[]).every(
        (name) => filters[name] === null || item[name] === filters[name],
      ),
    )
  const page = context.pager.page(items, url, context.origin)
  if (isOutcome(page)) return page
  return ok(200, page.items, MT.container, page.links.length === 0 ? {} : { link: page.links })
}

function checkLineItem(json: Record<string, unknown>): ServiceOutcome | undefined {
  if (typeof json['label'] !== 'string' || json['label'].trim() === '')
    return refuse(400, 'invalid', 'label must not be blank')
  const max = json['scoreMaximum']
  if (typeof max !== 'number' || !Number.isFinite(max) || max <= 0) {
    return refuse(400, 'invalid', 'scoreMaximum must be a number greater than 0')
  }
  return undefined
}

function createLineItem(
  context: AgsContext,
  course: Course,
  req: IncomingMessage,
  body: string,
): ServiceOutcome {
  const refused =
    authorize(req, context.tokens, [SCOPE.lineItem]) ??
    requireContentType(req, MT.lineItem) ??
    requireAccept(req, MT.lineItem)
  if (refused !== undefined) return refused
  const json = parseObject(body)
  if (isOutcome(json)) return json
  const invalid = checkLineItem(json)
  if (invalid !== undefined) return invalid
  const { id: _id, ...item } = json
  return ok(201, course.addLineItem(item as LineItemFields), MT.lineItem)
}

function updateLineItem(course: Course, record: LineItemRecord, body: string): ServiceOutcome {
  const json = parseObject(body)
  if (isOutcome(json)) return json
  const invalid = checkLineItem(json)
  if (invalid !== undefined) return invalid
  // The tool must not change id or resourceLinkId (AGS 2.0 §3.2.8).
  if (json['id'] !== undefined && json['id'] !== course.lineItemUrl(record))
    return refuse(400, 'invalid', 'id must not change')
  if (json['resourceLinkId'] !== record.item.resourceLinkId)
    return refuse(400, 'invalid', 'resourceLinkId must not change')
  const { id: _id, ...item } = json
  record.item = item as LineItemFields
  return ok(200, course.view(record), MT.lineItem)
}

function postScore(
  context: AgsContext,
  course: Course,
  record: LineItemRecord,
  body: string,
): ServiceOutcome {
  const json = parseObject(body)
  if (isOutcome(json)) return json
  const { userId, activityProgress, gradingProgress, scoreGiven, scoreMaximum, comment } = json
  // Moodle answers `400 Incorrect score received` for the same checks.
  if (typeof userId !== 'string' || userId === '') return refuse(400, 'invalid', 'userId is required')
  const nanos = timestampNanos(json['timestamp'])
  if (nanos === undefined) {
    return refuse(400, 'invalid', 'timestamp must be ISO 8601 with sub-second precision and a time zone')
  }
  if (typeof activityProgress !== 'string' || !ACTIVITY.includes(activityProgress)) {
    return refuse(400, 'invalid', 'activityProgress is missing or invalid')
  }
  if (typeof gradingProgress !== 'string' || !GRADING.includes(gradingProgress)) {
    return refuse(400, 'invalid', 'gradingProgress is missing or invalid')
  }
  if (scoreGiven !== undefined && scoreGiven !== null && (typeof scoreGiven !== 'number' || scoreGiven < 0)) {
    return refuse(400, 'invalid', 'scoreGiven must be a number ≥ 0')
  }
  if (typeof scoreGiven === 'number' && (typeof scoreMaximum !== 'number' || scoreMaximum <= 0)) {
    return refuse(400, 'invalid', 'scoreMaximum is required with scoreGiven')
  }
  if (!course.gradable(userId)) return refuse(400, 'invalid', 'User not found in course or is not a student')
  const last = record.lastTimestamp.get(userId)
  if (last !== undefined && nanos <= last) {
    return refuse(400, 'invalid', 'timestamp must be later than the last score of this user and line item')
  }
  record.lastTimestamp.set(userId, nanos)
  record.scores.push({
    userId,
    timestamp: json['timestamp'] as string,
    activityProgress,
    gradingProgress,
    ...(typeof scoreGiven === 'number' ? { scoreGiven } : {}),
    ...(typeof scoreMaximum === 'number' ? { scoreMaximum } : {}),
    ...(typeof comment === 'string' ? { comment } : {}),
    receivedAt: context.now(),
  })
  return ok(204, undefined, 'application/json')
}

function listResults(context: AgsContext, course: Course, record: LineItemRecord, url: URL): ServiceOutcome {
  const userFilter = url.searchParams.get('user_id')
  const latest = new Map<string, (typeof record.scores)[number]>()
  for (const score of record.scores) latest.set(score.userId, score)
  const lineItemUrl = course.lineItemUrl(record)
  const [path = '', query = ''] = lineItemUrl.split('?')
  const results = [...latest.values()]
    .filter((score) => userFilter === null || score.userId === userFilter)
    .map((score) => ({
      id: `${path}/results/${encodeURIComponent(score.userId)}?${query}`,
      scoreOf: lineItemUrl,
      userId: score.userId,
      ...(score.scoreGiven === undefined ? {} : { resultScore: score.scoreGiven }),
      resultMaximum: score.scoreMaximum ?? 1,
      ...(score.comment === undefined ? {} : { comment: score.comment }),
    }))
  const page = context.pager.page(results, url, context.origin)
  if (isOutcome(page)) return page
  return ok(200, page.items, MT.results, page.links.length === 0 ? {} : { link: page.links })
}
