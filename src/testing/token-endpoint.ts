import type { AssertionVerifier, VerificationKeys } from './assertions.js'
import { compileKeys, peekIssuer } from './assertions.js'
import { authenticateClient, presentedCredentials, type RegisteredClient } from './client-auth.js'
import type { TokenServerFault } from './faults.js'
import { jsonResponse, mediaType, oauthErrorResponse, type PlannedResponse } from './http.js'
import type { IssuedTokens } from './issued-tokens.js'

/** The grant type of RFC 6749 §4.4. @internal */
export const CLIENT_CREDENTIALS = 'client_credentials'
/** The grant type of RFC 7523 §2.1. @internal */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** The grant type of RFC 8693 §2.1. @internal */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** The RFC 8693 §3 type of an access token: the only type the test server takes and issues. @internal */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

/**
 * Decides which scopes to grant. `allowed` is the client's (or issuer's) `allowedScopes`, or the
 * requested scopes themselves when none are configured. Return `undefined` to refuse with
 * `invalid_scope`. The default grants all allowed scopes when none are requested, the requested
 * ones when all are allowed, and refuses otherwise.
 *
 * @example
 * ```ts
 * import type { ScopeGrantPolicy } from 'tokenkeeper/testing'
 * // Grant only the first requested scope (RFC 6749 §3.3 allows granting fewer).
 * const firstOnly: ScopeGrantPolicy = (requested, allowed) => requested.filter((s) => allowed.includes(s)).slice(0, 1)
 * ```
 */
export type ScopeGrantPolicy = (
  requested: readonly string[],
  allowed: readonly string[],
) => readonly string[] | undefined

/** The default {@link ScopeGrantPolicy}. @internal */
export const strictScopePolicy: ScopeGrantPolicy = (requested, allowed) => {
  if (requested.length === 0) return allowed
  return requested.every((scope) => allowed.includes(scope)) ? requested : undefined
}

/**
 * A {@link ScopeGrantPolicy} that grants the allowed part of the request and silently drops the
 * rest (as many real servers do); refuses only when nothing requested is allowed.
 *
 * @example
 * ```ts
 * import { startTokenServer, grantAllowedSubset } from 'tokenkeeper/testing'
 * await using server = await startTokenServer({
 *   clients: [{ clientId: 'a', clientSecret: 's', allowedScopes: ['read'] }],
 *   grantScopes: grantAllowedSubset, // scope=read+write → granted "read"
 * })
 * ```
 */
export const grantAllowedSubset: ScopeGrantPolicy = (requested, allowed) => {
  if (requested.length === 0) return allowed
  const granted = requested.filter((scope) => allowed.includes(scope))
  return granted.length === 0 ? undefined : granted
}

/**
 * A trusted issuer of JWT-bearer grant assertions (RFC 7523 §2.1), e.g. a Google-style service
 * account. `allowedScopes` omitted means any requested scope is granted.
 *
 * @example
 * ```ts
 * import type { JwtBearerIssuer } from 'tokenkeeper/testing'
 * declare const pem: string
 * const issuer: JwtBearerIssuer = { issuer: 'sa@example.test', publicKey: pem, allowedScopes: ['cloud'] }
 * ```
 */
export type JwtBearerIssuer = VerificationKeys & {
  /** The `iss` of the assertions this entry verifies; distinct across entries. */
  readonly issuer: string
  /** The scopes its tokens may be granted. Default: any scope, as requested. */
  readonly allowedScopes?: readonly string[]
}

/** A validated issuer. @internal */
export interface RegisteredIssuer {
  readonly issuer: string
  readonly allowedScopes: readonly string[] | undefined
  readonly keys: ReturnType<typeof compileKeys>
}

/** Validates the issuer list; `TypeError` on a mistake. @internal */
export function registerIssuers(issuers: readonly JwtBearerIssuer[]): ReadonlyMap<string, RegisteredIssuer> {
  const registered = new Map<string, RegisteredIssuer>()
  for (const entry of issuers) {
    if (typeof entry.issuer !== 'string' || entry.issuer.length === 0 || registered.has(entry.issuer)) {
      throw new TypeError(
        'tokenkeeper/testing: each jwtBearerIssuers entry needs a distinct, non-empty issuer',
      )
    }
    const keys = compileKeys(entry, `issuer '${entry.issuer}'`)
    const allowedScopes = entry.allowedScopes === undefined ? undefined : [...entry.allowedScopes]
    registered.set(entry.issuer, { issuer: entry.issuer, allowedScopes, keys })
  }
  return registered
}

/** Everything the token endpoint needs. @internal */
export interface TokenEndpointConfig {
  readonly clients: ReadonlyMap<string, RegisteredClient>
  readonly issuers: ReadonlyMap<string, RegisteredIssuer>
  readonly verifier: AssertionVerifier
  readonly tokens: IssuedTokens
  readonly tokenLifetimeMs: number
  readonly refreshInMs: number | undefined
  readonly includeScopeInResponse: boolean
  readonly tokenType: string
  readonly grantScopes: ScopeGrantPolicy
  readonly exchangeTargets: readonly string[] | undefined
}

