import { generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto'

/** A generated key pair in every form a source accepts, plus the parts that must never leak. */
export interface TestKeyPair {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** PKCS#8 PEM. */
  readonly pem: string
  /** PKCS#1 (RSA) or SEC1 (EC) PEM. */
  readonly traditionalPem: string
  readonly jwk: JsonWebKey
  /** Strings of private material: JWK `d` (and RSA CRT parts) and base64 lines of the PEMs. */
  readonly privateParts: readonly string[]
}

const cache = new Map<string, TestKeyPair>()

function pemLines(pem: string): string[] {
  return pem.split('\n').filter((line) => line.length >= 40 && !line.startsWith('-----'))
}

function build(privateKey: KeyObject, publicKey: KeyObject, traditional: 'pkcs1' | 'sec1'): TestKeyPair {
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  const traditionalPem = privateKey.export({ format: 'pem', type: traditional }).toString()
  const jwk = privateKey.export({ format: 'jwk' })
  const secretMembers = [jwk.d, jwk.p, jwk.q, jwk.dp, jwk.dq, jwk.qi].filter(
    (value): value is string => typeof value === 'string',
  )
  return {
    privateKey,
    publicKey,
    pem,
    traditionalPem,
    jwk,
    privateParts: [...secretMembers, ...pemLines(pem), ...pemLines(traditionalPem)],
  }
}

/** An RSA key pair, generated once per name and size. */
export function rsaKeyPair(name = 'a', modulusLength = 2048): TestKeyPair {
  const id = `rsa:${name}:${modulusLength}`
  let pair = cache.get(id)
  if (pair === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength })
    pair = build(privateKey, publicKey, 'pkcs1')
    cache.set(id, pair)
  }
  return pair
}

/** An EC key pair, generated once per name and curve. */
export function ecKeyPair(name = 'a', namedCurve = 'P-256'): TestKeyPair {
  const id = `ec:${name}:${namedCurve}`
  let pair = cache.get(id)
  if (pair === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve })
    pair = build(privateKey, publicKey, 'sec1')
    cache.set(id, pair)
  }
  return pair
}

/** Fails when any rendering contains any of the forbidden strings. */
export function findLeaks(renderings: readonly string[], forbidden: readonly string[]): string[] {
  const leaks: string[] = []
  for (const shown of renderings) {
    for (const value of forbidden) if (value.length > 0 && shown.includes(value)) leaks.push(value)
  }
  return leaks
}
