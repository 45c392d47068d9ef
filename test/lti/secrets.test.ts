/**
 * The LTI service client keeps a scrubbed copy of an injected fetch's failure, never the error
 * itself: HTTP client adapters put the request, with its bearer token, on their errors.
 */
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { GradeService, MembershipsService } from '../../src/lti/index.js'
import { score, startLti } from './helpers.js'

function shown(error: unknown): string {
  return [
    inspect(error, { showHidden: true, depth: Infinity }),
    JSON.stringify(error),
    String(error),
    (error as Error).stack ?? '',
    inspect((error as Error).cause, { showHidden: true, depth: Infinity }),
  ].join('\n')
}

describe('LTI service errors carry no token', () => {
  it('an injected fetch that fails with the request on its error', async () => {
    const harness = await startLti()
    const course = harness.platform.createContext({ learners: 1 })
    const item = course.addLineItem({ label: 'Quiz', scoreMaximum: 10 })
    const fetch: typeof globalThis.fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input)
      if (url.includes('/token')) return globalThis.fetch(input, init)
      const headers = new Headers(input instanceof Request ? input.headers : init?.headers)
      const authorization = headers.get('authorization') ?? ''
      throw Object.assign(new Error(`socket hang up sending ${authorization} to ${url}`), {
        code: 'ECONNRESET',
        config: { headers: { authorization } },
        request: { _header: `POST / HTTP/1.1\r\nAuthorization: ${authorization}\r\n` },
      })
    }
    const grades = await GradeService.fromClaim(
      harness.tokens,
      harness.registration,
      course.agsClaim({ lineItem: item.id }),
      { fetch, retry: false },
    )
    const error = await grades.postScore(score(`${course.id}-learner-1`)).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'CONNECTION_RESET', retryable: true })
    expect((error as Error).cause).toMatchObject({ code: 'ECONNRESET' })
    const token = (await harness.tokens.get(grades.source)).value
    expect(shown(error)).not.toContain(token)
    expect(shown(error)).not.toContain(Buffer.from(token).toString('base64'))
    expect((error as { cause: { config?: unknown } }).cause.config).toBeUndefined()
  })

  it('bulk results and progress events of postScores and syncRosters', async () => {
    const harness = await startLti()
    const course = harness.platform.createContext({ learners: 3 })
    const item = course.addLineItem({ label: 'Quiz', scoreMaximum: 10 })
    const fetch: typeof globalThis.fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input)
      if (url.includes('/token')) return globalThis.fetch(input, init)
      const authorization = new Headers(init?.headers).get('authorization') ?? ''
      throw Object.assign(new Error(`socket hang up sending ${authorization}`), { code: 'ECONNRESET' })
    }
    const options = { fetch, retry: { attempts: 2, baseDelayMs: 0 } }
    const grades = await GradeService.fromClaim(
      harness.tokens,
      harness.registration,
      course.agsClaim({ lineItem: item.id }),
      options,
    )
    const roster = await MembershipsService.fromClaim(
      harness.tokens,
      harness.registration,
      course.nrpsClaim(),
      options,
    )
    const progress: unknown[] = []
    const scores = await grades.postScores(
      [1, 2, 3].map((n) => score(`${course.id}-learner-${n}`)),
      {
        onProgress: (p) => progress.push(p),
      },
    )
    const rosters = await roster.syncRosters([course.nrpsClaim()], () => undefined, {
      onProgress: (p) => progress.push(p),
    })
    expect(scores.failed).toHaveLength(3)
    expect(rosters.failed).toBe(1)
    const token = (await harness.tokens.get(grades.source)).value
    for (const shownValue of [
      shown(scores),
      shown(rosters),
      shown(progress),
      inspect(scores.failed[0]!.error),
    ]) {
      expect(shownValue).not.toContain(token)
    }
  })
})
