import { inspect } from 'node:util'

/**
 * What a token was requested to be bound to, and whether the server bound it: for DPoP
 * (RFC 9449) the RFC 7638 thumbprint of the key (`jkt`), and `bound: false` when the server
 * answered `Bearer` to a request that carried a proof. Holds no secret.
 */
export interface TokenBinding {
  /** How the token is bound: `dpop` (RFC 9449). */
  readonly method: 'dpop'
  /** The thumbprint of the public key the proofs were signed with (`cnf.jkt`). */
  readonly jkt: string
  /** Whether the server issued a bound token (`token_type: DPoP`). */
  readonly bound: boolean
}

/** The fields an {@link AccessToken} is built from. */
export interface AccessTokenInit {
  /** The token itself. Secret. */
  readonly value: string
  /** The token type, canonicalised (`Bearer`, `DPoP`, ...). */
  readonly type: string
  /** The scopes granted (RFC 6749 §3.3), sorted and de-duplicated. */
  readonly scopes: readonly string[]
  /** The scopes that were asked for, sorted and de-duplicated. */
  readonly requestedScopes?: readonly string[] | undefined
  /** When the request that obtained the token was sent (epoch ms). */
  readonly issuedAt: number
  /** `issuedAt + expires_in`: after this instant the token must not be used (epoch ms). */
  readonly expiresAt: number
  /** `issuedAt + refresh_in`, when the server suggested when to renew (epoch ms). */
  readonly refreshAt?: number | undefined
  /** Every other field of the token response, such as `id_token` or vendor fields. */
  readonly extra?: Readonly<Record<string, unknown>> | undefined
  /** The key binding that was asked for (DPoP), and whether the server bound the token. */
  readonly binding?: TokenBinding | undefined
}

/**
 * Whether `value` can be an access token in an `Authorization` header: one or more visible ASCII
 * characters (`%x21-7E`), no space, no control character, nothing outside ASCII. This holds
 * RFC 6750's `b64token`, JWTs and the opaque tokens real servers send; anything else would make
 * every request with the token fail (or, with a non-ASCII value whose latin1 bytes are CR LF,
 * inject a header).
 */
export function isHeaderSafeToken(value: unknown): value is string {
  return typeof value === 'string' && /^[\x21-\x7e]+$/.test(value)
}

/** Whether `value` is an HTTP token (RFC 9110 §5.6.2 `tchar`s): what a `token_type` must be. */
export function isHttpToken(value: unknown): value is string {
  return typeof value === 'string' && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value)
}

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({})
const NO_SCOPES: readonly string[] = Object.freeze([])

function frozenList(list: readonly string[] | undefined): readonly string[] {
  return list === undefined || list.length === 0 ? NO_SCOPES : Object.freeze([...list])
}

/**
 * An access token and what is known about it. Immutable.
 *
 * The token value is readable through `value`, but it is never printed: `JSON.stringify`,
 * `util.inspect` and `String()` show a redacted form, so a token cannot reach a log by accident.
 *
 * @example
 * ```ts
 * const token = await tokens.get(source)
 * await fetch(url, { headers: { authorization: token.authorization } })
 * console.log(token) // AccessToken { type: 'Bearer', value: '[redacted]', expiresAt: ... }
 * ```
 */
export class AccessToken {
  readonly #value: string
  /** The token type, canonicalised: `Bearer` for any casing of bearer. */
  readonly type: string
  /** The scopes granted, sorted and de-duplicated. */
  readonly scopes: readonly string[]
  /** The scopes that were requested, sorted and de-duplicated (empty when none were). */
  readonly requestedScopes: readonly string[]
  /** When the request for this token was sent (epoch ms). */
  readonly issuedAt: number
  /** When the token stops being valid (epoch ms), measured from when the request was sent. */
  readonly expiresAt: number
  /** The server's suggested renewal instant (`refresh_in`), if it gave one (epoch ms). */
  readonly refreshAt: number | undefined
  /**
   * Set when the request asked for a bound token (DPoP): the key's thumbprint and whether the
   * server bound it. `bound: false` means the server answered `Bearer` to a DPoP request.
   */
  readonly binding: TokenBinding | undefined
  readonly #extra: Readonly<Record<string, unknown>>

  /**
   * @throws TypeError when `value` is not header-safe (visible ASCII without spaces, as the
   * `b64token` of RFC 6750 §2.1 allows) or `type` is not an HTTP token: such a token could not be
   * sent.
   * The message never contains the value.
   */
  constructor(init: AccessTokenInit) {
    if (!isHeaderSafeToken(init.value)) {
      throw new TypeError(
        'AccessToken: value must be one or more visible ASCII characters (no space, control or non-ASCII character), as an Authorization header needs',
      )
    }
    if (!isHttpToken(init.type)) {
      throw new TypeError('AccessToken: type must be an HTTP token (RFC 9110 §5.6.2), such as Bearer or DPoP')
    }
    this.#value = init.value
    this.type = init.type
    this.scopes = frozenList(init.scopes)
    this.requestedScopes = frozenList(init.requestedScopes)
    this.issuedAt = init.issuedAt
    this.expiresAt = init.expiresAt
    this.refreshAt = init.refreshAt
    this.binding =
      init.binding === undefined
        ? undefined
        : Object.freeze({ method: init.binding.method, jkt: init.binding.jkt, bound: init.binding.bound })
    this.#extra =
      init.extra === undefined || Object.keys(init.extra).length === 0
        ? EMPTY
        : Object.freeze({ ...init.extra })
    Object.freeze(this)
  }

  /** The access token string. Secret: send it, never log it. */
  get value(): string {
    return this.#value
  }

  /**
   * Every other response field. May contain secrets (`id_token`), so it is never printed and not
   * an own property (a spread copy of the token leaves it out).
   */
  get extra(): Readonly<Record<string, unknown>> {
    return this.#extra
  }

  /**
   * The `Authorization` header value, `${type} ${value}` without quoting, e.g. `Bearer abc...`
   * (RFC 6750 §2.1). Both parts are checked at construction, so it is always a valid header
   * value. Secret.
   */
  get authorization(): string {
    return `${this.type} ${this.#value}`
  }

  /** The token's lifetime as granted: `expiresAt - issuedAt`, in milliseconds. */
  get lifetimeMs(): number {
    return this.expiresAt - this.issuedAt
  }

  /** True when fewer scopes were granted than were requested. */
  get scopeReduced(): boolean {
    return this.requestedScopes.some((scope) => !this.scopes.includes(scope))
  }

  /** True when `scope` was granted. */
  hasScope(scope: string): boolean {
    return this.scopes.includes(scope)
  }

  /** A redacted, secret-free description, used by `JSON.stringify`. */
  toJSON(): Record<string, unknown> {
    return {
      type: this.type,
      value: '[redacted]',
      scopes: this.scopes,
      issuedAt: this.issuedAt,
      expiresAt: this.expiresAt,
      ...(this.refreshAt === undefined ? {} : { refreshAt: this.refreshAt }),
      ...(this.binding === undefined ? {} : { binding: this.binding }),
      extra: Object.keys(this.extra),
    }
  }

  /** `[AccessToken Bearer expiresAt=<ISO date>]`: what string conversion shows, never the value. */
  toString(): string {
    return `[AccessToken ${this.type} expiresAt=${new Date(this.expiresAt).toISOString()}]`
  }

  /** What `util.inspect` and `console.log` show: {@link AccessToken.toJSON}, never the value. */
  [inspect.custom](): string {
    return `AccessToken ${inspect(this.toJSON())}`
  }
}
