import { inspect } from 'node:util'
import type { AccessToken } from '../token/access-token.js'
import type { ClientAuth } from './auth.js'
import type { DpopKey } from './dpop.js'
import { certificateOf, type TlsClientCertificate } from './mtls.js'
import { TokenEndpoint, type EndpointOptions } from './endpoint.js'
import { keyPart } from './fingerprint.js'
import type { FetchTokenOptions, TokenSource } from './types.js'

/** Options of {@link clientCredentials}. */
export interface ClientCredentialsOptions extends EndpointOptions {
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
  readonly key: string
  readonly #endpoint: TokenEndpoint
  readonly #clientId: string
  readonly #auth: ClientAuth

  constructor(options: ClientCredentialsOptions) {
    this.#endpoint = new TokenEndpoint(options, 'clientCredentials')
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
    if (certificateOf(options.auth) !== undefined && this.#endpoint.url.protocol !== 'https:') {
      throw new TypeError('clientCredentials: mutual TLS needs an https tokenUrl')
    }
    this.#clientId = options.clientId
    this.#auth = options.auth
    this.key =
      `cc|${this.#endpoint.keyUrl}|${keyPart(this.#clientId)}|` +
      `${this.#auth.method}:${this.#auth.fingerprint}${this.#endpoint.keySuffix}`
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
    return { kind: 'clientCredentials', key: this.key }
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
 * ```
 */
export function clientCredentials(options: ClientCredentialsOptions): TokenSource {
  return new ClientCredentialsSource(options)
}