/** A token request as received. @internal */
export interface TokenRequestInput {
  readonly method: string
  readonly contentType: string | undefined
  readonly authorization: string | undefined
  /** The parsed body; empty when the body is not form-urlencoded. */
  readonly form: URLSearchParams
  /** The thumbprint of the key of a valid DPoP proof: the token is bound to it. */
  readonly dpopJkt?: string | undefined
}

/** The result of processing a token request. @internal */
export interface TokenOutcome {
  readonly response: PlannedResponse
  /** The OAuth error code when the request was refused. */
  readonly error?: string
  readonly issuedTo?: { readonly clientId: string | undefined }
}

type TokenOverride = Extract<TokenServerFault, { kind: 'token' }>

const SINGLE_PARAMS = [
  'grant_type',
  'scope',
  'client_id',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
  'assertion',
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
]
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

const refuse = (
  status: number,
  error: string,
  errorDescription: string,
  headers?: Readonly<Record<string, string>>,
): TokenOutcome => ({
  response: oauthErrorResponse({
    status,
    error,
    errorDescription,
    ...(headers === undefined ? {} : { headers }),
  }),
  error,
})

/** Splits a `scope` value (RFC 6749 §3.3) into distinct scope tokens; `undefined` if malformed. @internal */
export function parseScope(scope: string | null): string[] | undefined {
  if (scope === null) return []
  const scopes = [...new Set(scope.split(' ').filter((part) => part.length > 0))]
  return scopes.every((part) => SCOPE_TOKEN.test(part)) ? scopes : undefined
}

