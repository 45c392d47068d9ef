import { isTokenkeeperError } from '../errors.js'

/**
 * The exit codes of the `tokenkeeper` command. Scripts can branch on them; `docs/CLI.md` lists
 * them too.
 */
export const ExitCode = Object.freeze({
  /** Success. */
  ok: 0,
  /** Something unexpected (a bug, or an error the CLI does not know). */
  failure: 1,
  /** The command line is wrong: an unknown or missing flag, a bad flag value. */
  usage: 2,
  /** The settings are wrong: config file, profile, secret variable or file, token URL. */
  config: 3,
  /** The token endpoint refused (invalid_client, invalid_scope, ...) or answered nonsense. */
  refused: 4,
  /** The token endpoint or Redis could not be reached, timed out, or is unavailable (5xx, 429). */
  unavailable: 5,
})

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/** A failure the CLI reports with a message on stderr and an exit code. Its message holds no secret. */
export class CliError extends Error {
  readonly exitCode: ExitCodeValue

  constructor(exitCode: ExitCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

/** A command-line mistake (exit code 2). */
export function usageError(message: string): CliError {
  return new CliError(ExitCode.usage, message)
}

/** A settings mistake (exit code 3). */
export function configError(message: string, cause?: unknown): CliError {
  return new CliError(ExitCode.config, message, cause === undefined ? undefined : { cause })
}

/**
 * The exit code and message for any error: a {@link CliError} as it is; a tokenkeeper error by
 * its kind (tokenkeeper messages never contain a secret); anything else is a failure (1).
 */
export function describeFailure(error: unknown): { exitCode: ExitCodeValue; message: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message }
  if (isTokenkeeperError(error)) {
    if (error.code === 'INSECURE_TOKEN_URL') return { exitCode: ExitCode.config, message: error.message }
    return { exitCode: error.retryable ? ExitCode.unavailable : ExitCode.refused, message: error.message }
  }
  const message = error instanceof Error ? error.message : 'unknown error'
  return { exitCode: ExitCode.failure, message: `unexpected error: ${message}` }
}
