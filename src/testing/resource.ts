import type { IncomingMessage, ServerResponse } from 'node:http'
import { writeResponse, type PlannedResponse } from './http.js'
import type { IssuedTokens } from './issued-tokens.js'
import type { DpopVerifier } from './dpop.js'

/** Counters the resource endpoint updates. @internal */
export interface ResourceCounters {
  resourceCalls: number
  resourceAccepted: number
  resourceRejectedExpired: number
  resourceRejectedUnknown: number
  resourceRejectedRevoked: number
  resourceRejectedScope: number
  dpopRejected: number
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
 * `?scope=a b`) requires those scopes. A DPoP-bound token must come as `Authorization: DPoP`
 * with a proof for this call (RFC 9449 §7). Counts every call synchronously on arrival. @internal
 */
export function handleResourceRequest(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  tokens: IssuedTokens,
  counters: ResourceCounters,
  dpop?: DpopVerifier,
): void {
  counters.resourceCalls += 1
  req.resume()
  if (dpop === undefined) return writeResponse(res, resourceResponse(req, url, tokens, counters))
  void dpopResourceResponse(req, url, tokens, counters, dpop).then(
    (planned) => writeResponse(res, { ...planned, headers: { ...planned.headers, ...dpop.headers } }),
    () => writeResponse(res, plain(500, { error: 'server_error' })),
  )
}

const dpopRefusal = (error: string, description: string): PlannedResponse =>
  plain(
    401,
    { error, error_description: description },
    `DPoP ${REALM}, error="${error}", error_description="${description}", algs="ES256 RS256 PS256 EdDSA"`,
  )

/** The resource with DPoP: a bound token needs its proof; a proof is checked before the token. */
async function dpopResourceResponse(
  req: IncomingMessage,
  url: URL,
  tokens: IssuedTokens,
  counters: ResourceCounters,
  dpop: DpopVerifier,
): Promise<PlannedResponse> {
  const match = /^dpop\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
  const token = match?.[1]
  if (token === undefined) {
    const bearer = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1]
    const info = bearer === undefined ? undefined : tokens.introspect(bearer)
    if (info?.jkt !== undefined) {
      counters.resourceRejectedUnknown += 1
      return invalidToken('A DPoP-bound token was sent as a bearer token')
    }
    return resourceResponse(req, url, tokens, counters)
  }
  // htu names the authority as the client sent it (host and port).
  const target = new URL(`${url.pathname}${url.search}`, `http://${req.headers.host ?? '127.0.0.1'}`)
  const check = await dpop.check(req.headersDistinct['dpop'] ?? [], req.method ?? 'GET', target.href, token)
  if (!check.ok) {
    counters.dpopRejected += 1
    return dpopRefusal(check.error, check.reason)
  }
  const info = tokens.introspect(token)
  if (info !== undefined && info.jkt !== check.jkt) {
    counters.dpopRejected += 1
    return dpopRefusal('invalid_token', 'The token is not bound to the key of the proof')
  }
  return resourceResponse(req, url, tokens, counters, token)
}

function resourceResponse(
  req: IncomingMessage,
  url: URL,
  tokens: IssuedTokens,
  counters: ResourceCounters,
  dpopToken?: string,
): PlannedResponse {
  if (req.method !== 'GET' && req.method !== 'POST') {
    const refused = plain(405, { error: 'method_not_allowed' })
    return { ...refused, headers: { ...refused.headers, allow: 'GET, POST' } }
  }
  const match = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
  const token = dpopToken ?? match?.[1]
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
