import { readSmallFile as readBounded } from '../../sources/small-file.js'

/** A config file is read only up to this size (1 MiB): it holds a few profiles. */
export const MAX_CONFIG_BYTES = 1024 * 1024

/** A client secret file is read only up to this size (64 KiB). */
export const MAX_SECRET_FILE_BYTES = 64 * 1024

/**
 * Reads a small text file the CLI was pointed at (the config file, a secret file) with the
 * library's bounded reader (`src/sources/small-file.ts`): only a regular file of at most
 * `maxBytes` is read (a FIFO would block the command, `/dev/zero` never ends). Rejects with an
 * error whose `code` is the system's (`ENOENT`, `EACCES`, `EISDIR`, ...), `not a regular file`,
 * or `over N bytes`.
 */
export async function readSmallFile(path: string, maxBytes: number): Promise<string> {
  return (await readBounded(path, maxBytes)).text
}
