import { inspect } from 'node:util'
import type { AccessToken } from '../token/access-token.js'
import type { ClientAuth } from './auth.js'
import type { DiscoveryCache } from './discovery.js'
import type { DpopKey } from './dpop.js'
import { endpointFrom, type EndpointOptions, type TokenEndpoint } from './endpoint.js'
import { certificateOf, type TlsClientCertificate } from './mtls.js'
import { authPart, cacheKey, positional, type KeySegment } from './cache-key.js'
import type { FetchTokenOptions, TokenSource } from './types.js'

/**
 * Options of {@link clientCredentials}: the token endpoint as `tokenUrl`, or an `issuer` whose
 * token endpoint is discovered (exactly one of the two).
 */
export interface ClientCredentialsOptions extends Omit<EndpointOptions, 'tokenUrl'> {
  /** The token endpoint. Must be https, or http to a loopback address. Or give `issuer`. */
  readonly tokenUrl?: string | URL
  /**
   * The authorization server's issuer identifier, instead of `tokenUrl`: its `token_endpoint`
   * is read from `/.well-known/oauth-authorization-server` (RFC 8414) or
   * `/.well-known/openid-configuration` (OpenID Connect Discovery), once per issuer per
   * process. The document's `issuer` must be exactly this string (RFC 8414 §3.3), and it must
   * list the `auth` method in `token_endpoint_auth_methods_supported` (when it lists none, only
   * `client_secret_basic` is accepted). Must be https, or http to a loopback address. The key is
   * the one a source with the discovered `tokenUrl` has, so both share tokens.
   */
  readonly issuer?: string | URL
  /** With `issuer`: the cache of discovered documents. Default: one shared by the whole process. */
  readonly discovery?: DiscoveryCache
  /** The client identifier issued by the authorization server. */
  readonly clientId: string
  /**
   * How the client authenticates: `clientSecretBasic`, `clientSecretPost`, `privateKeyJwt`, a
   * client assertion, or mutual TLS (`tlsClientAuth`, `selfSignedTlsClientAuth`).
   */
  readonly auth: ClientAuth
}

function isClientAuth(value: unknown): value is ClientAuth {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ClientAuth).apply === 'function' &&
    typeof (value as ClientAuth).fingerprint === 'string'
  )
}

class ClientCredentialsSource implements TokenSource {
  readonly #endpoint: TokenEndpoint
  readonly #clientId: string
  readonly #auth: ClientAuth
  /** The key's segments after the endpoint, fixed at construction. */
  readonly #keySegments: readonly (KeySegment | undefined)[]
  #keyUrl: string
  #key: string

  constructor(options: ClientCredentialsOptions) {
    this.#endpoint = endpointFrom(options, 'clientCredentials')
    if (typeof options.clientId !== 'string' || options.clientId.length === 0) {
      throw new TypeError('clientCredentials: clientId must be a non-empty string')
    }
    if (!isClientAuth(options.auth)) {
      throw new TypeError(
        'clientCredentials: auth must be clientSecretBasic(...), clientSecretPost(...) or privateKeyJwt(...)',
      )
    }
    if (certificateOf(options.auth) !== undefined && options.fetch !== undefined) {
      throw new TypeError(
        'clientCredentials: mutual TLS sends token requests over its own connections (they present the certificate); fetch cannot be given with it',
      )
    }
    if (
      certificateOf(options.auth) !== undefined &&
      this.#endpoint.issuer === undefined &&
      this.#endpoint.url.protocol !== 'https:'
    ) {
      throw new TypeError('clientCredentials: mutual TLS needs an https tokenUrl')
    }
    this.#clientId = options.clientId
    this.#auth = options.auth
    this.#keySegments = [
      positional(this.#clientId),
      positional(authPart(this.#auth)),
      ...this.#endpoint.keySegments,
    ]
    this.#keyUrl = this.#endpoint.keyUrl
    this.#key = cacheKey('cc', this.#keyUrl, this.#keySegments)
  }

  /**
   * The cache key. With `issuer`, it names the discovered token endpoint once the issuer's
   * document is known (the key of a `tokenUrl` source for that endpoint), and
   * `discovery:<issuer>` until then.
   */
  get key(): string {
    const keyUrl = this.#endpoint.keyUrl
    if (keyUrl !== this.#keyUrl) {
      this.#keyUrl = keyUrl
      this.#key = cacheKey('cc', keyUrl, this.#keySegments)
    }
    return this.#key
  }

  whenKeyKnown(): Promise<void> | undefined {
    return this.#endpoint.whenKeyKnown()
  }

  /** The client certificate of mutual TLS (RFC 8705), when `auth` is one: API requests present it too. */
  get mtls(): TlsClientCertificate | undefined {
    return certificateOf(this.#auth)
  }

  /** The DPoP key the tokens are bound to, when `dpop` was given. */
  get dpop(): DpopKey | undefined {
    return this.#endpoint.dpop
  }

  fetchToken(options?: FetchTokenOptions): Promise<AccessToken> {
    return this.#endpoint.request([['grant_type', 'client_credentials']], this.#auth, this.#clientId, options)
  }

  toJSON(): Record<string, string> {
    const issuer = this.#endpoint.issuer
    return { kind: 'clientCredentials', ...(issuer === undefined ? {} : { issuer }), key: this.key }
  }

  [inspect.custom](): string {
    return `TokenSource ${inspect(this.toJSON())}`
  }
}

/**
 * The client-credentials grant (RFC 6749 §4.4): the service authenticates as itself.
 *
 * @example
 * ```ts
 * import { clientCredentials, clientSecretBasic } from 'tokenkeeper'
 * const source = clientCredentials({
 *   tokenUrl: 'https://idp.example/oauth/token',
 *   clientId: 'svc-a',
 *   auth: clientSecretBasic(process.env.SECRET!),
 *   scopes: ['read', 'write'],
 * })
 * const token = await source.fetchToken()
 * // Or from the issuer's metadata (RFC 8414 / OpenID Connect Discovery):
 * const discovered = clientCredentials({
 *   issuer: 'https://idp.example',
 *   clientId: 'svc-a',
 *   auth: clientSecretBasic(process.env.SECRET!),
 * })
 * ```
 */
export function clientCredentials(options: ClientCredentialsOptions): TokenSource {
  return new ClientCredentialsSource(options)
}
