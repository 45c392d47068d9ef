import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { LtiServiceError, type LtiRetryEvent, type LtiServiceOptions } from '../../src/lti/index.js'
import { collect, failure, score, services, settle } from './helpers.js'

// Retries of service calls against a real server on 127.0.0.1 that answers from a script; the
// backoff waits run on the harness's test clock (`settle` moves it until the call settles).
const CONTAINER = 'application/vnd.ims.lis.v2.lineitemcontainer+json'
const LINE_ITEM = 'application/vnd.ims.lis.v2.lineitem+json'

interface Seen {
  readonly method: string
  readonly url: string
  readonly body: string
}

type Answer = (res: ServerResponse, req: IncomingMessage) => void

const ok: Answer = (res, req) => {
  if (req.method === 'POST' && req.url?.includes('/scores') === true) {
    res.writeHead(204)
    res.end()
    return
  }
  const container = req.method === 'GET' && req.url?.endsWith('/lineitems') === true
  res.writeHead(200, { 'content-type': container ? CONTAINER : LINE_ITEM })
  res.end(container ? '[]' : JSON.stringify({ id: 'http://127.0.0.1/x', label: 'Quiz', scoreMaximum: 10 }))
}
const status =
  (code: number, headers: Record<string, string> = {}, body = ''): Answer =>
  (res) => {
    res.writeHead(code, { 'content-type': 'text/plain', ...headers })
    res.end(body)
  }

/** Services whose host answers `script[n]` to its n-th request (then `ok`), recording what came. */
async function scripted(script: readonly Answer[], options: LtiServiceOptions = {}) {
  const seen: Seen[] = []
  const events: LtiRetryEvent[] = []
  const built = await services(
    (req, res, body) => {
      const answer = script[seen.length] ?? ok
      seen.push({ method: req.method ?? '', url: req.url ?? '', body })
      answer(res, req)
    },
    {
      retry: { random: () => 0.5, baseDelayMs: 100, onRetry: (event) => events.push(event) },
      ...options,
    },
  )
  return { ...built, seen, events }
}

describe('retries of service calls', () => {
  it('a read (GET) after 503 with Retry-After waits that long, then succeeds', async () => {
    const { grades, harness, seen, events } = await scripted([status(503, { 'retry-after': '2' })])
    const pending = collect(grades.lineItems())
    while (seen.length === 0) await harness.clock.advanceAsync(0)
    await harness.clock.advanceAsync(1_999)
    expect(seen).toHaveLength(1) // not before Retry-After
    await expect(settle(harness.clock, pending)).resolves.toEqual([])
    expect(seen).toHaveLength(2)
    expect(events).toMatchObject([
      { method: 'GET', attempt: 1, delayMs: 2_000, status: 503, throttled: false },
    ])
  })

  it('429 without Retry-After: exponential backoff with full jitter (random × base × 2^n)', async () => {
    const { grades, harness, seen, events } = await scripted([status(429), status(429), status(429)])
    await settle(harness.clock, grades.getLineItem())
    expect(seen).toHaveLength(4)
    // random() = 0.5, base 100 ms: 50, 100, 200
    expect(events.map((e) => e.delayMs)).toEqual([50, 100, 200])
    expect(events.every((e) => e.throttled && e.code === 'SERVICE_REQUEST_FAILED')).toBe(true)
  })

  it("Canvas's 403 Rate Limit Exceeded is retried; so is a 403 with X-Rate-Limit-Remaining 0", async () => {
    const { grades, harness, seen, events } = await scripted([
      status(
        403,
        { 'x-rate-limit-remaining': '0.0', 'x-request-cost': '1.2' },
        '403 Forbidden (Rate Limit Exceeded)',
      ),
      status(403, { 'x-rate-limit-remaining': '0' }),
    ])
    await settle(harness.clock, grades.postScore(score('learner-1')))
    expect(seen).toHaveLength(3)
    expect(events.map((e) => [e.status, e.throttled])).toEqual([
      [403, true],
      [403, true],
    ])
  })

  it('a plain 403 (no rate-limit body, remaining budget) is a refusal: not retried', async () => {
    for (const answer of [
      status(403, {}, 'Forbidden'),
      status(403, { 'x-rate-limit-remaining': '512.5' }, '{"errors":[{"message":"user not authorized"}]}'),
    ]) {
      const { grades, harness, seen, events } = await scripted([answer])
      const error = await settle(harness.clock, failure(grades.postScore(score('learner-1'))))
      expect(error).toBeInstanceOf(LtiServiceError)
      expect(error).toMatchObject({ status: 403, throttled: false, retryable: false })
      expect(seen).toHaveLength(1)
      expect(events).toEqual([])
    }
  })

  it('other 4xx and 500 are not retried', async () => {
    for (const code of [400, 404, 409, 422, 500]) {
      const { grades, harness, seen } = await scripted([status(code)])
      expect(await settle(harness.clock, failure(grades.getLineItem()))).toMatchObject({ status: code })
      expect(seen).toHaveLength(1)
    }
  })

  it('bounded by attempts: the last failure is thrown', async () => {
    const always = Array.from({ length: 10 }, () => status(503))
    const { grades, harness, seen } = await scripted(always, { retry: { attempts: 3, random: () => 0 } })
    const error = await settle(harness.clock, failure(grades.deleteLineItem(grades.lineItemUrl!)))
    expect(error).toMatchObject({ status: 503, method: 'DELETE' })
    expect(seen).toHaveLength(3)
  })

  it("bounded by the caller's signal: aborting during a backoff ends the call with its reason", async () => {
    const { grades, harness, seen } = await scripted([status(503, { 'retry-after': '10' })])
    const controller = new AbortController()
    const pending = failure(grades.getLineItem(undefined, { signal: controller.signal }))
    while (seen.length === 0) await harness.clock.advanceAsync(0)
    await harness.clock.advanceAsync(1_000)
    const reason = new Error('shutting down')
    controller.abort(reason)
    expect(await pending).toBe(reason)
    await harness.clock.advanceAsync(20_000)
    expect(seen).toHaveLength(1)
  })

  it('a Retry-After beyond maxDelayMs is not waited for: the error is thrown at once', async () => {
    const { grades, harness, seen } = await scripted([status(503, { 'retry-after': '3600' })])
    const error = await settle(harness.clock, failure(grades.getLineItem()))
    expect(error).toMatchObject({ status: 503, retryAfterMs: 3_600_000 })
    expect(seen).toHaveLength(1)
  })

  it('creating a line item (POST) is not retried unless opted in; PUT is', async () => {
    const item = { label: 'Essay', scoreMaximum: 10 }
    const plain = await scripted([status(503)])
    expect(await settle(plain.harness.clock, failure(plain.grades.createLineItem(item)))).toMatchObject({
      status: 503,
    })
    expect(plain.seen).toHaveLength(1)

    const optedIn = await scripted([status(503)], { retry: { lineItemCreation: true, random: () => 0 } })
    await expect(settle(optedIn.harness.clock, optedIn.grades.createLineItem(item))).resolves.toMatchObject({
      label: 'Quiz',
    })
    expect(optedIn.seen.map((s) => s.method)).toEqual(['POST', 'POST'])

    const put = await scripted([status(503)])
    await settle(put.harness.clock, put.grades.updateLineItem({ id: put.grades.lineItemUrl!, ...item }))
    expect(put.seen.map((s) => s.method)).toEqual(['PUT', 'PUT'])
  })

  it('network errors and timeouts are retried', async () => {
    const dropped: Answer = (res) => res.socket?.destroy()
    const held: Answer = () => undefined
    const { roster, harness, seen, events } = await scripted([dropped, held], { timeoutMs: 1_000 })
    const pending = roster.members()
    const result = settle(harness.clock, collect(pending), 50)
    await expect(result).rejects.toMatchObject({ code: 'INVALID_SERVICE_RESPONSE' }) // `ok` is no roster
    expect(events.map((e) => e.code)).toEqual(['CONNECTION_RESET', 'TIMEOUT'])
    expect(seen).toHaveLength(3)
  })

  it('retries off: one attempt', async () => {
    const { grades, harness, seen } = await scripted([status(503)], { retry: false })
    expect(await settle(harness.clock, failure(grades.getLineItem()))).toMatchObject({ status: 503 })
    expect(seen).toHaveLength(1)
  })

  it('retry options are checked', async () => {
    await expect(scripted([], { retry: { attempts: 0 } })).rejects.toThrow(TypeError)
    await expect(scripted([], { retry: { baseDelayMs: -1 } })).rejects.toThrow(TypeError)
  })
})

