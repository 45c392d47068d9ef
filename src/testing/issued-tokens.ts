import { randomBytes } from 'node:crypto'
import type { Clock } from '../clock.js'

/**
 * What the test token server knows about a token it issued (RFC 7662-like). Instants are epoch ms
 * by the server's clock; a token is expired from `expiresAt` on.
 *
 * @example
 * ```ts
 * import { startTokenServer } from 'tokenkeeper/testing'
 * await using server = await startTokenServer({ clients: [{ clientId: 'a', clientSecret: 's' }] })
 * const info = server.introspect('tkt_unknown') // undefined: never issued
 * ```
 */
export interface TokenIntrospection {
  /** Issued, not expired and not revoked. */
  readonly active: boolean
  /** Its expiry has passed on the server's clock. */
  readonly expired: boolean
  /** It was revoked with `revoke()` or `revokeAll()`. */
  readonly revoked: boolean
  /** The authenticated client, or `undefined` for a JWT-bearer grant without client authentication. */
  readonly clientId: string | undefined
  /** The `sub` of the JWT-bearer grant assertion, if the token came from one. */
  readonly subject: string | undefined
  /** The grant that issued it, e.g. `client_credentials`. */
  readonly grantType: string
  /** The scopes granted. */
  readonly scopes: readonly string[]
  /** When it was issued, on the server's clock (epoch ms). */
  readonly issuedAt: number
  /** When it expires, on the server's clock (epoch ms). */
  readonly expiresAt: number
  /** The RFC 7638 thumbprint of the DPoP key the token is bound to (`cnf.jkt`), if it is bound. */
  readonly jkt: string | undefined
  /** Calls to the resource endpoint that presented this token. */
  readonly uses: number
  /** Of those, calls made when the token had already expired. */
  readonly usesAfterExpiry: number
}

interface IssuedToken {
  readonly clientId: string | undefined
  readonly subject: string | undefined
  readonly grantType: string
  readonly scopes: readonly string[]
  readonly issuedAt: number
  readonly expiresAt: number
  readonly jkt?: string | undefined
  revoked: boolean
  uses: number
  usesAfterExpiry: number
}

/** Why the resource endpoint accepts or refuses a token. @internal */
export type TokenUse =
  | {
      readonly kind: 'valid'
      readonly clientId: string | undefined
      readonly scopes: readonly string[]
      readonly jkt: string | undefined
    }
  | { readonly kind: 'expired' | 'revoked' | 'unknown' }

/** The opaque tokens a server has issued, with their bookkeeping. @internal */
export class IssuedTokens {
  readonly #tokens = new Map<string, IssuedToken>()
  readonly #clock: Clock

  constructor(clock: Clock) {
    this.#clock = clock
  }

  get size(): number {
    return this.#tokens.size
  }

  /** Mints an opaque token (`tkt_` + 32 random bytes, base64url) valid for `lifetimeMs`. */
  issue(
    grant: Omit<IssuedToken, 'issuedAt' | 'expiresAt' | 'revoked' | 'uses' | 'usesAfterExpiry'>,
    lifetimeMs: number,
  ): string {
    const token = `tkt_${randomBytes(32).toString('base64url')}`
    const issuedAt = this.#clock.now()
    this.#tokens.set(token, {
      ...grant,
      issuedAt,
      expiresAt: issuedAt + lifetimeMs,
      revoked: false,
      uses: 0,
      usesAfterExpiry: 0,
    })
    return token
  }

  introspect(token: string): TokenIntrospection | undefined {
    const issued = this.#tokens.get(token)
    if (issued === undefined) return undefined
    const expired = this.#clock.now() >= issued.expiresAt
    return Object.freeze({
      active: !expired && !issued.revoked,
      expired,
      revoked: issued.revoked,
      clientId: issued.clientId,
      subject: issued.subject,
      grantType: issued.grantType,
      scopes: issued.scopes,
      issuedAt: issued.issuedAt,
      expiresAt: issued.expiresAt,
      jkt: issued.jkt,
      uses: issued.uses,
      usesAfterExpiry: issued.usesAfterExpiry,
    })
  }

  /** Records a resource call presenting `token` and says whether it is acceptable. */
  use(token: string): TokenUse {
    const issued = this.#tokens.get(token)
    if (issued === undefined) return { kind: 'unknown' }
    issued.uses += 1
    if (this.#clock.now() >= issued.expiresAt) {
      issued.usesAfterExpiry += 1
      return { kind: 'expired' }
    }
    if (issued.revoked) return { kind: 'revoked' }
    return { kind: 'valid', clientId: issued.clientId, scopes: issued.scopes, jkt: issued.jkt }
  }

  revoke(token: string): boolean {
    const issued = this.#tokens.get(token)
    if (issued === undefined || issued.revoked) return false
    issued.revoked = true
    return true
  }

  revokeAll(): number {
    let count = 0
    for (const issued of this.#tokens.values()) {
      if (!issued.revoked) {
        issued.revoked = true
        count += 1
      }
    }
    return count
  }
}
