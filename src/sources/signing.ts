import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomUUID,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto'

/** Signing algorithms supported for client assertions and JWT-bearer grants. */
export type SigningAlgorithm = 'RS256' | 'PS256' | 'ES256'

const ALGORITHMS: readonly SigningAlgorithm[] = ['RS256', 'PS256', 'ES256']

/** A private key: a JWK object, a PEM string (PKCS#8 or PKCS#1/SEC1), or a `KeyObject`. */
export type PrivateKeyInput = JsonWebKey | string | KeyObject

/** A private key checked and ready to sign with. */
export interface SigningKey {
  readonly key: KeyObject
  readonly alg: SigningAlgorithm
  /** RFC 7638 thumbprint of the public key: identifies the key without revealing it. */
  readonly thumbprint: string
}

/**
 * The RFC 7638 thumbprint (SHA-256, base64url) of a public JWK: EC, RSA or OKP (RFC 8037 §2).
 * Synchronous, so that a source can put it in its key at construction. @internal
 */
export function thumbprintOf(publicJwk: JsonWebKey): string {
  // RFC 7638 §3.2: only the required members, in lexicographic order.
  const members =
    publicJwk.kty === 'EC'
      ? { crv: publicJwk.crv, kty: publicJwk.kty, x: publicJwk.x, y: publicJwk.y }
      : publicJwk.kty === 'OKP'
        ? { crv: publicJwk.crv, kty: publicJwk.kty, x: publicJwk.x }
        : { e: publicJwk.e, kty: publicJwk.kty, n: publicJwk.n }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}

function isKeyObject(value: unknown): value is KeyObject {
  return typeof value === 'object' && value !== null && typeof (value as KeyObject).export === 'function'
}

/**
 * Checks a private key and the algorithm to use with it, at construction time, so that a bad
 * key is a `TypeError` now rather than a failed token request later.
 */
export function loadSigningKey(
  input: PrivateKeyInput,
  alg: SigningAlgorithm | undefined,
  what: string,
): SigningKey {
  let key: KeyObject
  try {
    if (isKeyObject(input)) key = input
    else if (typeof input === 'string') key = createPrivateKey(input)
    else key = createPrivateKey({ key: input, format: 'jwk' })
  } catch {
    throw new TypeError(
      `${what}: the private key could not be read (expected a JWK, a PEM string or a KeyObject)`,
    )
  }
  if (key.type !== 'private') throw new TypeError(`${what}: the key is not a private key`)
  const jwkAlg =
    !isKeyObject(input) && typeof input === 'object' ? (input as { alg?: unknown }).alg : undefined
  const type = key.asymmetricKeyType
  const chosen =
    alg ??
    (typeof jwkAlg === 'string' ? (jwkAlg as SigningAlgorithm) : undefined) ??
    (type === 'ec' ? 'ES256' : 'RS256')
  if (!ALGORITHMS.includes(chosen)) {
    throw new TypeError(`${what}: alg must be one of ${ALGORITHMS.join(', ')}`)
  }
  const fits =
    chosen === 'ES256'
      ? type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
      : type === 'rsa' || (chosen === 'PS256' && type === 'rsa-pss')
  if (!fits) throw new TypeError(`${what}: a ${type ?? 'unknown'} key cannot sign ${chosen}`)
  if ((type === 'rsa' || type === 'rsa-pss') && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new TypeError(`${what}: RSA keys must be at least 2048 bits`)
  }
  const thumbprint = thumbprintOf(publicJwk(key))
  return { key, alg: chosen, thumbprint }
}

/**
 * The public JWK of a key, read from a copy of the key made through SPKI PEM.
 *
 * Exporting a JWK straight from a key made by `generateKeyPairSync` can hang the process for
 * good on Node 20: the export holds the key's lock while it allocates, and a garbage collection
 * in that moment finalizes the key-generation job, which waits for the same lock. A copy parsed
 * from PEM has a lock of its own.
 *
 * @internal
 */
export function publicJwk(key: KeyObject): JsonWebKey {
  const pem = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'pem', type: 'spki' })
  return createPublicKey(pem).export({ format: 'jwk' })
}

/** The claims of a signed assertion, times in epoch seconds. */
export interface AssertionClaims {
  readonly iss: string
  readonly sub?: string | undefined
  readonly aud: string
  readonly lifetimeMs: number
  readonly now: number
  readonly extra?: Readonly<Record<string, unknown>> | undefined
}

/**
 * Signs a fresh JWT (RFC 7523 §3): a unique `jti`, `iat` now, `exp` at most `lifetimeMs` later.
 * jose is loaded on first use, so importing tokenkeeper does not load it.
 */
export async function signAssertion(
  signing: SigningKey,
  kid: string | undefined,
  claims: AssertionClaims,
): Promise<string> {
  const { SignJWT } = await import('jose')
  const iat = Math.floor(claims.now / 1000)
  const payload: Record<string, unknown> = {
    ...claims.extra,
    iss: claims.iss,
    aud: claims.aud,
    jti: randomUUID(),
    iat,
    exp: iat + Math.max(1, Math.floor(claims.lifetimeMs / 1000)),
  }
  if (claims.sub !== undefined) payload['sub'] = claims.sub
  return new SignJWT(payload)
    .setProtectedHeader({ alg: signing.alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }) })
    .sign(signing.key)
}
