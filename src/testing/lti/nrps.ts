import type { IncomingMessage } from 'node:http'
import { hasRole, type Course } from './courses.js'
import { authorize, isOutcome, ok, refuse, requireAccept, type ServiceOutcome } from './guard.js'
import type { AgsContext } from './ags.js'

const SCOPE = 'https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly'
const MT = 'application/vnd.ims.lti-nrps.v2.membershipcontainer+json'

/**
 * Handles `GET /nrps/{course}/memberships` (NRPS 2.0): bearer and scope, the exact `Accept`,
 * `role` (full URI or short form), `limit`, `rlid` (403 for a link the tool does not own),
 * `since` (the differences link: changes after that roster version, deleted members included),
 * `rel="next"` paging and a `rel="differences"` link. @internal
 */
export function handleMemberships(
  context: AgsContext,
  course: Course,
  req: IncomingMessage,
  url: URL,
): ServiceOutcome {
  if (req.method !== 'GET') return refuse(405, 'notFound', 'method not allowed', { allow: 'GET' })
  const refused = authorize(req, context.tokens, [SCOPE]) ?? requireAccept(req, MT)
  if (refused !== undefined) return refused
  const role = url.searchParams.get('role')
  const rlid = url.searchParams.get('rlid')
  const sinceText = url.searchParams.get('since')
  if (rlid !== null && !course.resourceLinks.has(rlid)) {
    return refuse(403, 'forbidden', 'the resource link is not owned by this tool')
  }
  const since = sinceText === null ? undefined : Number(sinceText)
  if (since !== undefined && !Number.isSafeInteger(since)) return refuse(400, 'invalid', 'since is invalid')
  const members = [...course.roster.values()]
    .filter((record) => (since === undefined ? record.member.status !== 'Deleted' : record.changedAt > since))
    .map((record) => record.member)
    .filter((member) => role === null || hasRole(member, role))
  const page = context.pager.page(members, url, context.origin)
  if (isOutcome(page)) return page
  const differences = context.pager.link(`${course.membershipsUrl}?since=${course.version}`, 'differences')
  return ok(
    200,
    {
      id: `${context.origin}${url.pathname}${url.search}`,
      context: { id: course.id, label: course.label, title: course.title },
      members: page.items,
    },
    MT,
    // Two header lines: a client must read both (fetch joins them with a comma).
    { link: [...page.links, differences] },
  )
}
