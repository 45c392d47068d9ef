/**
 * Secrets in every encoding the library produced: a server or an injected fetch may echo a
 * secret form-encoded (a `client_secret_post` body), percent-encoded, base64 (Basic credentials)
 * or decoded from Basic (`id:secret`), and secret-bearing headers, extra parameters and token-URL
 * query values too; a server may also write them with other encoders than the library's (Python's
 * or Java's percent-encoding, PHP's JSON escapes). None of these forms reaches an error, its `cause`, its kept response headers,
 * `util.inspect` or `JSON.stringify`.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { IncomingMessage } from 'node:http'
import { format, inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  CHANNEL_NAMES,
  clientAssertion,
  clientCredentials,
  clientSecretBasic,
  clientSecretPost,
  generateDpopKey,
  isOAuthError,
  TOKEN_TYPES,
  TokenManager,
  tokenExchange,
  tokenSource,
  type ClientAuth,
} from '../../src/index.js'
import { formEncode, SecretSet } from '../../src/secrets.js'
import { startLocalServer, type LocalServer } from '../wire/local-server.js'

/** Characters that every encoding changes: a space, `+`, `/`, `=`, `&`, `%`, non-ASCII. */
const SECRET = 'p@ss w0rd+/=&%é€-SECRET'
const HEADER_SECRET = 'hdr-Sécret+/= value'
const PARAM_SECRET = 'param secret&=+/é'
const QUERY_SECRET = 'query secret+/=é'

/** Every form in which `value` may have been sent or echoed. */
function formsOf(value: string): string[] {
  const base64 = Buffer.from(value).toString('base64')
  const percent = encodeURIComponent(value)
  const form = formEncode(value)
  return [
    value,
    form,
    form.replace(/%[0-9A-F]{2}/g, (x) => x.toLowerCase()),
    percent,
    percent.replace(/%[0-9A-F]{2}/g, (x) => x.toLowerCase()),
    base64,
    base64.replace(/=+$/, ''),
    Buffer.from(value).toString('base64url'),
  ]
}

function basicForms(clientId: string, secret: string): string[] {
  const userInfo = `${formEncode(clientId)}:${formEncode(secret)}`
  return [Buffer.from(userInfo).toString('base64'), userInfo, `${clientId}:${secret}`]
}

/** A UTF-8 percent-encoding that leaves `plain` characters as they are, with `hex`-cased digits. */
function percentExcept(value: string, plain: RegExp, hex: 'upper' | 'lower', space = '%20'): string {
  let out = ''
  for (const char of value) {
    if (char === ' ') out += space
    else if (plain.test(char)) out += char
    else
      for (const byte of Buffer.from(char)) {
        const digits = byte.toString(16).padStart(2, '0')
        out += `%${hex === 'upper' ? digits.toUpperCase() : digits}`
      }
  }
  return out
}

