import { describe, expect, it } from 'vitest'
import { MembershipsService, type NrpsClaim, type RosterProgress } from '../../src/lti/index.js'
import type { LtiPlatformOptions } from '../../src/testing/index.js'
import { settle, startLti } from './helpers.js'

async function setup(courses: number, platform: Omit<LtiPlatformOptions, 'tools' | 'clock'> = {}) {
  const harness = await startLti({ platform: { pageSize: 5, ...platform } })
  const claims = Array.from({ length: courses }, (_, i) =>
    harness.platform.createContext({ id: `c-${i + 1}`, learners: 8 + i }).nrpsClaim(),
  )
  const roster = await MembershipsService.fromClaim(harness.tokens, harness.registration, claims[0]!, {
    clock: harness.clock,
    retry: { random: () => 0.5 },
  })
  return { ...harness, claims, roster }
}

describe('MembershipsService.syncRosters', () => {
  it('reads every course on one token, at most `concurrency` at once, with a result per course', async () => {
    const { roster, claims, platform } = await setup(12)
    const members = new Map<number, string[]>()
    const progress: RosterProgress[] = []
    const result = await roster.syncRosters(
      claims,
      (page, { index }) => {
        members.set(index, [...(members.get(index) ?? []), ...page.members.map((m) => m.user_id)])
      },
      { concurrency: 3, onProgress: (p) => progress.push(p) },
    )
    expect(result).toMatchObject({ synced: 12, failed: 0, aborted: false, throttled: 0 })
    expect(result.courses.map((c) => c.index)).toEqual([...Array(12).keys()])
    for (const course of result.courses) {
      expect(course.outcome).toBe('synced')
      expect(course.members).toBe(8 + course.index)
      expect(members.get(course.index)).toHaveLength(course.members)
    }
    expect(result.members).toBe(result.courses.reduce((sum, c) => sum + c.members, 0))
    expect(result.pages).toBe(platform.serviceRequests.length)
    expect(platform.stats().tokenRequests).toBe(1)
    expect(Math.max(...progress.map((p) => p.inProgress))).toBeLessThanOrEqual(3)
    expect(progress.at(-1)).toMatchObject({ synced: 12, remaining: 0, inProgress: 0 })
  })

  it('a course that fails is reported with its error; the others are synced', async () => {
    const { roster, claims, platform } = await setup(3)
    const missing: NrpsClaim = { context_memberships_url: `${platform.url}/nrps/nope/memberships` }
    const input = [claims[0]!, { context_memberships_url: 'not a url' }, missing, claims[1]!, claims[2]!]
    const result = await roster.syncRosters(input, () => undefined)
    expect(result.courses.map((c) => c.outcome)).toEqual(['synced', 'failed', 'failed', 'synced', 'synced'])
    expect(result.courses[1]!.error).toBeInstanceOf(TypeError)
    expect(result.courses[2]!.error).toMatchObject({ code: 'SERVICE_REQUEST_FAILED', status: 404 })
  })

  it('what onPage throws fails that course only, after the pages it took', async () => {
    const { roster, claims } = await setup(2)
    const broken = new Error('database down')
    const result = await roster.syncRosters(claims, (_page, { index }) => {
      if (index === 1) throw broken
    })
    expect(result.courses[0]).toMatchObject({ outcome: 'synced' })
    expect(result.courses[1]).toMatchObject({ outcome: 'failed', error: broken, pages: 0 })
  })

  it('pages are retried through a 503 burst and throttling; nothing is lost', async () => {
    const { roster, claims, clock, platform } = await setup(6)
    platform.injectServiceFault({ kind: 'unavailable', retryAfterSeconds: 1 }, { times: 4 })
    platform.injectServiceFault({ kind: 'throttle' }, { times: 2 })
    const result = await settle(
      clock,
      roster.syncRosters(claims, () => undefined, { concurrency: 2 }),
    )
    expect(result).toMatchObject({ synced: 6, failed: 0, retried: 6, throttled: 2 })
  })

  it('an abort: courses in progress fail with its reason, the rest of the array are not started', async () => {
    const { roster, claims, clock, platform } = await setup(10)
    platform.setServiceFault({ kind: 'unavailable', retryAfterSeconds: 10 })
    const controller = new AbortController()
    const pending = roster.syncRosters(claims, () => undefined, { concurrency: 2, signal: controller.signal })
    while (platform.serviceRequests.length < 2) await clock.advanceAsync(0)
    controller.abort(new Error('stop'))
    const result = await pending
    expect(result.aborted).toBe(true)
    expect(result.courses).toHaveLength(10)
    const outcomes = result.courses.map((c) => c.outcome)
    expect(outcomes.filter((o) => o === 'failed').length).toBe(2)
    expect(outcomes.filter((o) => o === 'notStarted').length).toBe(8)
  })

  it('bad arguments are TypeErrors', async () => {
    const { roster, claims } = await setup(1)
    await expect(roster.syncRosters(claims, 'save' as never)).rejects.toThrow(TypeError)
    await expect(roster.syncRosters(claims, () => undefined, { concurrency: 100 })).rejects.toThrow(TypeError)
    await expect(roster.syncRosters(null as never, () => undefined)).rejects.toThrow(TypeError)
    await expect(roster.syncRosters(claims, () => undefined, { onProgress: 'log' as never })).rejects.toThrow(
      TypeError,
    )
    await expect(roster.syncRosters(claims, () => undefined, { concurrency: 0 })).rejects.toThrow(TypeError)
  })

  it('a failing async iterable of claims rejects the sync once the courses in progress settled', async () => {
    const { roster, claims } = await setup(1)
    let pages = 0
    async function* broken(): AsyncGenerator<NrpsClaim> {
      yield claims[0]!
      throw new Error('claims store down')
    }
    const pending = roster.syncRosters(broken(), () => {
      pages += 1
    })
    await expect(pending).rejects.toThrow('claims store down')
    expect(pages).toBe(2) // 8 learners in pages of 5
  })
})
