/**
 * The cache keys of every source kind, as a table: for each kind a base configuration, the
 * changes that change the token (each must change the key) and the changes that do not (each
 * must keep it). The table takes the library as an argument so that the same table can be run
 * against two builds and their keys compared byte for byte.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type * as Core from '../../src/index.js'
import type * as Lti from '../../src/lti/index.js'
import { ecKeyPair, rsaKeyPair, type TestKeyPair } from './keys.js'

/** The library under test: the core and the LTI subpath. */
export type KeyApi = typeof Core & typeof Lti

/** Builds one key. */
export type KeyOf = () => string | Promise<string>

/** One source kind's rows. */
export interface KindTable {
  readonly kind: string
  readonly base: KeyOf
  /** Each changes the token: its key differs from the base's and from every other key. */
  readonly changes: Readonly<Record<string, KeyOf>>
  /** Each gives the token the base gives: the base's key. */
  readonly same: Readonly<Record<string, KeyOf>>
}

/** Every secret the table's configurations hold; no key may contain any form of one. */
export const SECRETS = {
  secret: 'SECRET-client+/= sécret-1',
  otherSecret: 'SECRET-client+/= sécret-2',
  extra: 'EXTRA value&=+/é-1',
  otherExtra: 'EXTRA value&=+/é-2',
  header: 'HEADER value+/=é-1',
  query: 'QUERY-api-key+/=é',
  subject: 'SUBJECT-token-value-1',
  otherSubject: 'SUBJECT-token-value-2',
  actor: 'ACTOR-token-value-1',
  otherActor: 'ACTOR-token-value-2',
  assertion: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ3b3JrbG9hZCJ9.c2lnbmF0dXJlLW11c3Qtbm90LWxlYWs',
} as const

/** Key pairs, certificates and files the table uses; made once per process. */
export interface KeyMaterial {
  readonly rsa: TestKeyPair
  readonly rsaOther: TestKeyPair
  readonly ec: TestKeyPair
  readonly ecOther: TestKeyPair
  /** Self-signed certificates for `ec` and `ecOther`. */
  readonly cert: string
  readonly otherCert: string
  /** A directory holding `assertion.jwt`, `other.jwt` and `google.json`. */
  readonly dir: string
}

