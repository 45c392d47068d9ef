/**
 * Cache keys under attack: values that spell the key's own separators, escapes and segment
 * names; the same text in two Unicode forms; lists against strings, empty against absent;
 * wrapped keys against the keys they might spell; token URLs that differ only a little. Two
 * configurations that send different requests must not share a key (one would be served the
 * other's token from memory or a shared store); two that send the same request may.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as core from '../../src/index.js'
import * as lti from '../../src/lti/index.js'
import { rsaKeyPair } from './keys.js'

const TOKEN_URL = 'https://idp.example/oauth/token'
const secret = core.clientSecretBasic('s3cret-value-for-keys')

/** Values that spell what a key is made of. */
const TRICKY: readonly string[] = [
  'a',
  'a|b',
  'a%7Cb',
  'a%257Cb',
  'a%',
  'a%25',
  'a%7C',
  'a=b',
  'a b',
  'a  b',
  'a,b',
  'a\nb',
  'a\rb',
  'a\0b',
  'a\0',
  ' a',
  'a ',
  'a:none',
  'a:client_secret_basic:k1YQMrWB5UtkIvV6',
  'scope=read write',
  'aud=https://api.example',
  'res=https://r1.example',
  'x=TI9rediXToA9eOUz',
  'client=svc:none',
  'a|scope=read',
  'caf\u00e9', // NFC
  'cafe\u0301', // NFD: the same text to a reader, other bytes on the wire
  '\u{1F600}',
  'x'.repeat(100_000),
  `${'x'.repeat(100_000)}y`,
]

/**
 * A client credentials key. `audience` as a list too: the endpoint all sources share sends each
 * item (`tokenExchange`'s type allows it; this one's does not, untyped code may).
 */
type CcChange = Partial<Omit<core.ClientCredentialsOptions, 'audience'>> & {
  readonly audience?: string | readonly string[]
}

function cc(change: CcChange): string {
  const options = { tokenUrl: TOKEN_URL, clientId: 'svc', auth: secret, ...change }
  return core.clientCredentials(options as core.ClientCredentialsOptions).key
}

/** Fails with the values whose keys are shared. */
function expectDistinct(keyOf: (value: string) => string, values: readonly string[] = TRICKY): void {
  const owners = new Map<string, string[]>()
  for (const value of values) owners.set(keyOf(value), [...(owners.get(keyOf(value)) ?? []), value])
  expect([...owners.values()].filter((shared) => shared.length > 1)).toEqual([])
  expect(owners.size).toBe(values.length)
}

