import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose'
import { KeyObject, randomUUID } from 'node:crypto'
import type { TokenServer } from '../../src/testing/index.js'

export const FORM = 'application/x-www-form-urlencoded'
export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** RFC 6749 §2.3.1: form-urlencode id and secret, then base64. */
export function basic(clientId: string, secret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+')
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(secret)}`).toString('base64')}`
}

export interface TokenCall {
  readonly status: number
  readonly headers: Headers
  readonly json: Record<string, unknown>
}

/** POSTs a form to the token endpoint and parses the JSON answer. */
export async function postToken(
  server: TokenServer,
  params: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<TokenCall> {
  const response = await fetch(server.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': FORM, ...headers },
    body: new URLSearchParams(params),
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, json: text === '' ? {} : JSON.parse(text) }
}

export interface KeyPair {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  readonly publicJwk: JWK
}

export async function keyPair(alg: 'RS256' | 'PS256' | 'ES256'): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), alg, kid: randomUUID() }
  return { privateKey: KeyObject.from(privateKey), publicKey: KeyObject.from(publicKey), publicJwk }
}

export interface AssertionClaims {
  readonly iss?: string
  readonly sub?: string
  readonly aud?: string | string[]
  /** Seconds since the epoch; `null` omits the claim. */
  readonly exp?: number | null
  readonly iat?: number | null
  readonly jti?: string | null
  readonly scope?: string
}

/** Signs an assertion; times default to `nowMs` (iat) and `nowMs + 60 s` (exp). */
export async function signAssertion(
  key: KeyPair,
  alg: string,
  nowMs: number,
  claims: AssertionClaims,
  kid?: string,
): Promise<string> {
  const now = Math.floor(nowMs / 1000)
  const payload: Record<string, unknown> = {
    iss: claims.iss,
    sub: claims.sub,
    aud: claims.aud,
    exp: claims.exp === undefined ? now + 60 : claims.exp,
    iat: claims.iat === undefined ? now : claims.iat,
    jti: claims.jti === undefined ? randomUUID() : claims.jti,
    scope: claims.scope,
  }
  for (const [name, value] of Object.entries(payload))
    if (value === undefined || value === null) delete payload[name]
  return new SignJWT(payload)
    .setProtectedHeader({ alg, ...(kid === undefined ? {} : { kid }) })
    .sign(key.privateKey)
}
