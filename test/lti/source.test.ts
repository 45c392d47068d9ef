import { generateKeyPairSync } from 'node:crypto'
import { inspect } from 'node:util'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { describe, expect, it } from 'vitest'
import { isOAuthError } from '../../src/index.js'
import { LtiScopes, ltiServiceSource, type LtiRegistration } from '../../src/lti/index.js'
import { CLIENT_ID, ISSUER, KID, SCOPES, startLti, toolKeys } from './helpers.js'

/** A fetch that records each token request's body and forwards it. */
function recordingFetch(): { fetch: typeof globalThis.fetch; bodies: URLSearchParams[]; types: string[] } {
  const bodies: URLSearchParams[] = []
  const types: string[] = []
  const fetch: typeof globalThis.fetch = async (input, init) => {
    bodies.push(new URLSearchParams(init?.body as string))
    types.push(new Headers(init?.headers).get('content-type') ?? '')
    return globalThis.fetch(input, init)
  }
  return { fetch, bodies, types }
}

const registration = (extra: Partial<LtiRegistration> = {}): LtiRegistration => ({
  issuer: ISSUER,
  clientId: CLIENT_ID,
  tokenUrl: 'https://lms.example.test/login/oauth2/token',
  privateKey: toolKeys().pem,
  kid: KID,
  ...extra,
})

describe('ltiServiceSource: the token request', () => {
  it('sends exactly the four form fields as application/x-www-form-urlencoded', async () => {
    const { platform, tokens, registration: reg } = await startLti()
    const recorder = recordingFetch()
    const source = ltiServiceSource(reg, [SCOPES.score, SCOPES.lineItem], { fetch: recorder.fetch })
    const token = await tokens.get(source)
    expect(token.scopes).toEqual([SCOPES.lineItem, SCOPES.score])
    const [body] = recorder.bodies
    expect([...body!.keys()].sort()).toEqual([
      'client_assertion',
      'client_assertion_type',
      'grant_type',
      'scope',
    ])
    expect(body!.get('grant_type')).toBe('client_credentials')
    expect(body!.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
    expect(body!.get('scope')).toBe(`${SCOPES.lineItem} ${SCOPES.score}`)
    expect(recorder.types[0]!.split(';')[0]).toBe('application/x-www-form-urlencoded')
    expect(platform.requests[0]?.formFields).toHaveLength(4)
  })

  it('signs RS256 with kid, iss = sub = client id, aud = the token URL exactly, a short exp', async () => {
    const { clock, tokens, registration: reg } = await startLti()
    const recorder = recordingFetch()
    await tokens.get(ltiServiceSource(reg, [SCOPES.score], { fetch: recorder.fetch }))
    const assertion = recorder.bodies[0]!.get('client_assertion')!
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'RS256', typ: 'JWT', kid: KID })
    const claims = decodeJwt(assertion)
    expect(claims.iss).toBe(CLIENT_ID)
    expect(claims.sub).toBe(CLIENT_ID)
    expect(claims.aud).toBe(String(reg.tokenUrl)) // one string, not an array
    expect(typeof claims.iat).toBe('number')
    expect(claims.iat).toBe(Math.floor(clock.now() / 1000))
    expect(claims.exp! - claims.iat!).toBe(60)
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/)
    expect(claims).not.toHaveProperty('https://purl.imsglobal.org/spec/lti/claim/deployment_id')
  })

  it('signs a fresh jti and iat for every request (the assertion is never cached)', async () => {
    const { clock, tokens, registration: reg } = await startLti()
    const recorder = recordingFetch()
    const source = ltiServiceSource(reg, [SCOPES.score], { fetch: recorder.fetch })
    await tokens.get(source)
    clock.advance(5_000)
    await tokens.invalidate(source)
    await tokens.get(source)
    const [first, second] = recorder.bodies.map((body) => decodeJwt(body.get('client_assertion')!))
    expect(first!.jti).not.toBe(second!.jti)
    expect(second!.iat! - first!.iat!).toBe(5)
  })

  it('uses the registration audience and deployment id claim when given', async () => {
    const { tokens, registration: reg } = await startLti({
      platform: { audience: 'https://auth.brightspace.example/core', requireDeploymentId: true },
      tool: { deploymentIds: ['dep-7'] },
      registration: { audience: 'https://auth.brightspace.example/core', deploymentId: 'dep-7' },
    })
    const recorder = recordingFetch()
    await tokens.get(ltiServiceSource(reg, [SCOPES.score], { fetch: recorder.fetch }))
    const claims = decodeJwt(recorder.bodies[0]!.get('client_assertion')!)
    expect(claims.aud).toBe('https://auth.brightspace.example/core')
    expect(claims['https://purl.imsglobal.org/spec/lti/claim/deployment_id']).toBe('dep-7')
  })

  it('sets the assertion lifetime within 1-300 s', async () => {
    const { tokens, registration: reg } = await startLti()
    const recorder = recordingFetch()
    await tokens.get(
      ltiServiceSource(reg, [SCOPES.score], { fetch: recorder.fetch, assertionLifetimeMs: 300_000 }),
    )
    const claims = decodeJwt(recorder.bodies[0]!.get('client_assertion')!)
    expect(claims.exp! - claims.iat!).toBe(300)
    expect(() => ltiServiceSource(reg, [SCOPES.score], { assertionLifetimeMs: 301_000 })).toThrow(TypeError)
    expect(() => ltiServiceSource(reg, [SCOPES.score], { assertionLifetimeMs: 999 })).toThrow(TypeError)
  })

  it('records the granted scopes from the response (a subset is kept as granted)', async () => {
    const { tokens, registration: reg } = await startLti({ tool: { allowedScopes: [SCOPES.score] } })
    const token = await tokens.get(ltiServiceSource(reg, [SCOPES.score, SCOPES.lineItem]))
    expect(token.scopes).toEqual([SCOPES.score])
    expect(token.requestedScopes).toEqual([SCOPES.lineItem, SCOPES.score])
    expect(token.scopeReduced).toBe(true)
  })

  it('reports a platform refusal as an OAuthError without the assertion in it', async () => {
    const { tokens, registration: reg } = await startLti({
      platform: { audience: 'https://other.example/token' },
    })
    const recorder = recordingFetch()
    const error = await tokens
      .get(ltiServiceSource(reg, [SCOPES.score], { fetch: recorder.fetch }))
      .catch((e: unknown) => e)
    expect(isOAuthError(error, 'invalid_request')).toBe(true)
    expect((error as Error).message).toContain("the 'aud' is invalid")
    const assertion = recorder.bodies[0]!.get('client_assertion')!
    for (const shown of [String(error), inspect(error), JSON.stringify(error)])
      expect(shown).not.toContain(assertion)
  })
})

