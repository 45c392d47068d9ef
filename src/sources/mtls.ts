import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { statSync } from 'node:fs'
import { Agent, request as httpsRequest } from 'node:https'
import { Readable } from 'node:stream'
import { inspect } from 'node:util'
import type { FetchLike } from '../http/token-request.js'
import type { ClientAuth, ClientAuthContext } from './auth.js'
import { fingerprint } from './fingerprint.js'
import { MAX_PEM_FILE_BYTES, readFailure, readSmallFileSync, stampOf } from './small-file.js'

/** A PEM certificate or key: the PEM text, its bytes, or `{ file }`, re-read when the file changes. */
export type PemInput = string | Buffer | PemFile

/** A PEM file, looked at before each request and re-read when it changed. */
export interface PemFile {
  /** The path of the file. */
  readonly file: string
}

/** Options of {@link tlsClientAuth} and {@link selfSignedTlsClientAuth}. */
export interface TlsClientAuthOptions {
  /** The client certificate (PEM; a chain may follow it). */
  readonly cert: PemInput
  /** Its private key (PEM, unencrypted). Never shown. */
  readonly key: PemInput
  /** CA certificates to trust for the servers' certificates, instead of Node's default list. */
  readonly ca?: PemInput
}

/** A certificate and key read and checked, with the certificate's RFC 8705 §3.1 thumbprint. */
interface TlsMaterial {
  readonly cert: string
  readonly key: KeyObject
  readonly ca: string | undefined
  /** `x5t#S256`: base64url SHA-256 of the DER certificate. */
  readonly thumbprint: string
  readonly agent: Agent
}

interface Versioned {
  readonly text: string
  readonly version: string
}

function readPem(input: PemInput, what: string, side: string): Versioned {
  if (typeof input === 'string') return { text: input, version: 'inline' }
  if (Buffer.isBuffer(input)) return { text: input.toString('utf8'), version: 'inline' }
  if (typeof input === 'object' && input !== null && typeof input.file === 'string') {
    try {
      // Only a regular file of at most 1 MiB: a FIFO would block the process until something
      // writes to it, a device such as /dev/zero never ends.
      const { text, stamp } = readSmallFileSync(input.file, MAX_PEM_FILE_BYTES)
      return { text, version: stamp }
    } catch (error) {
      throw new TypeError(`${what}: the ${side} file ${input.file} could not be read (${readFailure(error)})`)
    }
  }
  throw new TypeError(`${what}: ${side} must be a PEM string, a Buffer or { file }`)
}

function versionOf(input: PemInput | undefined): string {
  if (input === undefined || typeof input === 'string' || Buffer.isBuffer(input)) return 'inline'
  try {
    return stampOf(statSync(input.file))
  } catch {
    return 'unreadable'
  }
}

function load(options: TlsClientAuthOptions, what: string): TlsMaterial {
  const certText = readPem(options.cert, what, 'cert').text
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certText)
  } catch {
    throw new TypeError(`${what}: cert is not a PEM certificate`)
  }
  let key: KeyObject
  let keyText: string
  try {
    keyText = readPem(options.key, what, 'key').text
    key = createPrivateKey(keyText)
  } catch (error) {
    if (error instanceof TypeError && error.message.startsWith(what)) throw error
    throw new TypeError(`${what}: key is not a PEM private key (unencrypted PKCS#8, PKCS#1 or SEC1)`)
  }
  if (!cert.checkPrivateKey(key)) throw new TypeError(`${what}: key is not the private key of cert`)
  const ca = options.ca === undefined ? undefined : readPem(options.ca, what, 'ca').text
  const thumbprint = createHash('sha256').update(cert.raw).digest('base64url')
  const agent = new Agent({
    keepAlive: true,
    cert: certText,
    key: keyText,
    ...(ca === undefined ? {} : { ca }),
  })
  return { cert: certText, key, ca, thumbprint, agent }
}

/** Request bodies this transport sends: what tokenkeeper's own requests and `fetch` callers pass. */
async function bodyBytes(body: unknown): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return Buffer.from(body)
  if (body instanceof URLSearchParams) return Buffer.from(body.toString())
  if (body instanceof ArrayBuffer) return Buffer.from(body)
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  return Buffer.from(await new Response(body as NonNullable<RequestInit['body']>).arrayBuffer())
}

const NO_BODY_STATUS = new Set([101, 204, 205, 304])

/**
 * The client certificate of a mutual-TLS source (RFC 8705), and the transport that presents it:
 * a `fetch` over Node's `https` with the certificate and key, a keep-alive agent of its own, and
 * no redirects followed. Files are looked at (`stat`) before each request and re-read when they
 * changed, so a rotated certificate is used from the next request on. @internal
 */
export class TlsClientCertificate {
  readonly #options: TlsClientAuthOptions
  readonly #what: string
  #material: TlsMaterial
  #version: string

