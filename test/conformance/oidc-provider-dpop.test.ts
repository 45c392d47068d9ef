/**
 * DPoP (RFC 9449) against panva's oidc-provider (v9) with its dPoP feature on and nonces
 * required (features.dPoP.nonceSecret + requireNonce): every token request carries a proof the
 * provider verifies, the first is refused with `use_dpop_nonce` and retried once with the nonce,
 * the tokens are RFC 9068 JWTs with `cnf.jkt`, and a protected resource that checks proofs with
 * jose on its own (test/support/dpop-resource.ts) accepts what `tokens.fetch` sends.
 */
import { randomBytes, webcrypto } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose'
import type { Provider } from 'oidc-provider'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  clientCredentials,
  clientSecretBasic,
  dpopKey,
  generateDpopKey,
  isOAuthError,
  TokenManager,
  type DpopAlgorithm,
  type DpopKeyPair,
  type FetchLike,
} from '../../src/index.js'
import { startDpopResource, type DpopResource } from '../support/dpop-resource.js'
import { providerSigningKeys } from '../support/oidc-provider-keys.js'
import { listenOnLoopback, loadOidcProvider } from '../support/oidc-provider.js'

const TTL_SECONDS = 600
const API = 'https://api.example.test/'
const SECRET = 'dpop-client-secret-0123456789abcdef'

const { providerSigningJwk, providerJwks } = providerSigningKeys()

let server: Server
let provider: Provider
let issuer: string
let tokenUrl: string
let resource: DpopResource

/** Every token request sent: its DPoP header and whether the provider issued a token. */
const tokenRequests: { proof: string | undefined; status: number; nonce: string | null }[] = []
const recordingFetch: FetchLike = async (input, init) => {
  const response = await fetch(input, init)
  const headers = init.headers as Record<string, string>
  tokenRequests.push({
    proof: headers['dpop'],
    status: response.status,
    nonce: response.headers.get('dpop-nonce'),
  })
  return response
}

async function jktOfToken(token: string): Promise<string | undefined> {
  const { payload } = await jwtVerify(token, createLocalJWKSet(providerJwks), { issuer, audience: API })
  return (payload['cnf'] as { jkt?: string } | undefined)?.jkt
}

function source(
  dpop: DpopKeyPair | ReturnType<typeof dpopKey>,
  clientId = 'dpop-client',
): ReturnType<typeof clientCredentials> {
  return clientCredentials({
    tokenUrl,
    clientId,
    auth: clientSecretBasic(SECRET),
    scopes: ['api:read'],
    dpop,
    fetch: recordingFetch,
  })
}

beforeAll(async () => {
  const { default: ProviderClass, errors } = await loadOidcProvider()
  server = createServer()
  issuer = `http://127.0.0.1:${await listenOnLoopback(server)}`
  tokenUrl = `${issuer}/token`
  const client = {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api:read',
    client_secret: SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
  }
  provider = new ProviderClass(issuer, {
    clients: [
      { ...client, client_id: 'dpop-client' },
      // RFC 9449 §5.2: this client's tokens must be DPoP-bound.
      { ...client, client_id: 'bound-only-client', dpop_bound_access_tokens: true },
    ],
    jwks: { keys: [providerSigningJwk] },
    scopes: ['api:read'],
    ttl: { ClientCredentials: TTL_SECONDS },
    enabledJWA: { dPoPSigningAlgValues: ['ES256', 'RS256', 'PS256', 'EdDSA'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API,
        getResourceServerInfo: (_ctx: unknown, target: string) => {
          if (target === API) return { scope: 'api:read', audience: API, accessTokenFormat: 'jwt' }
          throw new errors.InvalidTarget()
        },
      },
    },
  })
  server.on('request', provider.callback())
  resource = await startDpopResource({ jktOf: jktOfToken })
})