describe('ltiServiceSource: the key', () => {
  const base = ltiServiceSource(registration(), [SCOPES.score, SCOPES.lineItem])

  it('is the same for the same registration and scope set in any order', () => {
    const again = ltiServiceSource(registration(), [SCOPES.lineItem, SCOPES.score, SCOPES.score])
    expect(again.key).toBe(base.key)
    expect(base.scopes).toEqual([SCOPES.lineItem, SCOPES.score])
  })

  it.each([
    ['token URL', registration({ tokenUrl: 'https://lms.example.test/login/oauth2/token2' }), undefined],
    ['issuer', registration({ issuer: 'https://other.example' }), undefined],
    ['client id', registration({ clientId: 'other-client' }), undefined],
    ['audience', registration({ audience: 'https://auth.example/aud' }), undefined],
    ['deployment', registration({ deploymentId: 'dep-1' }), undefined],
    [
      'key',
      registration({ privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey }),
      undefined,
    ],
    ['kid', registration({ kid: 'other-kid' }), undefined],
    ['scopes', registration(), [SCOPES.score]],
  ])('changes with the %s', (_name, changed, scopes) => {
    expect(ltiServiceSource(changed, scopes ?? [SCOPES.score, SCOPES.lineItem]).key).not.toBe(base.key)
  })

  it('holds no secret and names no course; inspect and JSON show only the key', () => {
    const { pem, privateKey } = toolKeys()
    const jwk = privateKey.export({ format: 'jwk' })
    const shown = [base.key, inspect(base), JSON.stringify(base)]
    for (const text of shown) {
      expect(text).not.toContain(jwk.d!)
      expect(text).not.toContain(pem.split('\n')[1]!)
    }
    expect(base.key).toContain(CLIENT_ID)
    expect(base.key).toContain(LtiScopes.score)
    expect(base.key).not.toMatch(/course|context/i)
  })

  it.each([
    ['an EC key (RS256 only)', { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }],
    ['no kid', { kid: '' }],
    ['no issuer', { issuer: '' }],
    ['no client id', { clientId: '' }],
    ['an http token URL', { tokenUrl: 'http://lms.example.test/token' }],
    ['an empty audience', { audience: '' }],
  ])('refuses %s at construction', (_name, extra) => {
    expect(() => ltiServiceSource(registration(extra as Partial<LtiRegistration>), [SCOPES.score])).toThrow()
  })

  it('refuses an empty scope list (Moodle requires a non-empty scope)', () => {
    expect(() => ltiServiceSource(registration(), [])).toThrow(TypeError)
  })
})
