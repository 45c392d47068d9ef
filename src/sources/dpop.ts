import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  KeyObject,
  randomUUID,
  webcrypto,
  type JsonWebKey,
} from 'node:crypto'
import { inspect } from 'node:util'
import type { SignJWT } from 'jose'
import { publicJwk, thumbprintOf } from './signing.js'

/** Algorithms a DPoP proof can be signed with (RFC 9449 §4.2; EdDSA is Ed25519, RFC 8037). */
export type DpopAlgorithm = 'ES256' | 'RS256' | 'PS256' | 'EdDSA'

const DPOP_ALGORITHMS: readonly DpopAlgorithm[] = ['ES256', 'RS256', 'PS256', 'EdDSA']

/**
 * A key pair to bind tokens to: a WebCrypto `CryptoKeyPair` or a pair of Node `KeyObject`s, with
 * the algorithm when the key allows more than one (an RSA key signs RS256 by default, PS256 when
 * `alg` says so).
 */
export interface DpopKeyPair {
  /** The private key that signs the proofs. Never shown. */
  readonly privateKey: webcrypto.CryptoKey | KeyObject
  /** Its public key, sent in each proof's `jwk` header. */
  readonly publicKey: webcrypto.CryptoKey | KeyObject
  /** Default: ES256 for P-256, EdDSA for Ed25519, PS256 for an RSA-PSS key, RS256 for RSA. */
  readonly alg?: DpopAlgorithm
}

/** What a DPoP proof says about the request it goes with (RFC 9449 §4.2). */
export interface DpopProofClaims {
  /** The HTTP method, e.g. `POST`. */
  readonly htm: string
  /** The request URL; its query and fragment are left out of `htu`. */
  readonly htu: string | URL
  /** Calendar time of the proof (epoch ms): its `iat`. */
  readonly now: number
  /** The access token the request carries, for `ath` (requests to a resource server). */
  readonly accessToken?: string | undefined
  /** The server's nonce for this origin, when it sent one. */
  readonly nonce?: string | undefined
}

/** Most origins whose nonce is remembered per key; the oldest is forgotten first. */
const MAX_NONCE_ORIGINS = 256

/** RFC 9449 §8.1: `nonce = 1*NQCHAR`, visible ASCII without `"` and `\`. */
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]{1,1024}$/

type SignJwtClass = typeof SignJWT
let signJwt: Promise<SignJwtClass> | undefined

/** jose, loaded on the first proof: importing tokenkeeper does not load it. */
function loadSignJwt(): Promise<SignJwtClass> {
  signJwt ??= import('jose').then((jose) => jose.SignJWT)
  return signJwt
}

function isKeyObject(value: unknown): value is KeyObject {
  return value instanceof KeyObject
}

function isCryptoKey(value: unknown): value is webcrypto.CryptoKey {
  // Node 20 exposes the class as a global only (not as webcrypto.CryptoKey).
  const CryptoKeyClass = (globalThis as { CryptoKey?: abstract new () => unknown }).CryptoKey
  return CryptoKeyClass !== undefined && value instanceof CryptoKeyClass
}

/** The algorithm a WebCrypto key was made for, when its name says it. */
function cryptoKeyAlg(key: webcrypto.CryptoKey): DpopAlgorithm | undefined {
  const algorithm = key.algorithm as { name: string; namedCurve?: string }
  if (algorithm.name === 'RSA-PSS') return 'PS256'
  if (algorithm.name === 'RSASSA-PKCS1-v1_5') return 'RS256'
  if (algorithm.name === 'ECDSA') return 'ES256'
  if (algorithm.name === 'Ed25519') return 'EdDSA'
  return undefined
}

function asKeyObject(
  key: unknown,
  what: string,
  side: string,
): { key: KeyObject; alg?: DpopAlgorithm; crypto?: webcrypto.CryptoKey } {
  if (isKeyObject(key)) return { key }
  if (isCryptoKey(key)) {
    const alg = cryptoKeyAlg(key)
    return { key: KeyObject.from(key), crypto: key, ...(alg === undefined ? {} : { alg }) }
  }
  throw new TypeError(`${what}: dpop.${side} must be a CryptoKey or a KeyObject`)
}

/** Whether a key of `type` can sign `alg`. */
function fits(alg: DpopAlgorithm, key: KeyObject): boolean {
  const type = key.asymmetricKeyType
  if (alg === 'ES256') return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
  if (alg === 'EdDSA') return type === 'ed25519'
  if (alg === 'RS256') return type === 'rsa'
  return type === 'rsa' || type === 'rsa-pss'
}

/** The WebCrypto parameters of each algorithm, for importing a private key to sign with. */
const IMPORT_PARAMS: Record<
  DpopAlgorithm,
  webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams | webcrypto.Algorithm
> = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  EdDSA: { name: 'Ed25519' },
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  PS256: { name: 'RSA-PSS', hash: 'SHA-256' },
}

/**
 * Private keys of DpopKeys, kept outside the objects so that no reflection or inspection reaches
 * them: a non-extractable WebCrypto key to sign with (jose signs with it directly), made once.
 * A Node `KeyObject` is imported from PKCS#8 through a copy parsed from PEM: jose would otherwise
 * export the key as a JWK on Node 20, which can hang a process on a key from
 * `generateKeyPairSync` (see `publicJwk`).
 */
