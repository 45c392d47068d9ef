/**
 * Mutual TLS (RFC 8705) against panva's oidc-provider (v9) behind a real TLS listener on
 * 127.0.0.1 that requests client certificates: tls_client_auth (a certificate from a test CA,
 * matched by subject DN) and self_signed_tls_client_auth (a registered self-signed certificate),
 * with certificate-bound access tokens (`cnf.x5t#S256`). A protected resource, also behind TLS
 * asking for client certificates, accepts a token only with the certificate it is bound to.
 * Certificates are made with openssl at test time, in a temporary directory.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createHttpsServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { format, inspect } from 'node:util'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import axios from 'axios'
import { createLocalJWKSet, jwtVerify } from 'jose'
import type { Provider } from 'oidc-provider'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { attachTokens } from '../../src/integrations/axios.js'
import {
  clientCredentials,
  clientSecretBasic,
  DiscoveryCache,
  isOAuthError,
  selfSignedTlsClientAuth,
  tlsClientAuth,
  TokenManager,
} from '../../src/index.js'
import { publicJwk } from '../../src/sources/signing.js'
import { providerSigningKeys } from '../support/oidc-provider-keys.js'
import { listenOnLoopback, loadOidcProvider } from '../support/oidc-provider.js'
import { errorsTableRows } from '../support/errors-table.js'

const API = 'https://api.example.test/'
const dir = mkdtempSync(join(tmpdir(), 'tk-mtls-'))

function openssl(...args: string[]): void {
  const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`openssl failed: ${result.stderr || result.error?.message}`)
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
function selfSigned(name: string, subject: string, ...extra: string[]): void {
  openssl(
    'req',
    '-x509',
    ...EC,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-subj',
    subject,
    '-days',
    '2',
    ...extra,
  )
}
function signedByCa(name: string, subject: string): void {
  openssl('req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject)
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
  )
}
const read = (name: string): string => readFileSync(join(dir, name), 'utf8')
const thumbprint = (pem: string): string =>
  createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url')

selfSigned('ca', '/CN=tokenkeeper test CA')
selfSigned('server', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1')
signedByCa('client', '/CN=mtls-client')
signedByCa('client2', '/CN=mtls-client')
selfSigned('self', '/CN=self-signed-client')
selfSigned('stranger', '/CN=self-signed-client')

const { providerSigningJwk, providerJwks } = providerSigningKeys()

let server: Server
let resource: Server
let provider: Provider
let issuer: string
let tokenUrl: string
let resourceUrl: string
/** The rows of docs/ERRORS.md "Bad mutual-TLS inputs", in order. */
function errorRows(): string[] {
  return errorsTableRows('mtls-inputs').map((cells) => cells[1]!)
}

const resourceSeen: { presented: string | undefined; verdict: string }[] = []

async function cnfOf(token: string): Promise<string | undefined> {
  const { payload } = await jwtVerify(token, createLocalJWKSet(providerJwks), { issuer, audience: API })
  return (payload['cnf'] as Record<string, string> | undefined)?.['x5t#S256']
}

function peer(socket: unknown): X509Certificate | undefined {
  return (socket as TLSSocket).getPeerX509Certificate?.() ?? undefined
}

const tlsOptions = () => ({
  key: read('server.key'),
  cert: read('server.crt'),
  ca: read('ca.crt'),
  requestCert: true,
  rejectUnauthorized: false,
})

const pki = (files = { cert: read('client.crt'), key: read('client.key') }) =>
  clientCredentials({
    tokenUrl,
    clientId: 'pki-client',
    auth: tlsClientAuth({ ...files, ca: read('server.crt') }),
    scopes: ['api:read'],
  })

