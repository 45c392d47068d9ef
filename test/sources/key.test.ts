/**
 * Cache keys, one table for every source kind (test/sources/key-cases.ts): any difference that
 * changes the token changes the key, differences that do not keep it, no key holds a secret in
 * any encoding, and keys keep the bytes they had (they name records in shared stores).
 */
import { describe, expect, it } from 'vitest'
import * as core from '../../src/index.js'
import * as lti from '../../src/lti/index.js'
import { SecretSet } from '../../src/secrets.js'
import { keyMaterial, keyTable, secretsOf, SECRETS, type KindTable } from './key-cases.js'

const material = keyMaterial()
const table = keyTable({ ...core, ...lti }, material)

/** Every key of one kind's rows, by row name. */
async function keysOf(
  kind: KindTable,
): Promise<{ base: string; changes: Map<string, string>; same: Map<string, string> }> {
  const read = async (rows: KindTable['changes']): Promise<Map<string, string>> =>
    new Map(await Promise.all(Object.entries(rows).map(async ([name, key]) => [name, await key()] as const)))
  return { base: await kind.base(), changes: await read(kind.changes), same: await read(kind.same) }
}

const keys = new Map(await Promise.all(table.map(async (kind) => [kind.kind, await keysOf(kind)] as const)))

function keysFor(kind: string): Awaited<ReturnType<typeof keysOf>> {
  const found = keys.get(kind)
  if (found === undefined) throw new Error(`no rows for ${kind}`)
  return found
}

const kinds = table.map((kind) => kind.kind)

describe('cache keys', () => {
  it.each(kinds)('%s: every change that changes the token changes the key', (kind) => {
    const { base, changes } = keysFor(kind)
    expect(changes.size).toBeGreaterThan(2)
    for (const [name, key] of changes) expect(key, name).not.toBe(base)
  })

  it('no two rows that change the token share a key, across every kind', () => {
    const owners = new Map<string, string[]>()
    for (const [kind, { base, changes }] of keys) {
      for (const [name, key] of [['base', base] as const, ...changes]) {
        owners.set(key, [...(owners.get(key) ?? []), `${kind} ${name}`])
      }
    }
    const shared = [...owners.values()].filter((names) => names.length > 1)
    expect(shared).toEqual([])
  })

  it.each(kinds)('%s: changes that leave the token as it is keep the key', (kind) => {
    const { base, same } = keysFor(kind)
    expect(same.size).toBeGreaterThan(0)
    for (const [name, key] of same) expect(key, name).toBe(base)
  })

  it('no key holds a secret, a private key or a query value, in any encoding', () => {
    const secrets = new SecretSet(secretsOf(material)).addUrl(`https://idp.example/?api-key=${SECRETS.query}`)
    expect(secrets.size).toBeGreaterThan(Object.keys(SECRETS).length * 4)
    const all = [...keys.values()].flatMap(({ base, changes, same }) => [
      base,
      ...changes.values(),
      ...same.values(),
    ])
    expect(all.length).toBeGreaterThan(200)
    for (const key of all) expect(secrets.scrub(key)).toBe(key)
  })
})

/**
 * Keys as the releases before the one key builder wrote them, byte for byte: a changed byte would
 * make every fleet start cold on upgrade. Only rows without generated key material or temporary
 * paths, whose keys are the same in every run.
 */