/** Handles a token request that no fault replaced (RFC 6749 §4.4, §5; RFC 7523). @internal */
export async function processTokenRequest(
  config: TokenEndpointConfig,
  input: TokenRequestInput,
  override: TokenOverride | undefined,
): Promise<TokenOutcome> {
  if (input.method !== 'POST') {
    return refuse(405, 'invalid_request', 'the token endpoint accepts POST only', { allow: 'POST' })
  }
  if (mediaType(input.contentType) !== 'application/x-www-form-urlencoded') {
    return refuse(400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded')
  }
  const { form } = input
  const repeated = SINGLE_PARAMS.find((name) => form.getAll(name).length > 1)
  if (repeated !== undefined) return refuse(400, 'invalid_request', `parameter ${repeated} is repeated`)
  const grantType = form.get('grant_type')
  if (grantType === null || grantType === '') return refuse(400, 'invalid_request', 'grant_type is missing')
  if (
    grantType !== CLIENT_CREDENTIALS &&
    grantType !== JWT_BEARER_GRANT &&
    grantType !== TOKEN_EXCHANGE_GRANT
  ) {
    return refuse(400, 'unsupported_grant_type', 'this grant_type is not supported')
  }

  const credentials = presentedCredentials(input.authorization, form)
  const auth = await authenticateClient(credentials, form, config.clients, config.verifier)
  if (auth.kind === 'failed') {
    const { status, error, errorDescription, headers } = auth.error
    return refuse(status, error, errorDescription, headers)
  }
  const client = auth.kind === 'authenticated' ? auth.client : undefined

  const requested = parseScope(form.get('scope'))
  if (requested === undefined) return refuse(400, 'invalid_scope', 'scope is malformed')

  if (grantType === CLIENT_CREDENTIALS) {
    if (client === undefined) return refuse(401, 'invalid_client', 'client authentication is required')
    const granted = config.grantScopes(requested, client.allowedScopes ?? requested)
    if (granted === undefined)
      return refuse(400, 'invalid_scope', 'a requested scope is not allowed for this client')
    return issue(
      config,
      { clientId: client.clientId, subject: undefined, grantType, scopes: granted, jkt: input.dpopJkt },
      client,
      override,
    )
  }

  if (grantType === TOKEN_EXCHANGE_GRANT)
    return exchange(config, form, requested, client, override, input.dpopJkt)

  const assertion = form.get('assertion')
  if (assertion === null || assertion === '') return refuse(400, 'invalid_request', 'assertion is missing')
  const issuerName = peekIssuer(assertion)?.iss
  const issuer = issuerName === undefined ? undefined : config.issuers.get(issuerName)
  if (issuer === undefined) return refuse(400, 'invalid_grant', 'assertion issuer is not trusted')
  const verified = await config.verifier.verify(assertion, issuer.keys, {
    label: 'assertion',
    issuer: issuer.issuer,
    subject: undefined,
    requireJti: false,
  })
  if (!verified.ok) return refuse(400, 'invalid_grant', verified.reason)
  const claimScope = typeof verified.claims.scope === 'string' ? verified.claims.scope : null
  const wanted = requested.length > 0 ? requested : parseScope(claimScope)
  if (wanted === undefined) return refuse(400, 'invalid_scope', 'assertion scope claim is malformed')
  const granted = config.grantScopes(wanted, issuer.allowedScopes ?? wanted)
  if (granted === undefined)
    return refuse(400, 'invalid_scope', 'a requested scope is not allowed for this issuer')
  const subject = verified.claims.sub as string
  return issue(
    config,
    { clientId: client?.clientId, subject, grantType, scopes: granted, jkt: input.dpopJkt },
    client,
    override,
  )
}

/**
 * RFC 8693 token exchange: the subject (and actor) must be access tokens this server issued and
 * that are still active; the new token is for the subject's subject (or client), with the
 * requested scopes when the subject token holds them (all of its scopes when none are asked).
 */
function exchange(
  config: TokenEndpointConfig,
  form: URLSearchParams,
  requested: readonly string[],
  client: RegisteredClient | undefined,
  override: TokenOverride | undefined,
  dpopJkt: string | undefined,
): TokenOutcome {
  const subjectToken = form.get('subject_token')
  const subjectType = form.get('subject_token_type')
  if (subjectToken === null || subjectToken === '')
    return refuse(400, 'invalid_request', 'subject_token is missing')
  if (subjectType === null || subjectType === '')
    return refuse(400, 'invalid_request', 'subject_token_type is missing')
  if (subjectType !== ACCESS_TOKEN_TYPE)
    return refuse(400, 'invalid_request', 'this server exchanges access tokens only')
  const wanted = form.get('requested_token_type')
  if (wanted !== null && wanted !== ACCESS_TOKEN_TYPE)
    return refuse(400, 'invalid_request', 'this server issues access tokens only')
  const subject = config.tokens.introspect(subjectToken)
  if (subject?.active !== true) return refuse(400, 'invalid_grant', 'subject_token is not active')
  const actorToken = form.get('actor_token')
  const actorType = form.get('actor_token_type')
  if ((actorToken === null) !== (actorType === null))
    return refuse(400, 'invalid_request', 'actor_token and actor_token_type go together')
  if (actorToken !== null) {
    if (actorType !== ACCESS_TOKEN_TYPE)
      return refuse(400, 'invalid_request', 'this server exchanges access tokens only')
    if (config.tokens.introspect(actorToken)?.active !== true)
      return refuse(400, 'invalid_grant', 'actor_token is not active')
  }
  const targets = [...form.getAll('audience'), ...form.getAll('resource')]
  const allowed = config.exchangeTargets
  if (allowed !== undefined && targets.some((target) => !allowed.includes(target)))
    return refuse(400, 'invalid_target', 'a requested audience or resource is not known here')
  const granted = config.grantScopes(requested, [...subject.scopes])
  if (granted === undefined)
    return refuse(400, 'invalid_scope', 'a requested scope is not held by the subject token')
  return issue(
    config,
    {
      clientId: client?.clientId ?? subject.clientId,
      subject: subject.subject ?? subject.clientId,
      grantType: TOKEN_EXCHANGE_GRANT,
      scopes: granted,
      jkt: dpopJkt,
    },
    client,
    override,
  )
}

function issue(
  config: TokenEndpointConfig,
  grant: {
    clientId: string | undefined
    subject: string | undefined
    grantType: string
    scopes: readonly string[]
    jkt: string | undefined
  },
  client: RegisteredClient | undefined,
  override: TokenOverride | undefined,
): TokenOutcome {
  const scopes = [...grant.scopes]
  const expiresIn = Math.round((client?.tokenLifetimeMs ?? config.tokenLifetimeMs) / 1000)
  // The server honours what it tells the client: bookkeeping uses the expires_in actually sent.
  const lifetimeSeconds = typeof override?.expiresIn === 'number' ? override.expiresIn : expiresIn
  const accessToken = config.tokens.issue({ ...grant, scopes }, lifetimeSeconds * 1000)

  const body: Record<string, unknown> = {
    access_token: accessToken,
    token_type: override?.tokenType ?? (grant.jkt === undefined ? config.tokenType : 'DPoP'),
    expires_in: expiresIn,
  }
  if (config.includeScopeInResponse && scopes.length > 0) body.scope = scopes.join(' ')
  if (config.refreshInMs !== undefined) body.refresh_in = Math.round(config.refreshInMs / 1000)
  const apply = (field: string, value: number | string | null | undefined): void => {
    if (value === null) delete body[field]
    else if (value !== undefined) body[field] = value
  }
  apply('expires_in', override?.expiresIn)
  apply('refresh_in', override?.refreshIn)
  apply('scope', override?.scope)
  if (grant.grantType === TOKEN_EXCHANGE_GRANT) body.issued_token_type = ACCESS_TOKEN_TYPE
  apply('issued_token_type', override?.issuedTokenType)
  return { response: jsonResponse(200, body), issuedTo: { clientId: grant.clientId } }
}
