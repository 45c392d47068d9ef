import { createPublicKey } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, type JSONWebKeySet, type JWTPayload } from 'jose'
import { publicJwk } from '../../sources/signing.js'
import { compileKeys, type AssertionVerifier } from '../assertions.js'
import { JWT_BEARER_ASSERTION_TYPE } from '../client-auth.js'
import type { TokenServerFault } from '../faults.js'
import { jsonResponse, oauthErrorResponse, type PlannedResponse } from '../http.js'
import type { IssuedTokens } from '../issued-tokens.js'
import { parseScope } from '../token-endpoint.js'
import type { LtiTool } from './types.js'

/** Every scope of AGS 2.0 and NRPS 2.0. @internal */
export const ALL_LTI_SCOPES: readonly string[] = [
  'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem',
  'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly',
  'https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly',
  'https://purl.imsglobal.org/spec/lti-ags/scope/score',
  'https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly',
]
const DEPLOYMENT_ID_CLAIM = 'https://purl.imsglobal.org/spec/lti/claim/deployment_id'
const FORM_FIELDS = ['grant_type', 'client_assertion_type', 'client_assertion', 'scope']

/** A validated tool. @internal */
export interface RegisteredTool {
  readonly clientId: string
  readonly kids: ReadonlySet<string>
  readonly keys: ReturnType<typeof compileKeys>
  readonly allowedScopes: readonly string[]
  readonly deploymentIds: readonly string[] | undefined
}

/** Validates the tools; `TypeError` on a mistake. @internal */
export function registerTools(tools: readonly LtiTool[]): ReadonlyMap<string, RegisteredTool> {
  const registered = new Map<string, RegisteredTool>()
  for (const tool of tools) {
    const fail = (why: string): never => {
      throw new TypeError(`startLtiPlatform: tool '${String(tool.clientId)}': ${why}`)
    }
    if (typeof tool.clientId !== 'string' || tool.clientId === '') fail('clientId must be a non-empty string')
    if (registered.has(tool.clientId)) fail('registered twice')
    let jwks: JSONWebKeySet
    if (tool.jwks !== undefined) {
      jwks = tool.jwks
    } else if (tool.publicKey !== undefined && typeof tool.kid === 'string' && tool.kid !== '') {
      const given = tool.publicKey
      const key = typeof given === 'string' ? createPublicKey(given) : given
      jwks = { keys: [{ ...publicJwk(key), kid: tool.kid, alg: 'RS256', use: 'sig' }] }
    } else {
      return fail('needs jwks, or publicKey with kid')
    }
    const kids = new Set(
      jwks.keys.map((key) => key.kid).filter((kid): kid is string => typeof kid === 'string'),
    )
    if (kids.size !== jwks.keys.length) fail('every key of the JWKS needs a distinct kid (SEC-10 §6.3)')
    registered.set(tool.clientId, {
      clientId: tool.clientId,
      kids,
      keys: compileKeys({ jwks }, `tool '${tool.clientId}'`),
      allowedScopes: [...(tool.allowedScopes ?? ALL_LTI_SCOPES)],
      deploymentIds: tool.deploymentIds === undefined ? undefined : [...tool.deploymentIds],
    })
  }
  return registered
}

/** What the LTI token endpoint needs. @internal */
export interface LtiTokenConfig {
  readonly tools: ReadonlyMap<string, RegisteredTool>
  readonly verifier: AssertionVerifier
  readonly tokens: IssuedTokens
  readonly audience: () => string
  readonly now: () => number
  readonly tokenLifetimeMs: number
  readonly sendExpiresIn: boolean
  readonly requireDeploymentId: boolean
  readonly allowExtraFormFields: boolean
  readonly maxIatAgeMs: number
  readonly maxIatFutureMs: number
}

/** The outcome of one token request. @internal */
export interface LtiTokenOutcome {
  readonly response: PlannedResponse
  readonly error?: string
  readonly errorDescription?: string
  readonly clientId?: string
}

const refuse = (error: string, errorDescription: string, status = 400): LtiTokenOutcome => ({
  response: oauthErrorResponse({ status, error, errorDescription }),
  error,
  errorDescription,
})

/**
 * The platform's token endpoint, enforcing what Moodle, Canvas, Blackboard and Brightspace
 * enforce (reference §5): the exact form, RS256 with a known `kid`, iss = sub = client id, the
 * exact `aud`, numeric `iat`/`exp` within limits, `jti` replay, scopes granted as the
 * intersection. @internal
 */
