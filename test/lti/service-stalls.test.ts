import type { ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { isTokenkeeperError } from '../../src/index.js'
import { collect, failure, score, services } from './helpers.js'

// Answers that stop halfway, from a real server on 127.0.0.1. The per-call time limit runs on the
// service clock (the harness's test clock): each test waits until the client is at the step that
// stalls (a real fetch wrapper reports when the headers arrived), then moves the clock past it.
const TIMEOUT_MS = 5_000
const CONTAINER = 'application/vnd.ims.lis.v2.lineitemcontainer+json'

/** A fetch that reports when an answer's headers have arrived. */
function observedFetch(): { fetch: typeof globalThis.fetch; headers: Promise<void> } {
  let arrived: () => void = () => undefined
  const headers = new Promise<void>((resolve) => (arrived = resolve))
  return {
    fetch: async (input, init) => {
      const response = await globalThis.fetch(input, init)
      arrived()
      return response
    },
    headers,
  }
}

describe('service answers that stall or break off', () => {
  it('headers sent, then the body stalls mid-way: TIMEOUT (the time limit covers the body), retryable', async () => {
    const observed = observedFetch()
    const { grades, harness } = await services(
      (_req, res) => {
        res.writeHead(200, { 'content-type': CONTAINER })
        res.write('[{"id":"http://127.0.0.1/x","label":"Quiz","score') // ... and nothing more
      },
      { timeoutMs: TIMEOUT_MS, retry: false, fetch: observed.fetch },
    )
    const pending = failure(collect(grades.lineItems()))
    await observed.headers
    await harness.clock.advanceAsync(TIMEOUT_MS)
    const error = await pending
    expect(isTokenkeeperError(error)).toBe(true)
    expect(error).toMatchObject({ code: 'TIMEOUT', retryable: true })
    expect((error as Error).message).toMatch(/GET 127\.0\.0\.1:\d+\/courses\/1\/lineitems did not answer/)
  })

  it('headers flushed, no first byte of the body: TIMEOUT', async () => {
    const observed = observedFetch()
    const { roster, harness } = await services(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/vnd.ims.lti-nrps.v2.membershipcontainer+json' })
        res.flushHeaders()
      },
      { timeoutMs: TIMEOUT_MS, retry: false, fetch: observed.fetch },
    )
    const pending = failure(collect(roster.members()))
    await observed.headers
    await harness.clock.advanceAsync(TIMEOUT_MS)
    expect(await pending).toMatchObject({ code: 'TIMEOUT', retryable: true })
  })

  it('no headers at all (the request is held): TIMEOUT', async () => {
    let arrived: () => void = () => undefined
    const held = new Promise<void>((resolve) => (arrived = resolve))
    const { grades, harness } = await services(() => arrived(), { timeoutMs: TIMEOUT_MS, retry: false })
    const pending = failure(grades.postScore(score('learner-1')))
    await held
    await harness.clock.advanceAsync(TIMEOUT_MS - 1)
    let settled = false
    void pending.then(() => (settled = true))
    await harness.clock.advanceAsync(0)
    expect(settled).toBe(false) // not before the limit
    await harness.clock.advanceAsync(1)
    expect(await pending).toMatchObject({ code: 'TIMEOUT', retryable: true })
  })

  it('a body that ends early (Content-Length not reached, connection closed): CONNECTION_RESET', async () => {
    const { grades } = await services(
      (_req, res: ServerResponse) => {
        const body = JSON.stringify({ id: 'http://127.0.0.1/x', label: 'Quiz', scoreMaximum: 10 })
        res.writeHead(200, {
          'content-type': 'application/vnd.ims.lis.v2.lineitem+json',
          'content-length': Buffer.byteLength(body),
        })
        res.write(body.slice(0, 20), () => res.destroy())
      },
      { timeoutMs: TIMEOUT_MS, retry: false },
    )
    const error = await failure(grades.getLineItem())
    expect(error).toMatchObject({ code: 'CONNECTION_RESET', retryable: true })
  })

  it('the connection is dropped before any answer: CONNECTION_RESET', async () => {
    const { grades } = await services((req) => req.socket.destroy(), { timeoutMs: TIMEOUT_MS, retry: false })
    expect(await failure(grades.postScore(score('learner-1')))).toMatchObject({
      code: 'CONNECTION_RESET',
      retryable: true,
    })
  })

  it('the caller signal still wins over the time limit: its own reason, not TIMEOUT', async () => {
    const observed = observedFetch()
    const { grades } = await services(
      (_req, res) => {
        res.writeHead(200, { 'content-type': CONTAINER })
        res.write('[')
      },
      { timeoutMs: TIMEOUT_MS, fetch: observed.fetch },
    )
    const controller = new AbortController()
    const pending = failure(collect(grades.lineItems({}, { signal: controller.signal })))
    await observed.headers
    const reason = new Error('job cancelled')
    controller.abort(reason)
    expect(await pending).toBe(reason)
  })
})
