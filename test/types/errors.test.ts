// Type tests of the error union: checked by `npm run typecheck` (tsc), and run by vitest.
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  InsufficientScopeError,
  isTokenkeeperError,
  OAuthError,
  TokenkeeperError,
  type AnyTokenkeeperError,
  type CoreErrorCode,
  type PlainErrorCode,
  type TokenkeeperErrorCode,
} from '../../src/index.js'
import {
  LtiServiceError,
  ScopeMismatchError,
  UnsafeServiceUrlError,
  type LtiErrorCode,
} from '../../src/lti/index.js'
import { isRedisStoreError, RedisStoreError, type RedisStoreErrorCode } from '../../src/stores/redis/index.js'

describe('error types', () => {
  it('the top-level code union covers the core, LTI and Redis codes; the core union has neither', () => {
    expectTypeOf<TokenkeeperErrorCode>().toEqualTypeOf<CoreErrorCode | LtiErrorCode | RedisStoreErrorCode>()
    expectTypeOf<Extract<CoreErrorCode, LtiErrorCode | RedisStoreErrorCode>>().toEqualTypeOf<never>()
    expectTypeOf<Extract<LtiErrorCode, RedisStoreErrorCode>>().toEqualTypeOf<never>()
    expectTypeOf<AnyTokenkeeperError['code']>().toEqualTypeOf<TokenkeeperErrorCode>()
    expectTypeOf<
      Extract<PlainErrorCode, 'OAUTH_ERROR' | 'UNKNOWN_KEY_ID' | 'SCOPE_MISMATCH'>
    >().toEqualTypeOf<never>()
  })

  it('checking `code` narrows to the class that carries it', () => {
    const caught: unknown = new Error('x')
    if (!isTokenkeeperError(caught)) return
    expectTypeOf(caught).toEqualTypeOf<AnyTokenkeeperError>()
    switch (caught.code) {
      case 'OAUTH_ERROR':
        expectTypeOf(caught).toEqualTypeOf<OAuthError>()
        expectTypeOf(caught.error).toEqualTypeOf<string>()
        break
      case 'INSUFFICIENT_SCOPE':
        expectTypeOf(caught).toEqualTypeOf<InsufficientScopeError>()
        break
      case 'SCOPE_MISMATCH':
        expectTypeOf(caught).toEqualTypeOf<ScopeMismatchError>()
        break
      case 'SERVICE_REQUEST_FAILED':
        expectTypeOf(caught).toEqualTypeOf<LtiServiceError>()
        expectTypeOf(caught.endpoint).toEqualTypeOf<string>()
        break
      case 'UNSAFE_SERVICE_URL':
        expectTypeOf(caught).toEqualTypeOf<UnsafeServiceUrlError>()
        break
      case 'UNKNOWN_KEY_ID':
      case 'REDIS_TIMEOUT':
        expectTypeOf(caught).toEqualTypeOf<RedisStoreError>()
        expectTypeOf(caught.operation).toEqualTypeOf<RedisStoreError['operation']>()
        break
      case 'TIMEOUT':
      case 'INVALID_SERVICE_RESPONSE':
        expectTypeOf(caught).toEqualTypeOf<TokenkeeperError<PlainErrorCode>>()
        expectTypeOf(caught.code).toEqualTypeOf<'TIMEOUT' | 'INVALID_SERVICE_RESPONSE'>()
        break
      default:
        expectTypeOf(caught.code).toExtend<TokenkeeperErrorCode>()
    }
  })

  it('every class is a TokenkeeperError recognised by the brand, the Redis store error too', () => {
    const redis = new RedisStoreError('REDIS_TIMEOUT', 'get', 'Redis did not answer')
    const errors: AnyTokenkeeperError[] = [
      new OAuthError({ error: 'invalid_client' }, 'refused', { response: { status: 401, headers: {} } }),
      new InsufficientScopeError('needs more', ['a'], []),
      new ScopeMismatchError('missing', { reason: 'not-granted', missingScopes: ['a'] }),
      new LtiServiceError('failed', 'GET', 'https://lms.example/x', { status: 500, retryable: true }),
      new UnsafeServiceUrlError('unsafe', 'evil.example'),
      redis,
      new TokenkeeperError('TIMEOUT', 'slow'),
    ]
    for (const error of errors) {
      expect(error).toBeInstanceOf(TokenkeeperError)
      expect(isTokenkeeperError(error)).toBe(true)
    }
    expect(isRedisStoreError(redis)).toBe(true)
    expect(redis.retryable).toBe(true)
    expect(new RedisStoreError('DECRYPT_FAILED', 'get', 'x').retryable).toBe(false)
    // A copy of the class from a duplicate package is recognised by the global brand alone.
    const foreign = Object.assign(new Error('from another copy'), { code: 'UNKNOWN_KEY_ID' })
    Object.defineProperty(foreign, Symbol.for('tokenkeeper.error'), { value: true })
    expect(isTokenkeeperError(foreign)).toBe(true)
    expect(isTokenkeeperError(new Error('plain'))).toBe(false)
  })
})
