import type { IncomingMessage, ServerResponse } from 'node:http'
import { writeResponse, type PlannedResponse } from './http.js'
import type { IssuedTokens } from './issued-tokens.js'

/** Counters the resource endpoint updates. @internal */
export interface ResourceCounters {
  resourceCalls: number
  resourceAccepted: number
  resourceRejectedExpired: number
  resourceRejectedUnknown: number
  resourceRejectedRevoked: number
  resourceRejectedScope: number
}

const REALM = 'realm="tokenkeeper-testing"'
/** RFC 6749 §3.3 scope-token. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

const plain = (status: number, json: unknown, wwwAuthenticate?: string): PlannedResponse => ({
  status,
  headers: {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...(wwwAuthenticate === undefined ? {} : { 'www-authenticate': wwwAuthenticate }),
  },
  body: JSON.stringify(json),
})

const invalidToken = (description: string): PlannedResponse =>
  plain(
    401,
    { error: 'invalid_token', error_description: description },
    `Bearer ${REALM}, error="invalid_token", error_description="${description}"`,
  )

/**
 * A protected API (RFC 6750): accepts `Authorization: Bearer <token>` on GET or POST and answers
 * 200 `{ ok, clientId, scopes }` for a known, unexpired, unrevoked token; `?scope=a&scope=b` (or
 * `?scope=a b`) requires those scopes. Counts every call synchronously on arrival. @internal
 */
export function handleResourceRequest(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  tokens: IssuedTokens,
  counters: ResourceCounters,
): void {
  counters.resourceCalls += 1
  req.resume()
  writeResponse(res, resourceResponse(req, url, tokens, counters))
}

function resourceResponse(
  req: IncomingMessage,
  url: URL,
  tokens: IssuedTokens,
  counters: ResourceCounters,
): PlannedResponse {
  if (req.method !== 'GET' && req.method !== 'POST') {
    const refused = plain(405, { error: 'method_not_allowed' })
    return { ...refused, headers: { ...refused.headers, allow: 'GET, POST' } }
  }
  const match = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
  const token = match?.[1]
  if (token === undefined) {
    counters.resourceRejectedUnknown += 1
    return plain(401, { error: 'invalid_request', error_description: 'no bearer token' }, `Bearer ${REALM}`)
  }
  const use = tokens.use(token)
  switch (use.kind) {
    case 'unknown':
      counters.resourceRejectedUnknown += 1
      return invalidToken('The access token is unknown')
    case 'expired':
      counters.resourceRejectedExpired += 1
      return invalidToken('The access token expired')
    case 'revoked':
      counters.resourceRejectedRevoked += 1
      return invalidToken('The access token was revoked')
    case 'valid': {
      const required = url.searchParams
        .getAll('scope')
        .flatMap((value) => value.split(' '))
        .filter((scope) => scope.length > 0)
      if (!required.every((scope) => SCOPE_TOKEN.test(scope))) {
        return plain(400, { error: 'invalid_request', error_description: 'malformed scope parameter' })
      }
      const missing = required.filter((scope) => !use.scopes.includes(scope))
      if (missing.length > 0) {
        counters.resourceRejectedScope += 1
        const scope = required.join(' ')
        return plain(
          403,
          { error: 'insufficient_scope', error_description: `requires scope: ${scope}` },
          `Bearer ${REALM}, error="insufficient_scope", scope="${scope}"`,
        )
      }
      counters.resourceAccepted += 1
      return plain(200, { ok: true, clientId: use.clientId ?? null, scopes: use.scopes })
    }
  }
}
