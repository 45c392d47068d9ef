import { describe, expect, it } from 'vitest'
import {
  AccessToken,
  isTokenkeeperError,
  OAuthError,
  systemClock,
  tokenSource,
  TokenkeeperError,
  type Clock,
  type TokenFunctionContext,
} from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'

const NOW = Date.UTC(2031, 0, 2, 3, 4, 5)
const clock: Clock = {
  now: () => NOW,
  setTimer: (callback, delayMs) => systemClock.setTimer(callback, delayMs),
}
const TOKEN = 'TOKEN-must-not-leak-456'

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('resolved')
}

describe('tokenSource', () => {
  it('returns an AccessToken the function returns, as is', async () => {
    const token = new AccessToken({ value: TOKEN, type: 'Bearer', scopes: [], issuedAt: 1, expiresAt: 2 })
    await expect(tokenSource('x', () => token).fetchToken()).resolves.toBe(token)
    await expect(tokenSource('x', () => Promise.resolve(token)).fetchToken()).resolves.toBe(token)
  })

  it('validates a raw RFC 6749 §5.1 response like a server response, measured from the clock', async () => {
    const token = await tokenSource('x', () => ({
      access_token: TOKEN,
      token_type: 'bearer',
      expires_in: '120',
      refresh_in: 60,
      scope: 'b a',
      id_token: 'id',
    })).fetchToken({ clock })
    expect(token).toBeInstanceOf(AccessToken)
    expect(token.value).toBe(TOKEN)
    expect(token.type).toBe('Bearer')
    expect(token.issuedAt).toBe(NOW)
    expect(token.expiresAt).toBe(NOW + 120_000)
    expect(token.refreshAt).toBe(NOW + 60_000)
    expect(token.scopes).toEqual(['a', 'b'])
    expect(token.extra).toEqual({ id_token: 'id' })
  })

  it('measures expires_in from before the function ran', async () => {
    let now = NOW
    const moving: Clock = { ...clock, now: () => now }
    const token = await tokenSource('x', () => {
      now += 5_000
      return { access_token: TOKEN, expires_in: 10 }
    }).fetchToken({ clock: moving })
    expect(token.expiresAt).toBe(NOW + 10_000)
  })

  it.each([
    ['no access_token', { expires_in: 10 }, 'MISSING_ACCESS_TOKEN'],
    ['access_token with a space', { access_token: `${TOKEN} x` }, 'INVALID_ACCESS_TOKEN'],
    ['expires_in negative', { access_token: TOKEN, expires_in: -1 }, 'INVALID_EXPIRES_IN'],
    ['token_type mac', { access_token: TOKEN, token_type: 'mac' }, 'UNSUPPORTED_TOKEN_TYPE'],
    ['scope an array', { access_token: TOKEN, scope: ['a'] }, 'INVALID_SCOPE_FIELD'],
    ['an array', [TOKEN], 'RESPONSE_NOT_OBJECT'],
    ['a string', TOKEN, 'RESPONSE_NOT_OBJECT'],
    ['null', null, 'RESPONSE_NOT_OBJECT'],
  ])('refuses a raw response with %s', async (_name, result, code) => {
    const error = await failure(tokenSource('vault', () => result as Record<string, unknown>).fetchToken())
    expect(error).toBeInstanceOf(TokenkeeperError)
    expect(error).toMatchObject({ code, retryable: false })
    expect((error as Error).message).toContain('token source fn|vault')
    expect((error as Error).message).not.toContain(TOKEN)
  })

  // There was no HTTP response, so there is no status.
  it('a refused raw response from a function carries no HTTP status', async () => {
    const error = await failure(tokenSource('vault', () => ({ expires_in: 10 })).fetchToken())
    expect(error).toMatchObject({ code: 'MISSING_ACCESS_TOKEN', status: undefined })
  })

  it('turns a thrown plain Error into SOURCE_FAILED, retryable, with the cause', async () => {
    const cause = new Error('vault unreachable')
    const error = await failure(
      tokenSource('vault', () => {
        throw cause
      }).fetchToken(),
    )
    expect(error).toBeInstanceOf(TokenkeeperError)
    expect(error).toMatchObject({ code: 'SOURCE_FAILED', retryable: true, status: undefined })
    expect((error as Error).cause).toBe(cause)
    expect((error as Error).message).toContain('fn|vault')
  })

  it('turns a rejected promise with a non-Error into SOURCE_FAILED too', async () => {
    const error = await failure(tokenSource('vault', () => Promise.reject(new Error('nope'))).fetchToken())
    expect(error).toMatchObject({ code: 'SOURCE_FAILED' })
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- testing exactly this
    const odd = await failure(tokenSource('vault', () => Promise.reject('a string')).fetchToken())
    expect(odd).toMatchObject({ code: 'SOURCE_FAILED', cause: 'a string' })
  })

  it('passes a thrown TokenkeeperError (and OAuthError) through unchanged', async () => {
    const own = new TokenkeeperError('RATE_LIMITED', 'slow down', { retryable: true, retryAfterMs: 5000 })
    await expect(
      tokenSource('x', () => {
        throw own
      }).fetchToken(),
    ).rejects.toBe(own)
    const oauth = new OAuthError({ error: 'invalid_client' }, 'refused', {
      status: 401,
      response: { status: 401, headers: {} },
    })
    await expect(tokenSource('x', () => Promise.reject(oauth)).fetchToken()).rejects.toBe(oauth)
  })

  it('passes the signal and clock to the function, and rejects with the signal reason when aborted', async () => {
    let seen: TokenFunctionContext | undefined
    const controller = new AbortController()
    const reason = new Error('caller gave up')
    const source = tokenSource('x', (context) => {
      seen = context
      return new Promise((_resolve, reject) => {
        context.signal?.addEventListener('abort', () => reject(context.signal?.reason as Error))
      })
    })
    const pending = source.fetchToken({ signal: controller.signal, clock })
    controller.abort(reason)
    const error = await failure(pending)
    expect(error).toBe(reason)
    expect(isTokenkeeperError(error)).toBe(false)
    // The function's signal follows the caller's (combined with the source's own timeout).
    expect(seen?.signal?.aborted).toBe(true)
    expect(seen?.signal?.reason).toBe(reason)
    expect(seen?.clock).toBe(clock)
  })

  it('times out a function that never answers and ignores its signal, on the clock it is given', async () => {
    const testClock = createTestClock()
    const source = tokenSource('hangs', () => new Promise<never>(() => undefined), { timeoutMs: 50 })
    const pending = failure(source.fetchToken({ clock: testClock }))
    expect(testClock.nextTimerAt()).toBe(testClock.now() + 50)
    await testClock.advanceAsync(50)
    const error = await pending
    expect(error).toMatchObject({ code: 'TIMEOUT', retryable: true })
    expect((error as Error).message).toBe('token source fn|hangs did not answer within 50 ms')
    expect(testClock.pendingTimers).toBe(0)
  })

  it('refuses a timeoutMs that is not a positive number', () => {
    expect(() => tokenSource('x', () => ({ access_token: TOKEN }), { timeoutMs: 0 })).toThrow(TypeError)
    expect(() => tokenSource('x', () => ({ access_token: TOKEN }), { timeoutMs: Number.NaN })).toThrow(
      TypeError,
    )
  })

  it('uses the system clock when none is given', async () => {
    const before = systemClock.now()
    const token = await tokenSource('x', () => ({ access_token: TOKEN, expires_in: 60 })).fetchToken()
    expect(token.issuedAt).toBeGreaterThanOrEqual(before)
    expect(token.issuedAt).toBeLessThanOrEqual(systemClock.now())
  })
})
