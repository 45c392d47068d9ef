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
 * Parses `argv` strictly (no positionals). Mistakes become usage errors (exit code 2) whose
 * message never repeats a stray argument's value, which could be a secret typed in the wrong place.
 */
export function parseFlags(command: string, argv: readonly string[], options: OptionSpecs): ParsedValues {
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false })
    return values
  } catch (error) {
    const code = (error as ParseArgsError).code
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw usageError(`unexpected argument (see tokenkeeper ${command} --help)`)
    }
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const name = /'(-[^'=\s]*)/.exec((error as Error).message)?.[1] ?? 'option'
      throw usageError(`unknown option ${name} (see tokenkeeper ${command} --help)`)
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = /(--[a-z-]+)/.exec((error as Error).message)?.[1] ?? 'an option'
      throw usageError(`${name} needs a value (see tokenkeeper ${command} --help)`)
    }
    throw error
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