describe('values that spell separators, escapes and segments', () => {
  it('every field a value enters as text keeps each value apart', () => {
    const rsa = rsaKeyPair('a')
    expectDistinct((clientId) => cc({ clientId }))
    expectDistinct((audience) => cc({ audience }))
    expectDistinct((resource) => cc({ resource }))
    expectDistinct((resource) => cc({ resource: [resource, 'https://r2.example'] }))
    const bearer = (change: Partial<core.JwtBearerOptions>): string =>
      core.jwtBearer({ tokenUrl: TOKEN_URL, issuer: 'robot', key: rsa.pem, ...change }).key
    expectDistinct((issuer) => bearer({ issuer }))
    expectDistinct((subject) => bearer({ subject }))
    expectDistinct((clientId) => bearer({ clientId }))
    const registration: lti.LtiRegistration = {
      issuer: 'https://lms.example',
      clientId: 'tool',
      tokenUrl: 'https://lms.example/token',
      privateKey: rsa.pem,
      kid: 'k1',
    }
    const tool = (change: Partial<lti.LtiRegistration>): string =>
      lti.ltiServiceSource({ ...registration, ...change }, [lti.LtiScopes.score]).key
    expectDistinct((deploymentId) => tool({ deploymentId }))
    expectDistinct((clientId) => tool({ clientId }))
    expectDistinct((kid) => tool({ kid }))
  })

  it('NFC and NFD of the same text are other bytes on the wire and other keys', () => {
    const nfc = 'Zürich'.normalize('NFC')
    const nfd = 'Zürich'.normalize('NFD')
    expect(nfc).not.toBe(nfd)
    expect(cc({ clientId: nfc })).not.toBe(cc({ clientId: nfd }))
    expect(cc({ audience: nfc })).not.toBe(cc({ audience: nfd }))
    expect(cc({ extraParams: { tenant: nfc } })).not.toBe(cc({ extraParams: { tenant: nfd } }))
  })

  it('a value cannot spell the segments that follow it', () => {
    const pairs: [CcChange, CcChange][] = [
      [
        { audience: 'https://a.example|res=https://r1.example' },
        { audience: 'https://a.example', resource: 'https://r1.example' },
      ],
      [
        { audience: 'https://a.example|aud=https://b.example' },
        { audience: ['https://a.example', 'https://b.example'] },
      ],
      [{ audience: 'a b' }, { audience: ['a', 'b'] }],
      [{ audience: 'a,b' }, { audience: ['a', 'b'] }],
      [
        { resource: 'https://r1.example|x=TI9rediXToA9eOUz' },
        { resource: 'https://r1.example', extraParams: { tenant: 'x' } },
      ],
      [{ clientId: 'svc|client_secret_basic:k1YQMrWB5UtkIvV6' }, { clientId: 'svc' }],
      [{ tokenUrl: 'https://idp.example/t|svc' }, { tokenUrl: 'https://idp.example/t', clientId: 'svc|svc' }],
    ]
    for (const [a, b] of pairs) expect(cc(a), JSON.stringify(a)).not.toBe(cc(b))
  })

  it('extraParams: names that spell segments, other values, order', () => {
    const scoped = cc({ scopes: ['read'], audience: 'https://api.example', resource: 'https://r1.example' })
    expect(
      cc({ extraParams: { scope_: 'read', aud: 'https://api.example', res: 'https://r1.example' } }),
    ).not.toBe(scoped)
    expect(cc({ extraParams: { aud: 'https://api.example' } })).not.toBe(
      cc({ audience: 'https://api.example' }),
    )
    expect(cc({ extraParams: { res: 'https://r1.example' } })).not.toBe(
      cc({ resource: 'https://r1.example' }),
    )
    // Sent sorted by name, so another order is the same request and the same key.
    expect(cc({ extraParams: { b: '2', a: '1' } })).toBe(cc({ extraParams: { a: '1', b: '2' } }))
    expect(cc({ extraParams: { a: '1', b: '2' } })).not.toBe(cc({ extraParams: { a: '2', b: '1' } }))
    expect(cc({ extraParams: { a: '1' } })).not.toBe(cc({ extraParams: { a: '1 ' } }))
    expect(cc({ extraParams: { a: '' } })).not.toBe(cc({}))
    expect(cc({ extraParams: {} })).toBe(cc({}))
    // A value as it is sent: a number is its string.
    expect(cc({ extraParams: { a: 1 as unknown as string } })).toBe(cc({ extraParams: { a: '1' } }))
  })

  it('lists: words of one item against items, duplicates, empty against absent', () => {
    // One scope string is split on spaces and sent space-joined: the same request.
    expect(cc({ scopes: ['a b'] })).toBe(cc({ scopes: ['a', 'b'] }))
    expect(cc({ scopes: ['b', 'a', 'a'] })).toBe(cc({ scopes: ['a', 'b'] }))
    expect(cc({ scopes: [] })).toBe(cc({}))
    // One resource holding a space is one parameter; two are two.
    expect(cc({ resource: ['a b'] })).not.toBe(cc({ resource: ['a', 'b'] }))
    expect(cc({ resource: ['b', 'a', 'b'] })).toBe(cc({ resource: ['a', 'b'] }))
    expect(cc({ resource: [] })).toBe(cc({}))
    expect(cc({ resource: '' })).not.toBe(cc({}))
    expect(cc({ audience: [] })).toBe(cc({}))
    expect(cc({ audience: ['b', 'a', 'a'] })).toBe(cc({ audience: ['a', 'b'] }))
  })

  it('headers: names in other cases are one header, its values in the order given', () => {
    expect(cc({ headers: { 'X-A': '1', 'x-a': '2' } })).toBe(cc({ headers: { 'x-a': '1, 2' } }))
    expect(cc({ headers: { 'X-A': '1', 'x-a': '2' } })).not.toBe(cc({ headers: { 'x-a': '2', 'X-A': '1' } }))
    expect(cc({ headers: { 'X-A': '1' } })).toBe(cc({ headers: { 'x-a': '1' } }))
  })
})

