/**
 * DPoP (RFC 9449) on the wire and at construction: key checks (each bad input a TypeError, as
 * docs/ERRORS.md lists them), the proof a token request carries, the one nonce retry and when it
 * stands, a Bearer answer to a DPoP request (recorded, or DPOP_NOT_BOUND), thumbprints equal to
 * jose's, and the stored form of a bound token. The token endpoint is a real HTTP server on
 * 127.0.0.1 (test/wire/local-server.ts) that answers as each case needs.
 */
import { generateKeyPairSync, webcrypto } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose'
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AccessToken,
  clientCredentials,
  clientSecretBasic,
  deserializeToken,
  dpopKey,
  generateDpopKey,
  googleServiceAccount,
  isOAuthError,
  jwtBearer,
  serializeToken,
  TokenManager,
  tokenSource,
  type DpopAlgorithm,
  type RefreshSuccessEvent,
} from '../../src/index.js'
import { createTestClock } from '../../src/testing/index.js'
import { startLocalServer, type CapturedRequest, type LocalServer } from '../wire/local-server.js'
import { errorsTableRows } from '../support/errors-table.js'

let server: LocalServer
let tokenUrl: string

function claimsOf(proof: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
}

function proofOf(request: CapturedRequest): string {
  const proof = request.headers['dpop']
  if (typeof proof !== 'string') throw new Error('no DPoP header')
  return proof
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

beforeAll(async () => {
  server = await startLocalServer()
  tokenUrl = `${server.origin}/token`
  // DPoP token endpoint: DPoP answer when a proof came, Bearer otherwise.
  server.route('/token', (req, res) => {
    json(res, 200, {
      access_token: `tok-${server.hits('/token').length}`,
      token_type: req.headers['dpop'] === undefined ? 'Bearer' : 'DPoP',
      expires_in: 300,
    })
  })
  // Always answers Bearer, whatever the request.
  server.route('/bearer-only', (_req, res) =>
    json(res, 200, { access_token: 'bearer-tok', token_type: 'Bearer', expires_in: 300 }),
  )
  // Demands a nonce once (nonce-1), then accepts proofs with it.
  server.route('/nonce-once', (req, res) => {
    const nonce = claimsOf(String(req.headers['dpop']))['nonce']
    if (nonce !== 'nonce-1') json(res, 400, { error: 'use_dpop_nonce' }, { 'dpop-nonce': 'nonce-1' })
    else
      json(
        res,
        200,
        { access_token: 'nonce-tok', token_type: 'DPoP', expires_in: 300 },
        { 'dpop-nonce': 'nonce-2' },
      )
  })
  // Demands a new nonce on every request: the one retry cannot satisfy it.
  server.route('/nonce-always', (_req, res) => {
    json(
      res,
      400,
      { error: 'use_dpop_nonce', error_description: 'fresh nonce needed' },
      { 'dpop-nonce': `n-${server.hits('/nonce-always').length}` },
    )
  })
  // Demands a nonce but never sends one.
  server.route('/nonce-none', (_req, res) => json(res, 400, { error: 'use_dpop_nonce' }))
})

afterAll(async () => {
  await server?.close()
})

function source(path = '/token', extra: Record<string, unknown> = {}, dpop?: Parameters<typeof dpopKey>[0]) {
  return async () =>
    clientCredentials({
      tokenUrl: `${server.origin}${path}`,
      clientId: 'svc',
      auth: clientSecretBasic('a-client-secret'),
      dpop: dpop ?? (await generateDpopKey()),
      ...extra,
    })
}

describe('DPoP keys: bad inputs are TypeErrors at construction', () => {
  const base = (): { tokenUrl: string; clientId: string; auth: ReturnType<typeof clientSecretBasic> } => ({
    tokenUrl,
    clientId: 'svc',
    auth: clientSecretBasic('a-client-secret'),
  })
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
  const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 })

  it.each([
    ['not an object', 'a PEM string', /dpop must be a key pair/],
    [
      'a key that is not a CryptoKey or KeyObject',
      { privateKey: 'pem', publicKey: ec256.publicKey },
      /dpop.privateKey must be a CryptoKey or a KeyObject/,
    ],
    [
      'the public key as the private key',
      { privateKey: ec256.publicKey, publicKey: ec256.publicKey },
      /dpop.privateKey is not a private key/,
    ],
    [
      'the private key as the public key',
      { privateKey: ec256.privateKey, publicKey: ec256.privateKey },
      /dpop.publicKey is not a public key/,
    ],
    ['a P-384 key', ec384, /an EC secp384r1 key cannot sign DPoP proofs with ES256/],
    ['an EC key with alg RS256', { ...ec256, alg: 'RS256' }, /cannot sign DPoP proofs with RS256/],
    ['an unknown alg', { ...ec256, alg: 'HS256' }, /dpop.alg must be one of ES256, RS256, PS256, EdDSA/],
    ['a 1024-bit RSA key', rsa1024, /at least 2048 bits/],
    [
      'public and private keys of different pairs',
      { privateKey: ec256.privateKey, publicKey: other.publicKey },
      /dpop.publicKey is not the public key of dpop.privateKey/,
    ],
  ])('%s', (_what, dpop, message) => {
    expect(() => clientCredentials({ ...base(), dpop: dpop as never })).toThrow(TypeError)
    expect(() => clientCredentials({ ...base(), dpop: dpop as never })).toThrow(message)
  })

  it('a CryptoKey without the sign usage', async () => {
    // An ECDH P-256 key: the right curve, made to derive bits, not to sign.
    const pair = await webcrypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, [
      'deriveBits',
    ])
    expect(() => clientCredentials({ ...base(), dpop: pair })).toThrow(/a CryptoKey without the "sign" usage/)
  })

  it('a CryptoKey made for another algorithm', async () => {
    const pair = await webcrypto.subtle.generateKey(
      {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      },
      false,
      ['sign', 'verify'],
    )
    expect(() => clientCredentials({ ...base(), dpop: { ...pair, alg: 'PS256' } })).toThrow(
      /a RS256 CryptoKey; it cannot sign PS256/,
    )
  })

  it('requireDpopBinding without a dpop key', () => {
    expect(() => clientCredentials({ ...base(), requireDpopBinding: true })).toThrow(
      /requireDpopBinding needs a dpop key/,
    )
  })

  it('generateDpopKey with an unknown alg', async () => {
    await expect(generateDpopKey('HS256' as DpopAlgorithm)).rejects.toThrow(TypeError)
  })

  it('the message names the source function, never key material', () => {
    const thrown = (() => {
      try {
        jwtBearer({ tokenUrl, issuer: 'me', key: ec256.privateKey, dpop: ec384 })
      } catch (error) {
        return error as Error
      }
      throw new Error('expected a TypeError')
    })()
    expect(thrown.message.startsWith('jwtBearer: ')).toBe(true)
  })
})