/** Makes the material (openssl makes the certificates). */
export function keyMaterial(): KeyMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'tk-key-table-'))
  const ec = ecKeyPair('key-table-a')
  const ecOther = ecKeyPair('key-table-b')
  const certFor = (pair: TestKeyPair, name: string): string => {
    writeFileSync(join(dir, `${name}.key`), pair.pem)
    const args = [
      'req',
      '-x509',
      '-key',
      `${name}.key`,
      '-subj',
      '/CN=svc',
      '-days',
      '1',
      '-out',
      `${name}.crt`,
    ]
    const made = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
    if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr}`)
    return readFileSync(join(dir, `${name}.crt`), 'utf8')
  }
  writeFileSync(join(dir, 'assertion.jwt'), SECRETS.assertion)
  writeFileSync(join(dir, 'other.jwt'), SECRETS.assertion)
  const rsa = rsaKeyPair('a')
  writeFileSync(join(dir, 'google.json'), JSON.stringify(googleKey(rsa)))
  return {
    rsa,
    rsaOther: rsaKeyPair('b'),
    ec,
    ecOther,
    cert: certFor(ec, 'a'),
    otherCert: certFor(ecOther, 'b'),
    dir,
  }
}

function googleKey(rsa: TestKeyPair): Record<string, string> {
  return {
    type: 'service_account',
    client_email: 'robot@project.iam.example',
    private_key: rsa.pem,
    private_key_id: 'key-1',
  }
}

/** Every secret of the table, key material included, for the "no key holds a secret" check. */
export function secretsOf(material: KeyMaterial): string[] {
  const { rsa, rsaOther, ec, ecOther } = material
  return [...Object.values(SECRETS), ...[rsa, rsaOther, ec, ecOther].flatMap((pair) => pair.privateParts)]
}

/** A source's key after its per-call resolution (token exchange), or its own key. */
async function resolvedKey(api: KeyApi, source: Core.TokenSource): Promise<string> {
  if (source.resolve === undefined) return source.key
  const clock = api.systemClock
  const get = (inner: Core.TokenSource): Promise<Core.AccessToken> => inner.fetchToken()
  return (await source.resolve({ get, signal: undefined, clock })).key
}

/** The table, built with `api`. */
export function keyTable(api: KeyApi, material: KeyMaterial): readonly KindTable[] {
  return [
    clientCredentialsRows(api, material),
    jwtBearerRows(api, material),
    issuedJwtBearerRows(api, material),
    tokenExchangeRows(api, material),
    ltiRows(api, material),
    googleRows(api, material),
    tokenSourceRows(api),
  ]
}

type Options<T> = { -readonly [K in keyof T]?: T[K] | undefined }

function dpopOf(pair: TestKeyPair): Core.DpopKeyPair {
  return { privateKey: pair.privateKey, publicKey: pair.publicKey }
}

/** The rows every endpoint source shares: scope, audience, resource, extras, options, DPoP. */
function endpointRows(
  key: (change: Options<Core.EndpointOptions>) => KeyOf,
  material: KeyMaterial,
): Record<string, KeyOf> {
  return {
    noScopes: key({ scopes: [] }),
    otherScopes: key({ scopes: ['admin'] }),
    moreScopes: key({ scopes: ['read', 'write', 'admin'] }),
    audience: key({ audience: 'https://api.example' }),
    otherAudience: key({ audience: 'https://api2.example' }),
    resource: key({ resource: 'https://r1.example' }),
    twoResources: key({ resource: ['https://r1.example', 'https://r2.example'] }),
    // One `resource` parameter holding a space is not two parameters.
    resourceWithSpace: key({ resource: 'https://r1.example https://r2.example' }),
    resourcePercent: key({ resource: 'https://r1.example/%20' }),
    extraParams: key({ extraParams: { tenant: SECRETS.extra } }),
    extraParamsValue: key({ extraParams: { tenant: SECRETS.otherExtra } }),
    extraParamsName: key({ extraParams: { org: SECRETS.extra } }),
    headers: key({ headers: { 'x-tenant': SECRETS.header } }),
    // Untyped callers: each value is sent as its String(), which differ (`null`, `undefined`,
    // `NaN`, an object's toString); they once shared one key (their JSON is `null` or `{}`).
    extraParamsNull: key({ extraParams: { tenant: null as unknown as string } }),
    extraParamsUndefined: key({ extraParams: { tenant: undefined as unknown as string } }),
    extraParamsNaN: key({ extraParams: { tenant: Number.NaN as unknown as string } }),
    extraParamsObject: key({ extraParams: { tenant: { toString: () => 'acme' } as unknown as string } }),
    extraParamsOtherObject: key({
      extraParams: { tenant: { toString: () => 'globex' } as unknown as string },
    }),
    // Two names of one header are sent as one, joined in their order: `a, b` is not `b, a`.
    headersTwoCases: key({ headers: { 'X-Tenant': 'a', 'x-tenant': 'b' } }),
    headersTwoCasesReversed: key({ headers: { 'x-tenant': 'b', 'X-Tenant': 'a' } }),
    defaultLifetime: key({ defaultLifetimeMs: 60_000 }),
    requireScopes: key({ requireRequestedScopes: true }),
    acceptedTypes: key({ acceptedTokenTypes: ['bearer', 'mac'] }),
    dpop: key({ dpop: dpopOf(material.ec) }),
    otherDpop: key({ dpop: dpopOf(material.ecOther) }),
    dpopRequired: key({ dpop: dpopOf(material.ec), requireDpopBinding: true }),
  }
}

/** Changes of the endpoint options that leave the token as it is. */
function endpointSame(
  key: (change: Options<Core.EndpointOptions>) => KeyOf,
  api: KeyApi,
): Record<string, KeyOf> {
  return {
    timeoutMs: key({ timeoutMs: 1234 }),
    maxResponseBytes: key({ maxResponseBytes: 4096 }),
    clock: key({ clock: api.systemClock }),
    fetch: key({ fetch: (input, init) => fetch(input, init) }),
    emptyHeaders: key({ headers: {} }),
  }
}

function clientCredentialsRows(api: KeyApi, material: KeyMaterial): KindTable {
  const { rsa, rsaOther, ec, cert, otherCert, dir } = material
  const base: Core.ClientCredentialsOptions = {
    tokenUrl: 'https://idp.example/oauth/token',
    clientId: 'svc',
    auth: api.clientSecretBasic(SECRETS.secret),
    scopes: ['read', 'write'],
  }
  const key =
    (change: Options<Core.ClientCredentialsOptions>): KeyOf =>
    () =>
      api.clientCredentials({ ...base, ...change } as Core.ClientCredentialsOptions).key
  const tls = { cert, key: ec.pem }
  return {
    kind: 'clientCredentials',
    base: key({}),
    changes: {
      tokenUrlPath: key({ tokenUrl: 'https://idp.example/oauth/token2' }),
      tokenUrlHost: key({ tokenUrl: 'https://other.example/oauth/token' }),
      tokenUrlQuery: key({ tokenUrl: 'https://idp.example/oauth/token?tenant=2' }),
      tokenUrlQuerySecret: key({ tokenUrl: `https://idp.example/oauth/token?api-key=${SECRETS.query}` }),
      tokenUrlPipe: key({ tokenUrl: 'https://idp.example/t|a', clientId: 'b' }),
      issuer: key({ tokenUrl: undefined, issuer: 'https://idp.example' }),
      clientId: key({ clientId: 'svc2' }),
      clientIdPipe: key({ tokenUrl: 'https://idp.example/t', clientId: 'a|b' }),
      clientIdEscaped: key({ tokenUrl: 'https://idp.example/t', clientId: 'a%7Cb' }),
      secretPost: key({ auth: api.clientSecretPost(SECRETS.secret) }),
      otherSecret: key({ auth: api.clientSecretBasic(SECRETS.otherSecret) }),
      privateKeyJwt: key({ auth: api.privateKeyJwt({ key: rsa.pem }) }),
      otherPrivateKey: key({ auth: api.privateKeyJwt({ key: rsaOther.pem }) }),
      ecPrivateKey: key({ auth: api.privateKeyJwt({ key: ec.pem }) }),
      alg: key({ auth: api.privateKeyJwt({ key: rsa.pem, alg: 'PS256' }) }),
      kid: key({ auth: api.privateKeyJwt({ key: rsa.pem, kid: 'k1' }) }),
      otherKid: key({ auth: api.privateKeyJwt({ key: rsa.pem, kid: 'k2' }) }),
      assertionAudience: key({ auth: api.privateKeyJwt({ key: rsa.pem, audience: 'https://idp.example' }) }),
      clientAssertion: key({ auth: api.clientAssertion(() => SECRETS.assertion, { id: 'platform' }) }),
      otherClientAssertion: key({ auth: api.clientAssertion(() => SECRETS.assertion, { id: 'other' }) }),
      clientAssertionFile: key({ auth: api.clientAssertionFile(join(dir, 'assertion.jwt')) }),
      tlsClientAuth: key({ auth: api.tlsClientAuth(tls) }),
      otherCertificate: key({ auth: api.tlsClientAuth({ cert: otherCert, key: material.ecOther.pem }) }),
      selfSignedTlsClientAuth: key({ auth: api.selfSignedTlsClientAuth(tls) }),
      ...endpointRows(key, material),
    },
    same: {
      sameSecretAgain: key({ auth: api.clientSecretBasic(SECRETS.secret) }),
      scopeOrder: key({ scopes: ['write', 'read'] }),
      duplicateScopes: key({ scopes: ['write', 'read', 'read', 'write'] }),
      spaceJoinedScopes: key({ scopes: ['  write\tread '] }),
      tokenUrlSpelling: key({ tokenUrl: 'https://IDP.example:443/oauth/token' }),
      tokenUrlObject: key({ tokenUrl: new URL('https://idp.example/oauth/token') }),
      ...endpointSame(key, api),
    },
  }
}

