import { createPublicKey, type KeyObject } from 'node:crypto'
import { compactVerify, createLocalJWKSet, decodeJwt, errors, type JSONWebKeySet, type KeyInput } from 'jose'
import type { Clock } from '../clock.js'

/**
 * Where the server finds the public key(s) that verify a signed JWT: a JWKS, or one public key
 * as a `KeyObject` or PEM string (a private key is accepted too; only its public half is used).
 *
 * @example
 * ```ts
 * import { generateKeyPair, exportJWK } from 'jose'
 * import type { VerificationKeys } from 'tokenkeeper/testing'
 * const { publicKey } = await generateKeyPair('ES256')
 * const byJwks: VerificationKeys = { jwks: { keys: [await exportJWK(publicKey)] } }
 * ```
 */
export type VerificationKeys =
  | {
      /** A JWKS; the JWT's `kid` (and `alg`) pick the key. */
      readonly jwks: JSONWebKeySet
      /** Not with `jwks`. */
      readonly publicKey?: undefined
    }
  | {
      /** One key, as a `KeyObject` or PEM string. */
      readonly publicKey: KeyObject | string
      /** Not with `publicKey`. */
      readonly jwks?: undefined
    }

type KeySource = KeyObject | ReturnType<typeof createLocalJWKSet>

/** Turns {@link VerificationKeys} into something jose verifies with; `TypeError` if unusable. @internal */
export function compileKeys(keys: VerificationKeys, owner: string): KeySource {
  try {
    if (keys.jwks !== undefined) return createLocalJWKSet(keys.jwks)
    const key = keys.publicKey
    if (typeof key === 'string') return createPublicKey(key)
    return key.type === 'public' ? key : createPublicKey(key)
  } catch (cause) {
    throw new TypeError(`tokenkeeper/testing: unusable verification key for ${owner}`, { cause })
  }
}

/** Server-wide rules for every JWT assertion. @internal */
export interface AssertionPolicy {
  readonly clock: Clock
  readonly clockToleranceMs: number
  readonly maxAssertionLifetimeMs: number
  readonly algorithms: readonly string[]
  /** Accepted `aud` values (resolved lazily: the default is the token URL, known after listen). */
  readonly audiences: () => readonly string[]
}

/** What one assertion must satisfy. @internal */
export interface AssertionExpectations {
  /** 'client assertion' or 'assertion', used in error descriptions. */
  readonly label: string
  readonly issuer: string
  /** Exact `sub` required, or `undefined` to require only that one is present. */
  readonly subject: string | undefined
  readonly requireJti: boolean
}

/** Verified claims of an assertion, or why it was rejected (safe to send to the client). @internal */
export type AssertionResult =
  | { readonly ok: true; readonly claims: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly reason: string }

/** Reads `iss`/`sub` without verifying, to find the key to verify with; `undefined` if malformed. @internal */
export function peekIssuer(assertion: string): { iss?: string; sub?: string } | undefined {
  try {
    const { iss, sub } = decodeJwt(assertion)
    return { ...(iss === undefined ? {} : { iss }), ...(sub === undefined ? {} : { sub }) }
  } catch {
    return undefined
  }
}

const describeJoseError = (error: unknown, label: string): string => {
  if (error instanceof errors.JWSSignatureVerificationFailed) return `${label} signature is invalid`
  if (error instanceof errors.JOSEAlgNotAllowed)
    return `${label} is signed with an algorithm that is not allowed`
  if (error instanceof errors.JWKSNoMatchingKey)
    return `no registered key matches the ${label} header (kid/alg)`
  if (error instanceof errors.JOSENotSupported) return `${label} uses an unsupported algorithm or key`
  if (error instanceof errors.JOSEError) return `${label} is not a valid signed JWT`
  return `${label} could not be verified`
}

const iso = (at: number): string => new Date(at).toISOString()

/**
 * Verifies JWT assertions (RFC 7523 §3) against a key source and the server clock, and remembers
 * each `jti` until its `exp` so replays are refused. @internal
 */
export class AssertionVerifier {
  readonly #policy: AssertionPolicy
  /** `${issuer} ${jti}` → instant after which the entry may be forgotten. */
  readonly #seenJtis = new Map<string, number>()
  #pruneAtSize = 1024

  constructor(policy: AssertionPolicy) {
    this.#policy = policy
  }

