import { createHash, timingSafeEqual } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { JSONWebKeySet } from 'jose'
import { compileKeys, peekIssuer, type AssertionVerifier } from './assertions.js'
import type { OAuthErrorResult } from './http.js'

/**
 * A client authentication method at the token endpoint: RFC 6749 §2.3.1 (`client_secret_basic`,
 * `client_secret_post`) or RFC 7523 §2.2 (`private_key_jwt`).
 *
 * @example
 * ```ts
 * import type { ClientAuthMethod } from 'tokenkeeper/testing'
 * const methods: ClientAuthMethod[] = ['client_secret_basic']
 * ```
 */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt'

/**
 * A client registered with the test token server. A client with `clientSecret` may use
 * `client_secret_basic` and `client_secret_post`; one with `jwks` or `publicKey` may use
 * `private_key_jwt`; `authMethods` narrows that. `allowedScopes` omitted means any scope is granted
 * as requested (and none when none is requested).
 *
 * @example
 * ```ts
 * import type { TestClient } from 'tokenkeeper/testing'
 * const client: TestClient = { clientId: 'svc-a', clientSecret: 's3cret', allowedScopes: ['read', 'write'] }
 * ```
 */
export interface TestClient {
  /** The client's `client_id`. */
  readonly clientId: string
  /** The client secret, for `client_secret_basic` and `client_secret_post`. */
  readonly clientSecret?: string
  /** Public keys for `private_key_jwt`; the assertion's `kid` picks one. */
  readonly jwks?: JSONWebKeySet
  /** One public key for `private_key_jwt` (a `KeyObject` or PEM). */
  readonly publicKey?: KeyObject | string
  /** The scopes the client may be granted. Default: any scope, as requested. */
  readonly allowedScopes?: readonly string[]
  /** The methods the client may authenticate with. Default: every one its credentials allow. */
  readonly authMethods?: readonly ClientAuthMethod[]
  /** Overrides the server's `tokenLifetimeMs` for this client's tokens. */
  readonly tokenLifetimeMs?: number
}

/** A validated client, ready to authenticate. @internal */
export interface RegisteredClient {
  readonly clientId: string
  readonly allowedScopes: readonly string[] | undefined
  readonly authMethods: ReadonlySet<ClientAuthMethod>
  readonly tokenLifetimeMs: number | undefined
  readonly secretDigest: Buffer | undefined
  readonly keys: ReturnType<typeof compileKeys> | undefined
}

/** The client assertion type of RFC 7523 §2.2. @internal */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()

/** Validates the client list; `TypeError` on a mistake. @internal */
export function registerClients(clients: readonly TestClient[]): ReadonlyMap<string, RegisteredClient> {
  const registered = new Map<string, RegisteredClient>()
  for (const client of clients) {
    const id = client.clientId
    const fail = (why: string): never => {
      throw new TypeError(`tokenkeeper/testing: client '${id}': ${why}`)
    }
    if (typeof id !== 'string' || id.length === 0) fail('clientId must be a non-empty string')
    if (registered.has(id)) fail('clientId is registered twice')
    if (client.jwks !== undefined && client.publicKey !== undefined) fail('give jwks or publicKey, not both')
    const hasSecret = client.clientSecret !== undefined
    const keys =
      client.jwks !== undefined
        ? compileKeys({ jwks: client.jwks }, `client '${id}'`)
        : client.publicKey !== undefined
          ? compileKeys({ publicKey: client.publicKey }, `client '${id}'`)
          : undefined
    const possible: ClientAuthMethod[] = [
      ...(hasSecret ? (['client_secret_basic', 'client_secret_post'] as const) : []),
      ...(keys === undefined ? [] : (['private_key_jwt'] as const)),
    ]
    if (possible.length === 0) fail('needs a clientSecret, jwks or publicKey')
    for (const method of client.authMethods ?? []) {
      if (!possible.includes(method))
        fail(`authMethods lists '${method}' but the client has no credential for it`)
    }
    const lifetime = client.tokenLifetimeMs
    if (lifetime !== undefined && (!Number.isFinite(lifetime) || lifetime < 0)) {
      fail('tokenLifetimeMs must be a finite, non-negative number')
    }
    registered.set(id, {
      clientId: id,
      allowedScopes: client.allowedScopes === undefined ? undefined : [...client.allowedScopes],
      authMethods: new Set(client.authMethods ?? possible),
      tokenLifetimeMs: lifetime,
      secretDigest: hasSecret ? digest(client.clientSecret) : undefined,
      keys,
    })
  }
  return registered
}

/** The credentials a request carries, parsed but not verified. @internal */
export interface PresentedCredentials {
  /** The method used, `'none'`, or `'multiple'` when more than one was used (forbidden). */
  readonly method: ClientAuthMethod | 'none' | 'multiple'
  /** The client id the request claims (not yet authenticated), when one can be read. */
  readonly claimedClientId: string | undefined
  readonly basic: { readonly clientId: string; readonly secret: string } | 'malformed' | undefined
}

const formDecode = (value: string): string => decodeURIComponent(value.replace(/\+/g, ' '))

