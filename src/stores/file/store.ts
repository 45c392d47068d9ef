import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { systemClock, type Clock } from '../../clock.js'
import type {
  StoreDeleteOptions,
  StoreLock,
  StoreLockOptions,
  StoreRecord,
  StoreSetOptions,
  TokenStore,
} from '../types.js'
import { loadOrCreateKey, privateDir, seal, unseal } from './key.js'
import { acquireFileLock } from './lock.js'

/** Options of {@link fileStore}. */
export interface FileStoreOptions {
  /** The cache directory (created 0700). */
  readonly dir: string
  /** The AES-256 key file (created 0600 on first use). */
  readonly keyFile: string
  readonly clock?: Clock
}

/** What a cache file holds once decrypted. */
interface Stored {
  readonly record: StoreRecord
  /** The store forgets the record from this instant on (the TTL the manager gave). */
  readonly until: number
}

const SUFFIX = '.token'
const AAD_PREFIX = 'tokenkeeper file store v1\n'

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code
}

function isStored(value: unknown): value is Stored {
  if (typeof value !== 'object' || value === null) return false
  const { record, until } = value as Partial<Stored>
  return (
    Number.isFinite(until) &&
    typeof record === 'object' &&
    record !== null &&
    typeof record.tokenId === 'string' &&
    typeof record.payload === 'string' &&
    Number.isFinite(record.expiresAt)
  )
}

/**
 * The `tokenkeeper token` cache: a {@link TokenStore} of files, so that tokens outlive one
 * invocation and parallel invocations share one token request.
 *
 * - one file per cache key, named by a hash of the key, mode 0600 in a 0700 directory;
 * - each file is AES-256-GCM encrypted with a random key kept in a separate 0600 key file, with the
 *   cache key as associated data (a file copied under another key's name does not decrypt); a file
 *   that does not decrypt is a miss;
 * - writes go to a temporary file that is renamed into place, so a reader never sees half a file;
 * - `acquireLock` is a lock file created with `open(path, 'wx')`, recording owner, pid and expiry,
 *   taken over when stale. There are no change events: the manager polls the store while another
 *   process holds the lock.
 */
class FileStore implements TokenStore {
  readonly #dir: string
  readonly #keyFile: string
  readonly #clock: Clock
  #ready: Promise<Buffer> | undefined

  constructor(options: FileStoreOptions) {
    this.#dir = options.dir
    this.#keyFile = options.keyFile
    this.#clock = options.clock ?? systemClock
  }

  /**
   * Creates the directory and loads the key once, on first use. A failure (a file where the
   * directory should be, a malformed key file) is not kept: the next operation tries again, so
   * the store works again once the cause is gone.
   */
  #key(): Promise<Buffer> {
    this.#ready ??= privateDir(this.#dir)
      .then(() => loadOrCreateKey(this.#keyFile))
      .catch((error: unknown) => {
        this.#ready = undefined
        throw error
      })
    return this.#ready
  }

  #path(key: string, suffix: string): string {
    const name = createHash('sha256').update(key).digest('base64url').slice(0, 32)
    return join(this.#dir, `${name}${suffix}`)
  }

  async #read(key: string): Promise<Stored | undefined> {
    const secret = await this.#key()
    let text: string
    try {
      text = await readFile(this.#path(key, SUFFIX), 'utf8')
    } catch (error) {
      if (errno(error) === 'ENOENT') return undefined
      throw error
    }
    const plain = unseal(secret, AAD_PREFIX + key, text)
    if (plain === undefined) return undefined
    let stored: unknown
    try {
      stored = JSON.parse(plain)
    } catch {
      return undefined
    }
    if (!isStored(stored) || this.#clock.now() >= stored.until) return undefined
    return stored
  }

  async get(key: string): Promise<StoreRecord | undefined> {
    return (await this.#read(key))?.record
  }

  async set(key: string, record: StoreRecord, options: StoreSetOptions): Promise<boolean> {
    if (!(options.ttlMs > 0)) return false
    const existing = await this.#read(key)
    if (existing !== undefined && existing.record.expiresAt > record.expiresAt) return false
    const secret = await this.#key()
    const stored: Stored = { record, until: this.#clock.now() + options.ttlMs }
    const path = this.#path(key, SUFFIX)
    const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
    await writeFile(temporary, seal(secret, AAD_PREFIX + key, JSON.stringify(stored)), {
      mode: 0o600,
      flag: 'wx',
    })
    try {
      await rename(temporary, path)
    } catch (error) {
      await unlink(temporary).catch(() => undefined)
      throw error
    }
    return true
  }

  async delete(key: string, options?: StoreDeleteOptions): Promise<boolean> {
    const existing = await this.#read(key)
    if (existing === undefined) return false
    if (options?.tokenId !== undefined && existing.record.tokenId !== options.tokenId) return false
    try {
      await unlink(this.#path(key, SUFFIX))
      return true
    } catch (error) {
      if (errno(error) === 'ENOENT') return false
      throw error
    }
  }

  async clear(): Promise<void> {
    await this.#key()
    for (const name of await readdir(this.#dir)) {
      if (name.endsWith(SUFFIX)) await unlink(join(this.#dir, name)).catch(() => undefined)
    }
  }

  async acquireLock(key: string, options: StoreLockOptions): Promise<StoreLock | undefined> {
    await this.#key()
    return acquireFileLock(this.#path(key, '.lock'), options.ttlMs, this.#clock)
  }
}

/**
 * Opens the file cache in `dir`. Nothing touches the disk until the first operation.
 *
 * @example
 * ```ts
 * const tokens = new TokenManager({ store: fileStore({ dir: cacheDirPath(env), keyFile: keyFilePath(env) }) })
 * ```
 */
export function fileStore(options: FileStoreOptions): TokenStore {
  return new FileStore(options)
}