describe('DPoP key thumbprints', () => {
  it.each<DpopAlgorithm>(['ES256', 'RS256', 'PS256', 'EdDSA'])(
    '%s: the RFC 7638 thumbprint is what jose computes',
    async (alg) => {
      const key = dpopKey(await generateDpopKey(alg))
      expect(key.alg).toBe(alg)
      expect(key.thumbprint).toBe(await calculateJwkThumbprint({ ...key.publicJwk }))
    },
  )

  it('an RSA KeyObject pair signs RS256 unless alg says PS256', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    expect(dpopKey(rsa).alg).toBe('RS256')
    expect(dpopKey({ ...rsa, alg: 'PS256' }).alg).toBe('PS256')
  })

  it('a WebCrypto RSA-PSS pair signs PS256, Ed25519 EdDSA', async () => {
    const pss = await webcrypto.subtle.generateKey(
      { name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    )
    expect(dpopKey(pss).alg).toBe('PS256')
    const ed = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, false, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair
    expect(dpopKey(ed).alg).toBe('EdDSA')
  })

  it('the thumbprint is part of the cache key: another key, another key; the same key, the same key', async () => {
    const pair = await generateDpopKey()
    const a = await source('/token', {}, pair)()
    const b = await source('/token', {}, pair)()
    const c = await source()()
    const plain = clientCredentials({ tokenUrl, clientId: 'svc', auth: clientSecretBasic('a-client-secret') })
    expect(a.key).toBe(b.key)
    expect(a.key).not.toBe(c.key)
    expect(a.key).toContain(`|dpop=${dpopKey(pair).thumbprint}`)
    expect(plain.key).not.toContain('dpop')
    const required = await source('/token', { requireDpopBinding: true }, pair)()
    expect(required.key).not.toBe(a.key)
  })
})

