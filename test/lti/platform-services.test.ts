import { describe, expect, it } from 'vitest'
import { ltiServiceSource } from '../../src/lti/index.js'
import { INSTRUCTOR, SCOPES, startLti, type LtiHarness } from './helpers.js'

const MT = {
  lineItem: 'application/vnd.ims.lis.v2.lineitem+json',
  container: 'application/vnd.ims.lis.v2.lineitemcontainer+json',
  results: 'application/vnd.ims.lis.v2.resultcontainer+json',
  score: 'application/vnd.ims.lis.v1.score+json',
  members: 'application/vnd.ims.lti-nrps.v2.membershipcontainer+json',
}

async function bearer(harness: LtiHarness, scopes: string[]): Promise<string> {
  const token = await harness.tokens.get(ltiServiceSource(harness.registration, scopes))
  return token.value
}

async function call(
  url: string,
  init: { token?: string; method?: string; accept?: string; type?: string; body?: unknown; scheme?: string },
) {
  const headers: Record<string, string> = {}
  if (init.token !== undefined) headers['authorization'] = `${init.scheme ?? 'Bearer'} ${init.token}`
  if (init.accept !== undefined) headers['accept'] = init.accept
  if (init.type !== undefined) headers['content-type'] = init.type
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body === undefined
      ? {}
      : { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }),
  })
  const text = await response.text()
  return {
    status: response.status,
    headers: response.headers,
    json: text === '' ? undefined : (JSON.parse(text) as unknown),
  }
}

const scoreBody = (userId: string, timestamp: string, extra: Record<string, unknown> = {}) => ({
  userId,
  timestamp,
  scoreGiven: 5,
  scoreMaximum: 10,
  activityProgress: 'Completed',
  gradingProgress: 'FullyGraded',
  ...extra,
})

async function setup() {
  const harness = await startLti()
  const course = harness.platform.createContext({
    learners: 3,
    members: [{ user_id: 'teacher', roles: [INSTRUCTOR] }],
    resourceLinks: ['rl-1'],
  })
  const item = course.addLineItem({ label: 'Quiz', scoreMaximum: 10, tag: 'quiz' })
  const scoresUrl = item.id.replace('/lineitem?', '/lineitem/scores?')
  return { ...harness, course, item, scoresUrl }
}

describe('LTI platform services: bearer and scope', () => {
  it('accepts a valid bearer token with the scope (satisfied)', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.lineItemReadOnly])
    expect((await call(h.item.id, { token, accept: MT.lineItem })).status).toBe(200)
  })

  it.each([
    ['no token', undefined, 'Bearer'],
    ['an unknown token', 'tkt_unknown', 'Bearer'],
    ['a lower-case scheme', 'VALID', 'bearer'],
  ])('answers 401 for %s', async (_name, given, scheme) => {
    const h = await setup()
    const token = given === 'VALID' ? await bearer(h, [SCOPES.lineItem]) : given
    const answer = await call(h.item.id, {
      ...(token === undefined ? {} : { token }),
      scheme,
      accept: MT.lineItem,
    })
    expect(answer.status).toBe(401)
    expect(h.platform.stats().rejectedUnauthorized).toBe(1)
  })

  it('answers 401 for an expired token', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.lineItem])
    h.clock.advance(3_600_000)
    expect((await call(h.item.id, { token, accept: MT.lineItem })).status).toBe(401)
  })

  it('answers 403 insufficient_scope for a token without the scope', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.score])
    const answer = await call(h.item.id, { token, accept: MT.lineItem })
    expect(answer.status).toBe(403)
    expect(answer.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/)
    expect(h.platform.stats().rejectedForbidden).toBe(1)
  })

  it('one token serves every course (tokens are not bound to a context)', async () => {
    const h = await setup()
    const other = h.platform.createContext({ learners: 2 })
    const token = await bearer(h, [SCOPES.nrps])
    for (const url of [h.course.membershipsUrl, other.membershipsUrl]) {
      expect((await call(url, { token, accept: MT.members })).status).toBe(200)
    }
  })
})

