import { randomBytes } from 'node:crypto'
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
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
 * Reads the cache's AES-256 key from `path`, creating it (32 random bytes, base64, mode 0600, in a
 * 0700 directory) on first use. Creation is atomic (write a temporary file, then `link` it into
 * place, which fails if another process got there first), so parallel first runs agree on one key.
 */
export async function loadOrCreateKey(path: string): Promise<Buffer> {
  try {
    return decodeKey(await readFile(path, 'utf8'), path)
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
  return decodeKey(await readFile(path, 'utf8'), path)
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
