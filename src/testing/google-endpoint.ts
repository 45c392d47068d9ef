import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { systemClock, wallTime, type Clock } from '../clock.js'
import { jsonResponse, readBody, writeResponse, type PlannedResponse } from './http.js'
import { listenOnLoopback } from './listen.js'

/** Options of {@link startGoogleTokenEndpoint}. */
export interface GoogleTokenEndpointOptions {
  /** Clock for `iat`/`exp` checks and token expiry. Default: the system clock. */
  readonly clock?: Clock
  /** Lifetime of issued tokens. Default 3599 s, as Google answers. */
  readonly tokenLifetimeMs?: number
  /** Allowed clock skew for `iat` and `exp`. Default 5 000 ms. */
  readonly clockToleranceMs?: number
  /** Port on 127.0.0.1; default 0 (an ephemeral port). */
  readonly port?: number
}

/** A service account created on a {@link GoogleTokenEndpoint}. */
export interface GoogleTestServiceAccount {
  /** The JSON key, as Google's console downloads it, with `token_uri` pointing at this endpoint. */
  readonly key: {
    /** Always `service_account`. */
    readonly type: 'service_account'
    /** Always `tokenkeeper-test`. */
    readonly project_id: string
    /** A random id of the key (40 hex digits): the `kid` the endpoint looks the key up by. */
    readonly private_key_id: string
    /** A new RSA 2048 private key, PKCS#8 PEM. */
    readonly private_key: string
    /** The account's e-mail: the given `email`, or `robot-N@tokenkeeper-test.iam.gserviceaccount.com`. */
    readonly client_email: string
    /** A numeric id, as Google gives one. */
    readonly client_id: string
    /** This endpoint's token URL. */
    readonly token_uri: string
  }
  /** Disables the key (as deleting it in the console does): assertions signed with it are refused. */
  disable(): void
}

/** One token request the endpoint received, after verification. */
export interface GoogleTokenRequestRecord {
  /** `iss` of the assertion, when it could be decoded. */
  readonly serviceAccount: string | undefined
  /** `scope` claim, split. */
  readonly scopes: readonly string[]
  /** `sub` claim (domain-wide delegation), if any. */
  readonly subject: string | undefined
  /** `undefined` when a token was issued, else the error sent (`invalid_grant`, ...). */
  readonly error: string | undefined
  /** The `error_description` sent, if any. */
  readonly errorDescription: string | undefined
}

