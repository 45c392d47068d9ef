import type { IncomingMessage, ServerResponse } from 'node:http'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import type { LtiServiceOptions, PostScoresResult } from '../../src/lti/index.js'
import { collect, failure, score, services, within } from './helpers.js'

// What a platform that misbehaves (by bug or on purpose) can make the LTI services do: page
// forever, hand back entries that are not what the types promise, hold a bulk run for a day,
// and let an older grade overwrite a newer one. A real server on 127.0.0.1 answers from a
// script; every wait runs on the harness's test clock.
const CONTAINER = 'application/vnd.ims.lis.v2.lineitemcontainer+json'
const MEMBERSHIPS = 'application/vnd.ims.lti-nrps.v2.membershipcontainer+json'

interface Seen {
  readonly method: string
  readonly url: string
  readonly body: string
}

type Answer = (req: IncomingMessage, res: ServerResponse, body: string, n: number) => void

async function scripted(answer: Answer, options: LtiServiceOptions = {}) {
  const seen: Seen[] = []
  const built = await services(
    (req, res, body) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body })
      answer(req, res, body, seen.length)
    },
    { retry: { random: () => 0.5, baseDelayMs: 100 }, ...options },
  )
  return { ...built, seen }
}

const roster = (members: unknown[]): string => JSON.stringify({ context: { id: 'c1' }, members })

describe('paging a platform that never stops', () => {
  it('an endless run of distinct next links ends at maxPages with INVALID_SERVICE_RESPONSE', async () => {
    const { roster: members, seen } = await scripted(
      (req, res, _body, n) => {
        res.writeHead(200, {
          'content-type': MEMBERSHIPS,
          link: `</courses/1/memberships?page=${n + 1}>; rel="next"`,
        })
        res.end(roster([{ user_id: `u${n}`, roles: [] }]))
      },
      { maxPages: 5 },
    )
    const read: string[] = []
    const error = await failure(
      (async () => {
        for await (const member of members.members()) read.push(member.user_id)
      })(),
    )
    expect(error).toMatchObject({ code: 'INVALID_SERVICE_RESPONSE', retryable: false })
    expect((error as Error).message).toMatch(/more than 5 pages/)
    expect(read).toEqual(['u1', 'u2', 'u3', 'u4', 'u5'])
    expect(seen).toHaveLength(5)
  })

  it('maxPages is checked', async () => {
    for (const maxPages of [0, -1, 1.5, Number.NaN]) {
      await expect(scripted(() => undefined, { maxPages })).rejects.toThrow(TypeError)
    }
  })

  it('a next link to the same page with a new fragment each time is a paging loop', async () => {
    const { roster: members, seen } = await scripted((_req, res, _body, n) => {
      // The fragment is never sent: every request is for the same page.
      res.writeHead(200, { 'content-type': MEMBERSHIPS, link: `</courses/1/memberships#${n}>; rel="next"` })
      res.end(roster([{ user_id: `u${n}`, roles: [] }]))
    })
    await expect(collect(members.members())).rejects.toMatchObject({ code: 'INVALID_SERVICE_RESPONSE' })
    expect(seen).toHaveLength(1)
  })

  it('a next link back to the first page, spelt with its default port, is a paging loop', async () => {
    const { grades, seen } = await scripted((req, res) => {
      const host = req.headers.host ?? ''
      res.writeHead(200, {
        'content-type': CONTAINER,
        link: `<http://${host}/courses/1/lineitems?p=2>; rel="next"`,
      })
      res.end('[]')
    })
    await expect(collect(grades.lineItems())).rejects.toMatchObject({ code: 'INVALID_SERVICE_RESPONSE' })
    expect(seen).toHaveLength(2)
  })
})