describe('LTI platform services: media types', () => {
  it('requires the exact Accept of each container and item (406 otherwise)', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.lineItem, SCOPES.result, SCOPES.nrps])
    const results = h.item.id.replace('/lineitem?', '/lineitem/results?')
    for (const [url, right] of [
      [h.course.lineItemsUrl, MT.container],
      [h.item.id, MT.lineItem],
      [results, MT.results],
      [h.course.membershipsUrl, MT.members],
    ] as const) {
      expect((await call(url, { token, accept: 'application/json' })).status).toBe(406)
      expect((await call(url, { token, accept: `${right}, application/json;q=0.5` })).status).toBe(200)
    }
  })

  it('requires Content-Type application/vnd.ims.lis.v1.score+json for scores (415 otherwise)', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.score])
    const body = scoreBody(`${h.course.id}-learner-1`, '2026-01-01T00:00:00.123Z')
    expect((await call(h.scoresUrl, { token, method: 'POST', type: 'application/json', body })).status).toBe(
      415,
    )
    expect((await call(h.scoresUrl, { token, method: 'POST', type: MT.score, body })).status).toBe(204)
    expect(h.platform.stats()).toMatchObject({ rejectedMediaType: 1, scoresAccepted: 1 })
  })

  it('requires the line item media type to create and update', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.lineItem])
    const item = { label: 'Essay', scoreMaximum: 20 }
    const wrong = await call(h.course.lineItemsUrl, {
      token,
      method: 'POST',
      type: 'application/json',
      accept: MT.lineItem,
      body: item,
    })
    expect(wrong.status).toBe(415)
    const created = await call(h.course.lineItemsUrl, {
      token,
      method: 'POST',
      type: MT.lineItem,
      accept: MT.lineItem,
      body: item,
    })
    expect(created.status).toBe(201)
    expect((created.json as { id: string }).id).toMatch(/\/lineitem\?type_id=\d+$/)
  })
})

describe('LTI platform services: scores', () => {
  const learner = (h: Awaited<ReturnType<typeof setup>>) => `${h.course.id}-learner-1`

  it.each([
    ['a timestamp without sub-second precision', { timestamp: '2026-01-01T00:00:00Z' }],
    ['a timestamp without a time zone', { timestamp: '2026-01-01T00:00:00.123' }],
    ['no activityProgress', { activityProgress: undefined }],
    ['an unknown gradingProgress', { gradingProgress: 'Graded' }],
    ['scoreGiven without scoreMaximum', { scoreMaximum: undefined }],
    ['a negative scoreGiven', { scoreGiven: -1 }],
  ])('refuses %s with 400', async (_name, change) => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.score])
    const body = { ...scoreBody(learner(h), '2026-01-01T00:00:00.123Z'), ...change }
    expect((await call(h.scoresUrl, { token, method: 'POST', type: MT.score, body })).status).toBe(400)
    expect(h.course.scores(h.item.id)).toHaveLength(0)
  })

  it('refuses a user who is not a learner of the course', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.score])
    for (const userId of ['teacher', 'stranger']) {
      const answer = await call(h.scoresUrl, {
        token,
        method: 'POST',
        type: MT.score,
        body: scoreBody(userId, '2026-01-01T00:00:00.1Z'),
      })
      expect(answer.status).toBe(400)
    }
  })

  it('accepts strictly increasing timestamps per user and line item, refuses equal or earlier ones', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.score])
    const post = (timestamp: string, userId = learner(h)) =>
      call(h.scoresUrl, { token, method: 'POST', type: MT.score, body: scoreBody(userId, timestamp) })
    expect((await post('2026-01-01T00:00:00.123456Z')).status).toBe(204)
    expect((await post('2026-01-01T00:00:00.123456Z')).status).toBe(400) // same
    expect((await post('2026-01-01T00:00:00.123455+00:00')).status).toBe(400) // earlier, other notation
    expect((await post('2026-01-01T00:00:00.123457Z')).status).toBe(204) // one microsecond later
    expect((await post('2026-01-01T01:00:00.1+01')).status).toBe(400) // the same instant as 00:00:00.1Z: earlier
    expect((await post('2026-01-01T00:00:00.123456Z', `${h.course.id}-learner-2`)).status).toBe(204) // other user
    expect(h.course.scores(h.item.id).map((s) => s.timestamp)).toEqual([
      '2026-01-01T00:00:00.123456Z',
      '2026-01-01T00:00:00.123457Z',
      '2026-01-01T00:00:00.123456Z',
    ])
  })

  it('keeps the query string in line item URLs: naive /scores concatenation finds nothing', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.score])
    const naive = `${h.item.id}/scores`
    const answer = await call(naive, {
      token,
      method: 'POST',
      type: MT.score,
      body: scoreBody(learner(h), '2026-01-01T00:00:00.1Z'),
    })
    expect([404, 405]).toContain(answer.status)
  })
})