function jwtBearerRows(api: KeyApi, material: KeyMaterial): KindTable {
  const { rsa, rsaOther, ec } = material
  const base: Core.JwtBearerOptions = {
    tokenUrl: 'https://oauth2.example/token',
    issuer: 'robot@project.example',
    key: rsa.pem,
    scopes: ['read', 'write'],
  }
  const key =
    (change: Options<Core.JwtBearerOptions>): KeyOf =>
    () =>
      api.jwtBearer({ ...base, ...change } as Core.JwtBearerOptions).key
  return {
    kind: 'jwtBearer',
    base: key({}),
    changes: {
      tokenUrl: key({ tokenUrl: 'https://oauth2.example/token2' }),
      issuer: key({ issuer: 'other@project.example' }),
      subject: key({ subject: 'user@example' }),
      otherSubject: key({ subject: 'user2@example' }),
      privateKey: key({ key: rsaOther.pem }),
      ecPrivateKey: key({ key: ec.pem }),
      alg: key({ alg: 'PS256' }),
      kid: key({ kid: 'k1' }),
      assertionAudience: key({ assertionAudience: 'https://oauth2.example/' }),
      scopeInAssertion: key({ scopeIn: 'assertion' }),
      otherScopeInAssertion: key({ scopeIn: 'assertion', scopes: ['admin'] }),
      claims: key({ claims: { target_audience: 'a' } }),
      otherClaims: key({ claims: { target_audience: 'b' } }),
      clientId: key({ clientId: 'svc' }),
      clientAuth: key({ clientId: 'svc', auth: api.clientSecretBasic(SECRETS.secret) }),
      clientOtherSecret: key({ clientId: 'svc', auth: api.clientSecretBasic(SECRETS.otherSecret) }),
      clientAuthMethod: key({ clientId: 'svc', auth: api.clientSecretPost(SECRETS.secret) }),
      ...endpointRows(key, material),
    },
    same: {
      keyObject: key({ key: rsa.privateKey }),
      jwk: key({ key: rsa.jwk }),
      scopeOrder: key({ scopes: ['write', 'read'] }),
      duplicateScopes: key({ scopes: ['read', 'read', 'write'] }),
      ...endpointSame(key, api),
    },
  }
}

