import { inspect } from 'node:util'
import { basicAuthorization } from '../secrets.js'
import { fingerprint } from './fingerprint.js'
import {
  loadSigningKey,
  signAssertion,
  type PrivateKeyInput,
  type SigningAlgorithm,
  type SigningKey,
} from './signing.js'

/** Client authentication methods (RFC 6749 §2.3, OpenID Connect Core §9, RFC 7523 §2.2, RFC 8705 §2). */
export type ClientAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'private_key_jwt'
  | 'tls_client_auth'
  | 'self_signed_tls_client_auth'

/** What a client authentication method may add to a token request. */
export interface ClientAuthContext {
  /** The client's `client_id`, as the source was configured. */
  readonly clientId: string
  /** The token endpoint URL as configured: the default `aud` of a client assertion. */
  readonly tokenUrl: string
  /** The calendar time of the request on the source's clock (epoch ms): an assertion's `iat`. */
  readonly now: number
  /** The form body of the token request; a method may add its fields (`client_assertion`, ...). */
  readonly body: URLSearchParams
  /** The request's headers, by lower-case name; a method may add `authorization`. */
  readonly headers: Record<string, string>
}

/**
 * How a client proves who it is to the token endpoint. Objects of this kind hold a secret but
 * never show it: `JSON.stringify` and `util.inspect` print only the method and a fingerprint.
 */
export interface ClientAuth {
  /** The authentication method, as servers name it in `token_endpoint_auth_method`. */
  readonly method: ClientAuthMethod
  /** A secret-free fingerprint of the credential; part of a source's cache key. */
  readonly fingerprint: string
  /**
   * Adds the credential to a request. Returns the secret strings it used (secret, Basic
   * credentials, assertion), so that errors can be scrubbed of them in every encoding
   * (`src/secrets.ts`).
   */
  apply(context: ClientAuthContext): Promise<readonly string[]>
}

function checkSecret(secret: unknown, what: string): string {
  if (typeof secret !== 'string' || secret.length === 0)
    throw new TypeError(`${what}: the client secret must be a non-empty string`)
  return secret
}

/** Client secrets, kept outside the objects so no reflection or inspection can reach them. */
const secrets = new WeakMap<SecretAuth, string>()

/**
 * The secret a client authentication holds before any request (a client secret), for scrubbing
 * text read before it is applied (a discovery document); none for methods whose credential is
 * made per request. @internal
 */
export function heldSecrets(auth: ClientAuth | undefined): readonly string[] {
  const secret = auth instanceof SecretAuth ? secrets.get(auth) : undefined
  return secret === undefined ? [] : [secret]
}

abstract class SecretAuth implements ClientAuth {
  abstract readonly method: ClientAuthMethod
  readonly fingerprint: string

  constructor(secret: string, what: string) {
    const checked = checkSecret(secret, what)
    secrets.set(this, checked)
    this.fingerprint = fingerprint('client-secret', checked)
  }

  protected get secret(): string {
    return secrets.get(this) ?? ''
  }

  abstract apply(context: ClientAuthContext): Promise<readonly string[]>

  /** `{ method, fingerprint }`: what `JSON.stringify` shows, never the secret. */
  toJSON(): Record<string, string> {
    return { method: this.method, fingerprint: this.fingerprint }
  }

  /** What `util.inspect` and `console.log` show: the method and the fingerprint, never the secret. */
  [inspect.custom](): string {
    return `ClientAuth ${inspect(this.toJSON())}`
  }
}

/**
 * `client_secret_basic` (RFC 6749 §2.3.1): id and secret in an HTTP Basic header, each
 * form-urlencoded first, as the RFC requires.
 */
export class ClientSecretBasic extends SecretAuth {
  /** Always `client_secret_basic`. */
  readonly method = 'client_secret_basic'

  /** @throws TypeError when `secret` is not a non-empty string. */
  constructor(secret: string) {
    super(secret, 'clientSecretBasic')
  }

  /** Sets `authorization: Basic ...` on the request; returns the secret and the header's credentials. */
  apply(context: ClientAuthContext): Promise<readonly string[]> {
    const { header, secrets: used } = basicAuthorization(context.clientId, this.secret)
    context.headers['authorization'] = header
    return Promise.resolve(used)
  }
}

/** `client_secret_post` (RFC 6749 §2.3.1): `client_id` and `client_secret` in the form body. */
export class ClientSecretPost extends SecretAuth {
  /** Always `client_secret_post`. */
  readonly method = 'client_secret_post'

  /** @throws TypeError when `secret` is not a non-empty string. */
  constructor(secret: string) {
    super(secret, 'clientSecretPost')
  }

  /** Adds `client_id` and `client_secret` to the form body; returns the secret. */
  apply(context: ClientAuthContext): Promise<readonly string[]> {
    context.body.set('client_id', context.clientId)
    context.body.set('client_secret', this.secret)
    return Promise.resolve([this.secret])
  }
}