describe('retried scores (AGS 2.0 §3.4.9)', () => {
  const withoutTimestamp = (body: string): Record<string, unknown> => {
    const { timestamp: _timestamp, ...rest } = JSON.parse(body) as Record<string, unknown>
    return rest
  }

  it('a retried score has the same content and a new, strictly later timestamp', async () => {
    const { grades, harness, seen } = await scripted([status(503)], { retry: { random: () => 0 } })
    const result = await settle(harness.clock, grades.postScore(score('learner-1', 8)))
    expect(result).toMatchObject({ outcome: 'posted', attempts: 2 })
    expect(seen).toHaveLength(2)
    const [first, second] = seen.map((s) => JSON.parse(s.body) as { timestamp: string })
    expect(withoutTimestamp(seen[0]!.body)).toEqual(withoutTimestamp(seen[1]!.body))
    // Same format (microseconds, Z): string order is time order.
    expect(second!.timestamp > first!.timestamp).toBe(true)
    expect(result.timestamp).toBe(second!.timestamp)
  })

  it('a retry of an older score is dropped once a newer score of that line item and user was posted', async () => {
    const { grades, harness, seen } = await scripted([status(503, { 'retry-after': '5' })])
    const older = grades.postScore(score('learner-1', 3))
    while (seen.length === 0) await harness.clock.advanceAsync(0)
    // While the older one waits to be retried, a newer grade of the same user is posted.
    await expect(grades.postScore(score('learner-1', 9))).resolves.toMatchObject({ outcome: 'posted' })
    await expect(settle(harness.clock, older)).resolves.toMatchObject({ outcome: 'superseded', attempts: 1 })
    expect(seen).toHaveLength(2)
    expect(seen.map((s) => (JSON.parse(s.body) as { scoreGiven: number }).scoreGiven)).toEqual([3, 9])
  })

  it('a newer score of another user, or of another line item, does not drop the retry', async () => {
    const { grades, harness, seen, base } = await scripted([status(503, { 'retry-after': '5' })])
    const older = grades.postScore(score('learner-1', 3))
    while (seen.length === 0) await harness.clock.advanceAsync(0)
    await grades.postScore(score('learner-2', 9))
    await grades.postScore(score('learner-1', 9), { lineItem: `${base}/courses/1/lineitems/8` })
    await expect(settle(harness.clock, older)).resolves.toMatchObject({ outcome: 'posted', attempts: 2 })
    expect(seen).toHaveLength(4)
  })
})