  async verify(assertion: string, keys: KeySource, expect: AssertionExpectations): Promise<AssertionResult> {
    const { label } = expect
    let payload: Uint8Array
    try {
      payload = await this.#verifySignature(assertion, keys)
    } catch (error) {
      return { ok: false, reason: describeJoseError(error, label) }
    }
    let claims: unknown
    try {
      claims = JSON.parse(new TextDecoder().decode(payload))
    } catch {
      return { ok: false, reason: `${label} payload is not JSON` }
    }
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
      return { ok: false, reason: `${label} payload is not a JSON object` }
    }
    const reason = this.#checkClaims(claims as Record<string, unknown>, expect)
    if (reason !== undefined) return { ok: false, reason }
    return { ok: true, claims: claims as Record<string, unknown> }
  }

  async #verifySignature(assertion: string, keys: KeySource): Promise<Uint8Array> {
    const options = { algorithms: [...this.#policy.algorithms] }
    if (typeof keys !== 'function') return (await compactVerify(assertion, keys, options)).payload
    try {
      return (await compactVerify(assertion, keys, options)).payload
    } catch (error) {
      // Several JWKS keys match the header (no kid): try each, as jose's jwtVerify does.
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error
      for await (const candidate of error as unknown as AsyncIterable<KeyInput>) {
        try {
          return (await compactVerify(assertion, candidate, options)).payload
        } catch {
          // try the next candidate
        }
      }
      throw new errors.JWSSignatureVerificationFailed()
    }
  }

  #checkClaims(claims: Record<string, unknown>, expect: AssertionExpectations): string | undefined {
    const { label } = expect
    const { clockToleranceMs: tolerance, maxAssertionLifetimeMs } = this.#policy
    const now = this.#policy.clock.now()
    const clockHint = `by the server clock (${iso(now)}); check the client's clock`

    if (claims.iss !== expect.issuer) return `${label} iss does not match the expected issuer`
    if (typeof claims.sub !== 'string' || claims.sub.length === 0) return `${label} has no sub claim`
    if (expect.subject !== undefined && claims.sub !== expect.subject) {
      return `${label} sub must equal the client_id`
    }
    const audiences = this.#policy.audiences()
    const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : []
    if (!aud.some((value) => typeof value === 'string' && audiences.includes(value))) {
      return `${label} aud does not contain the token endpoint (expected one of: ${audiences.join(', ')})`
    }
    for (const name of ['exp', 'iat', 'nbf']) {
      if (
        claims[name] !== undefined &&
        (typeof claims[name] !== 'number' || !Number.isFinite(claims[name]))
      ) {
        return `${label} ${name} claim must be a number (seconds since the epoch)`
      }
    }
    const exp = claims.exp as number | undefined
    const iat = claims.iat as number | undefined
    const nbf = claims.nbf as number | undefined
    if (exp === undefined) return `${label} has no exp claim`
    if (exp * 1000 <= now - tolerance) return `${label} expired at ${iso(exp * 1000)} ${clockHint}`
    if (exp * 1000 > now + maxAssertionLifetimeMs + tolerance) {
      return `${label} exp is too far in the future (more than ${maxAssertionLifetimeMs / 1000} s ahead) ${clockHint}`
    }
    if (iat !== undefined && iat * 1000 > now + tolerance) {
      return `${label} iat is in the future (${iso(iat * 1000)}) ${clockHint}`
    }
    if (nbf !== undefined && nbf * 1000 > now + tolerance) {
      return `${label} nbf is in the future (${iso(nbf * 1000)}) ${clockHint}`
    }
    const jti = claims.jti
    if (jti !== undefined && (typeof jti !== 'string' || jti.length === 0))
      return `${label} jti must be a string`
    if (jti === undefined) return expect.requireJti ? `${label} has no jti claim` : undefined
    const replayKey = `${expect.issuer} ${jti}`
    const forgetAt = this.#seenJtis.get(replayKey)
    if (forgetAt !== undefined && forgetAt > now) return `${label} jti has already been used (replay)`
    this.#remember(replayKey, exp * 1000 + tolerance, now)
    return undefined
  }

  #remember(key: string, forgetAt: number, now: number): void {
    this.#seenJtis.set(key, forgetAt)
    if (this.#seenJtis.size < this.#pruneAtSize) return
    for (const [seen, at] of this.#seenJtis) if (at <= now) this.#seenJtis.delete(seen)
    this.#pruneAtSize = Math.max(1024, this.#seenJtis.size * 2)
  }
}