describe('entries that are not what the types promise', () => {
  it.each([
    ['null', null],
    ['a number', 7],
    ['no user_id', { roles: [] }],
    ['an empty user_id', { user_id: '', roles: [] }],
    ['a numeric user_id', { user_id: 42, roles: [] }],
    ['no roles', { user_id: 'u2' }],
    ['roles that are not strings', { user_id: 'u2', roles: [1] }],
  ])(
    'a member that is %s: INVALID_SERVICE_RESPONSE naming its index, not its content',
    async (_name, bad) => {
      const { roster: members } = await scripted((_req, res) => {
        res.writeHead(200, { 'content-type': MEMBERSHIPS })
        res.end(roster([{ user_id: 'u1', roles: [] }, bad]))
      })
      const error = await failure(collect(members.members()))
      expect(error).toMatchObject({ code: 'INVALID_SERVICE_RESPONSE', retryable: false })
      expect((error as Error).message).toMatch(/member 1 /)
    },
  )

  it('the error of a bad member holds neither its content nor the token, in message, inspect or JSON', async () => {
    const { roster: members, harness } = await scripted((_req, res) => {
      res.writeHead(200, { 'content-type': MEMBERSHIPS })
      res.end(roster([{ name: 'SECRET-MEMBER-TEXT', email: 'x@example.test', roles: [] }]))
    })
    const error = await failure(collect(members.members()))
    const token = harness.tokens.peek(members.source)!.value
    for (const shown of [(error as Error).message, inspect(error), JSON.stringify(error)]) {
      expect(shown).not.toContain('SECRET-MEMBER-TEXT')
      expect(shown).not.toContain(token)
    }
  })

  it('members with prototype keys and non-ASCII names are data, kept as sent', async () => {
    const { roster: members } = await scripted((_req, res) => {
      res.writeHead(200, { 'content-type': MEMBERSHIPS })
      res.end(
        '{"context":{"id":"c1"},"members":[{"user_id":"Zoë-名","roles":[],"__proto__":{"polluted":true},"constructor":"x"}]}',
      )
    })
    const [member] = await collect(members.members())
    expect(member!.user_id).toBe('Zoë-名')
    expect(Object.getPrototypeOf(member)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })

  it.each([
    ['null', null],
    ['a string', 'https://x'],
    ['no id', { label: 'Quiz', scoreMaximum: 10 }],
    ['a numeric id', { id: 3, label: 'Quiz', scoreMaximum: 10 }],
  ])('a line item that is %s: INVALID_SERVICE_RESPONSE', async (_name, bad) => {
    const { grades } = await scripted((_req, res) => {
      res.writeHead(200, { 'content-type': CONTAINER })
      res.end(JSON.stringify([bad]))
    })
    const error = await failure(collect(grades.lineItems()))
    expect(error).toMatchObject({ code: 'INVALID_SERVICE_RESPONSE' })
    expect((error as Error).message).toMatch(/line item 0 /)
  })

  it('a result without a userId: INVALID_SERVICE_RESPONSE', async () => {
    const { grades } = await scripted((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.ims.lis.v2.resultcontainer+json' })
      res.end(JSON.stringify([{ resultScore: 1 }]))
    })
    await expect(collect(grades.results())).rejects.toMatchObject({ code: 'INVALID_SERVICE_RESPONSE' })
  })

  it('a line item with scoreMaximum 0 (a Canvas 0-point assignment) is read as sent', async () => {
    const { grades, base } = await scripted((_req, res) => {
      res.writeHead(200, { 'content-type': CONTAINER })
      res.end(JSON.stringify([{ id: `${base}/courses/1/lineitems/9`, label: 'Practice', scoreMaximum: 0 }]))
    })
    expect(await collect(grades.lineItems())).toMatchObject([{ scoreMaximum: 0 }])
  })
})

describe('bulk runs against a platform that says to come back much later', () => {
  it('a Retry-After beyond maxDelayMs fails that score at once and does not hold the others', async () => {
    const { grades, harness, seen } = await scripted((_req, res, body) => {
      const { userId } = JSON.parse(body) as { userId: string }
      if (userId === 'learner-1') {
        res.writeHead(503, { 'retry-after': '86400' })
        res.end()
        return
      }
      res.writeHead(204)
      res.end()
    })
    const pending = grades.postScores(
      ['learner-1', 'learner-2', 'learner-3', 'learner-4', 'learner-5'].map((id) => score(id)),
      { concurrency: 1 },
    )
    const { done, result } = await within(harness.clock, pending, 60_000)
    expect(done).toBe(true)
    expect(result).toMatchObject({ posted: 4 })
    expect((result as PostScoresResult).failed).toMatchObject([
      { index: 0, error: { status: 503, retryAfterMs: 86_400_000 } },
    ])
    expect(seen).toHaveLength(5)
  })

  it.each([
    ['a cost of 1e308', { 'x-request-cost': '1e308', 'x-rate-limit-remaining': '5' }],
    ['a remaining budget that never rises', { 'x-request-cost': '1', 'x-rate-limit-remaining': '0.5' }],
  ])('rate-limit headers with %s: each pacing wait is bounded, the run ends', async (_name, headers) => {
    const { grades, harness, seen } = await scripted((_req, res) => {
      res.writeHead(204, headers)
      res.end()
    })
    const ids = Array.from({ length: 6 }, (_, i) => `learner-${i + 1}`)
    const pending = grades.postScores(
      ids.map((id) => score(id)),
      { concurrency: 2 },
    )
    const { done, result } = await within(harness.clock, pending, 6 * 30_000 + 1_000, 1_000)
    expect(done).toBe(true)
    expect(result).toMatchObject({ posted: 6 })
    expect(seen).toHaveLength(6)
  })
})

describe('a retry held by the pacing is checked for a newer score when it is sent', () => {
  it('a newer grade posted while the retry waited for the pacing stands; the retry is superseded', async () => {
    const { grades, harness, seen } = await scripted((_req, res, body, n) => {
      const { userId } = JSON.parse(body) as { userId: string }
      // learner-1's first post: 503, Retry-After 1 s; learner-2's: 503, Retry-After 10 s, which
      // holds every new request of the run (learner-1's retry included) for 10 s.
      if (n <= 2) {
        res.writeHead(503, { 'retry-after': userId === 'learner-1' ? '1' : '10' })
        res.end()
        return
      }
      res.writeHead(204)
      res.end()
    })
    const pending = grades.postScores([score('learner-1', 3), score('learner-2', 4)], { concurrency: 2 })
    while (seen.length < 2) await harness.clock.advanceAsync(0)
    await harness.clock.advanceAsync(2_000) // learner-1's retry is past its own wait, held by the pacing
    expect(seen).toHaveLength(2)
    await expect(grades.postScore(score('learner-1', 9))).resolves.toMatchObject({ outcome: 'posted' })
    const { done, result } = await within(harness.clock, pending, 20_000)
    expect(done).toBe(true)
    expect(result).toMatchObject({ posted: 1, superseded: [{ index: 0 }] })
    const grades1 = seen
      .map((s) => JSON.parse(s.body) as { userId: string; scoreGiven: number })
      .filter((s) => s.userId === 'learner-1')
      .map((s) => s.scoreGiven)
    expect(grades1).toEqual([3, 9]) // the older grade was not sent again after the newer one
  })
})

describe('Link headers a platform writes loosely', () => {
  it.each([
    ['a trailing semicolon', (url: string) => `<${url}>; rel="next";`],
    ['an empty parameter', (url: string) => `<${url}>;; rel="next"`],
    ['a trailing semicolon after an unquoted rel', (url: string) => `<${url}>; rel=next ;`],
  ])('a next link with %s is followed: no page is lost', async (_name, link) => {
    const { roster: members, seen } = await scripted((_req, res, _body, n) => {
      res.writeHead(200, {
        'content-type': MEMBERSHIPS,
        ...(n < 3 ? { link: link(`/courses/1/memberships?page=${n + 1}`) } : {}),
      })
      res.end(roster([{ user_id: `u${n}`, roles: [] }]))
    })
    expect((await collect(members.members())).map((m) => m.user_id)).toEqual(['u1', 'u2', 'u3'])
    expect(seen).toHaveLength(3)
  })
})

describe('one line item spelt two ways is one line item', () => {
  it.each([
    ['a trailing slash', '/'],
    ['a fragment', '#grade'],
  ])(
    'a newer score posted to the line item with %s supersedes the retry of an older one',
    async (_name, suffix) => {
      const { grades, harness, seen } = await scripted((_req, res, _body, n) => {
        res.writeHead(n === 1 ? 503 : 204, n === 1 ? { 'retry-after': '5' } : {})
        res.end()
      })
      const older = grades.postScore(score('learner-1', 3))
      while (seen.length === 0) await harness.clock.advanceAsync(0)
      await expect(
        grades.postScore(score('learner-1', 9), { lineItem: `${grades.lineItemUrl!}${suffix}` }),
      ).resolves.toMatchObject({ outcome: 'posted' })
      const { result } = await within(harness.clock, older, 10_000)
      expect(result).toMatchObject({ outcome: 'superseded' })
      expect(seen.map((s) => [s.url, (JSON.parse(s.body) as { scoreGiven: number }).scoreGiven])).toEqual([
        ['/courses/1/lineitems/7/scores', 3],
        ['/courses/1/lineitems/7/scores', 9],
      ])
    },
  )
})

describe('a line item answered without an id', () => {
  it.each(['getLineItem', 'createLineItem'] as const)('%s: INVALID_SERVICE_RESPONSE', async (method) => {
    const { grades } = await scripted((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.ims.lis.v2.lineitem+json' })
      res.end(JSON.stringify({ label: 'Quiz', scoreMaximum: 10 }))
    })
    const call =
      method === 'getLineItem'
        ? grades.getLineItem()
        : grades.createLineItem({ label: 'Quiz', scoreMaximum: 10 })
    await expect(call).rejects.toMatchObject({ code: 'INVALID_SERVICE_RESPONSE' })
  })
})

describe('an abort reports what was sent and what was not', () => {
  it('a score held by the pacing when the run is aborted was not sent: notSent, not failed', async () => {
    const { grades, harness, seen } = await scripted((_req, res, body) => {
      const { userId } = JSON.parse(body) as { userId: string }
      res.writeHead(userId === 'learner-1' ? 503 : 204, userId === 'learner-1' ? { 'retry-after': '10' } : {})
      res.end()
    })
    const controller = new AbortController()
    const pending = grades.postScores([score('learner-1'), score('learner-2'), score('learner-3')], {
      concurrency: 1,
      signal: controller.signal,
    })
    while (seen.length === 0) await harness.clock.advanceAsync(0)
    await harness.clock.advanceAsync(1_000) // learner-1 waits for its retry; learner-2 for the pacing
    controller.abort(new Error('shutting down'))
    const { done, result } = await within(harness.clock, pending, 1_000)
    expect(done).toBe(true)
    const run = result as PostScoresResult
    expect(run.aborted).toBe(true)
    expect(run.failed.map((f) => f.index)).toEqual([0]) // sent once: may or may not be applied
    expect(run.notSent.map((s) => s.index)).toEqual([1, 2])
    expect(run.posted + run.failed.length + run.superseded.length + run.notSent.length).toBe(3)
    await harness.clock.advanceAsync(20_000)
    expect(seen).toHaveLength(1) // nothing more was sent after the abort
  })

  it('a signal aborted before the run: nothing is sent, every score is notSent', async () => {
    const { grades, seen } = await scripted(() => undefined)
    const result = await grades.postScores([score('learner-1'), score('learner-2')], {
      signal: AbortSignal.abort(),
    })
    expect(result).toMatchObject({ total: 2, posted: 0, failed: [], aborted: true })
    expect(result.notSent.map((s) => s.index)).toEqual([0, 1])
    expect(seen).toEqual([])
  })
})

describe('an aborted roster sync', () => {
  it('a course held by the pacing when the sync is aborted is notStarted, not failed', async () => {
    const {
      roster: service,
      harness,
      seen,
      base,
    } = await scripted((req, res) => {
      if (req.url?.startsWith('/courses/1/') === true) {
        res.writeHead(503, { 'retry-after': '10' })
        res.end()
        return
      }
      res.writeHead(200, { 'content-type': MEMBERSHIPS })
      res.end(roster([{ user_id: 'u1', roles: [] }]))
    })
    const claims = [1, 2, 3].map((n) => ({ context_memberships_url: `${base}/courses/${n}/memberships` }))
    const controller = new AbortController()
    const pending = service.syncRosters(claims, () => undefined, {
      concurrency: 1,
      signal: controller.signal,
    })
    while (seen.length === 0) await harness.clock.advanceAsync(0)
    await harness.clock.advanceAsync(1_000)
    controller.abort(new Error('shutting down'))
    const { done, result } = await within(harness.clock, pending, 1_000)
    expect(done).toBe(true)
    expect(result).toMatchObject({ failed: 1, synced: 0, aborted: true })
    expect(result!.courses.map((c) => c.outcome)).toEqual(['failed', 'notStarted', 'notStarted'])
    expect(seen).toHaveLength(1)
  })
})
