import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fileStore } from '../../src/stores/file/store.js'
import { TokenManager } from '../../src/manager/manager.js'
import { tokenSource } from '../../src/sources/custom.js'
import type { StoreRecord, TokenStore } from '../../src/stores/types.js'
import { createTestClock } from '../../src/testing/test-clock.js'

let dir: string
const clock = createTestClock()

function open(): TokenStore {
  return fileStore({ dir: join(dir, 'cache'), keyFile: join(dir, 'data', 'cache.key'), clock })
}

function record(tokenId: string, expiresAt: number): StoreRecord {
  return { tokenId, expiresAt, payload: `{"secret":"${tokenId}-payload"}` }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tokenkeeper-file-store-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('the token cache file store (src/stores/file/store.ts)', () => {
  it('keeps records with a TTL, write-if-newer, compare-and-delete', async () => {
    const store = open()
    const now = clock.now()
    expect(await store.get('k')).toBeUndefined()
    expect(await store.set('k', record('a', now + 10_000), { ttlMs: 10_000 })).toBe(true)
    expect(await store.get('k')).toEqual(record('a', now + 10_000))
    expect(await open().get('k')).toEqual(record('a', now + 10_000)) // another instance: the disk
    expect(await store.set('k', record('old', now + 5_000), { ttlMs: 5_000 })).toBe(false)
    expect(await store.delete('k', { tokenId: 'other' })).toBe(false)
    expect(await store.set('k', record('b', now + 20_000), { ttlMs: 20_000 })).toBe(true)
    expect(await store.delete('k', { tokenId: 'b' })).toBe(true)
    expect(await store.get('k')).toBeUndefined()
    await store.set('x', record('c', now + 1_000), { ttlMs: 1_000 })
    clock.advance(1_000)
    expect(await store.get('x')).toBeUndefined()
    await store.set('y', record('d', now + 90_000), { ttlMs: 60_000 })
    await store.clear()
    expect(await store.get('y')).toBeUndefined()
  })

  it('a cache directory or key file it cannot use is a store error each time, and the store works once the cause is gone', async () => {
    const cacheDir = join(dir, 'cache')
    const keyFile = join(dir, 'data', 'cache.key')
    writeFileSync(cacheDir, 'a file where the cache directory should be')
    const store = open()
    const now = clock.now()
    await expect(store.get('k')).rejects.toThrow()
    await expect(store.set('k', record('a', now + 10_000), { ttlMs: 10_000 })).rejects.toThrow()
    rmSync(cacheDir)
    expect(await store.set('k', record('a', now + 10_000), { ttlMs: 10_000 })).toBe(true)
    expect(await store.get('k')).toEqual(record('a', now + 10_000))

    // A truncated key file: every operation fails until it is deleted, then a new key is made.
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(join(dir, 'data'), { recursive: true })
    writeFileSync(keyFile, 'c2hvcnQ=\n', { mode: 0o600 })
    const other = open()
    await expect(other.get('k')).rejects.toThrow(/malformed/)
    rmSync(keyFile)
    expect(await other.get('k')).toBeUndefined()
    expect(await other.set('k', record('b', now + 10_000), { ttlMs: 10_000 })).toBe(true)
    expect(await other.get('k')).toEqual(record('b', now + 10_000))
  })

  it('a manager on a file store whose directory is taken by a file fetches directly, then shares through it once it is free', async () => {
    const cacheDir = join(dir, 'cache')
    writeFileSync(cacheDir, 'in the way')
    const errors: string[] = []
    let calls = 0
    const source = tokenSource('file-recovery', () => ({ access_token: `t${++calls}`, expires_in: 60 }))
    const store = open()
    const first = new TokenManager({ clock, store })
    first.on('storeError', (event) => errors.push(event.operation))
    await expect(first.get(source)).resolves.toMatchObject({ value: 't1' })
    expect(errors).toContain('get')
    await first.close()
    rmSync(cacheDir)
    const writer = new TokenManager({ clock, store })
    errors.length = 0
    writer.on('storeError', (event) => errors.push(event.operation))
    await expect(writer.get(source)).resolves.toMatchObject({ value: 't2' })
    expect(errors).toEqual([])
    const reader = new TokenManager({ clock, store: open() })
    await expect(reader.get(source)).resolves.toMatchObject({ value: 't2' })
    expect(calls).toBe(2)
    await writer.close()
    await reader.close()
  })

  it('binds each file to its cache key: a file copied under another key does not decrypt', async () => {
    const store = open()
    await store.set('one', record('a', clock.now() + 60_000), { ttlMs: 60_000 })
    await store.set('two', record('b', clock.now() + 60_000), { ttlMs: 60_000 })
    const cache = join(dir, 'cache')
    const [first, second] = readdirSync(cache).map((name) => join(cache, name))
    copyFileSync(first!, second!)
    const results = [await store.get('one'), await store.get('two')]
    expect(results.filter((result) => result === undefined)).toHaveLength(1)
  })

  it('lets one holder have the lock, and takes over a lock that expired or whose process is gone', async () => {
    const a = open()
    const b = open()
    const lock = await a.acquireLock!('k', { ttlMs: 10_000 })
    expect(lock).toBeDefined()
    expect(await b.acquireLock!('k', { ttlMs: 10_000 })).toBeUndefined()
    await lock!.release()
    const again = await b.acquireLock!('k', { ttlMs: 10_000 })
    expect(again).toBeDefined()
    await lock!.release() // no longer a's: leaves b's lock alone
    expect(await a.acquireLock!('k', { ttlMs: 10_000 })).toBeUndefined()
    clock.advance(10_000)
    expect(await a.acquireLock!('k', { ttlMs: 10_000 })).toBeDefined() // expired: taken over

    const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    })
    const lockFile = readdirSync(join(dir, 'cache')).find((name) => name.endsWith('.lock'))!
    const dead = {
      owner: 'dead',
      host: hostname(),
      pid: Number(exited.stdout),
      expiresAt: clock.now() + 60_000,
    }
    writeFileSync(join(dir, 'cache', lockFile), JSON.stringify(dead))
    expect(await b.acquireLock!('k', { ttlMs: 10_000 })).toBeDefined() // holder exited: taken over
  })

  it('makes concurrent managers on one cache share a single fetch', async () => {
    let fetches = 0
    let release: () => void = () => undefined
    const held = new Promise<void>((resolve) => (release = resolve))
    const source = tokenSource('demo-key', async () => {
      fetches++
      await held
      return { access_token: `token-${fetches}`, expires_in: 3600 }
    })
    const managers = Array.from(
      { length: 5 },
      () =>
        new TokenManager({
          store: fileStore({ dir: join(dir, 'cache'), keyFile: join(dir, 'data', 'cache.key') }),
        }),
    )
    const tokens = managers.map((manager) => manager.get(source))
    await new Promise((resolve) => setTimeout(resolve, 200))
    release()
    const values = (await Promise.all(tokens)).map((token) => token.value)
    expect(new Set(values)).toEqual(new Set(['token-1']))
    expect(fetches).toBe(1)
    await Promise.all(managers.map((manager) => manager.close()))
  })
})
