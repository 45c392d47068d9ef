import type { Environment } from './token/paths.js'

/** A writable text stream as the CLI uses it. */
export type TextOutput = NodeJS.WritableStream & {
  readonly isTTY?: boolean | undefined
  /** A terminal's size; 0 or undefined when it has none (a pseudo-terminal nobody sized). */
  readonly rows?: number | undefined
  readonly columns?: number | undefined
}

/** Where a command reads its environment and writes its output (the process's, or a test's). */
export interface CommandIo {
  readonly env: Environment
  readonly stdout: TextOutput
  readonly stderr: TextOutput
}
