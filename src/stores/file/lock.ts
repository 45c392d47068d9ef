import { randomBytes } from 'node:crypto'
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { hostname } from 'node:os'
import type { Clock } from '../../clock.js'
import type { StoreLock } from '../types.js'

/** What a lock file says about its holder. */
interface LockOwner {
  readonly owner: string
  readonly host: string
  readonly pid: number
  readonly expiresAt: number
}

/** A lock file whose content cannot be read for this long is taken to be abandoned. */
const UNREADABLE_GRACE_MS = 5_000

/** Stands for a lock file still being written: held, not stale. */
const young: LockOwner = { owner: '', host: '', pid: 0, expiresAt: Number.POSITIVE_INFINITY }

type Held =
  | { readonly kind: 'owner'; readonly lock: LockOwner }
  | { readonly kind: 'unreadable' }
  | { readonly kind: 'gone' }

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code
}

async function readHolder(path: string, clock: Clock): Promise<Held> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if (errno(error) === 'ENOENT') return { kind: 'gone' }
    throw error
  }
  try {
    const lock = JSON.parse(text) as Partial<LockOwner>
    if (
      typeof lock.owner === 'string' &&
      typeof lock.host === 'string' &&
      Number.isSafeInteger(lock.pid) &&
      Number.isFinite(lock.expiresAt)
    ) {
      return { kind: 'owner', lock: lock as LockOwner }
    }
  } catch {
    // being written, or damaged: judged by its age below
  }
  try {
    const info = await stat(path)
    return clock.now() - info.mtimeMs > UNREADABLE_GRACE_MS
      ? { kind: 'unreadable' }
      : { kind: 'owner', lock: young }
  } catch {
    return { kind: 'gone' }
  }
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return errno(error) === 'ESRCH'
  }
}

/** A lock is stale when it has expired, or its holder on this host has exited (a killed invocation). */
function isStale(held: Held, now: number): boolean {
  if (held.kind !== 'owner') return held.kind === 'unreadable'
  const { lock } = held
  if (lock.expiresAt <= now) return true
  return lock.host === hostname() && lock.pid > 0 && lock.pid !== process.pid && processGone(lock.pid)
}

/**
 * Moves a stale lock aside and deletes it. If what was moved turns out to be a fresh lock that
 * another process took in the meantime, it is linked back (unless yet another one exists).
 */
async function takeOver(path: string, seen: Held, clock: Clock): Promise<void> {
  const aside = `${path}.${randomBytes(6).toString('hex')}.stale`
  try {
    await rename(path, aside)
  } catch (error) {
    if (errno(error) === 'ENOENT') return
    throw error
  }
  const moved = await readHolder(aside, clock)
  const same =
    moved.kind !== 'owner' ||
    (seen.kind === 'owner' && moved.lock.owner === seen.lock.owner) ||
    isStale(moved, clock.now())
  if (!same) await link(aside, path).catch(() => undefined)
  await unlink(aside).catch(() => undefined)
}

/**
 * Takes the cross-process lock at `path`: `open(path, 'wx')` creates it only if no one holds it,
 * and the file records the owner, host, pid and expiry. A stale lock (expired, or its process
 * gone) is taken over. Resolves `undefined` when another live holder has it.
 */
export async function acquireFileLock(
  path: string,
  ttlMs: number,
  clock: Clock,
): Promise<StoreLock | undefined> {
  const me: LockOwner = {
    owner: randomBytes(12).toString('base64url'),
    host: hostname(),
    pid: process.pid,
    expiresAt: clock.now() + ttlMs,
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600)
      try {
        await handle.writeFile(JSON.stringify(me))
      } finally {
        await handle.close()
      }
      return { release: () => releaseFileLock(path, me.owner, clock) }
    } catch (error) {
      if (errno(error) !== 'EEXIST') throw error
    }
    const held = await readHolder(path, clock)
    if (held.kind === 'gone') continue
    if (!isStale(held, clock.now())) return undefined
    await takeOver(path, held, clock)
  }
  return undefined
}

/** Deletes the lock file if it is still ours (compare-and-delete on the owner id). */
async function releaseFileLock(path: string, owner: string, clock: Clock): Promise<void> {
  const held = await readHolder(path, clock)
  if (held.kind === 'owner' && held.lock.owner === owner) await unlink(path).catch(() => undefined)
}
