import { TokenkeeperError, type TokenkeeperErrorCode } from '../errors.js'
import { SecretSet } from '../secrets.js'
import { AccessToken, isHeaderSafeToken, isHttpToken } from './access-token.js'
import { normalizeScopes } from './scopes.js'

/** The default lifetime given to a token whose response has no `expires_in`: one hour. */
export const DEFAULT_LIFETIME_MS = 3_600_000

/** Lifetimes beyond this (ten years) are clamped, so date arithmetic stays exact. */
const MAX_LIFETIME_MS = 10 * 365 * 24 * 3_600_000

/** Control characters (C0, DEL, C1) and bidirectional overrides and isolates: no scope holds one. */
// eslint-disable-next-line no-control-regex -- control characters are what is refused
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

const KNOWN_FIELDS = new Set(['access_token', 'token_type', 'expires_in', 'refresh_in', 'scope'])

/** How to read a successful (RFC 6749 §5.1) token response. */
export interface ParseTokenResponseOptions {
  /** When the request was sent (epoch ms); `expiresAt` is measured from here. */
  readonly issuedAt: number
  /** The scopes that were requested; an omitted `scope` in the response means these. */
  readonly requestedScopes?: readonly string[]
  /** Lifetime assumed when `expires_in` is missing. Default one hour. */
  readonly defaultLifetimeMs?: number
  /** Fail with `SCOPE_NOT_GRANTED` when fewer scopes were granted than requested. Default false. */
  readonly requireRequestedScopes?: boolean
  /** Token types accepted, compared case-insensitively. Default `['bearer']`. */
  readonly acceptedTokenTypes?: readonly string[]
  /** Names the endpoint in error messages, e.g. `POST idp.example/oauth/token`. */
  readonly endpoint?: string
  /** The HTTP status of the response, for errors; absent when there was no HTTP response. */
  readonly status?: number
  /**
   * The secrets the request sent (client secret, subject token, ...): a granted `scope` that
   * repeats one (or the access token) is refused (`INVALID_SCOPE_FIELD`), and an extra field named
   * after one is not kept, since scopes and field names are shown by `inspect` and JSON.
   * @internal
   */
  readonly secrets?: SecretSet
  /**
   * The thumbprint of the DPoP key whose proof the request carried: the token's `binding` then
   * records it, and whether the server bound the token (`token_type: DPoP`).
   */
  readonly dpopJkt?: string | undefined
  /** With `dpopJkt`: fail with `DPOP_NOT_BOUND` when the server answered an unbound token. */
  readonly requireDpopBinding?: boolean | undefined
}

function fail(code: TokenkeeperErrorCode, what: string, options: ParseTokenResponseOptions): never {
  throw new TokenkeeperError(
    code,
    `token response from ${options.endpoint ?? 'the token endpoint'} ${what}`,
    {
      retryable: false,
      ...(options.status === undefined ? {} : { status: options.status }),
    },
  )
}

/** Names a JSON value's kind for messages: `null`, `an array`, `a string`, ... */
function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  const type = typeof value
  return type === 'object' ? 'an object' : `a ${type}`
}

/**
 * Reads a number of seconds that a server sent as a JSON number or a numeric string
 * (`"3600"`), as many servers do. Returns undefined when the field is absent or null; NaN when
 * it is present but not a finite, non-negative number.
 */
export function readSeconds(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : Number.NaN
  if (typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value)
  return Number.NaN
}

/** Canonical spelling of well-known token types (RFC 6750 `Bearer`, RFC 9449 `DPoP`). */
function canonicalTokenType(type: string): string {
  const lower = type.toLowerCase()
  if (lower === 'bearer') return 'Bearer'
  if (lower === 'dpop') return 'DPoP'
  if (lower === 'mac') return 'MAC'
  return type
}

/**
 * Turns a parsed JSON token response (RFC 6749 §5.1) into an {@link AccessToken}, or throws a
 * {@link TokenkeeperError} whose code says exactly what was wrong. Messages never contain the
 * response body.
 *
 * @example
 * ```ts
 * const token = parseTokenResponse(await response.json(), { issuedAt: sentAt, requestedScopes: ['read'] })
 * ```
 */
