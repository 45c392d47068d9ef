import { randomBytes } from 'node:crypto'
import { chmod, link, mkdir, open, unlink, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { seal as sealWith, unseal as unsealWith } from '../../sealed.js'

const KEY_BYTES = 32
const ENVELOPE_VERSION = 1

/**
 * Creates `dir` (and parents) private to the user (0700). A directory that exists already keeps
 * its mode: it may be one the user named and shares on purpose.
 */
export async function privateDir(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode: 0o700 })
  if (created !== undefined) await chmod(dir, 0o700)
}

function decodeKey(text: string, path: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64')
  if (key.length !== KEY_BYTES)
    throw new Error(
      `the cache key file ${path} is malformed (expected 32 bytes, base64); delete it to make a new one`,
    )
  return key
}

/**
 * Reads the key file, refusing one that other users could read or have written: a key readable
 * by others opens every cached token, and one another user owns (or can write) may be theirs, so
 * that they can read what is sealed with it (OpenSSH refuses such private keys too). Read from
 * the opened file, so that the file checked is the file read.
 */
async function readKeyFile(path: string): Promise<string> {
  const handle = await open(path, 'r')
  try {
    const info = await handle.stat()
    const uid = typeof process.getuid === 'function' ? process.getuid() : undefined
    if (uid !== undefined && info.uid !== uid) {
      throw new Error(`the cache key file ${path} belongs to another user; delete it to make a new one`)
    }
    if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
      throw new Error(
        `the cache key file ${path} is open to other users (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it, or delete it to make a new one`,
      )
    }
    return await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
}

/**
 * Reads the cache's AES-256 key from `path`, creating it (32 random bytes, base64, mode 0600, in a
 * 0700 directory) on first use. Creation is atomic (write a temporary file, then `link` it into
 * place, which fails if another process got there first), so parallel first runs agree on one key.
 * A key file open to other users, or owned by another, is refused (the store then fails, and the
 * manager fetches directly).
 */
export async function loadOrCreateKey(path: string): Promise<Buffer> {
  try {
    return decodeKey(await readKeyFile(path), path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  await privateDir(dirname(path))
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  await writeFile(temporary, `${randomBytes(KEY_BYTES).toString('base64')}\n`, { mode: 0o600, flag: 'wx' })
  try {
    await link(temporary, path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  } finally {
    await unlink(temporary).catch(() => undefined)
  }
  return decodeKey(await readKeyFile(path), path)
}

interface Envelope {
  readonly v: number
  readonly iv: string
  readonly tag: string
  readonly ct: string
}

/** Encrypts `plaintext` with AES-256-GCM (`src/sealed.ts`), bound to `associatedData` (the cache key). */
export function seal(key: Buffer, associatedData: string, plaintext: string): string {
  const envelope: Envelope = { v: ENVELOPE_VERSION, ...sealWith(key, associatedData, plaintext) }
  return JSON.stringify(envelope)
}

/** Decrypts what {@link seal} wrote; `undefined` for anything that does not decrypt (a miss, never an error). */
export function unseal(key: Buffer, associatedData: string, text: string): string | undefined {
  let envelope: Partial<Envelope>
  try {
    envelope = JSON.parse(text) as Partial<Envelope>
  } catch {
    return undefined
  }
  if (typeof envelope !== 'object' || envelope === null || envelope.v !== ENVELOPE_VERSION) return undefined
  const opened = unsealWith(key, associatedData, envelope)
  return opened.ok ? opened.plaintext : undefined
}