const PINNED: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  clientCredentials: {
    base: 'cc|https://idp.example/oauth/token|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write',
    tokenUrlQuery:
      'cc|https://idp.example/oauth/token?#nxn8aI-uD4gG5Pwr|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write',
    tokenUrlPipe: 'cc|https://idp.example/t%7Ca|b|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write',
    issuer: 'cc|discovery:https://idp.example|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write',
    clientIdEscaped: 'cc|https://idp.example/t|a%257Cb|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write',
    secretPost: 'cc|https://idp.example/oauth/token|svc|client_secret_post:k1YQMrWB5UtkIvV6|scope=read write',
    clientAssertion:
      'cc|https://idp.example/oauth/token|svc|private_key_jwt:bZCcLyA5Jkg3jOu1|scope=read write',
    noScopes: 'cc|https://idp.example/oauth/token|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=',
    audience:
      'cc|https://idp.example/oauth/token|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write|aud=https://api.example',
    twoResources:
      'cc|https://idp.example/oauth/token|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write|res=https://r1.example https://r2.example',
    resourcePercent:
      'cc|https://idp.example/oauth/token|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write|res=https://r1.example/%2520',
    extraParams:
      'cc|https://idp.example/oauth/token|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write|x=TI9rediXToA9eOUz',
    headers:
      'cc|https://idp.example/oauth/token|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=read write|o=smpcNL_gwLocAuQP',
  },
  'jwtBearer (issued assertion)': {
    base: 'jwt-bearer|https://sts.example/token|assertion=lnK0iLjdt1Lz65Hz|scope=read',
    clientId: 'jwt-bearer|https://sts.example/token|assertion=lnK0iLjdt1Lz65Hz|scope=read|client=svc:none',
    clientAuth:
      'jwt-bearer|https://sts.example/token|assertion=lnK0iLjdt1Lz65Hz|scope=read|client=svc:client_secret_basic:k1YQMrWB5UtkIvV6',
  },
  tokenExchange: {
    actorToken:
      'token-exchange|https://idp.example/oauth/token|sub=urn:ietf:params:oauth:token-type:access_token:vgWUqKK66ua0cdLr|act=urn:ietf:params:oauth:token-type:access_token:G-DtgPR9CL6eQuLc|scope=orders:read|client=gateway:client_secret_basic:k1YQMrWB5UtkIvV6',
    requestedTokenType:
      'token-exchange|https://idp.example/oauth/token|sub=urn:ietf:params:oauth:token-type:access_token:vgWUqKK66ua0cdLr|rtt=urn:ietf:params:oauth:token-type:jwt|scope=orders:read|client=gateway:client_secret_basic:k1YQMrWB5UtkIvV6',
    twoAudiences:
      'token-exchange|https://idp.example/oauth/token|sub=urn:ietf:params:oauth:token-type:access_token:vgWUqKK66ua0cdLr|scope=orders:read|aud=billing|aud=orders|client=gateway:client_secret_basic:k1YQMrWB5UtkIvV6',
    noClient:
      'token-exchange|https://idp.example/oauth/token|sub=urn:ietf:params:oauth:token-type:access_token:vgWUqKK66ua0cdLr|scope=orders:read',
    clientIdWithoutAuth:
      'token-exchange|https://idp.example/oauth/token|sub=urn:ietf:params:oauth:token-type:access_token:vgWUqKK66ua0cdLr|scope=orders:read|client=gateway:none',
  },
  tokenSource: { base: 'fn|vault:billing-api', nameWithPipe: 'fn|vault|billing-api' },
}

describe('cache keys keep their bytes', () => {
  it.each(Object.keys(PINNED))('%s', (kind) => {
    const { base, changes } = keysFor(kind)
    for (const [name, expected] of Object.entries(PINNED[kind] ?? {})) {
      expect(name === 'base' ? base : changes.get(name), name).toBe(expected)
    }
  })

  it('the key of a source resolved per call is not its resolved key (token exchange)', () => {
    const source = core.tokenExchange({
      tokenUrl: 'https://idp.example/oauth/token',
      subjectToken: () => SECRETS.subject,
      subjectTokenType: core.TOKEN_TYPES.accessToken,
      actorToken: () => SECRETS.actor,
      actorTokenType: core.TOKEN_TYPES.accessToken,
    })
    expect(source.key).toBe(
      'token-exchange|https://idp.example/oauth/token|sub-from=provider|act-from=provider|scope=',
    )
  })
})

describe('a resource that holds a space', () => {
  const key = (resource: string | string[]): string =>
    core.clientCredentials({
      tokenUrl: 'https://idp.example/oauth/token',
      clientId: 'svc',
      auth: core.clientSecretBasic(SECRETS.secret),
      resource,
    }).key

  it('is not the two resources its words name (it once shared their key)', () => {
    // Before: both were `...|res=https://r1.example https://r2.example`, though one sends one
    // `resource` parameter and the other two, and the server answers them differently.
    expect(key('https://r1.example https://r2.example')).toBe(
      'cc|https://idp.example/oauth/token|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=|res=https://r1.example%20https://r2.example',
    )
    expect(key(['https://r1.example', 'https://r2.example'])).toBe(
      'cc|https://idp.example/oauth/token|svc|client_secret_basic:k1YQMrWB5UtkIvV6|scope=|res=https://r1.example https://r2.example',
    )
  })

  it('is kept apart from a resource that spells the escape', () => {
    expect(key('https://r1.example https://r2.example')).not.toBe(
      key('https://r1.example%20https://r2.example'),
    )
  })
})
