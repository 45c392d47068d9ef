import { styleText } from 'node:util'
import type { TextOutput } from './io.js'
import type { Environment } from './token/paths.js'

/** The styles the CLI uses. */
const STYLES = ['bold', 'dim', 'red', 'green', 'yellow', 'cyan'] as const

/** The color functions the CLI uses (identity functions when colors are off). */
export type Colors = Record<(typeof STYLES)[number], (text: string) => string>

function createColors(enabled: boolean): Colors {
  const colors = {} as Record<(typeof STYLES)[number], (text: string) => string>
  for (const style of STYLES) {
    // The CLI has decided itself whether to color: styleText must not judge process.stdout.
    colors[style] = enabled ? (text) => styleText(style, text, { validateStream: false }) : (text) => text
  }
  return colors
}

/**
 * Colors only for a terminal: on when `stream` is a TTY (unless `NO_COLOR` is set or
 * `TERM=dumb`), or when `FORCE_COLOR` asks for them. Piped output never carries escape codes
 * otherwise, whatever else the environment says. The styles come from Node's `util.styleText`.
 */
export function colorsFor(stream: TextOutput, env: Environment): Colors {
  const force = env['FORCE_COLOR']
  const forced = force !== undefined && force !== '' && force !== '0' && force !== 'false'
  const noColor = env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== ''
  const enabled = forced || (stream.isTTY === true && !noColor && env['TERM'] !== 'dumb')
  return createColors(enabled)
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

/** `12345.6` → `12,346`. */
export function formatCount(value: number): string {
  return integer.format(value)
}

/** A ratio in [0, 1] as a percentage with two decimals: `0.99991` → `99.99 %`. */
export function formatPercent(ratio: number): string {
  return `${(Math.floor(ratio * 10_000) / 100).toFixed(2)} %`
}

/** Milliseconds with sensible precision: `0.42 ms`, `3.1 ms`, `31 ms`, `1.2 s`. */
export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`
  if (ms >= 100) return `${ms.toFixed(0)} ms`
  if (ms >= 10) return `${ms.toFixed(1)} ms`
  return `${ms.toFixed(2)} ms`
}

/** Wraps `text` at spaces so that no line exceeds `width` visible characters (color codes do not count). */
export function wrap(text: string, width = 100): string {
  // eslint-disable-next-line no-control-regex -- measures the text without its color codes
  if (text.replace(/\x1b\[[0-9;]*m/g, '').length <= width) return text
  const lines: string[] = []
  let line = ''
  let visible = 0
  for (const word of text.split(' ')) {
    // eslint-disable-next-line no-control-regex -- measures a word without its color codes
    const size = word.replace(/\x1b\[[0-9;]*m/g, '').length
    if (visible > 0 && visible + 1 + size > width) {
      lines.push(line)
      line = ''
      visible = 0
    }
    line = visible === 0 ? word : `${line} ${word}`
    visible += (visible === 0 ? 0 : 1) + size
  }
  if (line !== '') lines.push(line)
  return lines.join('\n')
}

/**
 * Characters that must not reach a terminal as they are: C0 and C1 controls (ESC starts ANSI
 * sequences that move the cursor, clear the screen, set the window title; CR and LF forge
 * lines), DEL, the Unicode line and paragraph separators, and the bidirectional controls that
 * reorder what is shown.
 */
// eslint-disable-next-line no-control-regex -- control characters are what is matched
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * `text` with every character of {@link UNPRINTABLE} written as an escape (`\x1b`, `\r`,
 * `\u202e`): what the CLI repeats from config files, paths, the environment and servers is shown,
 * never obeyed by the terminal. Every message the CLI writes to stderr goes through it.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => {
    const code = char.charCodeAt(0)
    if (char === '\n') return '\\n'
    if (char === '\r') return '\\r'
    if (char === '\t') return '\\t'
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`
  })
}
