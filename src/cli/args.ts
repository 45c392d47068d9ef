import { parseArgs } from 'node:util'
import { usageError } from './errors.js'

/** The option specs `node:util` parseArgs takes. */
export type OptionSpecs = Record<
  string,
  { type: 'string' | 'boolean'; short?: string; multiple?: boolean; default?: string | boolean }
>

/** Parsed values: strings, booleans, or arrays of strings for `multiple` options. */
export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>

interface ParseArgsError extends Error {
  readonly code?: string
}

/**
 * Parses `argv` strictly (no positionals). Mistakes become usage errors (exit code 2) that say
 * where the mistake is (its position on the command line) and what it is, but never repeat the
 * argument: an unknown option's name or value, or a stray word, could be a secret typed in the
 * wrong place (`--clientsecret=...`, a secret pasted after a flag that takes none).
 */
export function parseFlags(command: string, argv: readonly string[], options: OptionSpecs): ParsedValues {
  const help = `see tokenkeeper ${command} --help`
  const where = (index: number): string => `argument ${index + 1} after "${command}"`
  // A lenient pass finds unknown options and stray words without node's messages, which quote them.
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  })
  for (const token of tokens) {
    if (token.kind === 'positional') throw usageError(`unexpected argument (${where(token.index)}; ${help})`)
    if (token.kind === 'option' && !Object.hasOwn(options, token.name)) {
      const secretHint =
        /secret|passw/i.test(token.name) && Object.hasOwn(options, 'client-secret-env')
          ? '; a secret is never an option: use --client-secret-env VAR or --client-secret-file PATH'
          : ''
      throw usageError(`unknown option (${where(token.index)}${secretHint}; ${help})`)
    }
  }
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false })
    return values
  } catch (error) {
    const code = (error as ParseArgsError).code
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // Node names the option as it is declared (it is a known one); only that name is kept.
      const message = (error as Error).message
      const declared = /(--[a-z][a-z-]*)/.exec(message)?.[1]
      const name =
        declared !== undefined && Object.hasOwn(options, declared.slice(2)) ? declared : 'an option'
      throw usageError(
        /does not take an argument/.test(message)
          ? `${name} takes no value (${help})`
          : `${name} needs a value (${help})`,
      )
    }
    throw usageError(`the command line cannot be read (${help})`)
  }
}

/** A string flag's value, or undefined. */
export function stringFlag(values: ParsedValues, name: string): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

/** A repeatable string flag's values (empty when absent). */
export function stringsFlag(values: ParsedValues, name: string): string[] {
  const value = values[name]
  if (!Array.isArray(value)) return typeof value === 'string' ? [value] : []
  return value.filter((item): item is string => typeof item === 'string')
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/

/**
 * Parses a duration flag: a bare number is seconds (`20`, `1.5`); `ms`, `s` and `m` suffixes
 * are accepted (`500ms`, `20s`, `2m`). Returns milliseconds.
 */
export function parseDurationMs(
  text: string,
  flag: string,
  options: { min?: number; max?: number } = {},
): number {
  const match = DURATION.exec(text.trim())
  if (match === null) {
    throw usageError(`--${flag} must be a duration such as 20, 20s, 500ms or 2m (a bare number is seconds)`)
  }
  const amount = Number(match[1])
  const unit = match[2] ?? 's'
  const ms = Math.round(unit === 'ms' ? amount : unit === 'm' ? amount * 60_000 : amount * 1000)
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options
  if (ms < min || ms > max) {
    throw usageError(`--${flag} must be between ${formatDuration(min)} and ${formatDuration(max)}`)
  }
  return ms
}

/** Parses an integer flag within bounds. */
export function parseIntegerFlag(text: string, flag: string, min: number, max: number): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw usageError(`--${flag} must be a whole number from ${min} to ${max}`)
  }
  return value
}

/** `1500` → `1.5 s`, `250` → `250 ms`, `120000` → `2 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`
  if (ms < 120_000) return `${Number((ms / 1000).toFixed(2))} s`
  return `${Number((ms / 60_000).toFixed(2))} min`
}
