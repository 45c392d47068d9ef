// Type tests of the LTI bulk calls: checked by `npm run typecheck` (tsc), and run by vitest.
import { describe, expect, expectTypeOf, it } from 'vitest'
import type {
  BulkScore,
  CourseSync,
  GradeService,
  MembershipPage,
  MembershipsService,
  NrpsClaim,
  PostScoresOptions,
  PostScoresResult,
  RosterSyncResult,
  ScoresProgress,
  SyncRostersOptions,
} from '../../src/lti/index.js'
import type { LtiRateLimit, LtiServiceFault, LtiPlatform } from '../../src/testing/index.js'

describe('LTI bulk types', () => {
  it('postScores takes arrays and async iterables of scores and resolves to a result', () => {
    type PostScores = GradeService['postScores']
    expectTypeOf<Parameters<PostScores>[0]>().toEqualTypeOf<Iterable<BulkScore> | AsyncIterable<BulkScore>>()
    expectTypeOf<ReturnType<PostScores>>().toEqualTypeOf<Promise<PostScoresResult>>()
    expectTypeOf<PostScoresResult['failed'][number]['error']>().toBeUnknown()
    expectTypeOf<ScoresProgress['remaining']>().toEqualTypeOf<number | undefined>()
    expectTypeOf<{ concurrency: 4; lineItem: string }>().toMatchTypeOf<PostScoresOptions>()
    // @ts-expect-error concurrency is a number
    const bad: PostScoresOptions = { concurrency: '4' }
    expect(bad).toBeDefined()
  })

  it('syncRosters hands pages to onPage and resolves to a result per course', () => {
    type Sync = MembershipsService['syncRosters']
    expectTypeOf<Parameters<Sync>[0]>().toEqualTypeOf<Iterable<NrpsClaim> | AsyncIterable<NrpsClaim>>()
    expectTypeOf<Parameters<Parameters<Sync>[1]>[0]>().toEqualTypeOf<MembershipPage>()
    expectTypeOf<ReturnType<Sync>>().toEqualTypeOf<Promise<RosterSyncResult>>()
    expectTypeOf<CourseSync['outcome']>().toEqualTypeOf<'synced' | 'failed' | 'notStarted'>()
    expectTypeOf<{ query: { role: 'Learner' } }>().toMatchTypeOf<SyncRostersOptions>()
  })

  it('the test platform takes a rate limit and service faults', () => {
    expectTypeOf<{ budget: 700; refillPerSecond: 10 }>().toMatchTypeOf<LtiRateLimit>()
    expectTypeOf<{ kind: 'unavailable'; retryAfterSeconds: 2 }>().toMatchTypeOf<LtiServiceFault>()
    expectTypeOf<LtiPlatform['rateLimitRemaining']>().returns.toEqualTypeOf<number | undefined>()
    // @ts-expect-error an unknown fault kind
    const fault: LtiServiceFault = { kind: 'explode' }
    expect(fault).toBeDefined()
  })
})
