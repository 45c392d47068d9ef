import { createHash } from 'node:crypto'

/**
 * A short, one-way fingerprint of a credential, used inside source keys so that a changed
 * secret or key changes the key without the key revealing it. It is a truncated SHA-256 over a
 * domain-separated input; like any hash it cannot protect a guessable secret from a brute-force
 * search, so client secrets should be long and random (as identity providers issue them).
 */
export function fingerprint(kind: string, ...parts: readonly string[]): string {
  const hash = createHash('sha256').update(`tokenkeeper/fingerprint/v1\0${kind}`)
  for (const part of parts) hash.update('\0').update(part)
  return hash.digest('base64url').slice(0, 16)
}
