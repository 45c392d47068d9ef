import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { MembershipsService, UnsafeServiceUrlError } from '../../src/lti/index.js'
import { collect, INSTRUCTOR, LEARNER, onCleanup, startLti, type LtiHarnessOptions } from './helpers.js'

async function setup(options: LtiHarnessOptions = {}, learners = 23) {
  const harness = await startLti({ ...options, platform: { pageSize: 10, ...options.platform } })
  const course = harness.platform.createContext({
    learners,
    members: [{ user_id: 'teacher', roles: [INSTRUCTOR] }],
    resourceLinks: ['rl-1'],
  })
  const roster = await MembershipsService.fromClaim(harness.tokens, harness.registration, course.nrpsClaim())
  return { ...harness, course, roster }
}

/** A server that counts requests (and would see any token sent to it). */
async function spyServer(): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = []
  const server = createServer((req, res) => {
    requests.push(`${req.url ?? ''} ${req.headers.authorization ?? ''}`)
    res.end('{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onCleanup(() => new Promise((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}

describe('MembershipsService: members and paging', () => {
  it('reads every member across pages, following next exactly as given', async () => {
    const { roster, platform, course } = await setup()
    const members = await collect(roster.members())
    expect(members).toHaveLength(24)
    expect(new Set(members.map((m) => m.user_id)).size).toBe(24)
    const paths = platform.serviceRequests.map((r) => r.path)
    expect(paths).toHaveLength(3)
    expect(paths[0]).toBe(`/nrps/${course.id}/memberships`)
    // Each later request is the previous page's next link, byte for byte (case-sensitive cursor).
    expect(paths[1]).toMatch(/^\/nrps\/[\w-]+\/memberships\?Cursor=Pg[\w-]+$/)
    expect(platform.stats().rejectedInvalid).toBe(0)
  })

  it('sends role, limit and rlid on the first page; later pages carry them through the next link', async () => {
    const { roster, platform } = await setup()
    const learners = await collect(roster.members({ role: LEARNER, limit: 5 }))
    expect(learners).toHaveLength(23)
    const paths = platform.serviceRequests.map((r) => r.path)
    expect(paths).toHaveLength(5)
    expect(paths[0]).toContain(`?role=${encodeURIComponent(LEARNER).replace(/%20/g, '+')}&limit=5`)
    for (const path of paths.slice(1)) expect(path).toMatch(/role=.*&limit=5&Cursor=/)
    expect(await collect(roster.members({ role: 'Instructor' }))).toHaveLength(1)
    expect(await collect(roster.members({ rlid: 'rl-1', limit: 100 }))).toHaveLength(24)
    await expect(collect(roster.members({ rlid: 'not-mine' }))).rejects.toMatchObject({ status: 403 })
    expect(() => roster.pages({ limit: 0 })).toThrow(TypeError)
  })

  it('gives the context and the differences link, and reads the differences later', async () => {
    const { roster, course } = await setup({}, 3)
    const pages = await collect(roster.pages())
    expect(pages[0]!.context).toEqual({
      id: course.id,
      label: course.id.toUpperCase(),
      title: `Course ${course.id}`,
    })
    const differencesUrl = pages.at(-1)!.differencesUrl!
    expect(differencesUrl).toMatch(/\/memberships\?since=\d+$/)
    course.removeMember(`${course.id}-learner-2`)
    course.addMember({ user_id: 'newcomer' })
    const changes = (await collect(roster.differences(differencesUrl))).flatMap((page) => page.members)
    expect(changes.map((m) => [m.user_id, m.status])).toEqual([
      [`${course.id}-learner-2`, 'Deleted'],
      ['newcomer', 'Active'],
    ])
  })

  it('retries a page once on 401 with a new token, and continues paging', async () => {
    const { roster, platform, tokens } = await setup()
    const seen: string[] = []
    for await (const page of roster.pages()) {
      seen.push(...page.members.map((m) => m.user_id))
      if (seen.length === 10) platform.revoke((await tokens.get(roster.source)).value)
    }
    expect(seen).toHaveLength(24)
    expect(platform.stats()).toMatchObject({ tokenRequests: 2, rejectedUnauthorized: 1, rejectedInvalid: 0 })
  })
})

describe('MembershipsService: a next link elsewhere is an error, and no token goes there', () => {
  it.each([
    ['another host (same port)', (spy: string, url: string) => url.replace('127.0.0.1', 'localhost')],
    ['another port', (spy: string, url: string) => url.replace(/^http:\/\/127\.0\.0\.1:\d+/, spy)],
    [
      'plain http to a non-loopback host',
      (_spy: string, url: string) => url.replace(/^http:\/\/127\.0\.0\.1:\d+/, 'http://lms.example'),
    ],
    [
      'https to another host',
      (_spy: string, url: string) => url.replace(/^http:\/\/127\.0\.0\.1:\d+/, 'https://evil.example'),
    ],
  ])('refuses %s', async (_name, rewrite) => {
    const spy = await spyServer()
    const { roster, platform } = await setup({
      platform: { rewriteLink: (target, rel) => (rel === 'next' ? rewrite(spy.url, target) : target) },
    })
    const seen: string[] = []
    const error = await (async () => {
      for await (const member of roster.members()) seen.push(member.user_id)
    })().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UnsafeServiceUrlError)
    expect((error as Error).message).toMatch(/no token was sent/)
    expect(seen).toHaveLength(10) // the first page was read
    expect(spy.requests).toEqual([])
    expect(platform.serviceRequests).toHaveLength(1)
  })

  it('refuses a differences URL elsewhere', async () => {
    const { roster } = await setup()
    expect(() => roster.differences('https://evil.example/memberships?since=1')).toThrow(
      UnsafeServiceUrlError,
    )
  })

  it('stops a paging loop (a next link to a page already read)', async () => {
    const { roster } = await setup({
      platform: { rewriteLink: (target, rel) => (rel === 'next' ? target.replace(/\?.*$/, '') : target) },
    })
    await expect(collect(roster.members())).rejects.toMatchObject({ code: 'INVALID_SERVICE_RESPONSE' })
  })
})

describe('MembershipsService: one token for many courses', () => {
  it('syncs the rosters of 30 courses with one token request', async () => {
    const { platform, tokens, registration } = await startLti({ platform: { pageSize: 10 } })
    const courses = Array.from({ length: 30 }, (_, i) =>
      platform.createContext({ id: `course-${i + 1}`, learners: 12 }),
    )
    const counts = await Promise.all(
      courses.map(async (course) => {
        const roster = await MembershipsService.fromClaim(tokens, registration, course.nrpsClaim())
        return (await collect(roster.members())).length
      }),
    )
    expect(counts).toEqual(Array.from({ length: 30 }, () => 12))
    expect(platform.stats()).toMatchObject({ tokenRequests: 1, serviceCalls: 60, serviceAccepted: 60 })
  })

  it('withEndpoint moves to another course on the same token', async () => {
    const { roster, platform } = await setup({}, 2)
    const other = platform.createContext({ learners: 4 })
    const moved = await roster.withEndpoint(other.nrpsClaim())
    expect(moved.membershipsUrl).toBe(other.membershipsUrl)
    expect(await collect(moved.members())).toHaveLength(4)
    expect(platform.stats().tokenRequests).toBe(1)
  })
})