describe('a signed and an issued JWT-bearer assertion, one kind word', () => {
  it('an issuer and subject that spell an issued assertion key do not reach its key', () => {
    const issued = core.jwtBearer({
      tokenUrl: TOKEN_URL,
      assertion: () => 'a.b.c',
      assertionId: 'w',
      scopes: ['read'],
    }).key
    const [, , assertion, scope] = issued.split('|')
    expect(assertion).toMatch(/^assertion=/)
    const signed = core.jwtBearer({
      tokenUrl: TOKEN_URL,
      issuer: assertion as string,
      subject: scope as string,
      key: rsaKeyPair('a').pem,
      scopes: ['read'],
    }).key
    expect(signed.startsWith(`${issued.split('|').slice(0, 4).join('|')}|`)).toBe(true)
    // The third positional segment of a signed key is a fingerprint, which holds no `=`; every
    // segment an issued key has there is named (`name=`).
    expect(signed).not.toBe(issued)
    expect(signed.split('|')[4]).toMatch(/^[A-Za-z0-9_-]{16}$/)
  })
})

describe('token exchange: subject and actor enter as fingerprints', () => {
  const exchangeKey = async (change: Partial<core.TokenExchangeOptions>): Promise<string> => {
    const source = core.tokenExchange({
      tokenUrl: TOKEN_URL,
      clientId: 'gateway',
      auth: secret,
      subjectToken: () => 'subject-1',
      subjectTokenType: core.TOKEN_TYPES.accessToken,
      ...change,
    })
    const get = (inner: core.TokenSource): Promise<core.AccessToken> => inner.fetchToken()
    return (await source.resolve!({ get, signal: undefined, clock: core.systemClock })).key
  }
  const actor = { actorToken: () => 'actor-1', actorTokenType: core.TOKEN_TYPES.accessToken }

  it('two subjects, two keys; one subject, one key; a subject is not the actor', async () => {
    expect(await exchangeKey({})).toBe(await exchangeKey({ subjectToken: () => 'subject-1' }))
    expect(await exchangeKey({})).not.toBe(await exchangeKey({ subjectToken: () => 'subject-2' }))
    expect(await exchangeKey({ subjectToken: () => 'x'.repeat(100_000) })).not.toBe(
      await exchangeKey({ subjectToken: () => `${'x'.repeat(100_000)}y` }),
    )
    const swapped = await exchangeKey({
      subjectToken: () => 'actor-1',
      actorToken: () => 'subject-1',
      actorTokenType: core.TOKEN_TYPES.accessToken,
    })
    expect(swapped).not.toBe(await exchangeKey(actor))
    expect(await exchangeKey(actor)).not.toBe(await exchangeKey({}))
    expect(await exchangeKey({ ...actor, actorTokenType: core.TOKEN_TYPES.jwt })).not.toBe(
      await exchangeKey(actor),
    )
    expect(await exchangeKey({ subjectTokenType: core.TOKEN_TYPES.jwt })).not.toBe(await exchangeKey({}))
    expect(await exchangeKey({ requestedTokenType: core.TOKEN_TYPES.accessToken })).not.toBe(
      await exchangeKey({}),
    )
  })

  it('a subject token that spells key segments stays a fingerprint', async () => {
    const forged = `subject-1|act=${core.TOKEN_TYPES.accessToken}:AAAAAAAAAAAAAAAA`
    const key = await exchangeKey({ subjectToken: () => forged })
    expect(key).not.toContain('act=')
    expect(key).not.toContain('subject-1')
    expect(key.split('|')).toHaveLength((await exchangeKey({})).split('|').length)
  })
})

