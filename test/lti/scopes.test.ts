import { describe, expect, it } from 'vitest'
import {
  deriveGradeScopes,
  GradeService,
  MembershipsService,
  ScopeMismatchError,
  type GradeUse,
} from '../../src/lti/index.js'
import { SCOPES, score, startLti } from './helpers.js'

const ALL_AGS = [SCOPES.lineItem, SCOPES.lineItemReadOnly, SCOPES.result, SCOPES.score]

describe('deriveGradeScopes: from what a call needs and what the claim offers', () => {
  it.each<[string, readonly string[], readonly GradeUse[] | undefined, readonly string[]]>([
    ['scores only', ALL_AGS, ['scores'], [SCOPES.score]],
    ['reads prefer lineitem.readonly', ALL_AGS, ['readLineItems'], [SCOPES.lineItemReadOnly]],
    [
      'lineitem covers reads when only it is offered',
      [SCOPES.lineItem, SCOPES.score],
      ['readLineItems'],
      [SCOPES.lineItem],
    ],
    ['manage + read ask for lineitem only', ALL_AGS, ['readLineItems', 'manageLineItems'], [SCOPES.lineItem]],
    ['results', ALL_AGS, ['readResults'], [SCOPES.result]],
    [
      'default: every use the claim allows',
      ALL_AGS,
      undefined,
      [SCOPES.lineItem, SCOPES.result, SCOPES.score],
    ],
    ['default on a score-only claim (Moodle "grade sync only")', [SCOPES.score], undefined, [SCOPES.score]],
    [
      'default on a read-only claim',
      [SCOPES.lineItemReadOnly, SCOPES.score],
      undefined,
      [SCOPES.lineItemReadOnly, SCOPES.score],
    ],
  ])('%s', (_name, offered, uses, expected) => {
    expect(deriveGradeScopes(offered, uses).scopes).toEqual([...expected].sort())
  })

  it.each<[string, readonly string[], readonly GradeUse[], readonly string[]]>([
    [
      'lineitem for a score-only claim (SchoolBox, ltijs#148)',
      [SCOPES.score],
      ['manageLineItems'],
      [SCOPES.lineItem],
    ],
    [
      'any read scope when only score is offered (ltijs#268)',
      [SCOPES.score],
      ['readLineItems'],
      [SCOPES.lineItem, SCOPES.lineItemReadOnly],
    ],
    ['results when not offered', [SCOPES.score], ['scores', 'readResults'], [SCOPES.result]],
    [
      'a look-alike scope (exact comparison)',
      ['https://purl.imsglobal.org/spec/lti-ags/scope/score.readonly'],
      ['scores'],
      [SCOPES.score],
    ],
  ])('never requests %s: ScopeMismatchError not-offered', (_name, offered, uses, missing) => {
    const error = (() => {
      try {
        deriveGradeScopes(offered, uses)
      } catch (caught) {
        return caught
      }
      return undefined
    })()
    expect(error).toBeInstanceOf(ScopeMismatchError)
    expect(error).toMatchObject({
      code: 'SCOPE_MISMATCH',
      reason: 'not-offered',
      missingScopes: missing,
      retryable: false,
    })
  })

  it('refuses a claim with no AGS scope at all, and unknown uses', () => {
    expect(() => deriveGradeScopes([])).toThrow(ScopeMismatchError)
    expect(() => deriveGradeScopes(ALL_AGS, [])).toThrow(TypeError)
    expect(() => deriveGradeScopes(ALL_AGS, ['grades' as GradeUse])).toThrow(TypeError)
  })
})