/** A Google-shaped OAuth 2.0 token endpoint for service accounts, on 127.0.0.1. */
export interface GoogleTokenEndpoint {
  /** `http://127.0.0.1:<port>/token`: the `token_uri` of the keys it creates, and the only accepted `aud`. */
  readonly tokenUrl: string
  /** Creates a service account with a fresh 2048-bit RSA key. */
  createServiceAccount(options?: { readonly email?: string }): GoogleTestServiceAccount
  /** Token requests received, oldest first. */
  readonly requests: readonly GoogleTokenRequestRecord[]
  /** Stops listening; idempotent. */
  close(): Promise<void>
  /** {@link GoogleTokenEndpoint.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>
}

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const MAX_LIFETIME_S = 3600

interface Account {
  readonly email: string
  readonly publicKey: KeyObject
  disabled: boolean
}

function invalidGrant(description: string): PlannedResponse {
  return jsonResponse(400, { error: 'invalid_grant', error_description: description })
}

/**
 * Starts a token endpoint that verifies service-account assertions the way Google documents
 * (https://developers.google.com/identity/protocols/oauth2/service-account): `grant_type`
 * `urn:ietf:params:oauth:grant-type:jwt-bearer`; an RS256 JWT whose `kid` names a key of the
 * account, signed by that key; `iss` the account's `client_email`; `aud` this endpoint's URL;
 * `exp` after `iat` by at most one hour and not passed; `iat` not in the future; a non-empty
 * `scope` claim (or `target_audience`). Refusals are `400 invalid_grant` with Google's wording.
 *
 * @example
 * ```ts
 * import { googleServiceAccount } from 'tokenkeeper'
 * import { startGoogleTokenEndpoint } from 'tokenkeeper/testing'
 * await using google = await startGoogleTokenEndpoint()
 * const { key } = google.createServiceAccount()
 * const source = googleServiceAccount({ credentials: key, scopes: ['https://www.googleapis.com/auth/cloud-platform'] })
 * const token = await source.fetchToken()
 * ```
 */
export async function startGoogleTokenEndpoint(
  options: GoogleTokenEndpointOptions = {},
): Promise<GoogleTokenEndpoint> {
  const clock = options.clock ?? systemClock
  const toleranceS = Math.floor((options.clockToleranceMs ?? 5000) / 1000)
  const lifetimeS = Math.max(1, Math.floor((options.tokenLifetimeMs ?? 3_599_000) / 1000))
  const accounts = new Map<string, Account>() // by private_key_id
  const requests: GoogleTokenRequestRecord[] = []
  let tokenUrl = ''

  /** The response, and the assertion's claims when they could be decoded (for the record). */
  async function answer(
    req: IncomingMessage,
    seen: { claims?: Record<string, unknown> },
  ): Promise<PlannedResponse> {
    const { decodeJwt, decodeProtectedHeader, jwtVerify } = await import('jose')
    if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://x').pathname !== '/token') {
      return jsonResponse(404, { error: 'not_found' })
    }
    const body = new URLSearchParams(await readBody(req, 64 * 1024))
    const grantType = body.get('grant_type')
    if (grantType !== JWT_BEARER) {
      return jsonResponse(400, {
        error: 'unsupported_grant_type',
        error_description: `Invalid grant_type: ${grantType ?? ''}`.slice(0, 120),
      })
    }
    const assertion = body.get('assertion') ?? ''
    let header: ReturnType<typeof decodeProtectedHeader>
    let claims: ReturnType<typeof decodeJwt>
    try {
      header = decodeProtectedHeader(assertion)
      claims = decodeJwt(assertion)
      seen.claims = claims
    } catch {
      return invalidGrant('Invalid JWT: Token must be a short-lived token and in a reasonable timeframe')
    }
    const account = typeof header.kid === 'string' ? accounts.get(header.kid) : undefined
    if (header.alg !== 'RS256') return invalidGrant('Invalid JWT signature algorithm; RS256 is required.')
    if (account === undefined || account.disabled) return invalidGrant('Invalid JWT Signature.')
    try {
      await jwtVerify(assertion, account.publicKey, {
        algorithms: ['RS256'],
        currentDate: new Date(wallTime(clock)),
        clockTolerance: toleranceS,
      })
    } catch (error) {
      const code = (error as { code?: string }).code
      if (code === 'ERR_JWT_EXPIRED' || code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
        return invalidGrant(
          'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
        )
      }
      return invalidGrant('Invalid JWT Signature.')
    }
    if (claims.iss !== account.email)
      return invalidGrant("Invalid JWT: iss does not match the key's service account.")
    if (claims.aud !== tokenUrl) return invalidGrant('Invalid JWT: Failed audience check.')
    const now = Math.floor(wallTime(clock) / 1000)
    const { iat, exp } = claims
    if (
      typeof iat !== 'number' ||
      typeof exp !== 'number' ||
      exp - iat > MAX_LIFETIME_S ||
      iat > now + toleranceS
    ) {
      return invalidGrant(
        'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
      )
    }
    const scope = claims['scope']
    const audience = claims['target_audience']
    if ((typeof scope !== 'string' || scope.trim() === '') && typeof audience !== 'string') {
      return jsonResponse(400, {
        error: 'invalid_scope',
        error_description: 'Empty or missing scope not allowed.',
      })
    }
    return jsonResponse(200, {
      access_token: `ya29.test-${randomBytes(24).toString('base64url')}`,
      expires_in: lifetimeS,
      token_type: 'Bearer',
    })
  }

  function record(assertionClaims: Record<string, unknown> | undefined, response: PlannedResponse): void {
    const json = JSON.parse(response.body) as { error?: string; error_description?: string }
    const scope = assertionClaims?.['scope']
    requests.push({
      serviceAccount: typeof assertionClaims?.['iss'] === 'string' ? assertionClaims['iss'] : undefined,
      scopes: typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [],
      subject: typeof assertionClaims?.['sub'] === 'string' ? assertionClaims['sub'] : undefined,
      error: json.error,
      errorDescription: json.error_description,
    })
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const seen: { claims?: Record<string, unknown> } = {}
    void (async () => {
      let response: PlannedResponse
      try {
        response = await answer(req, seen)
      } catch {
        response = jsonResponse(400, { error: 'invalid_request', error_description: 'Malformed request.' })
      }
      if (new URL(req.url ?? '/', 'http://x').pathname === '/token') record(seen.claims, response)
      writeResponse(res, response)
    })()
  }

  const server = await listenOnLoopback(onRequest, options.port ?? 0, () => undefined)
  tokenUrl = `${server.origin}/token`
  let created = 0
  return {
    tokenUrl,
    requests,
    createServiceAccount(accountOptions = {}) {
      created += 1
      const email = accountOptions.email ?? `robot-${created}@tokenkeeper-test.iam.gserviceaccount.com`
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
      const kid = randomBytes(20).toString('hex')
      const account: Account = { email, publicKey, disabled: false }
      accounts.set(kid, account)
      return {
        key: {
          type: 'service_account',
          project_id: 'tokenkeeper-test',
          private_key_id: kid,
          private_key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
          client_email: email,
          client_id: String(100_000_000_000_000_000_000n + BigInt(created)),
          token_uri: tokenUrl,
        },
        disable() {
          account.disabled = true
        },
      }
    },
    close: () => server.close(),
    [Symbol.asyncDispose]: () => server.close(),
  }
}
