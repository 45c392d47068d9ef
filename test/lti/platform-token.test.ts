import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import type { LtiPlatform } from '../../src/testing/index.js'
import { CLIENT_ID, KID, SCOPES, startLti, toolKeys } from './helpers.js'

const FORM = 'application/x-www-form-urlencoded'
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

interface Claims {
  readonly iss?: unknown
  readonly sub?: unknown
  readonly aud?: unknown
  readonly iat?: unknown
  readonly exp?: unknown
  readonly jti?: unknown
  readonly [claim: string]: unknown
}

/** Signs a client assertion; `undefined` claims are left out. Times default to the platform clock. */
async function assertion(
  platform: LtiPlatform,
  nowMs: number,
  claims: Claims = {},
  header: { alg?: string; kid?: string | undefined } = {},
  key: KeyObject = toolKeys().privateKey,
): Promise<string> {
  const now = Math.floor(nowMs / 1000)
  const payload: Record<string, unknown> = {
    iss: CLIENT_ID,
    sub: CLIENT_ID,
    aud: platform.tokenUrl,
    iat: now,
    exp: now + 60,
    jti: randomUUID(),
    ...claims,
  }
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name]
  const protectedHeader = { alg: header.alg ?? 'RS256', ...('kid' in header ? {} : { kid: KID }), ...header }
  if (protectedHeader.kid === undefined) delete protectedHeader.kid
  return new SignJWT(payload).setProtectedHeader(protectedHeader as { alg: string }).sign(key)
}

async function post(
  platform: LtiPlatform,
  fields: Record<string, string | undefined>,
  contentType = `${FORM};charset=UTF-8`,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const body = new URLSearchParams()
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) body.append(name, value)
  const response = await fetch(platform.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: body.toString(),
  })
  return {
    status: response.status,
    json: (await response.json()) as Record<string, unknown>,
    headers: response.headers,
  }
}

async function fields(
  platform: LtiPlatform,
  now: number,
  claims: Claims = {},
): Promise<Record<string, string>> {
  return {
    grant_type: 'client_credentials',
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: await assertion(platform, now, claims),
    scope: SCOPES.score,
  }
}

describe('LTI platform token endpoint: each rule satisfied', () => {
  it('issues a Bearer token with expires_in and the granted scope, no-store', async () => {
    const { platform, clock } = await startLti()
    const answer = await post(platform, await fields(platform, clock.now()))
    expect(answer.status).toBe(200)
    expect(answer.json).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: SCOPES.score })
    expect(answer.headers.get('cache-control')).toBe('no-store')
    expect(platform.introspect(answer.json['access_token'] as string)).toMatchObject({
      active: true,
      clientId: CLIENT_ID,
    })
    expect(platform.stats()).toMatchObject({ tokenRequests: 1, tokensIssued: 1, tokenFailures: 0 })
  })

  it('grants the intersection of requested and permitted scopes, in the order requested', async () => {
    const { platform, clock } = await startLti({ tool: { allowedScopes: [SCOPES.score, SCOPES.result] } })
    const request = {
      ...(await fields(platform, clock.now())),
      scope: `${SCOPES.lineItem} ${SCOPES.score} ${SCOPES.result}`,
    }
    expect((await post(platform, request)).json['scope']).toBe(`${SCOPES.score} ${SCOPES.result}`)
  })

  it('accepts a one-element aud array, an iat 29 s ahead and one 299 s old', async () => {
    const { platform, clock } = await startLti()
    const now = clock.now()
    for (const claims of [
      { aud: [platform.tokenUrl] },
      { iat: Math.floor(now / 1000) + 29 },
      { iat: Math.floor(now / 1000) - 299 },
    ]) {
      expect((await post(platform, await fields(platform, now, claims))).status).toBe(200)
    }
  })

  it('can omit expires_in, or send 0, as some platforms do', async () => {
    const omitted = await startLti({ platform: { sendExpiresIn: false } })
    const answer = await post(omitted.platform, await fields(omitted.platform, omitted.clock.now()))
    expect(answer.json).not.toHaveProperty('expires_in')
    const zero = await startLti({ platform: { tokenLifetimeMs: 0 } })
    expect(
      (await post(zero.platform, await fields(zero.platform, zero.clock.now()))).json['expires_in'],
    ).toBe(0)
  })

  it('accepts extra form fields only when told to', async () => {
    const { platform, clock } = await startLti({ platform: { allowExtraFormFields: true } })
    const answer = await post(platform, { ...(await fields(platform, clock.now())), client_id: CLIENT_ID })
    expect(answer.status).toBe(200)
  })

  it('logs the form field names, never the assertion', async () => {
    const { platform, clock } = await startLti()
    const request = await fields(platform, clock.now())
    await post(platform, request)
    expect(platform.requests[0]?.formFields).toEqual([
      'grant_type',
      'client_assertion_type',
      'client_assertion',
      'scope',
    ])
    expect(JSON.stringify(platform.requests)).not.toContain(request['client_assertion'])
  })
})