const privateKeys = new WeakMap<DpopKey, () => Promise<webcrypto.CryptoKey>>()

function signer(
  key: KeyObject,
  given: webcrypto.CryptoKey | undefined,
  alg: DpopAlgorithm,
): () => Promise<webcrypto.CryptoKey> {
  if (given !== undefined) {
    const ready = Promise.resolve(given)
    return () => ready
  }
  const copy = createPrivateKey(key.export({ format: 'pem', type: 'pkcs8' }))
  let imported: Promise<webcrypto.CryptoKey> | undefined
  return () => {
    imported ??= webcrypto.subtle.importKey(
      'pkcs8',
      copy.export({ format: 'der', type: 'pkcs8' }),
      IMPORT_PARAMS[alg],
      false,
      ['sign'],
    )
    return imported
  }
}

/**
 * A checked DPoP key (RFC 9449): signs proofs, names itself by its JWK thumbprint (RFC 7638,
 * `jkt`), and remembers the nonce each server origin last sent. The private key is never shown:
 * `JSON.stringify` and `util.inspect` print the algorithm and the thumbprint only. Made from a
 * {@link DpopKeyPair} by {@link dpopKey}, or by a source from its `dpop` option.
 */
export class DpopKey {
  /** The proofs' `alg`. */
  readonly alg: DpopAlgorithm
  /** RFC 7638 thumbprint of the public key: the `cnf.jkt` of tokens bound to it. Not secret. */
  readonly thumbprint: string
  readonly #jwk: Readonly<Record<string, string>>
  readonly #nonces = new Map<string, string>()

