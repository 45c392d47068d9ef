import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TokenServer } from '../../src/testing/index.js'

/** One request the echo resource received, with its body bytes exactly as they arrived. */
export interface EchoedRequest {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  /** The bearer token presented, if any. */
  readonly token: string | undefined
}

/**
 * How the echo resource answers: `introspect` checks the bearer token with the token server
 * (200 if active, else 401 invalid_token); `always-401` refuses every call; `hang` never answers;
 * `forbidden` answers a plain 403 without a Bearer challenge.
 */
export type EchoMode = 'introspect' | 'always-401' | 'hang' | 'forbidden'

/** A protected API on 127.0.0.1 that records every request and checks tokens with the token server. */
export interface EchoResource {
  readonly url: string
  readonly requests: EchoedRequest[]
  mode: EchoMode
  /** Resolves once `count` requests have been received (real time, bounded). */
  waitForRequests(count: number): Promise<void>
  close(): Promise<void>
}

export async function startEchoResource(tokenServer: TokenServer): Promise<EchoResource> {
  const requests: EchoedRequest[] = []
  const hung: ServerResponse[] = []
  const arrivals: { count: number; resolve: () => void }[] = []
  const resource: EchoResource = {
    url: '',
    requests,
    mode: 'introspect',
    async waitForRequests(count) {
      if (requests.length >= count) return
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`only ${requests.length} of ${count} requests`)),
          5_000,
        )
        arrivals.push({
          count,
          resolve: () => {
            clearTimeout(timer)
            resolve()
          },
        })
      })
    },
    close: async () => {
      for (const res of hung) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  const server = createServer((req, res) => {
    res.on('error', () => undefined)
    req.on('error', () => undefined)
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks),
        token,
      })
      for (const arrival of arrivals.splice(0)) {
        if (requests.length >= arrival.count) arrival.resolve()
        else arrivals.push(arrival)
      }
      if (resource.mode === 'hang') {
        hung.push(res)
        return
      }
      if (resource.mode === 'forbidden') {
        res.writeHead(403, { 'content-type': 'text/plain' })
        res.end('forbidden')
        return
      }
      const active = token !== undefined && tokenServer.introspect(token)?.active === true
      if (resource.mode === 'always-401' || !active) {
        res.writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': 'Bearer realm="echo", error="invalid_token"',
        })
        res.end(JSON.stringify({ error: 'invalid_token' }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true, bytes: Buffer.concat(chunks).length }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  Object.assign(resource, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/echo` })
  return resource
}