describe('LTI platform token endpoint: each rule enforced', () => {
  type Case = readonly [
    string,
    (p: LtiPlatform, now: number) => Promise<Record<string, string | undefined>>,
    string,
    number,
    RegExp?,
  ]
  const cases: Case[] = [
    [
      'a missing scope',
      async (p, now) => ({ ...(await fields(p, now)), scope: undefined }),
      'invalid_request',
      400,
    ],
    ['an empty scope', async (p, now) => ({ ...(await fields(p, now)), scope: '' }), 'invalid_request', 400],
    [
      'a missing client_assertion',
      async (p, now) => ({ ...(await fields(p, now)), client_assertion: undefined }),
      'invalid_request',
      400,
    ],
    [
      'an extra client_id',
      async (p, now) => ({ ...(await fields(p, now)), client_id: CLIENT_ID }),
      'invalid_request',
      400,
      /unexpected parameter client_id/,
    ],
    [
      'a wrong grant_type',
      async (p, now) => ({ ...(await fields(p, now)), grant_type: 'password' }),
      'unsupported_grant_type',
      400,
    ],
    [
      'a wrong client_assertion_type',
      async (p, now) => ({ ...(await fields(p, now)), client_assertion_type: 'urn:x' }),
      'unsupported_grant_type',
      400,
    ],
    [
      'an assertion that is no JWT',
      async (p, now) => ({ ...(await fields(p, now)), client_assertion: 'abc.def' }),
      'invalid_request',
      400,
    ],
    [
      'PS256 instead of RS256',
      async (p, now) => ({
        ...(await fields(p, now)),
        client_assertion: await assertion(p, now, {}, { alg: 'PS256' }),
      }),
      'invalid_client',
      400,
      /RS256/,
    ],
    [
      'no kid',
      async (p, now) => ({
        ...(await fields(p, now)),
        client_assertion: await assertion(p, now, {}, { kid: undefined }),
      }),
      'invalid_client',
      400,
      /kid/,
    ],
    [
      'an unknown kid',
      async (p, now) => ({
        ...(await fields(p, now)),
        client_assertion: await assertion(p, now, {}, { kid: 'nope' }),
      }),
      'invalid_client',
      400,
      /Failed to get key with kid \[nope\]/,
    ],
    [
      'another key under the known kid',
      async (p, now) => ({
        ...(await fields(p, now)),
        client_assertion: await assertion(
          p,
          now,
          {},
          {},
          generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
        ),
      }),
      'invalid_client',
      400,
      /signature/,
    ],
    [
      'an unknown client',
      async (p, now) => fields(p, now, { iss: 'stranger', sub: 'stranger' }),
      'invalid_client',
      400,
    ],
    ['sub other than iss', async (p, now) => fields(p, now, { sub: 'someone-else' }), 'invalid_client', 400],
    [
      'aud with a trailing slash',
      async (p, now) => fields(p, now, { aud: `${p.tokenUrl}/` }),
      'invalid_request',
      400,
      /the 'aud' is invalid/,
    ],
    [
      'aud with two values',
      async (p, now) => fields(p, now, { aud: [p.tokenUrl, 'https://other.example'] }),
      'invalid_request',
      400,
      /single value/,
    ],
    [
      'iat as a string',
      async (p, now) => fields(p, now, { iat: String(Math.floor(now / 1000)) }),
      'invalid_request',
      400,
      /the 'iat' must be a number/,
    ],
    [
      'exp as a string',
      async (p, now) => fields(p, now, { exp: String(Math.floor(now / 1000) + 60) }),
      'invalid_request',
      400,
      /the 'exp' must be a number/,
    ],
    [
      'an expired assertion',
      async (p, now) =>
        fields(p, now, { iat: Math.floor(now / 1000) - 120, exp: Math.floor(now / 1000) - 60 }),
      'invalid_request',
      400,
      /the JWT has expired/,
    ],
    [
      'an iat 301 s old',
      async (p, now) => fields(p, now, { iat: Math.floor(now / 1000) - 301 }),
      'invalid_request',
      400,
      /less than 300 seconds old/,
    ],
    [
      'an iat 31 s in the future',
      async (p, now) => fields(p, now, { iat: Math.floor(now / 1000) + 31 }),
      'invalid_request',
      400,
      /must not be in the future/,
    ],
    ['no jti', async (p, now) => fields(p, now, { jti: undefined }), 'invalid_request', 400, /jti/],
    [
      'no permitted scope',
      async (p, now) => ({
        ...(await fields(p, now)),
        scope: 'https://purl.imsglobal.org/spec/lti-ags/scope/result/read',
      }),
      'invalid_scope',
      400,
    ],
    [
      'a deployment id the tool does not have',
      async (p, now) =>
        fields(p, now, { 'https://purl.imsglobal.org/spec/lti/claim/deployment_id': 'dep-x' }),
      'invalid_request',
      400,
      /deployment_id/,
    ],
  ]

  const named = cases.map(([name, build, error, status, description]) => ({
    name,
    build,
    error,
    status,
    description,
  }))

  it.each(named)('refuses $name', async ({ build, error, status, description }) => {
    const { platform, clock } = await startLti({ tool: { deploymentIds: ['dep-1'] } })
    const answer = await post(platform, await build(platform, clock.now()))
    expect(answer.status).toBe(status)
    expect(answer.json['error']).toBe(error)
    if (description !== undefined) expect(answer.json['error_description']).toMatch(description)
    expect(platform.stats()).toMatchObject({ tokensIssued: 0, tokenFailures: 1 })
    expect(platform.requests[0]?.error).toBe(error)
  })

  it('refuses a media type other than application/x-www-form-urlencoded', async () => {
    const { platform, clock } = await startLti()
    const request = await fields(platform, clock.now())
    const answer = await post(platform, request, 'text/plain')
    expect(answer.json).toMatchObject({
      error: 'invalid_request',
      error_description: expect.stringMatching(/Content-Type/),
    })
  })

  it('refuses a replayed jti', async () => {
    const { platform, clock } = await startLti()
    const request = await fields(platform, clock.now())
    expect((await post(platform, request)).status).toBe(200)
    const replay = await post(platform, request)
    expect(replay.json).toMatchObject({
      error: 'invalid_client',
      error_description: expect.stringMatching(/replay/),
    })
  })

  it('requires the deployment id claim when configured', async () => {
    const { platform, clock } = await startLti({ platform: { requireDeploymentId: true } })
    const missing = await post(platform, await fields(platform, clock.now()))
    expect(missing.json['error_description']).toMatch(/deployment_id claim is required/)
    const given = await fields(platform, clock.now(), {
      'https://purl.imsglobal.org/spec/lti/claim/deployment_id': 'dep-1',
    })
    expect((await post(platform, given)).status).toBe(200)
  })

  it('revokes a token early: service calls with it get 401', async () => {
    const { platform, clock } = await startLti()
    const course = platform.createContext({ learners: 1 })
    const answer = await post(platform, { ...(await fields(platform, clock.now())), scope: SCOPES.nrps })
    const token = answer.json['access_token'] as string
    const call = () =>
      fetch(course.membershipsUrl, {
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/vnd.ims.lti-nrps.v2.membershipcontainer+json',
        },
      })
    expect((await call()).status).toBe(200)
    expect(platform.revoke(token)).toBe(true)
    const refused = await call()
    expect(refused.status).toBe(401)
    expect(refused.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)
  })

  it('rejects invalid tool configuration with a TypeError', async () => {
    const { publicKey } = toolKeys()
    const { startLtiPlatform } = await import('../../src/testing/index.js')
    await expect(startLtiPlatform({ tools: [{ clientId: 't', publicKey }] })).rejects.toThrow(TypeError)
    await expect(
      startLtiPlatform({ tools: [{ clientId: 't', jwks: { keys: [publicKey.export({ format: 'jwk' })] } }] }),
    ).rejects.toThrow(/kid/)
  })
})
