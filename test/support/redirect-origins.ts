import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { onCleanup } from '../faults/harness.js'

export interface Seen {
  readonly where: 'api' | 'other'
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/**
 * Two origins on 127.0.0.1: `api` (where the token is meant to go) and `other` (another port).
 * `api` answers `/to/<status>/<where>/<path>` with a redirect to `<where>`'s `/<path>`; `/loop`
 * redirects to itself; `/deny` answers 401 invalid_token; anything else 200 with what it got.
 */
export async function startOrigins() {
  const seen: Seen[] = []
  const urls: Record<'api' | 'other', string> = { api: '', other: '' }
  const serve = (where: 'api' | 'other') => {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const path = req.url ?? '/'
        seen.push({
          where,
          method: req.method ?? '',
          path,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        })
        const redirect = /^\/to\/(\d{3})\/(api|other|scheme)\/(.*)$/.exec(path)
        if (redirect !== null) {
          const [, status, to, rest] = redirect
          const location = to === 'scheme' ? `file:///etc/${rest}` : `${urls[to as 'api' | 'other']}/${rest}`
          res.writeHead(Number(status), { location })
          res.end('moved')
        } else if (path === '/loop') {
          res.writeHead(302, { location: '/loop' })
          res.end()
        } else if (path.startsWith('/deny')) {
          res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' })
          res.end()
        } else {
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.end(`${where} ${path}`)
        }
      })
    })
    return new Promise<void>((resolve) =>
      server.listen(0, '127.0.0.1', () => {
        urls[where] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
        onCleanup(async () => {
          server.closeAllConnections()
          await new Promise<void>((done) => server.close(() => done()))
        })
        resolve()
      }),
    )
  }
  await serve('api')
  await serve('other')
  return { seen, urls }
}