function issuedJwtBearerRows(api: KeyApi, material: KeyMaterial): KindTable {
  const base: Core.JwtBearerAssertionOptions = {
    tokenUrl: 'https://sts.example/token',
    assertion: () => SECRETS.assertion,
    assertionId: 'workload',
    scopes: ['read'],
  }
  const key =
    (change: Options<Core.JwtBearerAssertionOptions>): KeyOf =>
    () =>
      api.jwtBearer({ ...base, ...change } as Core.JwtBearerAssertionOptions).key
  return {
    kind: 'jwtBearer (issued assertion)',
    base: key({}),
    changes: {
      tokenUrl: key({ tokenUrl: 'https://sts.example/token2' }),
      assertionId: key({ assertionId: 'other-workload' }),
      assertionFile: key({
        assertion: { file: join(material.dir, 'assertion.jwt') },
        assertionId: undefined,
      }),
      otherAssertionFile: key({
        assertion: { file: join(material.dir, 'other.jwt') },
        assertionId: undefined,
      }),
      clientId: key({ clientId: 'svc' }),
      clientAuth: key({ clientId: 'svc', auth: api.clientSecretBasic(SECRETS.secret) }),
      ...endpointRows(key, material),
    },
    same: {
      // The id names where the assertions come from (documented): another function, same id.
      sameAssertionId: key({ assertion: () => SECRETS.assertion }),
      scopeOrder: key({ scopes: ['read', 'read'] }),
      ...endpointSame(key, api),
    },
  }
}

function tokenExchangeRows(api: KeyApi, material: KeyMaterial): KindTable {
  const { cert, ec } = material
  const base: Core.TokenExchangeOptions = {
    tokenUrl: 'https://idp.example/oauth/token',
    clientId: 'gateway',
    auth: api.clientSecretBasic(SECRETS.secret),
    subjectToken: () => SECRETS.subject,
    subjectTokenType: api.TOKEN_TYPES.accessToken,
    scopes: ['orders:read'],
  }
  const key =
    (change: Options<Core.TokenExchangeOptions>): KeyOf =>
    () =>
      resolvedKey(api, api.tokenExchange({ ...base, ...change } as Core.TokenExchangeOptions))
  const actor = { actorToken: () => SECRETS.actor, actorTokenType: api.TOKEN_TYPES.accessToken }
  const { audience: _audience, ...endpoint } = endpointRows(key, material)
  return {
    kind: 'tokenExchange',
    base: key({}),
    changes: {
      tokenUrl: key({ tokenUrl: 'https://idp.example/oauth/token2' }),
      subjectToken: key({ subjectToken: () => SECRETS.otherSubject }),
      subjectTokenType: key({ subjectTokenType: api.TOKEN_TYPES.idToken }),
      actorToken: key(actor),
      otherActorToken: key({ ...actor, actorToken: () => SECRETS.otherActor }),
      actorTokenType: key({ ...actor, actorTokenType: api.TOKEN_TYPES.jwt }),
      requestedTokenType: key({ requestedTokenType: api.TOKEN_TYPES.jwt }),
      otherRequestedTokenType: key({ requestedTokenType: api.TOKEN_TYPES.idToken }),
      audience: key({ audience: 'orders' }),
      twoAudiences: key({ audience: ['orders', 'billing'] }),
      noClient: key({ clientId: undefined, auth: undefined }),
      clientId: key({ clientId: 'gateway2' }),
      clientIdWithoutAuth: key({ auth: undefined }),
      otherSecret: key({ auth: api.clientSecretBasic(SECRETS.otherSecret) }),
      tlsClientAuth: key({ auth: api.tlsClientAuth({ cert, key: ec.pem }) }),
      ...endpoint,
    },
    same: {
      sameSubjectAgain: key({ subjectToken: () => SECRETS.subject }),
      sameSecretAgain: key({ auth: api.clientSecretBasic(SECRETS.secret) }),
      scopeOrder: key({ scopes: ['orders:read', 'orders:read'] }),
      ...endpointSame(key, api),
    },
  }
}