describe('ScopeMismatchError when the service is built, never halfway through a batch', () => {
  it('fromClaim requests only derived scopes and records what was granted', async () => {
    const { platform, tokens, registration } = await startLti()
    const course = platform.createContext({ learners: 1 })
    const grades = await GradeService.fromClaim(
      tokens,
      registration,
      course.agsClaim({ scope: [SCOPES.score] }),
    )
    expect(grades.scopes).toEqual([SCOPES.score])
    expect(grades.grantedScopes).toEqual([SCOPES.score])
    expect(platform.requests[0]?.scopes).toEqual([SCOPES.score])
  })

  it('fromClaim rejects not-granted when the platform grants a subset', async () => {
    const { platform, tokens, registration } = await startLti({ tool: { allowedScopes: [SCOPES.score] } })
    const course = platform.createContext({ learners: 1 })
    const error = await GradeService.fromClaim(tokens, registration, course.agsClaim(), {
      uses: ['scores', 'manageLineItems'],
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ScopeMismatchError)
    expect(error).toMatchObject({
      reason: 'not-granted',
      missingScopes: [SCOPES.lineItem],
      grantedScopes: [SCOPES.score],
    })
    expect(platform.stats().serviceCalls).toBe(0)
    // A score-only service on the same platform is fine.
    await expect(
      GradeService.fromClaim(tokens, registration, course.agsClaim(), { uses: ['scores'] }),
    ).resolves.toBeInstanceOf(GradeService)
  })

  it('withEndpoint re-checks the (renewed) token and the new claim', async () => {
    const { platform, tokens, registration } = await startLti()
    const first = platform.createContext({ learners: 1 })
    const second = platform.createContext({ learners: 1 })
    const grades = await GradeService.fromClaim(tokens, registration, first.agsClaim(), {
      uses: ['scores', 'readResults'],
    })
    await expect(grades.withEndpoint(second.agsClaim())).resolves.toMatchObject({
      lineItemsUrl: second.lineItemsUrl,
    })
    // The new claim no longer offers result.readonly.
    await expect(grades.withEndpoint(second.agsClaim({ scope: [SCOPES.score] }))).rejects.toMatchObject({
      reason: 'not-offered',
    })
    // The platform renews the token with fewer scopes.
    platform.inject({ kind: 'token', scope: SCOPES.score })
    await tokens.invalidate(grades.source)
    const error = await grades.withEndpoint(second.agsClaim()).catch((e: unknown) => e)
    expect(error).toMatchObject({
      code: 'SCOPE_MISMATCH',
      reason: 'not-granted',
      missingScopes: [SCOPES.result],
    })
  })

  it('a call the service was not built for fails at once, before any request', async () => {
    const { platform, tokens, registration } = await startLti()
    const course = platform.createContext({ learners: 1 })
    const grades = await GradeService.fromClaim(tokens, registration, course.agsClaim(), { uses: ['scores'] })
    const calls = platform.stats().serviceCalls
    await expect(grades.createLineItem({ label: 'x', scoreMaximum: 1 })).rejects.toMatchObject({
      reason: 'not-built-for',
    })
    await expect(grades.getLineItem('x')).rejects.toMatchObject({ reason: 'not-built-for' })
    expect(platform.stats().serviceCalls).toBe(calls)
    await expect(grades.postScore(score('nobody'))).rejects.toThrow(TypeError) // the claim has no lineitem
  })

  it('MembershipsService.fromClaim rejects a token without the NRPS scope', async () => {
    const { platform, tokens, registration } = await startLti({ tool: { allowedScopes: [SCOPES.score] } })
    const course = platform.createContext({ learners: 1 })
    // The platform refuses the request outright (nothing requested is permitted): an OAuth error.
    await expect(
      MembershipsService.fromClaim(tokens, registration, course.nrpsClaim()),
    ).rejects.toMatchObject({
      code: 'OAUTH_ERROR',
      error: 'invalid_scope',
    })
    const other = await startLti()
    other.platform.inject({ kind: 'token', scope: SCOPES.score })
    const otherCourse = other.platform.createContext({ learners: 1 })
    await expect(
      MembershipsService.fromClaim(other.tokens, other.registration, otherCourse.nrpsClaim()),
    ).rejects.toMatchObject({
      code: 'SCOPE_MISMATCH',
      reason: 'not-granted',
    })
  })

  it('refuses malformed claims with a TypeError and insecure endpoints', async () => {
    const { tokens, registration } = await startLti()
    const bad: unknown[] = [
      { scope: [SCOPES.score] },
      { scope: 'score', lineitem: 'https://lms.example/li' },
      { scope: [SCOPES.score], lineitem: 'not a url' },
    ]
    for (const claim of bad) {
      await expect(GradeService.fromClaim(tokens, registration, claim as never)).rejects.toThrow(TypeError)
    }
    await expect(
      GradeService.fromClaim(tokens, registration, {
        scope: [SCOPES.score],
        lineitem: 'http://lms.example/li',
      }),
    ).rejects.toMatchObject({
      code: 'UNSAFE_SERVICE_URL',
    })
    await expect(
      MembershipsService.fromClaim(tokens, registration, {
        context_memberships_url: 'https://lms.example/m',
        service_versions: ['1.0'],
      }),
    ).rejects.toThrow(TypeError)
  })
})