  /** @internal Use {@link dpopKey}. */
  constructor(pair: DpopKeyPair, what: string) {
    if (typeof pair !== 'object' || pair === null) {
      throw new TypeError(
        `${what}: dpop must be a key pair ({ privateKey, publicKey }), e.g. from generateDpopKey()`,
      )
    }
    const secret = asKeyObject(pair.privateKey, what, 'privateKey')
    const open = asKeyObject(pair.publicKey, what, 'publicKey')
    if (secret.key.type !== 'private') throw new TypeError(`${what}: dpop.privateKey is not a private key`)
    if (open.key.type !== 'public') throw new TypeError(`${what}: dpop.publicKey is not a public key`)
    if (pair.alg !== undefined && !DPOP_ALGORITHMS.includes(pair.alg)) {
      throw new TypeError(`${what}: dpop.alg must be one of ${DPOP_ALGORITHMS.join(', ')}`)
    }
    const type = secret.key.asymmetricKeyType
    const alg =
      pair.alg ??
      secret.alg ??
      (type === 'ec' ? 'ES256' : type === 'ed25519' ? 'EdDSA' : type === 'rsa-pss' ? 'PS256' : 'RS256')
    if (!fits(alg, secret.key)) {
      const named =
        type === 'ec'
          ? `an EC ${secret.key.asymmetricKeyDetails?.namedCurve ?? ''} key`
          : `a ${type ?? 'unknown'} key`
      throw new TypeError(
        `${what}: ${named} cannot sign DPoP proofs with ${alg} (ES256: P-256, EdDSA: Ed25519, RS256/PS256: RSA)`,
      )
    }
    if (secret.crypto !== undefined && !secret.crypto.usages.includes('sign')) {
      throw new TypeError(`${what}: dpop.privateKey is a CryptoKey without the "sign" usage`)
    }
    if (secret.crypto !== undefined && secret.alg !== undefined && secret.alg !== alg) {
      throw new TypeError(`${what}: dpop.privateKey is a ${secret.alg} CryptoKey; it cannot sign ${alg}`)
    }
    if (
      (type === 'rsa' || type === 'rsa-pss') &&
      (secret.key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048
    ) {
      throw new TypeError(`${what}: DPoP RSA keys must be at least 2048 bits`)
    }
    // Through PEM, never a JWK export of the key itself (see publicJwk).
    const jwk = publicJwk(open.key)
    if (thumbprintOf(publicJwk(createPublicKey(secret.key))) !== thumbprintOf(jwk)) {
      throw new TypeError(`${what}: dpop.publicKey is not the public key of dpop.privateKey`)
    }
    this.alg = alg
    this.thumbprint = thumbprintOf(jwk)
    this.#jwk = Object.freeze(publicMembers(jwk))
    privateKeys.set(this, signer(secret.key, secret.crypto, alg))
  }

  /** The public key as a JWK, as proofs carry it in their `jwk` header. */
  get publicJwk(): Readonly<Record<string, string>> {
    return this.#jwk
  }

  /** The nonce `origin` last sent (`DPoP-Nonce`), if any. */
  nonce(origin: string): string | undefined {
    return this.#nonces.get(origin)
  }

  /**
   * Remembers the `DPoP-Nonce` a response from `origin` carried. Returns true when it is new.
   * A header that is not a valid nonce is ignored.
   */
  rememberNonce(origin: string, value: string | null | undefined): boolean {
    if (typeof value !== 'string' || !NONCE.test(value)) return false
    if (this.#nonces.get(origin) === value) return false
    this.#nonces.delete(origin)
    this.#nonces.set(origin, value)
    if (this.#nonces.size > MAX_NONCE_ORIGINS) {
      const oldest = this.#nonces.keys().next().value
      if (oldest !== undefined) this.#nonces.delete(oldest)
    }
    return true
  }

  /**
   * Signs a fresh proof (RFC 9449 §4.2): header `typ: dpop+jwt`, `alg` and the public `jwk`;
   * claims `htm`, `htu` (no query, no fragment), `iat`, a unique `jti`, and `ath` and `nonce`
   * when given. The proof is a credential for a short time: never log it.
   */
  async proof(claims: DpopProofClaims): Promise<string> {
    const Signer = await loadSignJwt()
    const payload: Record<string, unknown> = {
      htm: claims.htm,
      htu: dpopHtu(claims.htu),
      iat: Math.floor(claims.now / 1000),
      jti: randomUUID(),
    }
    if (claims.accessToken !== undefined) payload['ath'] = accessTokenHash(claims.accessToken)
    if (claims.nonce !== undefined) payload['nonce'] = claims.nonce
    return new Signer(payload)
      .setProtectedHeader({ typ: 'dpop+jwt', alg: this.alg, jwk: { ...this.#jwk } })
      .sign(await (privateKeys.get(this) as () => Promise<webcrypto.CryptoKey>)())
  }

  /** A secret-free description: the algorithm and the thumbprint. */
  toJSON(): Record<string, string> {
    return { alg: this.alg, jkt: this.thumbprint }
  }

  /** What `util.inspect` and `console.log` show: the algorithm and the thumbprint, never the key. */
  [inspect.custom](): string {
    return `DpopKey ${inspect(this.toJSON())}`
  }
}

/** The members of a public JWK that a proof's header carries (no `key_ops`, `ext`, ...). */
function publicMembers(jwk: JsonWebKey): Record<string, string> {
  const members: Record<string, string> = {}
  for (const name of ['kty', 'crv', 'x', 'y', 'n', 'e'] as const) {
    const value = jwk[name]
    if (typeof value === 'string') members[name] = value
  }
  return members
}

/** `htu` of a request: its URL without query and fragment (RFC 9449 §4.2). */
export function dpopHtu(url: string | URL): string {
  const parsed = new URL(url)
  parsed.search = ''
  parsed.hash = ''
  return parsed.href
}

/** `ath`: base64url of the SHA-256 of the access token (RFC 9449 §4.2). */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('base64url')
}

/**
 * Checks a key pair for DPoP and returns the {@link DpopKey} sources sign with. Sources do this
 * themselves with their `dpop` option; call it to share one key (and its nonce memory) between
 * sources, or to read its thumbprint. A bad key is a `TypeError` now, not a failed request later.
 *
 * @example
 * ```ts
 * const key = dpopKey(await generateDpopKey())
 * console.log(key.thumbprint) // the jkt the server binds tokens to
 * ```
 */
export function dpopKey(pair: DpopKeyPair | DpopKey, what = 'dpopKey'): DpopKey {
  return pair instanceof DpopKey ? pair : new DpopKey(pair, what)
}

/** A key pair made by {@link generateDpopKey}. */
export interface GeneratedDpopKey extends DpopKeyPair {
  /** The private key. Keep it in this process; never log it. */
  readonly privateKey: KeyObject
  /** The public key. */
  readonly publicKey: KeyObject
  /** The algorithm it was made for. */
  readonly alg: DpopAlgorithm
}

/**
 * Generates a key pair for DPoP: ES256 (P-256) by default; RS256 and PS256 make a 2048-bit RSA
 * key, EdDSA an Ed25519 key. The result is a pair of `KeyObject`s for the `dpop` option of a
 * source; keep the private key in this process (see `docs/DPOP.md`).
 *
 * @example
 * ```ts
 * import { clientCredentials, clientSecretBasic, generateDpopKey } from 'tokenkeeper'
 * const source = clientCredentials({
 *   tokenUrl: 'https://idp.example/oauth/token',
 *   clientId: 'svc-a',
 *   auth: clientSecretBasic(process.env.SECRET!),
 *   dpop: await generateDpopKey(),
 * })
 * ```
 */
export function generateDpopKey(alg: DpopAlgorithm = 'ES256'): Promise<GeneratedDpopKey> {
  if (!DPOP_ALGORITHMS.includes(alg)) {
    return Promise.reject(new TypeError(`generateDpopKey: alg must be one of ${DPOP_ALGORITHMS.join(', ')}`))
  }
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, publicKey: KeyObject, privateKey: KeyObject): void => {
      if (error === null) resolve({ privateKey, publicKey, alg })
      else reject(error)
    }
    if (alg === 'ES256') generateKeyPair('ec', { namedCurve: 'P-256' }, done)
    else if (alg === 'EdDSA') generateKeyPair('ed25519', {}, done)
    else generateKeyPair('rsa', { modulusLength: 2048 }, done)
  })
}