function ltiRows(api: KeyApi, material: KeyMaterial): KindTable {
  const { rsa, rsaOther } = material
  const registration: Lti.LtiRegistration = {
    issuer: 'https://lms.example',
    clientId: 'tool-1',
    tokenUrl: 'https://lms.example/login/oauth2/token',
    privateKey: rsa.pem,
    kid: 'tool-key-1',
  }
  const scopes: readonly string[] = [api.LtiScopes.score, api.LtiScopes.lineItem]
  const key =
    (change: Options<Lti.LtiRegistration>, scopeList = scopes, options: Lti.LtiSourceOptions = {}): KeyOf =>
    () =>
      api.ltiServiceSource({ ...registration, ...change } as Lti.LtiRegistration, scopeList, options).key
  return {
    kind: 'ltiServiceSource',
    base: key({}),
    changes: {
      issuer: key({ issuer: 'https://lms2.example' }),
      clientId: key({ clientId: 'tool-2' }),
      tokenUrl: key({ tokenUrl: 'https://lms.example/login/oauth2/token2' }),
      audience: key({ audience: 'https://auth.lms.example' }),
      deploymentId: key({ deploymentId: 'deployment-1' }),
      otherDeploymentId: key({ deploymentId: 'deployment-2' }),
      privateKey: key({ privateKey: rsaOther.pem }),
      kid: key({ kid: 'tool-key-2' }),
      fewerScopes: key({}, [api.LtiScopes.score]),
      otherScopes: key({}, [api.LtiScopes.lineItemReadOnly]),
      defaultLifetime: key({}, scopes, { defaultLifetimeMs: 60_000 }),
    },
    same: {
      keyObject: key({ privateKey: rsa.privateKey }),
      scopeOrder: key({}, [api.LtiScopes.lineItem, api.LtiScopes.score, api.LtiScopes.score]),
      timeoutMs: key({}, scopes, { timeoutMs: 1234 }),
      assertionLifetime: key({}, scopes, { assertionLifetimeMs: 30_000 }),
    },
  }
}

function googleRows(api: KeyApi, material: KeyMaterial): KindTable {
  const { rsa, rsaOther } = material
  const credentials = googleKey(rsa) as unknown as Core.GoogleServiceAccountKey
  const base: Core.GoogleServiceAccountOptions = {
    credentials,
    scopes: ['https://www.googleapis.com/auth/cloud-platform'],
  }
  const key =
    (change: Options<Core.GoogleServiceAccountOptions>): KeyOf =>
    () =>
      api.googleServiceAccount({ ...base, ...change } as Core.GoogleServiceAccountOptions).key
  const withKey = (members: Record<string, string>): KeyOf =>
    key({ credentials: { ...credentials, ...members } })
  const { noScopes: _none, ...endpoint } = endpointRows(key, material)
  return {
    kind: 'googleServiceAccount',
    base: key({}),
    changes: {
      clientEmail: withKey({ client_email: 'other@project.iam.example' }),
      privateKey: withKey({ private_key: rsaOther.pem }),
      privateKeyId: withKey({ private_key_id: 'key-2' }),
      tokenUri: withKey({ token_uri: 'https://oauth2.example/token' }),
      subject: key({ subject: 'user@example.com' }),
      otherSubject: key({ subject: 'user2@example.com' }),
      ...endpoint,
    },
    same: {
      keyFile: key({ credentials: join(material.dir, 'google.json') }),
      scopeOrder: key({ scopes: [...base.scopes, ...base.scopes] }),
      ...endpointSame(key, api),
    },
  }
}

function tokenSourceRows(api: KeyApi): KindTable {
  const fn = (): Record<string, unknown> => ({ access_token: 'x' })
  const key =
    (name: string, f: Core.TokenFunction = fn): KeyOf =>
    () =>
      api.tokenSource(name, f).key
  return {
    kind: 'tokenSource',
    base: key('vault:billing-api'),
    changes: {
      name: key('vault:orders-api'),
      // A name that spells another source's key stays apart from it (the `fn|` prefix).
      nameOfAKey: key('cc|https://idp.example/oauth/token|svc'),
      nameWithPipe: key('vault|billing-api'),
    },
    same: { otherFunction: key('vault:billing-api', () => ({ access_token: 'y' })) },
  }
}