/** `value` inside a JSON string as PHP's `json_encode` writes it: `\/` for `/`, `\uXXXX` for non-ASCII. */
function phpJson(value: string): string {
  return JSON.stringify(value)
    .slice(1, -1)
    .replace(/\//g, '\\/')
    .replace(/[^\u0020-\u007e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** `value` HTML-escaped as OWASP's encoder writes it: `&amp;`, `&quot;`, `&#x27;`, `&#x2F;`, ... */
function htmlEscaped(value: string): string {
  const named: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }
  return value.replace(
    /[&<>"'/]/g,
    (char) => named[char] ?? `&#x${char.charCodeAt(0).toString(16).toUpperCase()};`,
  )
}

/**
 * The forms other encoders than the library's write `value` in: Python's `quote(value, safe='')`
 * (`~` plain), Java's `URLEncoder` (`*` plain, `+` for a space), a strict RFC 3986 encoder with
 * lower-case hex, PHP's JSON escapes, HTML escapes, and its base64 JSON-escaped and percent-encoded.
 */
function foreignFormsOf(value: string): string[] {
  const base64 = Buffer.from(value).toString('base64')
  return [
    percentExcept(value, /[A-Za-z0-9_.~-]/, 'upper'),
    percentExcept(value, /[A-Za-z0-9.*_-]/, 'upper', '+'),
    percentExcept(value, /[A-Za-z0-9_.~-]/, 'lower'),
    phpJson(value),
    htmlEscaped(value),
    base64.replace(/\//g, '\\/'),
    encodeURIComponent(base64).replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
  ].filter((form) => form !== value)
}

function renderings(value: unknown): string {
  return [
    inspect(value, { showHidden: true, depth: Infinity }),
    format('%o', value),
    JSON.stringify(value) ?? '',
    String(value),
    (value as Error).stack ?? '',
    JSON.stringify((value as { response?: unknown }).response ?? null),
    JSON.stringify((value as { error_description?: unknown }).error_description ?? null),
    JSON.stringify((value as { error_uri?: unknown }).error_uri ?? null),
    inspect((value as Error).cause, { showHidden: true, depth: Infinity }),
  ].join('\n')
}

function leaksIn(value: unknown, forbidden: readonly string[]): string[] {
  const shown = renderings(value)
  return forbidden.filter((form) => form.length >= 4 && shown.includes(form))
}

let server: LocalServer

beforeAll(async () => {
  server = await startLocalServer()
  // A careless server echoing the raw request (body and headers, as sent) in its error text and
  // in a WWW-Authenticate header.
  server.route('/echo', (req, res, body) => {
    const headers = JSON.stringify(req.headers)
    res.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate':
        `Basic realm="x", error_description="${body} ${req.headers['authorization'] ?? ''}"`.replace(
          /[^\x20-\x7e]/g,
          '',
        ),
    })
    res.end(
      JSON.stringify({
        error: 'invalid_client',
        error_description: `bad request ${body} ${req.url ?? ''} ${headers}`,
        error_uri: `https://idp.example/why?echo=${encodeURIComponent(body)}`,
      }),
    )
  })
})

afterAll(async () => {
  await server.close()
})

/** The secret values of a request: its credential form fields and its Basic credentials. */
function sentSecrets(req: IncomingMessage, body: string): string[] {
  const form = new URLSearchParams(body)
  const values = ['client_secret', 'client_assertion', 'subject_token', 'actor_token']
    .map((name) => form.get(name))
    .filter((value): value is string => value !== null)
  const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1]
  if (basic !== undefined) {
    const userInfo = Buffer.from(basic, 'base64').toString('utf8')
    values.push(decodeURIComponent(userInfo.slice(userInfo.indexOf(':') + 1).replace(/\+/g, ' ')))
  }
  return values
}

beforeAll(() => {
  // A server that decodes what it got and quotes it back written by other encoders than the
  // library's, in its description (inside a JSON string, as a nested JSON text would be) and,
  // the ASCII forms, in WWW-Authenticate.
  server.route('/re-encode', (req, res, body) => {
    const forms = sentSecrets(req, body).flatMap(foreignFormsOf)
    res.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate': `Basic error_description="${forms
        .filter((form) => /^[\x20-\x7e]*$/.test(form))
        .map((form) => form.replace(/["\\]/g, '\\$&'))
        .join(' ')}"`,
    })
    res.end(JSON.stringify({ error: 'invalid_client', error_description: `got ${forms.join(' ')}` }))
  })
})

/** A platform-issued client assertion (no exp: it is not checked for expiry). */
const ASSERTION = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ3b3JrbG9hZCJ9.c2lnbmF0dXJlLW11c3Qtbm90LWxlYWs'

const auths: [string, () => ClientAuth, string[]][] = [
  ['client_assertion', () => clientAssertion(() => ASSERTION, { id: 'platform' }), formsOf(ASSERTION)],
  ['client_secret_post', () => clientSecretPost(SECRET), formsOf(SECRET)],
  [
    'client_secret_basic',
    () => clientSecretBasic(SECRET),
    [...formsOf(SECRET), ...basicForms('svc', SECRET)],
  ],
]

describe('a secret is removed in every encoding', () => {
  it.each(auths)('a server echoing a %s request', async (_name, auth, forbidden) => {
    const source = clientCredentials({
      tokenUrl: `${server.origin}/echo?api-key=${encodeURIComponent(QUERY_SECRET)}`,
      clientId: 'svc',
      auth: auth(),
      headers: { 'x-api-key': HEADER_SECRET },
      extraParams: { tenant_secret: PARAM_SECRET },
    })
    const caught = await source.fetchToken().catch((error: unknown) => error)
    expect(isOAuthError(caught, 'invalid_client')).toBe(true)
    // The server did echo them: without scrubbing, the error would hold them.
    const [request] = server.hits('/echo').slice(-1)
    expect(request!.body).toContain(formEncode(PARAM_SECRET))
    const all = [...forbidden, ...formsOf(HEADER_SECRET), ...formsOf(PARAM_SECRET), ...formsOf(QUERY_SECRET)]
    expect(leaksIn(caught, all)).toEqual([])
    expect((caught as { error_description?: string }).error_description).toContain('[redacted]')
    const kept = (caught as { response: { headers: Record<string, string> } }).response.headers
    expect(kept['www-authenticate']).toContain('[redacted]')
  })

  it.each(auths)(
    'a server quoting the %s secret as other encoders write it (Python, Java, RFC 3986, PHP JSON, HTML)',
    async (_name, auth, forbidden) => {
      const source = clientCredentials({
        tokenUrl: `${server.origin}/re-encode`,
        clientId: 'svc',
        auth: auth(),
      })
      const caught = await source.fetchToken().catch((error: unknown) => error)
      expect(isOAuthError(caught, 'invalid_client')).toBe(true)
      const secret = auth === auths[0]![1] ? ASSERTION : SECRET
      const foreign = foreignFormsOf(secret)
      // Some of them are forms the library's own encoders do not write.
      const own = formsOf(secret)
      expect(foreign.filter((form) => !own.includes(form)).length).toBeGreaterThan(0)
      expect(leaksIn(caught, [...forbidden, ...foreign])).toEqual([])
      const description = (caught as { error_description?: string }).error_description ?? ''
      expect(description.match(/\[redacted\]/g)).toHaveLength(foreign.length)
      const kept = (caught as { response: { headers: Record<string, string> } }).response.headers
      expect(kept['www-authenticate']).toContain('[redacted]')
    },
  )

  it.each(auths)('an injected fetch whose error quotes the %s request', async (_name, auth, forbidden) => {
    const source = clientCredentials({
      tokenUrl: 'https://idp.example/token',
      clientId: 'svc',
      auth: auth(),
      headers: { 'x-api-key': HEADER_SECRET },
      extraParams: { tenant_secret: PARAM_SECRET },
      fetch: (url, init) => {
        const body = init.body as string
        const headers = init.headers as Record<string, string>
        const message = `request to ${String(url)} failed: ${body} | ${decodeURIComponent(body)} | ${JSON.stringify(headers)}`
        return Promise.reject(
          Object.assign(new Error(message), {
            code: 'ECONNRESET',
            config: { headers, data: body },
            cause: new Error(`inner ${body}`),
          }),
        )
      },
    })
    const caught = await source.fetchToken().catch((error: unknown) => error)
    expect(caught).toMatchObject({ code: 'CONNECTION_RESET' })
    expect((caught as Error).cause).toMatchObject({ code: 'ECONNRESET' })
    expect(leaksIn(caught, [...forbidden, ...formsOf(HEADER_SECRET), ...formsOf(PARAM_SECRET)])).toEqual([])
  })

  it('an injected fetch whose error quotes the DPoP proof, in every encoding', async () => {
    let proof = ''
    const source = clientCredentials({
      tokenUrl: 'https://idp.example/token',
      clientId: 'svc',
      auth: clientSecretBasic(SECRET),
      dpop: await generateDpopKey(),
      fetch: (_url, init) => {
        const headers = init.headers as Record<string, string>
        proof = headers['dpop'] ?? ''
        const message = `failed with ${JSON.stringify(headers)} ${encodeURIComponent(proof)} ${Buffer.from(proof).toString('base64')}`
        return Promise.reject(
          Object.assign(new Error(message), { code: 'ECONNRESET', cause: new Error(`inner ${proof}`) }),
        )
      },
    })
    const caught = await source.fetchToken().catch((error: unknown) => error)
    expect(caught).toMatchObject({ code: 'CONNECTION_RESET' })
    expect(proof.split('.')).toHaveLength(3)
    expect(leaksIn(caught, [...formsOf(proof), ...formsOf(SECRET), ...basicForms('svc', SECRET)])).toEqual([])
  })

  it.each(['/echo', '/re-encode'])(
    'a manager’s events, diagnostics channels and stats carry none of them (%s)',
    async (path) => {
      const tokens = new TokenManager({ baseBackoffMs: 10 })
      const seen: unknown[] = []
      tokens.on('refreshFailure', (event) => seen.push(event))
      tokens.on('refreshStart', (event) => seen.push(event))
      const onMessage = (message: unknown): void => {
        seen.push(message)
      }
      for (const name of Object.values(CHANNEL_NAMES)) subscribe(name, onMessage)
      try {
        const source = clientCredentials({
          tokenUrl: `${server.origin}${path}`,
          clientId: 'svc',
          auth: clientSecretPost(SECRET),
        })
        const caught = await tokens.get(source).catch((error: unknown) => error)
        expect(isOAuthError(caught, 'invalid_client')).toBe(true)
        expect(seen.length).toBeGreaterThanOrEqual(4)
        const shown = [renderings(caught), inspect(seen, { depth: Infinity }), JSON.stringify(tokens.stats())]
        const forms = [...formsOf(SECRET), ...foreignFormsOf(SECRET)]
        expect(forms.filter((form) => shown.some((text) => text.includes(form)))).toEqual([])
      } finally {
        for (const name of Object.values(CHANNEL_NAMES)) unsubscribe(name, onMessage)
        await tokens.close()
      }
    },
  )
})

/** Tokens to exchange with every character a form or percent encoding changes (a token is visible ASCII). */
const SUBJECT = 'subj+/=&%~!*-SUBJECT-token-0123'
const ACTOR = 'act/or+=&%~-ACTOR-token-4567'

describe('token exchange: the subject and actor tokens are removed in every encoding', () => {
  const exchange = (tokenUrl: string, fetch?: Parameters<typeof tokenExchange>[0]['fetch']) =>
    tokenExchange({
      tokenUrl,
      clientId: 'svc',
      auth: clientSecretBasic(SECRET),
      subjectToken: tokenSource('user', () => ({ access_token: SUBJECT })),
      subjectTokenType: TOKEN_TYPES.accessToken,
      actorToken: () => ACTOR,
      actorTokenType: TOKEN_TYPES.accessToken,
      ...(fetch === undefined ? {} : { fetch }),
    })
  const forbidden = [...formsOf(SUBJECT), ...formsOf(ACTOR), ...formsOf(SECRET), ...basicForms('svc', SECRET)]

  it('a server echoing each token it got, in every encoding, without field names', async () => {
    server.route('/echo-values', (_req, res, body) => {
      const form = new URLSearchParams(body)
      const values = [form.get('subject_token') ?? '', form.get('actor_token') ?? ''].flatMap(formsOf)
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({ error: 'invalid_grant', error_description: `cannot use ${values.join(' ; ')}` }),
      )
    })
    const caught = await exchange(`${server.origin}/echo-values`)
      .fetchToken()
      .catch((error: unknown) => error)
    expect(isOAuthError(caught, 'invalid_grant')).toBe(true)
    expect(leaksIn(caught, forbidden)).toEqual([])
    expect((caught as { error_description?: string }).error_description).toContain('[redacted]')
  })

  it('a server echoing the exchange request', async () => {
    const tokens = new TokenManager()
    const seen: unknown[] = []
    tokens.on('refreshFailure', (event) => seen.push(event))
    const caught = await tokens.get(exchange(`${server.origin}/echo`)).catch((error: unknown) => error)
    expect(isOAuthError(caught, 'invalid_client')).toBe(true)
    const [request] = server.hits('/echo').slice(-1)
    expect(request!.body).toContain(formEncode(SUBJECT))
    expect(request!.body).toContain(formEncode(ACTOR))
    expect(leaksIn(caught, forbidden)).toEqual([])
    const shown = inspect(seen, { depth: Infinity }) + JSON.stringify(tokens.stats())
    expect(forbidden.filter((form) => shown.includes(form))).toEqual([])
    await tokens.close()
  })

  it('an injected fetch whose error quotes the exchange request', async () => {
    const caught = await exchange('https://idp.example/token', (url, init) => {
      const body = init.body as string
      return Promise.reject(
        Object.assign(new Error(`request to ${String(url)} failed: ${body} | ${decodeURIComponent(body)}`), {
          code: 'ECONNRESET',
          cause: new Error(`inner ${body}`),
        }),
      )
    })
      .fetchToken()
      .catch((error: unknown) => error)
    expect(caught).toMatchObject({ code: 'CONNECTION_RESET' })
    expect(leaksIn(caught, forbidden)).toEqual([])
  })
})

describe('SecretSet', () => {
  it('removes a Basic credential, its decoded user-info and the secret part', () => {
    const userInfo = `${formEncode('svc')}:${formEncode(SECRET)}`
    const credentials = Buffer.from(userInfo).toString('base64')
    const secrets = new SecretSet([credentials])
    for (const form of [credentials, userInfo.slice(4), SECRET, ...formsOf(SECRET)]) {
      expect(secrets.scrub(`x ${form} y`)).toBe('x [redacted] y')
    }
    // The client id is not a secret.
    expect(secrets.scrub(`client svc`)).toBe('client svc')
  })

  it('removes a secret however an encoder mixes plain, percent-encoded and JSON-escaped characters', () => {
    const secret = 'a/b~c*d "e\\f" g€'
    const secrets = new SecretSet([secret])
    for (const form of [
      'a\\/b~c*d \\"e\\\\f\\" g\\u20ac', // JSON-escaped, PHP-style
      'a\\/b~c*d \\"e\\\\f\\" g\\u20AC',
      'a%2Fb~c%2Ad%20%22e%5Cf%22%20g%E2%82%AC', // Python quote(safe='')
      'a%2fb%7ec*d+%22e%5cf%22+g%e2%82%ac', // Java URLEncoder, lower-case hex
      'a/b%7Ec*d %22e\\f%22 g€', // partly encoded
      'a&#x2F;b~c*d &quot;e\\f&#34; g&#8364;', // HTML-escaped
    ]) {
      expect(secrets.scrub(`<${form}>`)).toBe('<[redacted]>')
    }
    // Letters and digits are matched as themselves only: other text stays.
    expect(secrets.scrub('a/b~c*d "e\\g" g€ and a%2Fb')).toBe('a/b~c*d "e\\g" g€ and a%2Fb')
  })

  it('ignores values too short to be secrets, and leaves other text alone', () => {
    const secrets = new SecretSet(['abc', 'long-secret'])
    expect(secrets.scrub('abc and long-secret and bcd')).toBe('abc and [redacted] and bcd')
  })

  it('removes the query values and user-info of a URL', () => {
    const secrets = new SecretSet().addUrl(
      `https://user:pa%20ss@idp.example/t?key=${encodeURIComponent(QUERY_SECRET)}&x`,
    )
    expect(secrets.scrub(`pa ss ${QUERY_SECRET} ${encodeURIComponent(QUERY_SECRET)}`)).toBe(
      '[redacted] [redacted] [redacted]',
    )
  })
})

describe('a resource that echoes the token', () => {
  it('403 insufficient_scope whose challenge quotes the token: the error names the other scopes only', async () => {
    server.route('/token-ok', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ access_token: 'Echoed-Token-0123456789', expires_in: 3600 }))
    })
    server.route('/resource', (req, res) => {
      const token = (req.headers['authorization'] ?? '').replace(/^Bearer /, '')
      res.writeHead(403, {
        'www-authenticate': `Bearer error="insufficient_scope", scope="read ${token} ${Buffer.from(token).toString('base64')}", error_description="you sent ${token}"`,
      })
      res.end()
    })
    const tokens = new TokenManager()
    const api = tokens.fetch(
      clientCredentials({
        tokenUrl: `${server.origin}/token-ok`,
        clientId: 'svc',
        auth: clientSecretBasic(SECRET),
      }),
    )
    const caught = await api(`${server.origin}/resource`).catch((error: unknown) => error)
    expect(caught).toMatchObject({ code: 'INSUFFICIENT_SCOPE', requiredScopes: ['read'] })
    expect(leaksIn(caught, formsOf('Echoed-Token-0123456789'))).toEqual([])
    await tokens.close()
  })

  it('403 insufficient_scope whose DPoP challenge quotes the proof: the error holds neither proof nor token', async () => {
    server.route('/token-dpop-ok', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          access_token: 'Echoed-Dpop-Token-0123456789',
          token_type: 'DPoP',
          expires_in: 3600,
        }),
      )
    })
    let proof = ''
    server.route('/dpop-resource', (req, res) => {
      proof = String(req.headers['dpop'])
      res.writeHead(403, {
        'www-authenticate': `DPoP error="insufficient_scope", scope="read ${proof}", error_description="you sent ${proof}"`,
      })
      res.end()
    })
    const tokens = new TokenManager()
    const api = tokens.fetch(
      clientCredentials({
        tokenUrl: `${server.origin}/token-dpop-ok`,
        clientId: 'svc',
        auth: clientSecretBasic(SECRET),
        dpop: await generateDpopKey(),
      }),
    )
    const caught = await api(`${server.origin}/dpop-resource`).catch((error: unknown) => error)
    expect(caught).toMatchObject({ code: 'INSUFFICIENT_SCOPE', requiredScopes: ['read'] })
    expect(proof.split('.')).toHaveLength(3)
    expect(leaksIn(caught, [...formsOf(proof), ...formsOf('Echoed-Dpop-Token-0123456789')])).toEqual([])
    await tokens.close()
  })
})