export async function processLtiTokenRequest(
  config: LtiTokenConfig,
  method: string,
  contentType: string | undefined,
  form: URLSearchParams,
  override: Extract<TokenServerFault, { kind: 'token' }> | undefined,
): Promise<LtiTokenOutcome> {
  if (method !== 'POST') return refuse('invalid_request', 'the token endpoint accepts POST only', 405)
  // Moodle compares the media type exactly (parameters such as charset aside).
  if ((contentType ?? '').split(';', 1)[0]?.trim() !== 'application/x-www-form-urlencoded') {
    return refuse('invalid_request', 'Content-Type must be application/x-www-form-urlencoded')
  }
  for (const name of FORM_FIELDS) {
    if (form.getAll(name).length > 1) return refuse('invalid_request', `parameter ${name} is repeated`)
    if ((form.get(name) ?? '') === '')
      return refuse('invalid_request', `parameter ${name} is missing or empty`)
  }
  const extra = [...new Set(form.keys())].find((name) => !FORM_FIELDS.includes(name))
  if (extra !== undefined && !config.allowExtraFormFields) {
    return refuse('invalid_request', `unexpected parameter ${extra.slice(0, 40)}`)
  }
  if (form.get('grant_type') !== 'client_credentials')
    return refuse('unsupported_grant_type', 'grant_type must be client_credentials')
  if (form.get('client_assertion_type') !== JWT_BEARER_ASSERTION_TYPE) {
    return refuse('unsupported_grant_type', `client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}`)
  }
  const assertion = form.get('client_assertion') ?? ''
  let header: ReturnType<typeof decodeProtectedHeader>
  let claims: JWTPayload
  try {
    header = decodeProtectedHeader(assertion)
    claims = decodeJwt(assertion)
  } catch {
    return refuse('invalid_request', 'client_assertion is not a JWT')
  }
  if (header.alg !== 'RS256')
    return refuse('invalid_client', 'the client assertion must be signed with RS256')
  const tool = typeof claims.iss === 'string' ? config.tools.get(claims.iss) : undefined
  if (tool === undefined) return refuse('invalid_client', 'unknown client (iss)')
  if (typeof header.kid !== 'string' || !tool.kids.has(header.kid)) {
    return refuse('invalid_client', `Failed to get key with kid [${String(header.kid ?? '')}]`)
  }
  const claimsProblem = checkClaims(config, tool, claims)
  if (claimsProblem !== undefined) return claimsProblem
  const verified = await config.verifier.verify(assertion, tool.keys, {
    label: 'client assertion',
    issuer: tool.clientId,
    subject: tool.clientId,
    requireJti: true,
  })
  if (!verified.ok) return refuse('invalid_client', verified.reason)
  const requested = parseScope(form.get('scope'))
  if (requested === undefined) return refuse('invalid_scope', 'scope is malformed')
  // Moodle: array_intersect($requestedscopes, $permittedscopes).
  const granted = requested.filter((scope) => tool.allowedScopes.includes(scope))
  if (granted.length === 0) return refuse('invalid_scope', 'no requested scope is permitted for this tool')

  const lifetimeMs =
    typeof override?.expiresIn === 'number' ? override.expiresIn * 1000 : config.tokenLifetimeMs
  const accessToken = config.tokens.issue(
    { clientId: tool.clientId, subject: undefined, grantType: 'client_credentials', scopes: granted },
    lifetimeMs,
  )
  const body: Record<string, unknown> = {
    access_token: accessToken,
    token_type: override?.tokenType ?? 'Bearer',
  }
  if (config.sendExpiresIn) body['expires_in'] = Math.round(config.tokenLifetimeMs / 1000)
  body['scope'] = granted.join(' ')
  for (const [field, value] of [
    ['expires_in', override?.expiresIn],
    ['scope', override?.scope],
  ] as const) {
    if (value === null) delete body[field]
    else if (value !== undefined) body[field] = value
  }
  return { response: jsonResponse(200, body), clientId: tool.clientId }
}

/** Canvas-style claim checks, before the signature is verified (reference §1.3–1.4). */
function checkClaims(
  config: LtiTokenConfig,
  tool: RegisteredTool,
  claims: JWTPayload,
): LtiTokenOutcome | undefined {
  if (claims.sub !== tool.clientId) return refuse('invalid_client', 'iss and sub must both be the client_id')
  for (const name of ['iat', 'exp'] as const) {
    if (typeof claims[name] !== 'number' || !Number.isFinite(claims[name])) {
      return refuse('invalid_request', `the '${name}' must be a number`)
    }
  }
  const expected = config.audience()
  const aud = claims.aud
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
  if (!audiences.includes(expected)) return refuse('invalid_request', "the 'aud' is invalid")
  // Brightspace fails on an aud array with two different values; one value is what works everywhere.
  if (new Set(audiences).size > 1) return refuse('invalid_request', "the 'aud' must be a single value")
  const now = config.now()
  const iat = (claims.iat as number) * 1000
  if ((claims.exp as number) * 1000 < now) return refuse('invalid_request', 'the JWT has expired')
  if (now - iat > config.maxIatAgeMs) {
    return refuse(
      'invalid_request',
      `the 'iat' must be less than ${Math.round(config.maxIatAgeMs / 1000)} seconds old`,
    )
  }
  if (iat - now > config.maxIatFutureMs)
    return refuse('invalid_request', "the 'iat' must not be in the future")
  if (typeof claims.jti !== 'string' || claims.jti === '')
    return refuse('invalid_request', "the 'jti' is missing")
  const deployment = claims[DEPLOYMENT_ID_CLAIM]
  if (deployment === undefined) {
    if (config.requireDeploymentId) return refuse('invalid_request', 'the deployment_id claim is required')
  } else if (
    typeof deployment !== 'string' ||
    (tool.deploymentIds !== undefined && !tool.deploymentIds.includes(deployment))
  ) {
    return refuse('invalid_request', 'unknown deployment_id')
  }
  return undefined
}
