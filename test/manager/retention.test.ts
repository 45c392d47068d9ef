/**
 * What a manager lets go of: tokens it no longer holds (cleared, evicted) are collectable. A
 * live Map iterator (the CLOCK hand) once kept every hash table the entry map grew out of or was
 * cleared of, with the entries in them: about 480 B per token request, for as long as the
 * manager lived (`node --expose-gc bench/memory.js`).
 */
import { setImmediate as turn } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { TokenManager, tokenSource, type AccessToken, type TokenSource } from '../../src/index.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function sources(count: number, prefix: string): TokenSource[] {
  return Array.from({ length: count }, (_, i) =>
    tokenSource(`${prefix}-${i}`, () => ({
      access_token: `${prefix}-token-${i}-${Math.random().toString(36).slice(2)}`,
      token_type: 'Bearer',
      expires_in: 3600,
    })),
  )
}

/** How many of `refs` still point at a live token after a few full collections. */
async function alive(refs: WeakRef<AccessToken>[]): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc()
    await turn()
  }
  return refs.filter((ref) => ref.deref() !== undefined).length
}

async function fill(tokens: TokenManager, list: TokenSource[]): Promise<WeakRef<AccessToken>[]> {
  const refs: WeakRef<AccessToken>[] = []
  for (const source of list) refs.push(new WeakRef(await tokens.get(source)))
  return refs
}

describe('what a manager lets go of', () => {
  it('a cleared manager keeps none of the tokens it held, once filled again', async () => {
    const tokens = new TokenManager({ maxEntries: 10_000 })
    const list = sources(500, 'cleared')
    const before = await fill(tokens, list)
    await tokens.clear()
    const after = await fill(tokens, list)
    expect(await alive(before)).toBe(0)
    expect(await alive(after)).toBe(after.length)
    await tokens.close()
  })

  it('an evicted token is collectable; the tokens still held are not', async () => {
    const tokens = new TokenManager({ maxEntries: 100 })
    const refs = await fill(tokens, sources(500, 'evicted'))
    expect(tokens.stats().entries).toBe(100)
    expect(await alive(refs)).toBe(100)
    await tokens.close()
  })
})
