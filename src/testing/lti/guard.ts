import type { IncomingMessage } from 'node:http'
import type { PlannedResponse } from '../http.js'
import type { IssuedTokens } from '../issued-tokens.js'

/** The counter a refusal moves. @internal */
export type Refusal = 'unauthorized' | 'forbidden' | 'mediaType' | 'invalid' | 'notFound'

/** A service response, with why it refused when it did. @internal */
export interface ServiceOutcome {
  readonly response: PlannedResponse
  readonly refusal?: Refusal
  readonly reason?: string
}

const REALM = 'realm="tokenkeeper-lti-platform"'

/** A JSON response of a service route. @internal */
export function ok(
  status: number,
  json: unknown,
  contentType: string,
  headers: Readonly<Record<string, string | readonly string[]>> = {},
): ServiceOutcome {
  return {
    response: {
      status,
      headers: { 'content-type': contentType, ...(headers as Record<string, string>) },
      body: json === undefined ? '' : JSON.stringify(json),
    },
  }
}

/** A refusal with a JSON error body. @internal */
export function refuse(
  status: number,
  refusal: Refusal,
  reason: string,
  headers: Readonly<Record<string, string>> = {},
): ServiceOutcome {
  const error =
    refusal === 'unauthorized'
      ? 'invalid_token'
      : refusal === 'forbidden'
        ? 'insufficient_scope'
        : refusal === 'notFound'
          ? 'not_found'
          : 'invalid_request'
  return {
    response: {
      status,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ error, error_description: reason }),
    },
    refusal,
    reason,
  }
}

/**
 * Checks `Authorization: Bearer <token>` (401 for none, unknown, expired or revoked) and that the
 * token was granted one of `anyOf` (403 `insufficient_scope`, RFC 6750 §3.1). @internal
 */
export function authorize(
  req: IncomingMessage,
  tokens: IssuedTokens,
  anyOf: readonly string[],
): ServiceOutcome | undefined {
  const match = /^Bearer +(\S+)$/.exec(req.headers.authorization ?? '')
  const token = match?.[1]
  if (token === undefined) {
    return refuse(401, 'unauthorized', 'no bearer token', { 'www-authenticate': `Bearer ${REALM}` })
  }
  const use = tokens.use(token)
  if (use.kind !== 'valid') {
    const reason = `the access token is ${use.kind}`
    return refuse(401, 'unauthorized', reason, {
      'www-authenticate': `Bearer ${REALM}, error="invalid_token", error_description="${reason}"`,
    })
  }
  if (!anyOf.some((scope) => use.scopes.includes(scope))) {
    const scope = anyOf.join(' ')
    return refuse(403, 'forbidden', `requires scope: ${scope}`, {
      'www-authenticate': `Bearer ${REALM}, error="insufficient_scope", scope="${scope}"`,
    })
  }
  return undefined
}

/** Requires `Accept` to list `type` exactly (406 otherwise). @internal */
export function requireAccept(req: IncomingMessage, type: string): ServiceOutcome | undefined {
  const listed = (req.headers.accept ?? '')
    .split(',')
    .map((part) => part.split(';', 1)[0]?.trim().toLowerCase())
  if (listed.includes(type)) return undefined
  return refuse(406, 'mediaType', `Accept must include ${type}`)
}

/** Requires the `Content-Type` media type to be `type` exactly (415 otherwise). @internal */
export function requireContentType(req: IncomingMessage, type: string): ServiceOutcome | undefined {
  if ((req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase() === type) return undefined
  return refuse(415, 'mediaType', `Content-Type must be ${type}`)
}

/** Parses a JSON object body, or refuses with 400. @internal */
export function parseObject(body: string): Record<string, unknown> | ServiceOutcome {
  try {
    const json: unknown = JSON.parse(body)
    if (typeof json === 'object' && json !== null && !Array.isArray(json))
      return json as Record<string, unknown>
  } catch {
    // refused below
  }
  return refuse(400, 'invalid', 'the body must be a JSON object')
}

/** Whether a value is a refusal rather than a parsed body. @internal */
export function isOutcome(value: unknown): value is ServiceOutcome {
  return typeof value === 'object' && value !== null && 'response' in value
}

const ISO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d+)(Z|[+-]\d{2}(?::?\d{2})?)$/

/**
 * An ISO 8601 timestamp with sub-second precision and a time zone designator (AGS 2.0 §3.4.9),
 * as epoch nanoseconds (so microsecond timestamps compare exactly); `undefined` otherwise.
 * @internal
 */
export function timestampNanos(value: unknown): bigint | undefined {
  if (typeof value !== 'string') return undefined
  const match = ISO.exec(value)
  if (match === null) return undefined
  const [, seconds = '', fraction = '', zone = ''] = match
  const offset = zone === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(3).replace(':', '').padEnd(2, '0')}`
  const ms = Date.parse(`${seconds}${offset}`)
  if (Number.isNaN(ms)) return undefined
  return BigInt(ms) * 1_000_000n + BigInt(fraction.padEnd(9, '0').slice(0, 9))
}
