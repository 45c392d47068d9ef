import { createHash, randomBytes } from 'node:crypto'
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWK } from 'jose'
import { wallTime, type Clock } from '../clock.js'

/**
 * DPoP (RFC 9449) at the test server's token endpoint and resource.
 *
 * @example
 * ```ts
 * import { startTokenServer } from 'tokenkeeper/testing'
 * await using server = await startTokenServer({
 *   clients: [{ clientId: 'svc', clientSecret: 's3cret' }],
 *   dpop: { requireNonce: true },
 * })
 * server.rotateDpopNonce() // the next proofs with the old nonce get use_dpop_nonce
 * ```
 */
export interface TokenServerDpopOptions {
  /**
   * Demand the server's nonce in every proof, at the token endpoint and the resource: a proof
   * without it (or with an old one) is answered `use_dpop_nonce` with a `DPoP-Nonce` header.
   * Default false.
   */
  readonly requireNonce?: boolean
  /** Refuse token requests without a proof (`invalid_dpop_proof`). Default false. */
  readonly required?: boolean
  /** Accepted proof algorithms. Default ES256, RS256, PS256, EdDSA. */
  readonly algorithms?: readonly string[]
}

/** The result of checking one proof. @internal */
export type DpopCheck =
  | { readonly ok: true; readonly jkt: string }
  | { readonly ok: false; readonly error: 'invalid_dpop_proof' | 'use_dpop_nonce'; readonly reason: string }

/** Most `jti`s remembered for replay detection. */
const MAX_SEEN = 100_000

/** Checks proofs as RFC 9449 §4.3 says, with jose, and keeps the nonce and the seen `jti`s. @internal */
export class DpopVerifier {
  readonly requireNonce: boolean
  readonly required: boolean
  readonly #algorithms: string[]
  readonly #clock: Clock
  readonly #toleranceMs: number
  readonly #seen = new Set<string>()
  #nonce = randomBytes(16).toString('base64url')

  constructor(options: TokenServerDpopOptions, clock: Clock, toleranceMs: number) {
    this.requireNonce = options.requireNonce === true
    this.required = options.required === true
    this.#algorithms = [...(options.algorithms ?? ['ES256', 'RS256', 'PS256', 'EdDSA'])]
    this.#clock = clock
    this.#toleranceMs = toleranceMs
  }

  /** The current nonce. */
  get nonce(): string {
    return this.#nonce
  }

  /** Headers every answer carries: the nonce, when nonces are demanded. */
  get headers(): Record<string, string> {
    return this.requireNonce ? { 'dpop-nonce': this.#nonce } : {}
  }

  rotate(): string {
    this.#nonce = randomBytes(16).toString('base64url')
    return this.#nonce
  }

  /** Checks the `DPoP` header(s) of a request to `url` with `method` (and `accessToken` at a resource). */
  async check(
    proofs: readonly string[],
    method: string,
    url: string,
    accessToken?: string,
  ): Promise<DpopCheck> {
    const refuse = (reason: string): DpopCheck => ({ ok: false, error: 'invalid_dpop_proof', reason })
    if (proofs.length !== 1) return refuse(proofs.length === 0 ? 'no DPoP proof' : 'more than one DPoP proof')
    let payload: Record<string, unknown>
    let jwk: JWK
    try {
      const verified = await jwtVerify(proofs[0] as string, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: this.#algorithms,
      })
      payload = verified.payload
      jwk = verified.protectedHeader.jwk as JWK
    } catch {
      return refuse('the DPoP proof is not a valid dpop+jwt signed by its jwk')
    }
    if ('d' in jwk) return refuse('the jwk header holds a private key')
    const expected = new URL(url)
    expected.search = ''
    expected.hash = ''
    if (payload['htm'] !== method) return refuse('htm does not match the request method')
    if (payload['htu'] !== expected.href) return refuse('htu does not match the request URL')
    const iat = payload['iat']
    if (typeof iat !== 'number' || Math.abs(wallTime(this.#clock) - iat * 1000) > this.#toleranceMs) {
      return refuse('iat is not recent')
    }
    const jti = payload['jti']
    if (typeof jti !== 'string' || jti === '') return refuse('jti is missing')
    if (accessToken !== undefined) {
      if (payload['ath'] !== createHash('sha256').update(accessToken).digest('base64url')) {
        return refuse('ath does not match the access token')
      }
    }
    if (this.requireNonce && payload['nonce'] !== this.#nonce) {
      return { ok: false, error: 'use_dpop_nonce', reason: 'use the DPoP-Nonce of this server' }
    }
    if (this.#seen.has(jti)) return refuse('the proof was used before (jti replay)')
    this.#seen.add(jti)
    if (this.#seen.size > MAX_SEEN) this.#seen.delete(this.#seen.values().next().value as string)
    return { ok: true, jkt: await calculateJwkThumbprint(jwk) }
  }
}
