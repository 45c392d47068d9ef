// Mutual TLS (RFC 8705): tls_client_auth and a certificate-bound token. The certificates are made
// here with openssl; a small https token endpoint and API on 127.0.0.1 stand for the provider.
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes, X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { TokenManager, clientCredentials, tlsClientAuth } from 'tokenkeeper'

const dir = mkdtempSync(join(tmpdir(), 'mtls-example-'))
const openssl = (...args: string[]) => spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1']
openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=example CA')
openssl(
  'req',
  '-x509',
  ...ec,
  '-keyout',
  'server.key',
  '-out',
  'server.crt',
  '-subj',
  '/CN=127.0.0.1',
  '-addext',
  'subjectAltName=IP:127.0.0.1',
)
openssl('req', ...ec.slice(0, -2), '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=svc-reports')
openssl(
  'x509',
  '-req',
  '-in',
  'client.csr',
  '-CA',
  'ca.crt',
  '-CAkey',
  'ca.key',
  '-CAcreateserial',
  '-out',
  'client.crt',
  '-days',
  '1',
)
const file = (name: string) => readFileSync(join(dir, name), 'utf8')

// The provider: a token for a client whose certificate the CA signed, bound to that certificate.
const bound = new Map<string, string>() // token -> x5t#S256
const thumbprint = (socket: TLSSocket) => {
  const cert = socket.getPeerX509Certificate()
  return cert === undefined ? undefined : createHash('sha256').update(cert.raw).digest('base64url')
}
const server = createServer(
  {
    key: file('server.key'),
    cert: file('server.crt'),
    ca: file('ca.crt'),
    requestCert: true,
    rejectUnauthorized: false,
  },
  (req, res) => {
    req.resume()
    const socket = req.socket as TLSSocket
    if (req.url === '/token') {
      const subject = socket.getPeerX509Certificate()?.subject
      if (!socket.authorized || subject !== 'CN=svc-reports') return void res.writeHead(401).end()
      const token = randomBytes(24).toString('base64url')
      bound.set(token, thumbprint(socket) ?? '')
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 600 }))
    }
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? ''
    res.writeHead(bound.get(token) === thumbprint(socket) ? 200 : 401).end()
  },
)
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`

await using tokens = new TokenManager()
const source = clientCredentials({
  tokenUrl: `${origin}/token`,
  clientId: 'svc-reports',
  auth: tlsClientAuth({
    cert: { file: join(dir, 'client.crt') },
    key: { file: join(dir, 'client.key') },
    ca: file('server.crt'),
  }),
})
const api = tokens.fetch(source) // API requests present the same certificate
console.log(`API with the certificate: ${(await api(`${origin}/reports`)).status}`)
const token = await tokens.get(source)
const x5t = createHash('sha256')
  .update(new X509Certificate(file('client.crt')).raw)
  .digest('base64url')
console.log(`token bound to the client certificate: ${bound.get(token.value) === x5t}`)
// Any other way to send the token would leave the certificate behind: refused.
const refusal = await tokens.headers(source, { method: 'GET', url: `${origin}/reports` }).then(
  () => 'none',
  (error: { code: string }) => error.code,
)
console.log(`tokens.headers for a mutual-TLS source: ${refusal}`)
server.closeAllConnections()
server.close()
rmSync(dir, { recursive: true, force: true })
