import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** An HTTP server listening on 127.0.0.1. */
export interface LoopbackServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  /** Calls `onClose`, then stops listening and destroys every connection at once (held ones too). */
  close(): Promise<void>
}

/**
 * Serves `onRequest` on 127.0.0.1 (`port` 0: an ephemeral one) with a deep backlog for stampede
 * tests. A malformed request only loses its own connection. `close()` is idempotent.
 */
export async function listenOnLoopback(
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  port: number,
  onClose: () => void,
): Promise<LoopbackServer> {
  const sockets = new Set<Socket>()
  const server = createServer(onRequest)
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('clientError', (_error, socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port, host: '127.0.0.1', backlog: 16_384 }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  let closing: Promise<void> | undefined
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        onClose()
        server.close(() => resolve())
        server.closeAllConnections()
        for (const socket of sockets) socket.destroy()
      })
      return closing
    },
  }
}