/** Options of {@link privateKeyJwt}. */
export interface PrivateKeyJwtOptions {
  /** The private key: JWK, PEM string or `KeyObject`. */
  readonly key: PrivateKeyInput
  /** The `kid` header, so the server can pick the key from the client's JWKS; not empty. */
  readonly kid?: string
  /** RS256, PS256 or ES256. Default: the JWK's `alg`, else ES256 for EC keys and RS256 for RSA. */
  readonly alg?: SigningAlgorithm
  /** The `aud` claim; not empty. Default: the token endpoint URL, exactly as configured. */
  readonly audience?: string
  /** How long each assertion is valid. Default 60 s; at most 5 minutes. */
  readonly lifetimeMs?: number
}

/** Longest allowed client assertion lifetime: 5 minutes. */
const MAX_ASSERTION_LIFETIME_MS = 300_000

/**
 * `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): a fresh signed client assertion per
 * request with iss = sub = client id, a unique `jti`, `iat` now and a short `exp`.
 */
export class PrivateKeyJwt implements ClientAuth {
  /** Always `private_key_jwt`. */
  readonly method = 'private_key_jwt'
  /** A secret-free fingerprint of the key's thumbprint, `alg`, `kid` and audience; part of the cache key. */
  readonly fingerprint: string
  readonly #signing: SigningKey
  readonly #kid: string | undefined
  readonly #audience: string | undefined
  readonly #lifetimeMs: number

  /**
   * @throws TypeError when the options are missing, the key cannot be read or does not fit `alg`,
   * `kid` or `audience` is given empty, or `lifetimeMs` is outside 1000 to 300000. The message
   * never contains the key.
   */
  constructor(options: PrivateKeyJwtOptions) {
    if (typeof options !== 'object' || options === null)
      throw new TypeError('privateKeyJwt: options are required')
    this.#signing = loadSigningKey(options.key, options.alg, 'privateKeyJwt')
    // Sent empty (`kid: ""`, `aud: ""`), each would yet share the key of none.
    for (const name of ['kid', 'audience'] as const) {
      const value: unknown = options[name]
      if (value !== undefined && (typeof value !== 'string' || value === '')) {
        throw new TypeError(`privateKeyJwt: ${name} must be a non-empty string when given`)
      }
    }
    this.#kid = options.kid
    this.#audience = options.audience
    const lifetimeMs = options.lifetimeMs ?? 60_000
    if (!Number.isFinite(lifetimeMs) || lifetimeMs < 1000 || lifetimeMs > MAX_ASSERTION_LIFETIME_MS) {
      throw new TypeError('privateKeyJwt: lifetimeMs must be between 1000 and 300000')
    }
    this.#lifetimeMs = lifetimeMs
    this.fingerprint = fingerprint(
      'private-key-jwt',
      this.#signing.thumbprint,
      this.#signing.alg,
      this.#kid ?? '',
      this.#audience ?? '',
    )
  }

  /**
   * Signs a new assertion (its own `jti`, `iat` = `context.now`) and adds `client_id`,
   * `client_assertion_type` and `client_assertion` to the form body; returns the assertion.
   */
  async apply(context: ClientAuthContext): Promise<readonly string[]> {
    const assertion = await signAssertion(this.#signing, this.#kid, {
      iss: context.clientId,
      sub: context.clientId,
      aud: this.#audience ?? context.tokenUrl,
      lifetimeMs: this.#lifetimeMs,
      now: context.now,
    })
    context.body.set('client_id', context.clientId)
    context.body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
    context.body.set('client_assertion', assertion)
    return [assertion]
  }

  /** `{ method, fingerprint, alg }`: what `JSON.stringify` shows, never the key. */
  toJSON(): Record<string, string> {
    return { method: this.method, fingerprint: this.fingerprint, alg: this.#signing.alg }
  }

  /** What `util.inspect` and `console.log` show: the method, fingerprint and `alg`, never the key. */
  [inspect.custom](): string {
    return `ClientAuth ${inspect(this.toJSON())}`
  }
}

/**
 * Authenticates with `client_secret_basic`. The secret is never printed.
 *
 * @example
 * ```ts
 * const auth = clientSecretBasic(process.env.CLIENT_SECRET!)
 * ```
 */
export function clientSecretBasic(secret: string): ClientAuth {
  return new ClientSecretBasic(secret)
}

/**
 * Authenticates with `client_secret_post`. Prefer Basic unless the server demands this.
 *
 * @example
 * ```ts
 * const auth = clientSecretPost(process.env.CLIENT_SECRET!)
 * ```
 */
export function clientSecretPost(secret: string): ClientAuth {
  return new ClientSecretPost(secret)
}

/**
 * Authenticates with `private_key_jwt`, signing a new assertion for every request.
 *
 * @example
 * ```ts
 * const auth = privateKeyJwt({ key: process.env.PRIVATE_KEY_PEM!, kid: 'key-2026', alg: 'RS256' })
 * ```
 */
export function privateKeyJwt(options: PrivateKeyJwtOptions): ClientAuth {
  return new PrivateKeyJwt(options)
}