export function parseTokenResponse(json: unknown, options: ParseTokenResponseOptions): AccessToken {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    fail('RESPONSE_NOT_OBJECT', `is ${kindOf(json)}, not a JSON object`, options)
  }
  const body = json as Record<string, unknown>

  const value = body['access_token']
  if (value === undefined || value === null) fail('MISSING_ACCESS_TOKEN', 'has no access_token', options)
  if (typeof value !== 'string')
    fail('INVALID_ACCESS_TOKEN', `has ${kindOf(value)} as access_token, not a string`, options)
  if (!isHeaderSafeToken(value)) {
    fail(
      'INVALID_ACCESS_TOKEN',
      'has an access_token that cannot be sent in an Authorization header: it is empty or holds a character outside visible ASCII (a space, a control character, a non-ASCII character)',
      options,
    )
  }

  const rawType = body['token_type']
  let type = 'Bearer'
  if (rawType !== undefined && rawType !== null) {
    if (typeof rawType !== 'string' || !isHttpToken(rawType)) {
      fail(
        'UNSUPPORTED_TOKEN_TYPE',
        "has a token_type that is not an HTTP token (RFC 9110 §5.6.2: letters, digits and !#$%&'*+-.^_`|~)",
        options,
      )
    }
    const accepted = options.acceptedTokenTypes ?? ['bearer']
    if (!accepted.some((t) => t.toLowerCase() === rawType.toLowerCase())) {
      // The value is not quoted: shape errors name the field, never what the server sent.
      fail(
        'UNSUPPORTED_TOKEN_TYPE',
        `has a token_type that is not accepted (accepted: ${accepted.join(', ')})`,
        options,
      )
    }
    type = canonicalTokenType(rawType)
  }

  if (options.dpopJkt !== undefined && type !== 'DPoP' && options.requireDpopBinding === true) {
    fail(
      'DPOP_NOT_BOUND',
      `has token_type ${type}, not DPoP, to a request with a DPoP proof (requireDpopBinding is set)`,
      options,
    )
  }

  const expiresIn = readSeconds(body['expires_in'])
  if (Number.isNaN(expiresIn)) {
    fail('INVALID_EXPIRES_IN', 'has an expires_in that is not a finite, non-negative number', options)
  }
  const lifetimeMs = Math.min(
    expiresIn === undefined ? (options.defaultLifetimeMs ?? DEFAULT_LIFETIME_MS) : expiresIn * 1000,
    MAX_LIFETIME_MS,
  )

  const refreshIn = readSeconds(body['refresh_in'])
  if (Number.isNaN(refreshIn)) {
    fail('INVALID_REFRESH_IN', 'has a refresh_in that is not a finite, non-negative number', options)
  }
  const refreshInMs = refreshIn === undefined || refreshIn * 1000 >= lifetimeMs ? undefined : refreshIn * 1000

  // Scopes and the names of extra fields are shown by `inspect` and JSON: they must not repeat a
  // credential the request sent, nor the token itself.
  const shown = new SecretSet([value])
  if (options.secrets !== undefined) shown.addAll(options.secrets)

  const requested = normalizeScopes(options.requestedScopes ?? [])
  const rawScope = body['scope']
  let granted: readonly string[]
  if (rawScope === undefined || rawScope === null) {
    granted = requested
  } else if (typeof rawScope === 'string') {
    granted = normalizeScopes(rawScope.split(' '))
    const secrets = options.secrets
    if (secrets !== undefined && granted.some((scope) => secrets.scrub(scope) !== scope)) {
      fail('INVALID_SCOPE_FIELD', 'has a scope that repeats a credential the request sent', options)
    }
    if (granted.some((scope) => shown.scrub(scope) !== scope)) {
      fail('INVALID_SCOPE_FIELD', 'has a scope that repeats the access token', options)
    }
    if (granted.some((scope) => UNPRINTABLE.test(scope))) {
      fail(
        'INVALID_SCOPE_FIELD',
        'has a scope with a control character (RFC 6749 §3.3 allows visible ASCII only)',
        options,
      )
    }
  } else {
    fail('INVALID_SCOPE_FIELD', `has ${kindOf(rawScope)} as scope, not a string`, options)
  }
  if (options.requireRequestedScopes === true) {
    const missing = requested.filter((scope) => !granted.includes(scope))
    if (missing.length > 0)
      fail('SCOPE_NOT_GRANTED', `did not grant the scopes ${missing.join(' ')}`, options)
  }

  const extra: Record<string, unknown> = {}
  for (const [name, field] of Object.entries(body)) {
    // A field named after a credential or the token is not kept: `inspect` shows the names.
    if (!KNOWN_FIELDS.has(name) && shown.scrub(name) === name) extra[name] = field
  }

  return new AccessToken({
    value,
    type,
    scopes: granted,
    requestedScopes: requested,
    issuedAt: options.issuedAt,
    expiresAt: options.issuedAt + lifetimeMs,
    refreshAt: refreshInMs === undefined ? undefined : options.issuedAt + refreshInMs,
    extra,
    binding:
      options.dpopJkt === undefined
        ? undefined
        : { method: 'dpop', jkt: options.dpopJkt, bound: type === 'DPoP' },
  })
}
