import { createPrivateKey, generateKeyPairSync } from 'node:crypto'
import type { JSONWebKeySet } from 'jose'
import type { JsonWebKey } from 'node:crypto'
import { publicJwk } from '../../src/sources/signing.js'

/**
 * A signing key for an oidc-provider under test (RS256, `kid: provider-rs256`): the private JWK
 * the provider is configured with, and the public key set a test verifies its tokens with. The
 * private JWK is exported from a PEM copy of the key, never from the generated key itself (that
 * export can deadlock Node 20).
 */
export function providerSigningKeys(): {
  readonly providerSigningJwk: JsonWebKey
  readonly providerJwks: JSONWebKeySet
} {
  const providerRsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const providerSigningJwk: JsonWebKey = {
    ...createPrivateKey(providerRsa.privateKey.export({ format: 'pem', type: 'pkcs8' })).export({
      format: 'jwk',
    }),
    kid: 'provider-rs256',
    alg: 'RS256',
    use: 'sig',
  }
  const providerJwks: JSONWebKeySet = {
    keys: [{ ...publicJwk(providerRsa.publicKey), kid: 'provider-rs256', alg: 'RS256' }],
  }
  return { providerSigningJwk, providerJwks }
}