describe('LTI platform services: containers and paging', () => {
  it('pages the line item container with next links carrying the filters and a case-sensitive cursor', async () => {
    const h = await setup()
    for (let i = 0; i < 12; i++) h.course.addLineItem({ label: `Item ${i}`, scoreMaximum: 1, tag: 'batch' })
    const token = await bearer(h, [SCOPES.lineItemReadOnly])
    const first = await call(`${h.course.lineItemsUrl}?tag=batch&limit=5`, { token, accept: MT.container })
    expect(first.json).toHaveLength(5)
    const next = /<([^>]+)>; rel="next"/.exec(first.headers.get('link') ?? '')?.[1]
    expect(next).toMatch(/\?tag=batch&limit=5&Cursor=Pg/)
    expect((await call(next!, { token, accept: MT.container })).json).toHaveLength(5)
    expect(
      (
        await call(next!.toLowerCase(), {
          token,
          accept: MT.container,
        })
      ).status,
    ).toBe(400)
  })

  it('filters line items by resource_link_id, resource_id and tag', async () => {
    const h = await setup()
    h.course.addLineItem({ label: 'A', scoreMaximum: 1, resourceLinkId: 'rl-1', resourceId: 'a' })
    const token = await bearer(h, [SCOPES.lineItemReadOnly])
    const list = async (query: string) =>
      ((await call(`${h.course.lineItemsUrl}?${query}`, { token, accept: MT.container })).json as unknown[])
        .length
    expect(await list('resource_link_id=rl-1')).toBe(1)
    expect(await list('resource_id=a')).toBe(1)
    expect(await list('tag=quiz')).toBe(1)
    expect(await list('tag=none')).toBe(0)
  })

  it('serves memberships with role, limit, rlid (403 for a link not owned) and a differences link', async () => {
    const h = await setup()
    const token = await bearer(h, [SCOPES.nrps])
    const get = (query: string) => call(`${h.course.membershipsUrl}${query}`, { token, accept: MT.members })
    const body = (answer: Awaited<ReturnType<typeof get>>) =>
      answer.json as { members: { user_id: string; status: string }[]; context: { id: string } }
    const all = await get('')
    expect(body(all).context.id).toBe(h.course.id)
    expect(body(all).members).toHaveLength(4)
    expect(body(await get('?role=Learner')).members).toHaveLength(3)
    expect(body(await get(`?role=${encodeURIComponent(INSTRUCTOR)}`)).members.map((m) => m.user_id)).toEqual([
      'teacher',
    ])
    expect(body(await get('?limit=2')).members).toHaveLength(2)
    expect((await get('?rlid=rl-1')).status).toBe(200)
    expect((await get('?rlid=rl-other')).status).toBe(403)
    const differences = /<([^>]+)>; rel="differences"/.exec(all.headers.get('link') ?? '')?.[1]
    expect(differences).toMatch(/\/memberships\?since=\d+$/)
    h.course.removeMember(`${h.course.id}-learner-1`)
    h.course.addMember({ user_id: 'late' })
    const changes = await call(differences!, { token, accept: MT.members })
    expect(body(changes).members.map((m) => [m.user_id, m.status])).toEqual([
      [`${h.course.id}-learner-1`, 'Deleted'],
      ['late', 'Active'],
    ])
  })
})
