import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { Agent, createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TokenCredential } from '@azure/core-auth'
import {
  bearerTokenAuthenticationPolicy,
  createDefaultHttpClient,
  createEmptyPipeline,
  createPipelineRequest,
} from '@azure/core-rest-pipeline'
import { describe, expect, it } from 'vitest'
import { tokenCredential } from '../../src/integrations/azure.js'
import {
  clientCredentials,
  clientSecretBasic,
  computeWindows,
  DEFAULT_REFRESH_POLICY,
  TokenManager,
} from '../../src/index.js'
import { startTokenServer, type TokenServer } from '../../src/testing/index.js'

const CLIENT_ID = 'azure-app'
const CLIENT_SECRET = 'azure-app-secret-value'

/** A self-signed certificate for 127.0.0.1 (the bearer policy refuses plain http). */
function selfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tokenkeeper-tls-'))
  try {
    const result = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { encoding: 'utf8' },
    )
    if (result.status !== 0) throw new Error(`openssl failed: ${result.stderr || result.error?.message}`)
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** An https API on 127.0.0.1 that accepts tokens the token server issued and counts the calls. */
async function startHttpsResource(tokenServer: TokenServer, tls: { key: string; cert: string }) {
  const seen: (string | undefined)[] = []
  const server = createServer(tls, (req, res) => {
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]
    seen.push(token)
    const active = token !== undefined && tokenServer.introspect(token)?.active === true
    res.writeHead(active ? 200 : 401, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ ok: active }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/api`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** One Azure SDK client's pipeline: the bearer-token policy over the default HTTP client. */
function azureClient(credential: TokenCredential, scopes: string[], ca: string) {
  const pipeline = createEmptyPipeline()
  pipeline.addPolicy(bearerTokenAuthenticationPolicy({ credential, scopes }))
  const httpClient = createDefaultHttpClient()
  const agent = new Agent({ ca })
  return async (url: string) => {
    const request = createPipelineRequest({ url })
    // createPipelineRequest does not copy `agent` from its options; the HTTP client reads it here.
    request.agent = agent
    const response = await pipeline.sendRequest(httpClient, request)
    return response.status
  }
}

describe('tokenkeeper/azure: tokenCredential under @azure/core-rest-pipeline', () => {
  const tls = selfSignedCertificate()

  it('10 Azure clients × 10 requests share one token; a credential without a shared cache makes one each', async () => {
    const server = await startTokenServer({
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          allowedScopes: ['api/.default', 'other/.default'],
        },
      ],
    })
    const resource = await startHttpsResource(server, tls)
    const tokens = new TokenManager()
    try {
      const sourceFor = (scopes: readonly string[]) =>
        clientCredentials({
          tokenUrl: server.tokenUrl,
          clientId: CLIENT_ID,
          auth: clientSecretBasic(CLIENT_SECRET),
          scopes,
        })
      const credential = tokenCredential(tokens, sourceFor)
      const clients = Array.from({ length: 10 }, () => azureClient(credential, ['api/.default'], tls.cert))
      const statuses = await Promise.all(
        clients.flatMap((send) => Array.from({ length: 10 }, () => send(resource.url))),
      )
      expect(statuses).toEqual(Array.from({ length: 100 }, () => 200))
      expect(server.stats().tokenRequests).toBe(1)
      expect(new Set(resource.seen).size).toBe(1)

      // Another scope set is another source: one more token request, shared again.
      const others = Array.from({ length: 3 }, () => azureClient(credential, ['other/.default'], tls.cert))
      await Promise.all(others.map((send) => send(resource.url)))
      expect(server.stats().tokenRequests).toBe(2)

      // The baseline: a credential that fetches on each getToken, one token per pipeline.
      const before = server.stats().tokenRequests
      const naive: TokenCredential = {
        async getToken(scopes) {
          const token = await sourceFor([scopes].flat()).fetchToken()
          return { token: token.value, expiresOnTimestamp: token.expiresAt }
        },
      }
      const naiveClients = Array.from({ length: 10 }, () => azureClient(naive, ['api/.default'], tls.cert))
      await Promise.all(naiveClients.map((send) => send(resource.url)))
      expect(server.stats().tokenRequests - before).toBe(10)
    } finally {
      await tokens.close()
      await resource.close()
      await server.close()
    }
  })

  it('getToken returns expiresOnTimestamp and refreshAfterTimestamp, one source per scope set', async () => {
    const server = await startTokenServer({
      clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedScopes: ['a', 'b'] }],
      tokenLifetimeMs: 3_600_000,
    })
    const tokens = new TokenManager()
    try {
      const asked: (readonly string[])[] = []
      const credential = tokenCredential(tokens, (scopes) => {
        asked.push(scopes)
        return clientCredentials({
          tokenUrl: server.tokenUrl,
          clientId: CLIENT_ID,
          auth: clientSecretBasic(CLIENT_SECRET),
          scopes,
        })
      })
      const first = await credential.getToken(['b', 'a', 'b'])
      const again = await credential.getToken(['a', 'b'])
      expect(asked).toEqual([['a', 'b']])
      expect(again?.token).toBe(first?.token)
      const cached = tokens.peek(
        clientCredentials({
          tokenUrl: server.tokenUrl,
          clientId: CLIENT_ID,
          auth: clientSecretBasic(CLIENT_SECRET),
          scopes: ['a', 'b'],
        }),
      )!
      expect(first?.expiresOnTimestamp).toBe(cached.expiresAt)
      expect(first?.refreshAfterTimestamp).toBe(
        computeWindows(cached, DEFAULT_REFRESH_POLICY, () => 0).refreshAt,
      )
      expect(first!.refreshAfterTimestamp!).toBeGreaterThan(cached.issuedAt)
      expect(first!.refreshAfterTimestamp!).toBeLessThan(cached.expiresAt)
      expect(first?.tokenType).toBe('Bearer')
      expect(JSON.stringify(Object.keys(first!))).not.toContain(CLIENT_SECRET)
      expect(server.stats().tokenRequests).toBe(1)
    } finally {
      await tokens.close()
      await server.close()
    }
  })
})