/** Parses `Authorization: Basic` per RFC 6749 §2.3.1 (form-urlencoded id and secret). @internal */
export function parseBasic(authorization: string | undefined): PresentedCredentials['basic'] {
  if (authorization === undefined) return undefined
  const match = /^basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(authorization)
  if (/^basic(\s|$)/i.test(authorization) && match === null) return 'malformed'
  if (match === null) return undefined
  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) return 'malformed'
  try {
    return { clientId: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) }
  } catch {
    return 'malformed'
  }
}

/** Reads which client authentication the request attempts, without verifying it. @internal */
export function presentedCredentials(
  authorization: string | undefined,
  form: URLSearchParams,
): PresentedCredentials {
  const basic = parseBasic(authorization)
  const used: ClientAuthMethod[] = []
  if (basic !== undefined) used.push('client_secret_basic')
  if (form.has('client_secret')) used.push('client_secret_post')
  if (form.has('client_assertion') || form.has('client_assertion_type')) used.push('private_key_jwt')
  const assertion = form.get('client_assertion')
  const fromAssertion = assertion === null ? undefined : peekIssuer(assertion)
  const claimedClientId =
    (typeof basic === 'object' ? basic.clientId : undefined) ??
    form.get('client_id') ??
    fromAssertion?.iss ??
    fromAssertion?.sub
  return {
    method: used.length > 1 ? 'multiple' : (used[0] ?? 'none'),
    claimedClientId: claimedClientId === '' ? undefined : claimedClientId,
    basic,
  }
}

/** Outcome of client authentication. @internal */
export type ClientAuthResult =
  | { readonly kind: 'authenticated'; readonly client: RegisteredClient; readonly method: ClientAuthMethod }
  | { readonly kind: 'none' }
  | { readonly kind: 'failed'; readonly error: OAuthErrorResult }

/**
 * Authenticates the client of a token request (RFC 6749 §2.3, RFC 7523 §2.2/§3). Secrets are
 * compared in constant time; error descriptions never contain a secret or an assertion. @internal
 */
export async function authenticateClient(
  credentials: PresentedCredentials,
  form: URLSearchParams,
  clients: ReadonlyMap<string, RegisteredClient>,
  verifier: AssertionVerifier,
): Promise<ClientAuthResult> {
  const basicUsed = credentials.basic !== undefined
  const fail = (errorDescription: string, error = 'invalid_client'): ClientAuthResult => ({
    kind: 'failed',
    error: {
      status: error === 'invalid_client' ? 401 : 400,
      error,
      errorDescription,
      ...(basicUsed && error === 'invalid_client'
        ? { headers: { 'www-authenticate': 'Basic realm="tokenkeeper-testing", charset="UTF-8"' } }
        : {}),
    },
  })
  const { method } = credentials
  if (method === 'none') return { kind: 'none' }
  if (method === 'multiple')
    return fail('more than one client authentication method was used (RFC 6749 section 2.3)')

  const bodyClientId = form.get('client_id') ?? undefined
  const lookup = (clientId: string | undefined): RegisteredClient | undefined =>
    clientId === undefined ? undefined : clients.get(clientId)
  const notAllowed = (client: RegisteredClient): ClientAuthResult | undefined =>
    client.authMethods.has(method) ? undefined : fail(`client '${client.clientId}' may not use ${method}`)

  if (method === 'client_secret_basic' || method === 'client_secret_post') {
    let clientId: string | undefined
    let secret: string
    if (method === 'client_secret_basic') {
      if (credentials.basic === 'malformed' || credentials.basic === undefined) {
        return fail('malformed HTTP Basic credentials')
      }
      ;({ clientId, secret } = credentials.basic)
      if (bodyClientId !== undefined && bodyClientId !== clientId) {
        return fail('client_id in the body does not match the HTTP Basic user')
      }
    } else {
      clientId = bodyClientId
      secret = form.get('client_secret') ?? ''
      if (clientId === undefined) return fail('client_secret_post requires client_id', 'invalid_request')
    }
    const client = lookup(clientId)
    if (client === undefined) return fail('unknown client')
    const refused = notAllowed(client)
    if (refused !== undefined) return refused
    if (client.secretDigest === undefined || !timingSafeEqual(client.secretDigest, digest(secret))) {
      return fail('client authentication failed')
    }
    return { kind: 'authenticated', client, method }
  }

  const assertionType = form.get('client_assertion_type')
  const assertion = form.get('client_assertion')
  if (assertionType !== JWT_BEARER_ASSERTION_TYPE) {
    return fail(`client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}`)
  }
  if (assertion === null || assertion === '') return fail('client_assertion is missing', 'invalid_request')
  const peeked = peekIssuer(assertion)
  if (peeked === undefined) return fail('client_assertion is not a JWT')
  const clientId = bodyClientId ?? peeked.iss ?? peeked.sub
  const client = lookup(clientId)
  if (client === undefined) return fail('unknown client')
  const refused = notAllowed(client)
  if (refused !== undefined) return refused
  if (client.keys === undefined) return fail(`client '${client.clientId}' has no registered key`)
  const verified = await verifier.verify(assertion, client.keys, {
    label: 'client assertion',
    issuer: client.clientId,
    subject: client.clientId,
    requireJti: true,
  })
  if (!verified.ok) return fail(verified.reason)
  return { kind: 'authenticated', client, method }
}