afterAll(async () => {
  vi.restoreAllMocks()
  await resource?.close()
  if (server !== undefined) {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

describe('oidc-provider: DPoP token requests (nonces required)', () => {
  it('answers use_dpop_nonce to the first proof; one retry with the nonce gets a DPoP token bound to the key', async () => {
    const key = dpopKey(await generateDpopKey())
    const before = tokenRequests.length
    const token = await source(key).fetchToken()
    const sent = tokenRequests.slice(before)
    // One refusal demanding a nonce, one retry that carries it.
    expect(sent.map((r) => r.status)).toEqual([400, 200])
    expect(sent[0]!.nonce).not.toBeNull()
    expect(token.type).toBe('DPoP')
    expect(token.authorization.startsWith('DPoP ')).toBe(true)
    expect(token.binding).toEqual({ method: 'dpop', jkt: key.thumbprint, bound: true })
    expect(token.lifetimeMs).toBe(TTL_SECONDS * 1000)
    // The provider bound the token to the proof's key: cnf.jkt is the key's RFC 7638 thumbprint,
    // computed here by jose.
    const jkt = await calculateJwkThumbprint({ ...key.publicJwk })
    expect(jkt).toBe(key.thumbprint)
    expect(await jktOfToken(token.value)).toBe(jkt)
    // Each proof: typ dpop+jwt, the public key only, htm POST, htu the token URL, fresh jti.
    const proofs = sent.map((r) => r.proof!)
    for (const proof of proofs) {
      const header = decodeProtectedHeader(proof)
      expect(header.typ).toBe('dpop+jwt')
      expect(header.alg).toBe('ES256')
      expect(Object.keys(header.jwk ?? {}).sort()).toEqual(['crv', 'kty', 'x', 'y'])
    }
    const claims = proofs.map(
      (p) => JSON.parse(Buffer.from(p.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>,
    )
    expect(claims.map((c) => [c['htm'], c['htu']])).toEqual([
      ['POST', tokenUrl],
      ['POST', tokenUrl],
    ])
    expect(claims[0]!['nonce']).toBeUndefined()
    expect(claims[1]!['nonce']).toBe(sent[0]!.nonce)
    expect(claims[0]!['jti']).not.toBe(claims[1]!['jti'])
  })

  it('remembers the nonce per origin: the next token request needs no retry', async () => {
    const key = dpopKey(await generateDpopKey())
    const s = source(key)
    await s.fetchToken()
    const before = tokenRequests.length
    const again = await s.fetchToken()
    expect(tokenRequests.slice(before).map((r) => r.status)).toEqual([200])
    expect(again.binding?.bound).toBe(true)
    expect(key.nonce(new URL(tokenUrl).origin)).toBe(
      tokenRequests.at(-1)!.nonce ?? key.nonce(new URL(tokenUrl).origin),
    )
  })

  it.each<DpopAlgorithm>(['ES256', 'RS256', 'PS256', 'EdDSA'])('signs proofs with %s', async (alg) => {
    const key = dpopKey(await generateDpopKey(alg))
    const token = await source(key).fetchToken()
    expect(decodeProtectedHeader(tokenRequests.at(-1)!.proof!).alg).toBe(alg)
    expect(await jktOfToken(token.value)).toBe(await calculateJwkThumbprint(key.publicJwk as JWK))
  })

  it('takes a WebCrypto CryptoKeyPair (non-extractable private key)', async () => {
    const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
      'verify',
    ])
    const key = dpopKey(pair)
    const token = await source(key).fetchToken()
    expect(await jktOfToken(token.value)).toBe(key.thumbprint)
  })

  it('a client whose tokens must be bound is refused without dpop, and served with it', async () => {
    const plain = clientCredentials({
      tokenUrl,
      clientId: 'bound-only-client',
      auth: clientSecretBasic(SECRET),
    })
    const refused = await plain.fetchToken().catch((error: unknown) => error)
    expect(isOAuthError(refused)).toBe(true)
    const token = await source(await generateDpopKey(), 'bound-only-client').fetchToken()
    expect(token.type).toBe('DPoP')
  })

  it('another key is another cache key, and never shares a token', async () => {
    const a = source(await generateDpopKey())
    const b = source(await generateDpopKey())
    expect(a.key).not.toBe(b.key)
    const tokens = new TokenManager()
    const [ta, tb] = await Promise.all([tokens.get(a), tokens.get(b)])
    expect(ta.value).not.toBe(tb.value)
    expect(await jktOfToken(ta.value)).toBe(a.dpop!.thumbprint)
    expect(await jktOfToken(tb.value)).toBe(b.dpop!.thumbprint)
    await tokens.close()
  })

  it('1,000 concurrent first calls make one token request (and its one nonce retry)', async () => {
    const s = source(await generateDpopKey())
    const tokens = new TokenManager()
    const before = tokenRequests.length
    const all = await Promise.all(Array.from({ length: 1000 }, () => tokens.get(s)))
    expect(new Set(all.map((t) => t.value)).size).toBe(1)
    expect(tokens.stats().fetches).toBe(1)
    expect(tokenRequests.slice(before).map((r) => r.status)).toEqual([400, 200])
    await tokens.close()
  })
})

describe('oidc-provider DPoP tokens at a resource that checks proofs on its own', () => {
  it('tokens.fetch sends a fresh proof per request (htm, htu without query, ath, jkt = cnf.jkt)', async () => {
    resource.setNonce(undefined)
    const s = source(await generateDpopKey())
    const tokens = new TokenManager()
    const api = tokens.fetch(s)
    const before = resource.requests.length
    for (const path of ['/v1/things?page=2#top', '/v1/things']) {
      const res = await api(`${resource.origin}${path}`)
      expect(res.status).toBe(200)
    }
    const res = await api(`${resource.origin}/v1/things`, { method: 'POST', body: '{}' })
    expect(res.status).toBe(200)
    const seen = resource.requests.slice(before)
    expect(seen.map((r) => r.verdict)).toEqual(['ok', 'ok', 'ok'])
    expect(new Set(seen.map((r) => r.jti)).size).toBe(3)
    expect(seen.every((r) => r.authorization?.startsWith('DPoP '))).toBe(true)
    expect(tokens.stats().fetches).toBe(1)
    await tokens.close()
  })

  it("answers the resource's nonce demand with one retry, and follows a nonce rotated mid-run", async () => {
    const s = source(await generateDpopKey())
    const tokens = new TokenManager()
    const api = tokens.fetch(s)
    resource.setNonce('resource-nonce-1')
    const before = resource.requests.length
    expect((await api(`${resource.origin}/a`)).status).toBe(200)
    expect((await api(`${resource.origin}/a`)).status).toBe(200)
    resource.setNonce('resource-nonce-2')
    expect((await api(`${resource.origin}/a`)).status).toBe(200)
    const seen = resource.requests.slice(before)
    expect(seen.map((r) => r.verdict)).toEqual(['nonce', 'ok', 'ok', 'nonce', 'ok'])
    expect(seen.map((r) => r.nonce ?? null)).toEqual([
      null,
      'resource-nonce-1',
      'resource-nonce-1',
      'resource-nonce-1',
      'resource-nonce-2',
    ])
    // The nonce demands never cost a token.
    expect(tokens.stats().fetches).toBe(1)
    resource.setNonce(undefined)
    await tokens.close()
  })

  it('a refused token (invalid_token) is renewed once, and the renewed token is bound to the same key', async () => {
    const s = source(await generateDpopKey())
    const tokens = new TokenManager()
    const api = tokens.fetch(s)
    const first = await tokens.get(s)
    resource.refuseTokens(true)
    const before = resource.requests.length
    expect((await api(`${resource.origin}/b`)).status).toBe(401)
    resource.refuseTokens(false)
    const seen = resource.requests.slice(before)
    expect(seen).toHaveLength(2)
    expect(tokens.stats().fetches).toBe(2)
    const renewed = await tokens.get(s)
    expect(renewed.value).not.toBe(first.value)
    expect(await jktOfToken(renewed.value)).toBe(s.dpop!.thumbprint)
    expect((await api(`${resource.origin}/b`)).status).toBe(200)
    await tokens.close()
  })

  it('tokens.headers gives the Authorization and a proof for one method and URL', async () => {
    const s = source(await generateDpopKey())
    const tokens = new TokenManager()
    const url = `${resource.origin}/c?x=1`
    const headers = await tokens.headers(s, { method: 'put', url })
    expect(Object.keys(headers).sort()).toEqual(['authorization', 'dpop'])
    const res = await fetch(url, { method: 'PUT', headers })
    expect(res.status).toBe(200)
    // A proof is for one request: the same headers again are a replay.
    expect((await fetch(url, { method: 'PUT', headers })).status).toBe(401)
    expect(resource.requests.at(-1)!.verdict).toBe('replay')
    await tokens.close()
  })
})
