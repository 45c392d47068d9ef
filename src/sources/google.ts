import { inspect } from 'node:util'
import type { AccessToken } from '../token/access-token.js'
import { wrappedKey } from './cache-key.js'
import type { DpopKey } from './dpop.js'
import type { EndpointOptions } from './endpoint.js'
import { jwtBearer } from './jwt-bearer.js'
import { MAX_CREDENTIAL_FILE_BYTES, readFailure, readSmallFileSync } from './small-file.js'
import type { FetchTokenOptions, TokenSource } from './types.js'

/**
 * The members of a Google service account JSON key file (`"type": "service_account"`) that a
 * token request needs. Other members (`project_id`, `client_id`, `auth_uri`, ...) may be present.
 */
export interface GoogleServiceAccountKey {
  /** Always `service_account`; other kinds of Google credential files are refused. */
  readonly type: 'service_account'
  /** The service account's e-mail address: the assertion's `iss` (and `sub` unless `subject` is given). */
  readonly client_email: string
  /** PEM, PKCS#8. Never printed. */
  readonly private_key: string
  /** The key's id: the assertion's `kid` header. */
  readonly private_key_id: string
  /** Default `https://oauth2.googleapis.com/token`. */
  readonly token_uri?: string
  readonly [member: string]: unknown
}

/** Options of {@link googleServiceAccount}. */
export interface GoogleServiceAccountOptions extends Omit<EndpointOptions, 'tokenUrl' | 'scopes'> {
  /** The parsed JSON key file, or its path (read once, at construction). */
  readonly credentials: GoogleServiceAccountKey | string
  /** OAuth scopes, e.g. `https://www.googleapis.com/auth/cloud-platform`. At least one. */
  readonly scopes: readonly string[]
  /** The user to impersonate with domain-wide delegation (the assertion's `sub`). */
  readonly subject?: string
}

const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token'
const REQUIRED = ['client_email', 'private_key', 'private_key_id'] as const

function loadKey(credentials: unknown): GoogleServiceAccountKey {
  let parsed: unknown = credentials
  if (typeof credentials === 'string') {
    let text: string
    try {
      // Only a regular file of at most 64 KiB (a key file is about 2.4 KB): a FIFO would block
      // the process until something writes to it, a device such as /dev/zero never ends.
      text = readSmallFileSync(credentials, MAX_CREDENTIAL_FILE_BYTES).text
    } catch (error) {
      throw new TypeError(
        `googleServiceAccount: the key file ${credentials} could not be read (${readFailure(error)})`,
      )
    }
    try {
      parsed = JSON.parse(text)
    } catch {
      // The content is never quoted: it may be a private key.
      throw new TypeError(`googleServiceAccount: the key file ${credentials} is not JSON`)
    }
  }
  const from = typeof credentials === 'string' ? ` (${credentials})` : ''
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(`googleServiceAccount: credentials${from} must be a service account JSON key object`)
  }
  const record = parsed as Record<string, unknown>
  const type = record['type']
  if (type !== 'service_account') {
    const found =
      typeof type === 'string' ? `a key of type ${JSON.stringify(type.slice(0, 40))}` : 'a key without "type"'
    const hint =
      type === 'authorized_user'
        ? ' (a user credential from gcloud auth application-default login)'
        : type === 'external_account'
          ? ' (a workload identity federation configuration)'
          : ''
    throw new TypeError(`googleServiceAccount: expected a "service_account" key${from}, got ${found}${hint}`)
  }
  const missing = REQUIRED.filter((name) => typeof record[name] !== 'string' || record[name] === '')
  if (missing.length > 0) {
    throw new TypeError(`googleServiceAccount: the service account key${from} lacks ${missing.join(', ')}`)
  }
  if (record['token_uri'] !== undefined && typeof record['token_uri'] !== 'string') {
    throw new TypeError(`googleServiceAccount: token_uri of the key${from} must be a string`)
  }
  return record as GoogleServiceAccountKey
}

class GoogleServiceAccountSource implements TokenSource {
  readonly key: string
  readonly #inner: TokenSource
  readonly #email: string

  constructor(options: GoogleServiceAccountOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('googleServiceAccount: options are required')
    }
    const key = loadKey(options.credentials)
    if (!Array.isArray(options.scopes) || options.scopes.length === 0) {
      throw new TypeError('googleServiceAccount: scopes must name at least one scope')
    }
    if (options.subject !== undefined && (typeof options.subject !== 'string' || options.subject === '')) {
      throw new TypeError('googleServiceAccount: subject must be a non-empty string (an email address)')
    }
    const { credentials: _credentials, subject, ...endpoint } = options
    let inner: TokenSource
    try {
      inner = jwtBearer({
        ...endpoint,
        tokenUrl: key.token_uri ?? GOOGLE_TOKEN_URI,
        issuer: key.client_email,
        ...(subject === undefined ? {} : { subject }),
        key: key.private_key,
        kid: key.private_key_id,
        alg: 'RS256',
        scopeIn: 'assertion',
        // Google accepts at most one hour (exp - iat <= 3600).
        assertionLifetimeMs: 3_600_000,
      })
    } catch (error) {
      // jwtBearer's messages name neither key nor content; say which function was called.
      throw new TypeError(String((error as Error).message).replace(/^jwtBearer:/, 'googleServiceAccount:'))
    }
    this.#inner = inner
    this.#email = key.client_email
    this.key = wrappedKey('google-sa', inner.key)
  }

  /** The DPoP key the tokens are bound to, when `dpop` was given. */
  get dpop(): DpopKey | undefined {
    return this.#inner.dpop
  }

  fetchToken(options?: FetchTokenOptions): Promise<AccessToken> {
    return this.#inner.fetchToken(options)
  }

  toJSON(): Record<string, string> {
    return { kind: 'googleServiceAccount', serviceAccount: this.#email, key: this.key }
  }

  [inspect.custom](): string {
    return `TokenSource ${inspect(this.toJSON())}`
  }
}

/**
 * A Google service account (the JWT-bearer grant as Google documents it): an RS256 assertion
 * with `iss` = `client_email`, `scope` as a claim, `aud` = `token_uri`, `kid` =
 * `private_key_id`, valid one hour, `sub` for domain-wide delegation; posted to `token_uri`.
 * A key file of another type (`authorized_user`, `external_account`) or missing members is a
 * `TypeError` naming what it found. The private key never appears in any output.
 *
 * @example
 * ```ts
 * import { googleServiceAccount } from 'tokenkeeper'
 * const source = googleServiceAccount({
 *   credentials: process.env.GOOGLE_APPLICATION_CREDENTIALS!,
 *   scopes: ['https://www.googleapis.com/auth/cloud-platform'],
 * })
 * ```
 */
export function googleServiceAccount(options: GoogleServiceAccountOptions): TokenSource {
  return new GoogleServiceAccountSource(options)
}
