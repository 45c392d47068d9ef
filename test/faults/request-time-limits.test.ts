/**
 * Every request's time limit runs on the clock the library was given: a token request and a
 * custom source on the manager's clock, a discovery request on its discovery cache's clock. With
 * a test clock, a hung request fails neither before the clock reaches its `timeoutMs` (however
 * much real time goes by) nor after it (the limits are a minute: a real timer could not fire
 * within the test).
 */
import { describe, expect, it, vi } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  DiscoveryCache,
  isTokenkeeperError,
  tokenSource,
  type TokenFunctionContext,
} from '../../src/index.js'
import { settle } from '../manager/helpers.js'
import { CLIENT_ID, CLIENT_SECRET, startHarness } from './harness.js'

const LIMIT_MS = 60_000

describe('request time limits on the injected clock', () => {
  it('a token request to a hung token endpoint: TIMEOUT exactly when the clock reaches timeoutMs', async () => {
    const { clock, server, tokens, source } = await startHarness()
    const api = source({ timeoutMs: LIMIT_MS })
    server.setFault({ kind: 'hang' })
    const outcome = settle(tokens.get(api))
    await server.waitForRequests(1)

    await clock.advanceAsync(LIMIT_MS - 1)
    expect(outcome.result().status).toBe('pending')
    await clock.advanceAsync(1)
    const result = outcome.result()
    expect(result.status).toBe('rejected')
    const error = (result as { reason: unknown }).reason
    expect(isTokenkeeperError(error)).toBe(true)
    expect(error).toMatchObject({
      code: 'TIMEOUT',
      retryable: true,
      message: expect.stringMatching(
        /^POST 127\.0\.0\.1:\d+\/token did not answer within 60000 ms$/,
      ) as unknown,
    })
    expect(server.stats().tokenRequests).toBe(1)
  })

  it('a discovery request to a hung issuer: TIMEOUT when its cache’s clock reaches timeoutMs', async () => {
    const { clock, server, tokens } = await startHarness()
    const api = clientCredentials({
      issuer: server.issuer,
      clientId: CLIENT_ID,
      auth: clientSecretBasic(CLIENT_SECRET),
      discovery: new DiscoveryCache({ clock }),
      timeoutMs: LIMIT_MS,
    })
    server.injectDiscovery({ kind: 'hang' })
    const before = server.stats().discoveryRequests // the harness's warm-up request
    const outcome = settle(tokens.get(api))
    await vi.waitFor(() => expect(server.stats().discoveryRequests).toBe(before + 1), { interval: 1 })

    await clock.advanceAsync(LIMIT_MS - 1)
    expect(outcome.result().status).toBe('pending')
    await clock.advanceAsync(1)
    const result = outcome.result()
    expect(result.status).toBe('rejected')
    expect((result as { reason: unknown }).reason).toMatchObject({
      code: 'TIMEOUT',
      retryable: true,
      message: expect.stringMatching(/oauth-authorization-server did not answer within 60000 ms$/) as unknown,
    })
    expect(server.stats()).toMatchObject({ discoveryRequests: before + 1, tokenRequests: 0 })
  })

  it('a custom source whose function never answers: its signal aborts and the get fails at timeoutMs', async () => {
    const { clock, tokens } = await startHarness()
    let seen: TokenFunctionContext | undefined
    const hung = tokenSource(
      'hung',
      (context) => {
        seen = context
        return new Promise<never>(() => undefined) // and ignores its signal
      },
      { timeoutMs: LIMIT_MS },
    )
    const outcome = settle(tokens.get(hung))
    await vi.waitFor(() => expect(seen).toBeDefined(), { interval: 1 })
    // The function reads the manager's clock (checked, so that it never goes back): the same time.
    expect(seen?.clock.now()).toBe(clock.now())

    await clock.advanceAsync(LIMIT_MS - 1)
    expect(seen?.clock.now()).toBe(clock.now())
    expect(outcome.result().status).toBe('pending')
    expect(seen?.signal?.aborted).toBe(false)
    await clock.advanceAsync(1)
    expect(seen?.signal?.aborted).toBe(true)
    expect((seen?.signal?.reason as DOMException).name).toBe('TimeoutError')
    const result = outcome.result()
    expect(result.status).toBe('rejected')
    expect((result as { reason: unknown }).reason).toMatchObject({
      code: 'TIMEOUT',
      retryable: true,
      message: 'token source fn|hung did not answer within 60000 ms',
    })
  })
})