beforeAll(async () => {
  const { default: ProviderClass, errors } = await loadOidcProvider()
  server = createHttpsServer(tlsOptions())
  issuer = `https://127.0.0.1:${await listenOnLoopback(server)}`
  tokenUrl = `${issuer}/token`
  const base = {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api:read',
    tls_client_certificate_bound_access_tokens: true,
  }
  const selfCert = new X509Certificate(read('self.crt'))
  provider = new ProviderClass(issuer, {
    clients: [
      {
        ...base,
        client_id: 'pki-client',
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_subject_dn: 'CN=mtls-client',
      },
      {
        ...base,
        client_id: 'self-client',
        token_endpoint_auth_method: 'self_signed_tls_client_auth',
        jwks: { keys: [{ ...publicJwk(selfCert.publicKey), x5c: [selfCert.raw.toString('base64')] }] },
      },
    ],
    jwks: { keys: [providerSigningJwk] },
    scopes: ['api:read'],
    clientAuthMethods: ['tls_client_auth', 'self_signed_tls_client_auth'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: (ctx: { socket: unknown }) => peer(ctx.socket)?.toString(),
        certificateAuthorized: (ctx: { socket: unknown }) => (ctx.socket as TLSSocket).authorized,
        certificateSubjectMatches: (ctx: { socket: unknown }, property: string, expected: string) =>
          property === 'tls_client_auth_subject_dn' && peer(ctx.socket)?.subject === expected,
      },
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

  // The resource: a token is good only with the certificate its cnf names.
  resource = createHttpsServer(tlsOptions(), (req, res) => {
    req.resume()
    const presented = peer(req.socket)
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]
    void (token === undefined ? Promise.resolve(undefined) : cnfOf(token).catch(() => undefined)).then(
      (cnf) => {
        const x5t =
          presented === undefined ? undefined : createHash('sha256').update(presented.raw).digest('base64url')
        const verdict =
          cnf === undefined
            ? 'bad token'
            : x5t === undefined
              ? 'no certificate'
              : cnf !== x5t
                ? 'wrong certificate'
                : 'ok'
        resourceSeen.push({ presented: x5t, verdict })
        res.writeHead(
          verdict === 'ok' ? 200 : 401,
          verdict === 'ok'
            ? {}
            : { 'www-authenticate': `Bearer error="invalid_token", error_description="${verdict}"` },
        )
        res.end()
      },
    )
  })
  await new Promise<void>((resolve) => resource.listen(0, '127.0.0.1', resolve))
  resourceUrl = `https://127.0.0.1:${(resource.address() as AddressInfo).port}/v1/things`
})

afterAll(async () => {
  vi.restoreAllMocks()
  for (const s of [server, resource]) {
    if (s === undefined) continue
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
  rmSync(dir, { recursive: true, force: true })
})

describe('oidc-provider: mutual TLS client authentication and certificate-bound tokens', () => {
  it('tls_client_auth: a token bound to the presented certificate (cnf.x5t#S256)', async () => {
    const source = pki()
    const token = await source.fetchToken()
    expect(token.type).toBe('Bearer')
    expect(await cnfOf(token.value)).toBe(thumbprint(read('client.crt')))
    expect(source.mtls?.thumbprint).toBe(thumbprint(read('client.crt')))
  })

  it('self_signed_tls_client_auth: the registered self-signed certificate; another one is invalid_client', async () => {
    const self = clientCredentials({
      tokenUrl,
      clientId: 'self-client',
      auth: selfSignedTlsClientAuth({
        cert: read('self.crt'),
        key: read('self.key'),
        ca: read('server.crt'),
      }),
    })
    expect(await cnfOf((await self.fetchToken()).value)).toBe(thumbprint(read('self.crt')))
    const stranger = clientCredentials({
      tokenUrl,
      clientId: 'self-client',
      auth: selfSignedTlsClientAuth({
        cert: read('stranger.crt'),
        key: read('stranger.key'),
        ca: read('server.crt'),
      }),
    })
    expect(stranger.key).not.toBe(self.key)
    const error = await stranger.fetchToken().catch((e: unknown) => e)
    expect(isOAuthError(error, 'invalid_client')).toBe(true)
  })

  it('tokens.fetch presents the certificate; the same token without it is refused by the resource', async () => {
    const source = pki()
    const tokens = new TokenManager()
    const api = tokens.fetch(source)
    const before = resourceSeen.length
    expect((await api(resourceUrl)).status).toBe(200)
    expect((await api(resourceUrl, { method: 'POST', body: '{}' })).status).toBe(200)
    expect(tokens.stats().fetches).toBe(1)
    // The token alone, over a connection without the certificate: refused.
    const token = await tokens.get(source)
    const { Agent, request } = await import('undici')
    const plain = new Agent({ connect: { ca: read('server.crt') } })
    const bare = await request(resourceUrl, {
      dispatcher: plain,
      headers: { authorization: `Bearer ${token.value}` },
    })
    await bare.body.dump()
    await plain.close()
    expect(bare.statusCode).toBe(401)
    expect(resourceSeen.slice(before).map((r) => r.verdict)).toEqual(['ok', 'ok', 'no certificate'])
    await tokens.close()
  })

  it('1,000 concurrent first calls make one token request; a renewed token is bound to the same certificate', async () => {
    const source = pki()
    const tokens = new TokenManager()
    const all = await Promise.all(Array.from({ length: 1000 }, () => tokens.get(source)))
    expect(new Set(all.map((t) => t.value)).size).toBe(1)
    expect(tokens.stats().fetches).toBe(1)
    await tokens.invalidate(source)
    const renewed = await tokens.get(source)
    expect(renewed.value).not.toBe(all[0]!.value)
    expect(await cnfOf(renewed.value)).toBe(thumbprint(read('client.crt')))
    expect(tokens.stats().fetches).toBe(2)
    await tokens.close()
  })

  it('with issuer discovery, the token request goes to mtls_endpoint_aliases.token_endpoint (RFC 8705 §5)', async () => {
    // An issuer whose metadata names a token endpoint without mutual TLS and the provider's as its alias.
    let plainHits = 0
    const metadata = createHttpServer((req, res) => {
      req.resume()
      if (req.url === '/plain-token') {
        plainHits++
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: 'invalid_client' }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          issuer: origin,
          token_endpoint: `${origin}/plain-token`,
          token_endpoint_auth_methods_supported: ['tls_client_auth', 'self_signed_tls_client_auth'],
          mtls_endpoint_aliases: { token_endpoint: tokenUrl },
        }),
      )
    })
    await new Promise<void>((resolve) => metadata.listen(0, '127.0.0.1', resolve))
    const origin = `http://127.0.0.1:${(metadata.address() as AddressInfo).port}`
    try {
      const source = clientCredentials({
        issuer: origin,
        discovery: new DiscoveryCache(),
        clientId: 'pki-client',
        auth: tlsClientAuth({ cert: read('client.crt'), key: read('client.key'), ca: read('server.crt') }),
      })
      const token = await source.fetchToken()
      expect(await cnfOf(token.value)).toBe(thumbprint(read('client.crt')))
      expect(plainHits).toBe(0)
    } finally {
      metadata.closeAllConnections()
      await new Promise<void>((resolve) => metadata.close(() => resolve()))
    }
  })

  it('a bound token is never handed to a client that would send it without the certificate', async () => {
    const source = pki()
    const tokens = new TokenManager()
    await expect(tokens.headers(source, { method: 'GET', url: resourceUrl })).rejects.toMatchObject({
      code: 'MTLS_TRANSPORT_REQUIRED',
      retryable: false,
    })
    const api = axios.create()
    attachTokens(api, tokens, source)
    await expect(api.get(resourceUrl)).rejects.toMatchObject({ code: 'MTLS_TRANSPORT_REQUIRED' })
    expect(() => tokens.fetch(source, { fetch: globalThis.fetch })).toThrow(TypeError)
    expect(tokens.stats().fetches).toBe(0)
    await tokens.close()
  })

  it('certificate files are re-read when they change: the next token is bound to the new certificate', async () => {
    const files = mkdtempSync(join(dir, 'rotating-'))
    const cert = join(files, 'client.crt')
    const key = join(files, 'client.key')
    copyFileSync(join(dir, 'client.crt'), cert)
    copyFileSync(join(dir, 'client.key'), key)
    const source = clientCredentials({
      tokenUrl,
      clientId: 'pki-client',
      auth: tlsClientAuth({ cert: { file: cert }, key: { file: key }, ca: read('server.crt') }),
    })
    expect(await cnfOf((await source.fetchToken()).value)).toBe(thumbprint(read('client.crt')))
    const keyBefore = source.key
    copyFileSync(join(dir, 'client2.key'), key)
    copyFileSync(join(dir, 'client2.crt'), cert)
    expect(await cnfOf((await source.fetchToken()).value)).toBe(thumbprint(read('client2.crt')))
    expect(source.mtls?.thumbprint).toBe(thumbprint(read('client2.crt')))
    expect(source.key).toBe(keyBefore)
  })

  it('bad inputs are TypeErrors naming what is wrong, never key material', () => {
    const key = read('client.key')
    const cases: [string, () => unknown, RegExp][] = [
      [
        "a key that is not the certificate's",
        () => tlsClientAuth({ cert: read('client.crt'), key: read('self.key') }),
        /key is not the private key of cert/,
      ],
      [
        'a cert that is not PEM',
        () => tlsClientAuth({ cert: 'not a certificate', key }),
        /cert is not a PEM certificate/,
      ],
      [
        'a key that is not PEM',
        () => tlsClientAuth({ cert: read('client.crt'), key: 'not a key' }),
        /key is not a PEM private key/,
      ],
      [
        'a cert file that does not exist',
        () => tlsClientAuth({ cert: { file: join(dir, 'missing.crt') }, key }),
        /the cert file .*missing\.crt could not be read \(ENOENT\)/,
      ],
      [
        'a key file that does not exist',
        () => tlsClientAuth({ cert: read('client.crt'), key: { file: join(dir, 'missing.key') } }),
        /the key file .*missing\.key could not be read \(ENOENT\)/,
      ],
      [
        'a cert file that is a FIFO (nothing waits for a writer)',
        () => {
          const fifo = join(dir, 'cert.fifo')
          execFileSync('mkfifo', [fifo])
          return tlsClientAuth({ cert: { file: fifo }, key })
        },
        /the cert file .*cert\.fifo could not be read \(not a regular file\)/,
      ],
      [
        'a key file that is a device that never ends (/dev/zero)',
        () => tlsClientAuth({ cert: read('client.crt'), key: { file: '/dev/zero' } }),
        /the key file \/dev\/zero could not be read \(not a regular file\)/,
      ],
      [
        'an encrypted key',
        () =>
          tlsClientAuth({
            cert: read('client.crt'),
            key: createPrivateKey(key)
              .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' })
              .toString(),
          }),
        /key is not a PEM private key \(unencrypted/,
      ],
      [
        'a cert of another type',
        () => tlsClientAuth({ cert: 42 as never, key }),
        /cert must be a PEM string, a Buffer or \{ file \}/,
      ],
      [
        'mutual TLS with an own fetch',
        () =>
          clientCredentials({
            tokenUrl,
            clientId: 'x',
            auth: tlsClientAuth({ cert: read('client.crt'), key }),
            fetch: globalThis.fetch,
          }),
        /fetch cannot be given/,
      ],
      [
        'mutual TLS to an http token URL',
        () =>
          clientCredentials({
            tokenUrl: 'http://127.0.0.1:1/token',
            clientId: 'x',
            auth: tlsClientAuth({ cert: read('client.crt'), key }),
          }),
        /mutual TLS needs an https tokenUrl/,
      ],
    ]
    expect(cases.map(([name]) => name)).toEqual(errorRows())
    for (const [, make, message] of cases) {
      let caught: unknown
      try {
        make()
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(TypeError)
      expect((caught as Error).message).toMatch(message)
      for (const line of key.split('\n').filter((l) => l.length > 20))
        expect((caught as Error).message).not.toContain(line)
    }
    // A secret-free description: method, fingerprint and the certificate's thumbprint only.
    const auth = tlsClientAuth({ cert: read('client.crt'), key })
    expect(JSON.parse(JSON.stringify(auth))).toEqual({
      method: 'tls_client_auth',
      fingerprint: auth.fingerprint,
      x5t: thumbprint(read('client.crt')),
    })
    expect(clientSecretBasic('s3cret-value').method).toBe('client_secret_basic')
  })

  it('the private key reaches no inspect, JSON, event, stats or error output', async () => {
    const keyLines = read('client.key')
      .split('\n')
      .filter((line) => line.length > 20 && !line.startsWith('-----'))
    const shows = (value: unknown): string[] => {
      const text = [
        inspect(value, { showHidden: true, depth: Infinity }),
        format('%o', value),
        JSON.stringify(value) ?? '',
        String(value),
      ].join('\n')
      return keyLines.filter((line) => text.includes(line))
    }
    const source = pki()
    const tokens = new TokenManager()
    const events: unknown[] = []
    tokens.on('refreshSuccess', (event) => events.push(event))
    tokens.on('refreshFailure', (event) => events.push(event))
    await tokens.get(source)
    // A refused connection: the transport error of a request that presented the certificate.
    const closed = clientCredentials({
      tokenUrl: 'https://127.0.0.1:1/token',
      clientId: 'pki-client',
      auth: tlsClientAuth({ cert: read('client.crt'), key: read('client.key') }),
    })
    const error = await tokens.get(closed).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'CONNECTION_REFUSED' })
    for (const value of [
      source,
      source.mtls,
      closed,
      tokens,
      tokens.stats(),
      events,
      error,
      (error as Error).cause,
    ]) {
      expect(shows(value)).toEqual([])
    }
    await tokens.close()
  })
})
