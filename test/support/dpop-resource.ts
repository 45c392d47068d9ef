/**
 * A protected resource on 127.0.0.1 that checks DPoP (RFC 9449 §7) on its own, with jose, not
 * with tokenkeeper's code: `Authorization: DPoP <token>`, one `DPoP` proof signed by the key in
 * its `jwk` header with `typ: dpop+jwt`, `htm` and `htu` of this request, `ath` of this token, a
 * recent `iat`, a `jti` never seen before, the key's thumbprint equal to the token's `cnf.jkt`,
 * and, while it demands nonces, its current nonce.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWK } from 'jose'

/** What the resource saw of one request. */
export interface DpopResourceRequest {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
  readonly proof: string | undefined
  /** `ok`, or why the request was refused. */
  readonly verdict: string
  readonly jti?: string
  readonly nonce?: string
}

export interface DpopResource {
  readonly origin: string
  readonly requests: DpopResourceRequest[]
  /** Demand this nonce from now on (`undefined`: demand none). */
  setNonce(nonce: string | undefined): void
  /** Refuse tokens (401 invalid_token) while true. */
  refuseTokens(refuse: boolean): void
  close(): Promise<void>
}

export interface DpopResourceOptions {
  /** The `cnf.jkt` a token is bound to (verifying the token as the resource would), or undefined. */
  readonly jktOf: (token: string) => Promise<string | undefined>
  /** Largest allowed |now - iat|, in seconds. Default 60. */
  readonly iatWindowS?: number
}

function challenge(error: string, description: string): string {
  return `DPoP error="${error}", error_description="${description}", algs="ES256 RS256 PS256 EdDSA"`
}

async function verdict(
  req: IncomingMessage,
  origin: string,
  nonce: string | undefined,
  seen: Set<string>,
  options: DpopResourceOptions,
): Promise<{ verdict: string; jti?: string; nonce?: string }> {
  const authorization = req.headers.authorization
  const proofs = req.headersDistinct['dpop'] ?? []
  if (authorization === undefined || !authorization.startsWith('DPoP ')) return { verdict: 'not DPoP' }
  if (proofs.length !== 1) return { verdict: 'proofs: ' + proofs.length }
  const token = authorization.slice(5)
  const { payload, protectedHeader } = await jwtVerify(proofs[0]!, EmbeddedJWK, {
    typ: 'dpop+jwt',
    algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA'],
  })
  const jti = typeof payload.jti === 'string' ? payload.jti : undefined
  const url = new URL(req.url ?? '/', origin)
  if (payload['htm'] !== req.method) return { verdict: 'htm' }
  if (payload['htu'] !== `${origin}${url.pathname}`) return { verdict: 'htu' }
  if (payload['ath'] !== createHash('sha256').update(token).digest('base64url')) return { verdict: 'ath' }
  if (
    typeof payload.iat !== 'number' ||
    Math.abs(Date.now() / 1000 - payload.iat) > (options.iatWindowS ?? 60)
  )
    return { verdict: 'iat' }
  if (jti === undefined || seen.has(jti)) return { verdict: 'replay' }
  seen.add(jti)
  const jkt = await calculateJwkThumbprint(protectedHeader.jwk as JWK)
  if ((await options.jktOf(token)) !== jkt) return { verdict: 'jkt', jti }
  const sentNonce = typeof payload['nonce'] === 'string' ? payload['nonce'] : undefined
  if (nonce !== undefined && sentNonce !== nonce)
    return { verdict: 'nonce', jti, ...(sentNonce === undefined ? {} : { nonce: sentNonce }) }
  return { verdict: 'ok', jti, ...(sentNonce === undefined ? {} : { nonce: sentNonce }) }
}

/** Starts the resource; every path is protected. */
export async function startDpopResource(options: DpopResourceOptions): Promise<DpopResource> {
  let nonce: string | undefined
  let refuse = false
  const seen = new Set<string>()
  const requests: DpopResourceRequest[] = []
  let origin = ''
  const server: Server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      void verdict(req, origin, nonce, seen, options)
        .catch((error: unknown) => ({ verdict: `proof: ${(error as Error).message}` }))
        .then((result) => {
          requests.push({
            method: req.method ?? '',
            path: new URL(req.url ?? '/', origin).pathname,
            authorization: req.headers.authorization,
            proof: req.headers['dpop'] as string | undefined,
            ...result,
          })
          const headers: Record<string, string> = nonce === undefined ? {} : { 'dpop-nonce': nonce }
          if (result.verdict === 'nonce') {
            res.writeHead(401, {
              ...headers,
              'www-authenticate': challenge('use_dpop_nonce', 'nonce required'),
            })
            res.end()
          } else if (result.verdict !== 'ok') {
            res.writeHead(401, {
              ...headers,
              'www-authenticate': challenge('invalid_dpop_proof', result.verdict),
            })
            res.end()
          } else if (refuse) {
            res.writeHead(401, { ...headers, 'www-authenticate': challenge('invalid_token', 'refused') })
            res.end()
          } else {
            res.writeHead(200, { ...headers, 'content-type': 'application/json' })
            res.end(JSON.stringify({ ok: true }))
          }
        })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    requests,
    setNonce(next) {
      nonce = next
    },
    refuseTokens(next) {
      refuse = next
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
