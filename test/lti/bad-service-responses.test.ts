import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { isTokenkeeperError } from '../../src/index.js'
import { GradeService, LtiServiceError, MembershipsService } from '../../src/lti/index.js'
import { collect, onCleanup, SCOPES, score, startLti } from './helpers.js'

/**
 * A platform's service host that misbehaves: the tokens come from the real test platform, the
 * AGS/NRPS calls go to this server on 127.0.0.1, which answers what each test tells it to.
 */
async function badServiceHost(answer: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => answer(req, res))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const { port } = server.address() as AddressInfo
  return `http://127.0.0.1:${port}`
}

async function services(answer: (req: IncomingMessage, res: ServerResponse) => void) {
  const base = await badServiceHost(answer)
  const harness = await startLti()
  const grades = await GradeService.fromClaim(
    harness.tokens,
    harness.registration,
    {
      scope: [SCOPES.lineItem, SCOPES.score, SCOPES.result],
      lineitems: `${base}/courses/1/lineitems`,
      lineitem: `${base}/courses/1/lineitems/7`,
    },
    { maxResponseBytes: 4_096 },
  )
  const roster = await MembershipsService.fromClaim(
    harness.tokens,
    harness.registration,
    { context_memberships_url: `${base}/courses/1/memberships`, service_versions: ['2.0'] },
    { maxResponseBytes: 4_096 },
  )
  return { grades, roster, harness }
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  )

describe('AGS and NRPS answers that are wrong', () => {
  it('a body over maxResponseBytes, declared or streamed: RESPONSE_TOO_LARGE, not retryable', async () => {
    for (const declare of [true, false]) {
      const { grades } = await services((_req, res) => {
        const body = JSON.stringify([{ id: 'x', label: 'y'.repeat(10_000), scoreMaximum: 1 }])
        res.writeHead(200, {
          'content-type': 'application/vnd.ims.lis.v2.lineitemcontainer+json',
          ...(declare ? { 'content-length': Buffer.byteLength(body) } : {}),
        })
        res.end(body)
      })
      const error = await failure(collect(grades.lineItems()))
      expect(isTokenkeeperError(error)).toBe(true)
      expect(error).toMatchObject({ code: 'RESPONSE_TOO_LARGE', retryable: false })
    }
  })

  it('an HTML page with status 200: INVALID_SERVICE_RESPONSE, and no part of the page in the message', async () => {
    const { roster } = await services((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<html><body>Sign in to continue SECRET-PAGE-TEXT</body></html>')
    })
    const error = await failure(collect(roster.members()))
    expect(error).toMatchObject({ code: 'INVALID_SERVICE_RESPONSE', retryable: false })
    expect(String((error as Error).message)).not.toContain('SECRET-PAGE-TEXT')
  })

  it('a line item container that is a JSON object, not an array: INVALID_SERVICE_RESPONSE', async () => {
    const { grades } = await services((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.ims.lis.v2.lineitemcontainer+json' })
      res.end('{"lineItems":[]}')
    })
    await expect(collect(grades.lineItems())).rejects.toMatchObject({ code: 'INVALID_SERVICE_RESPONSE' })
  })

  it('503 with Retry-After on a score post: a retryable LtiServiceError with retryAfterMs, sent once', async () => {
    let posts = 0
    const { grades } = await services((_req, res) => {
      posts++
      res.writeHead(503, { 'retry-after': '7', 'content-type': 'text/plain' })
      res.end('maintenance')
    })
    const error = await failure(grades.postScore(score('learner-1')))
    expect(error).toBeInstanceOf(LtiServiceError)
    expect(error).toMatchObject({ status: 503, retryable: true, retryAfterMs: 7_000, method: 'POST' })
    expect(posts).toBe(1)
  })
})
