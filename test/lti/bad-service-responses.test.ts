import { describe, expect, it } from 'vitest'
import { isTokenkeeperError } from '../../src/index.js'
import { LtiServiceError } from '../../src/lti/index.js'
import { collect, score, services } from './helpers.js'

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

  it('503 with Retry-After on a score post, retries off: a retryable LtiServiceError with retryAfterMs, sent once', async () => {
    let posts = 0
    const { grades } = await services(
      (_req, res) => {
        posts++
        res.writeHead(503, { 'retry-after': '7', 'content-type': 'text/plain' })
        res.end('maintenance')
      },
      { retry: false },
    )
    const error = await failure(grades.postScore(score('learner-1')))
    expect(error).toBeInstanceOf(LtiServiceError)
    expect(error).toMatchObject({ status: 503, retryable: true, retryAfterMs: 7_000, method: 'POST' })
    expect(posts).toBe(1)
  })
})

describe('an injected fetch that follows redirects', () => {
  it('an answer from the URL it was redirected to: REDIRECT_REJECTED, not retried, its body not used', async () => {
    let redirected = 0
    const { grades } = await services(
      (req, res) => {
        if (req.url?.startsWith('/elsewhere') === true) {
          redirected++
          res.writeHead(200, { 'content-type': 'application/vnd.ims.lis.v2.lineitemcontainer+json' })
          res.end('[]')
          return
        }
        res.writeHead(302, { location: '/elsewhere' })
        res.end()
      },
      // A fetch that ignores the `redirect: 'manual'` it is given, as some adapters do.
      { fetch: (url, init) => fetch(url, { ...init, redirect: 'follow' }) },
    )
    const error = await failure(collect(grades.lineItems()))
    expect(isTokenkeeperError(error)).toBe(true)
    expect(error).toMatchObject({ code: 'REDIRECT_REJECTED', retryable: false })
    expect((error as Error).message).toMatch(/followed a redirect/)
    expect(redirected).toBe(1)
  })
})
