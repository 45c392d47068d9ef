import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs'
import { open } from 'node:fs/promises'

/** A file of credentials (an assertion, a key file) is read only up to this size: 64 KiB. */
export const MAX_CREDENTIAL_FILE_BYTES = 64 * 1024

/** PEM files (a certificate chain, a CA list) are read only up to this size: 1 MiB. */
export const MAX_PEM_FILE_BYTES = 1024 * 1024

/** What a bounded read found: the text and the identity of the file it came from. */
export interface SmallFile {
  readonly text: string
  /** Inode, size and times of the file read (from the same open file, not the path). */
  readonly stamp: string
}

/**
 * Why a file was not read: `EISDIR`, `not a regular file`, `over N bytes`, or the system's code.
 * Never the content.
 */
function refusal(reason: string): Error {
  return Object.assign(new Error(reason), { code: reason })
}

/** Identity of a file: what changes when it is rewritten or replaced (a rename, a symlink swap). */
export function stampOf(info: Stats): string {
  return `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`
}

function checkStats(info: Stats, maxBytes: number): void {
  if (info.isDirectory()) throw refusal('EISDIR')
  if (!info.isFile()) throw refusal('not a regular file')
  if (info.size > maxBytes) throw refusal(`over ${maxBytes} bytes`)
}

/**
 * Reads a small regular file: at most `maxBytes`, never a FIFO (which would wait for a writer,
 * holding a thread of the pool) or a device (`/dev/zero` never ends). The file is opened once
 * (`O_NONBLOCK`, so opening a FIFO returns at once) and its stamp taken from the open file, so
 * text and stamp belong to the same file even when the path is replaced meanwhile. Rejects with
 * an error whose `code` says why (see {@link readSmallFileSync}).
 */
export async function readSmallFile(path: string, maxBytes: number): Promise<SmallFile> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const info = await handle.stat()
    checkStats(info, maxBytes)
    // The file may grow after fstat: read at most one byte more than allowed.
    const buffer = Buffer.alloc(maxBytes + 1)
    let length = 0
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > maxBytes) throw refusal(`over ${maxBytes} bytes`)
    }
    return { text: new TextDecoder('utf-8').decode(buffer.subarray(0, length)), stamp: stampOf(info) }
  } finally {
    await handle.close()
  }
}

/**
 * {@link readSmallFile} for construction-time reads (a Google key file, a certificate): the same
 * checks, synchronously. Throws an error whose `code` is `EISDIR`, `not a regular file`,
 * `over N bytes`, or the system's (`ENOENT`, `EACCES`, ...).
 */
export function readSmallFileSync(path: string, maxBytes: number): SmallFile {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const info = fstatSync(fd)
    checkStats(info, maxBytes)
    const buffer = Buffer.alloc(maxBytes + 1)
    let length = 0
    for (;;) {
      const bytesRead = readSync(fd, buffer, length, buffer.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > maxBytes) throw refusal(`over ${maxBytes} bytes`)
    }
    return { text: new TextDecoder('utf-8').decode(buffer.subarray(0, length)), stamp: stampOf(info) }
  } finally {
    closeSync(fd)
  }
}

/** The reason of a failed read for a message: a system code, or one of the refusals above. */
export function readFailure(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^(E[A-Z]+|not a regular file|over \d+ bytes)$/.test(code)
    ? code
    : 'error'
}