describe('DPoP token requests', () => {
  it('carry a fresh proof: typ dpop+jwt, the public jwk, htm POST, htu without query, iat from the clock, unique jti', async () => {
    const clock = createTestClock(Date.UTC(2030, 0, 1))
    const key = dpopKey(await generateDpopKey())
    const s = clientCredentials({
      tokenUrl: `${tokenUrl}?tenant=t1`,
      clientId: 'svc',
      auth: clientSecretBasic('a-client-secret'),
      dpop: key,
      clock,
    })
    const before = server.hits('/token').length
    const first = await s.fetchToken()
    await s.fetchToken()
    const proofs = server.hits('/token').slice(before).map(proofOf)
    expect(proofs).toHaveLength(2)
    for (const proof of proofs) {
      const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        currentDate: new Date(clock.now()),
      })
      expect(protectedHeader.alg).toBe('ES256')
      expect(protectedHeader.jwk).toEqual(key.publicJwk)
      expect(protectedHeader.jwk).not.toHaveProperty('d')
      expect(payload['htm']).toBe('POST')
      expect(payload['htu']).toBe(tokenUrl)
      expect(payload.iat).toBe(Math.floor(Date.UTC(2030, 0, 1) / 1000))
      expect(payload['ath']).toBeUndefined()
    }
    expect(claimsOf(proofs[0]!)['jti']).not.toBe(claimsOf(proofs[1]!)['jti'])
    expect(first.type).toBe('DPoP')
    expect(first.binding).toEqual({ method: 'dpop', jkt: key.thumbprint, bound: true })
  })

  it('jwtBearer and googleServiceAccount sources take dpop too', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const pem = rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    const google = googleServiceAccount({
      credentials: {
        type: 'service_account',
        client_email: 'sa@p.iam',
        private_key: pem,
        private_key_id: 'k1',
        token_uri: tokenUrl,
      },
      scopes: ['s'],
      dpop: await generateDpopKey(),
    })
    const bearer = jwtBearer({ tokenUrl, issuer: 'me', key: pem, dpop: await generateDpopKey('EdDSA') })
    for (const s of [google, bearer]) {
      expect(s.dpop).toBeDefined()
      expect(s.key).toContain(`|dpop=${s.dpop!.thumbprint}`)
      const token = await s.fetchToken()
      expect(token.type).toBe('DPoP')
      expect(decodeProtectedHeader(proofOf(server.hits('/token').at(-1)!)).alg).toBe(s.dpop!.alg)
    }
  })

  it('a use_dpop_nonce refusal is retried once with the nonce; the next nonce is remembered from the answer', async () => {
    const key = dpopKey(await generateDpopKey())
    const s = await source('/nonce-once', {}, key)()
    const token = await s.fetchToken()
    const hits = server.hits('/nonce-once')
    expect(hits).toHaveLength(2)
    expect(claimsOf(proofOf(hits[0]!))['nonce']).toBeUndefined()
    expect(claimsOf(proofOf(hits[1]!))['nonce']).toBe('nonce-1')
    expect(token.value).toBe('nonce-tok')
    // Updated from the successful answer's DPoP-Nonce.
    expect(key.nonce(server.origin)).toBe('nonce-2')
  })

  it('a nonce demanded again after the one retry', async () => {
    const s = await source('/nonce-always')()
    const before = server.hits('/nonce-always').length
    const error = await s.fetchToken().catch((e: unknown) => e)
    expect(server.hits('/nonce-always').length - before).toBe(2)
    expect(isOAuthError(error, 'use_dpop_nonce')).toBe(true)
    expect(error).toMatchObject({ code: 'OAUTH_ERROR', retryable: true, status: 400 })
    expect((error as Error).message).toMatch(
      /asked for a DPoP nonce again after one retry with the nonce it sent/,
    )
  })

  it('a nonce demanded without a DPoP-Nonce header', async () => {
    const s = await source('/nonce-none')()
    const before = server.hits('/nonce-none').length
    const error = await s.fetchToken().catch((e: unknown) => e)
    expect(server.hits('/nonce-none').length - before).toBe(1)
    expect(isOAuthError(error, 'use_dpop_nonce')).toBe(true)
    expect((error as Error).message).toMatch(/without sending a new nonce/)
  })

  it('a Bearer answer to a DPoP request is recorded in token.binding and the refreshSuccess event', async () => {
    const s = await source('/bearer-only')()
    const warnings: string[] = []
    const logger = { debug() {}, info() {}, warn: (message: string) => warnings.push(message), error() {} }
    const tokens = new TokenManager({ logger })
    const events: RefreshSuccessEvent[] = []
    tokens.on('refreshSuccess', (event) => events.push(event))
    const token = await tokens.get(s)
    expect(token.type).toBe('Bearer')
    expect(token.binding).toEqual({ method: 'dpop', jkt: s.dpop!.thumbprint, bound: false })
    expect(events[0]!.binding).toEqual({ method: 'dpop', jkt: s.dpop!.thumbprint, bound: false })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/answered a bearer token to a DPoP request/)
    // Sent as the bearer token it is, without a proof.
    const headers = await tokens.headers(s, { method: 'GET', url: 'https://api.example/x' })
    expect(headers).toEqual({ authorization: 'Bearer bearer-tok' })
    await tokens.close()
  })

  it('requireDpopBinding and a Bearer answer', async () => {
    const s = await source('/bearer-only', { requireDpopBinding: true })()
    await expect(s.fetchToken()).rejects.toMatchObject({
      code: 'DPOP_NOT_BOUND',
      retryable: false,
      status: 200,
    })
  })

  it('acceptedTokenTypes given explicitly still rule', async () => {
    const s = await source('/token', { acceptedTokenTypes: ['bearer'] })()
    await expect(s.fetchToken()).rejects.toMatchObject({ code: 'UNSUPPORTED_TOKEN_TYPE' })
  })

  it('a DPoP token from a source without a dpop key', async () => {
    const bound = tokenSource('custom-dpop', () =>
      Promise.resolve(
        new AccessToken({
          value: 'bound-elsewhere',
          type: 'DPoP',
          scopes: [],
          issuedAt: Date.now(),
          expiresAt: Date.now() + 60_000,
        }),
      ),
    )
    const tokens = new TokenManager()
    await expect(tokens.headers(bound, { method: 'GET', url: 'https://api.example/' })).rejects.toMatchObject(
      {
        code: 'DPOP_KEY_MISSING',
        retryable: false,
      },
    )
    let sent = 0
    const api = tokens.fetch(bound, {
      fetch: () => {
        sent++
        return Promise.resolve(new Response('ok'))
      },
    })
    await expect(api('https://api.example/')).rejects.toMatchObject({ code: 'DPOP_KEY_MISSING' })
    expect(sent).toBe(0)
    await tokens.close()
  })
})