describe('wrapped keys: tokenSource names are the caller’s namespace', () => {
  it('no tokenSource key is a built-in source’s key, and no built-in key starts with fn|', () => {
    const builtIn = cc({})
    expect(core.tokenSource(builtIn, () => ({ access_token: 'x' })).key).toBe(`fn|${builtIn}`)
    expect(core.tokenSource(builtIn, () => ({ access_token: 'x' })).key).not.toBe(builtIn)
    const google = core.googleServiceAccount({
      credentials: {
        type: 'service_account',
        client_email: 'fn',
        private_key: rsaKeyPair('a').pem,
        private_key_id: 'k',
      } as unknown as core.GoogleServiceAccountKey,
      scopes: ['s'],
    }).key
    expect(google.startsWith('google-sa|jwt-bearer|')).toBe(true)
    for (const key of [builtIn, google]) expect(key.startsWith('fn|')).toBe(false)
  })
})

describe('the endpoint part', () => {
  it('token URLs that are other requests are other keys', () => {
    const urls = [
      TOKEN_URL,
      'https://idp.example/oauth/Token',
      'https://idp.example/OAUTH/token',
      'https://idp.example/oauth/token/',
      'https://idp.example/oauth/token?a=1',
      'https://idp.example/oauth/token?a=%31',
      'https://idp.example/oauth/token?a=1&',
      'https://idp.example/oauth/token?A=1',
      'https://idp.example/oauth/token%2F',
      'https://idp.example/oauth%2Ftoken',
      'https://idp.example:8443/oauth/token',
      'https://idp.example./oauth/token',
      'https://idp.example/oauth/token;a',
      'https://idp.example/oauth/t%7Coken',
      'https://idp.example/oauth/t|oken',
    ]
    expectDistinct((tokenUrl) => cc({ tokenUrl }), urls)
  })

  it('spellings of one request share a key', () => {
    for (const spelled of [
      'https://IDP.EXAMPLE/oauth/token',
      'https://idp.example:443/oauth/token',
      'https://idp.example/a/../oauth/token',
    ]) {
      expect(cc({ tokenUrl: spelled }), spelled).toBe(cc({}))
    }
  })

  it('a token URL with credentials is refused, so no two users share one key', () => {
    expect(() => cc({ tokenUrl: 'https://alice:pw@idp.example/oauth/token' })).toThrow(
      /must not contain credentials/,
    )
    expect(() => cc({ tokenUrl: 'https://bob@idp.example/oauth/token' })).toThrow(
      /must not contain credentials/,
    )
  })

  describe('a bare ? (no query)', () => {
    let server: Server
    const paths: string[] = []
    beforeAll(async () => {
      server = createServer((req, res) => {
        paths.push(req.url ?? '')
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ access_token: 't', token_type: 'Bearer', expires_in: 60 }))
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    })
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

    it('is the same request as none on the wire, and the same key', async () => {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
      const bare = core.clientCredentials({ tokenUrl: `${base}?`, clientId: 'svc', auth: secret })
      const none = core.clientCredentials({ tokenUrl: base, clientId: 'svc', auth: secret })
      await bare.fetchToken()
      await none.fetchToken()
      expect(paths).toEqual(['/token', '/token'])
      expect(bare.key).toBe(none.key)
    })
  })
})