  constructor(options: TlsClientAuthOptions, what: string) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`${what}: options are required`)
    this.#options = options
    this.#what = what
    this.#version = this.#currentVersion()
    this.#material = load(options, what)
  }

  #currentVersion(): string {
    return [this.#options.cert, this.#options.key, this.#options.ca].map(versionOf).join('|')
  }

  /** The material for the next request: re-read when a file changed (kept when a re-read fails). */
  #current(): TlsMaterial {
    const version = this.#currentVersion()
    if (version !== this.#version) {
      try {
        const next = load(this.#options, this.#what)
        this.#material.agent.destroy()
        this.#material = next
      } catch {
        // A file caught mid-rotation: keep the last good pair, try again on the next request.
      }
      this.#version = version
    }
    return this.#material
  }

  /** The RFC 8705 §3.1 `x5t#S256` thumbprint of the certificate in use. Not secret. */
  get thumbprint(): string {
    return this.#current().thumbprint
  }

  /** A `fetch` whose connections present the certificate. */
  readonly fetch: FetchLike & typeof globalThis.fetch = async (
    input: string | URL | Request,
    init?: RequestInit,
  ): Promise<Response> => {
    const material = this.#current()
    const request = input instanceof Request ? input : undefined
    const url = new URL(input instanceof Request ? input.url : input)
    if (url.protocol !== 'https:') throw new TypeError(`${this.#what}: mutual TLS needs an https URL`)
    const headers = new Headers(request?.headers)
    for (const [name, value] of new Headers(init?.headers)) headers.set(name, value)
    const method = init?.method ?? request?.method ?? 'GET'
    const body =
      init?.body !== undefined
        ? await bodyBytes(init.body)
        : request === undefined
          ? undefined
          : await bodyBytes(request.body === null ? undefined : await request.arrayBuffer())
    const signal = init?.signal ?? request?.signal ?? undefined
    if (body !== undefined) headers.set('content-length', String(body.byteLength))
    return new Promise<Response>((resolve, reject) => {
      const outgoing = httpsRequest(
        url,
        {
          method,
          headers: Object.fromEntries(headers),
          agent: material.agent,
          ...(signal === null || signal === undefined ? {} : { signal }),
        },
        (incoming) => {
          const responseHeaders = new Headers()
          for (const [name, value] of Object.entries(incoming.headers)) {
            if (value === undefined) continue
            for (const one of [value].flat()) responseHeaders.append(name, one)
          }
          const status = incoming.statusCode ?? 500
          const stream = NO_BODY_STATUS.has(status)
            ? null
            : (Readable.toWeb(incoming) as ReadableStream<Uint8Array>)
          if (stream === null) incoming.resume()
          resolve(
            new Response(stream, {
              status,
              statusText: incoming.statusMessage ?? '',
              headers: responseHeaders,
            }),
          )
        },
      )
      outgoing.on('error', reject)
      outgoing.end(body)
    })
  }

  /** A secret-free description, used by `JSON.stringify`: the certificate's thumbprint. */
  toJSON(): Record<string, string> {
    return { x5t: this.#material.thumbprint }
  }

  /** What `util.inspect` shows: the certificate's thumbprint, never the key. */
  [inspect.custom](): string {
    return `TlsClientCertificate ${inspect(this.toJSON())}`
  }
}

/** `tls_client_auth` and `self_signed_tls_client_auth` (RFC 8705 §2): `client_id` in the body, the certificate on the connection. */
export class TlsClientAuth implements ClientAuth {
  readonly method: 'tls_client_auth' | 'self_signed_tls_client_auth'
  readonly fingerprint: string
  /** The certificate the token requests (and, for bound tokens, the API requests) present. */
  readonly certificate: TlsClientCertificate

  constructor(method: TlsClientAuth['method'], options: TlsClientAuthOptions, what: string) {
    this.method = method
    this.certificate = new TlsClientCertificate(options, what)
    // Inline certificates are named by their thumbprint; files by their paths (they rotate).
    const certPart =
      typeof options.cert === 'object' && !Buffer.isBuffer(options.cert)
        ? `file:${options.cert.file}`
        : this.certificate.thumbprint
    this.fingerprint = fingerprint(method, certPart)
  }

  apply(context: ClientAuthContext): Promise<readonly string[]> {
    context.body.set('client_id', context.clientId)
    return Promise.resolve([])
  }

  /** A secret-free description, used by `JSON.stringify`: method, fingerprint and thumbprint. */
  toJSON(): Record<string, string> {
    return { method: this.method, fingerprint: this.fingerprint, x5t: this.certificate.thumbprint }
  }

  /** What `util.inspect` shows: method, fingerprint and thumbprint, never the key. */
  [inspect.custom](): string {
    return `ClientAuth ${inspect(this.toJSON())}`
  }
}

/**
 * `tls_client_auth` (RFC 8705 §2.1): the client authenticates with a certificate from a PKI the
 * server trusts, presented on the TLS connection of each token request; `client_id` goes in the
 * body. With a server that binds tokens to the certificate (`cnf.x5t#S256`), `tokens.fetch`
 * sends API requests over connections that present the same certificate.
 *
 * @example
 * ```ts
 * const auth = tlsClientAuth({ cert: { file: '/etc/tls/client.crt' }, key: { file: '/etc/tls/client.key' } })
 * const source = clientCredentials({ tokenUrl: 'https://idp.example/oauth/token', clientId: 'svc-a', auth })
 * ```
 */
export function tlsClientAuth(options: TlsClientAuthOptions): ClientAuth {
  return new TlsClientAuth('tls_client_auth', options, 'tlsClientAuth')
}

/**
 * `self_signed_tls_client_auth` (RFC 8705 §2.2): as {@link tlsClientAuth}, with a self-signed
 * certificate the client registered (in its JWKS, as `x5c`).
 *
 * @example
 * ```ts
 * const auth = selfSignedTlsClientAuth({ cert: process.env.CLIENT_CERT!, key: process.env.CLIENT_KEY! })
 * ```
 */
export function selfSignedTlsClientAuth(options: TlsClientAuthOptions): ClientAuth {
  return new TlsClientAuth('self_signed_tls_client_auth', options, 'selfSignedTlsClientAuth')
}

/** The certificate a client authentication presents, when it is a mutual-TLS one. @internal */
export function certificateOf(auth: ClientAuth | undefined): TlsClientCertificate | undefined {
  return auth instanceof TlsClientAuth ? auth.certificate : undefined
}
