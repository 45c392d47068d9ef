import { constants } from 'node:fs'
import { open } from 'node:fs/promises'

/** A config file is read only up to this size (1 MiB): it holds a few profiles. */
export const MAX_CONFIG_BYTES = 1024 * 1024

/** A client secret file is read only up to this size (64 KiB). */
export const MAX_SECRET_FILE_BYTES = 64 * 1024

/**
 * Reads a small text file the CLI was pointed at (the config file, a secret file). Only a
 * regular file of at most `maxBytes` is read: a FIFO would block the command until something
 * writes to it, and a device such as `/dev/zero` never ends. Rejects with an error whose `code`
 * is the system's (`ENOENT`, `EACCES`, `EISDIR`, ...), `not a regular file`, or `over N bytes`.
 */
export async function readSmallFile(path: string, maxBytes: number): Promise<string> {
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const info = await handle.stat()
    if (info.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' })
    if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' })
    const tooLarge = Object.assign(new Error('too large'), { code: `over ${maxBytes} bytes` })
    if (info.size > maxBytes) throw tooLarge
    // The file may grow after stat: read at most one byte more than allowed.
    const buffer = Buffer.alloc(maxBytes + 1)
    let length = 0
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > maxBytes) throw tooLarge
    }
    return new TextDecoder('utf-8').decode(buffer.subarray(0, length))
  } finally {
    await handle.close()
  }
}