describe('bound tokens in their stored form', () => {
  it('keep their binding through serializeToken / deserializeToken', async () => {
    const s = await source()()
    const token = await s.fetchToken()
    const again = deserializeToken(serializeToken(token))
    expect(again.binding).toEqual(token.binding)
    expect(JSON.parse(JSON.stringify(token))).toMatchObject({ binding: { method: 'dpop', bound: true } })
  })

  it('a malformed binding is refused', () => {
    const text = serializeToken(
      new AccessToken({ value: 'v-123456', type: 'DPoP', scopes: [], issuedAt: 0, expiresAt: 1 }),
    )
    const broken = JSON.stringify({ ...(JSON.parse(text) as object), binding: { method: 'mtls', jkt: 1 } })
    expect(() => deserializeToken(broken)).toThrow(/malformed/)
  })
})

describe('DPoP nonce memory', () => {
  it('keeps the last valid nonce per origin, ignores invalid ones, and forgets the oldest beyond 256 origins', async () => {
    const key = dpopKey(await generateDpopKey())
    expect(key.rememberNonce('https://a.example', 'n1')).toBe(true)
    expect(key.rememberNonce('https://a.example', 'n1')).toBe(false)
    expect(key.rememberNonce('https://a.example', 'bad "quote"')).toBe(false)
    expect(key.rememberNonce('https://a.example', null)).toBe(false)
    expect(key.nonce('https://a.example')).toBe('n1')
    for (let i = 0; i < 256; i++) key.rememberNonce(`https://o${i}.example`, `n${i}`)
    expect(key.nonce('https://a.example')).toBeUndefined()
    expect(key.nonce('https://o255.example')).toBe('n255')
  })
})

/** The rows of docs/ERRORS.md "Bad DPoP inputs", in order: each is the title of a test above. */
const ERROR_ROWS = [
  'not an object',
  'a key that is not a CryptoKey or KeyObject',
  'the public key as the private key',
  'the private key as the public key',
  'a P-384 key',
  'an EC key with alg RS256',
  'an unknown alg',
  'a 1024-bit RSA key',
  'public and private keys of different pairs',
  'a CryptoKey without the sign usage',
  'a CryptoKey made for another algorithm',
  'requireDpopBinding without a dpop key',
  'generateDpopKey with an unknown alg',
  'a nonce demanded again after the one retry',
  'a nonce demanded without a DPoP-Nonce header',
  'requireDpopBinding and a Bearer answer',
  'a DPoP token from a source without a dpop key',
]

describe('docs/ERRORS.md', () => {
  it('lists the bad DPoP inputs of this file, each a test', () => {
    const rows = errorsTableRows('dpop-inputs')
    expect(rows.map((cells) => cells.slice(0, 2))).toEqual(
      ERROR_ROWS.map((name, index) => [String(index + 1), name]),
    )
    const self = readFileSync(new URL(import.meta.url), 'utf8')
    // Once in ERROR_ROWS, once as a test's title (or its table row).
    for (const name of ERROR_ROWS) expect(self.split(`'${name}'`).length - 1).toBeGreaterThanOrEqual(2)
  })
})
