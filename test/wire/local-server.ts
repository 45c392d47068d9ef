import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One request the local server received, as it arrived. */
export interface CapturedRequest {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** Answers one request; the request body has already been read. */
export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void

/** A real `node:http` server on 127.0.0.1 with an ephemeral port, routed by exact path. */
export interface LocalServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  readonly port: number
  /** Every request received, in order (including ones to unrouted paths). */
  readonly requests: CapturedRequest[]
  /** Routes `path` (exact match, query string ignored) to `handler`. */
  route(path: string, handler: Handler): void
  /** The requests received on `path`. */
  hits(path: string): readonly CapturedRequest[]
  close(): Promise<void>
}

/** Starts a local server; unrouted paths answer 404. */
export async function startLocalServer(): Promise<LocalServer> {
  const routes = new Map<string, Handler>()
  const requests: CapturedRequest[] = []
  const server = createServer((req, res) => {
    res.on('error', () => undefined)
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('error', () => undefined)
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/'
      const body = Buffer.concat(chunks).toString('utf8')
      requests.push({ method: req.method ?? '', path, headers: req.headers, body })
      const handler = routes.get(path)
      if (handler === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' })
        res.end('no route')
        return
      }
      handler(req, res, body)
    })
  })
  server.on('clientError', (_error, socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    route(path, handler) {
      routes.set(path, handler)
    },
    hits(path) {
      return requests.filter((request) => request.path === path)
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A port that was just open and is now closed: connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** The form fields of a captured `application/x-www-form-urlencoded` body, in order. */
export function formFields(request: CapturedRequest): [string, string][] {
  return [...new URLSearchParams(request.body).entries()]
}
