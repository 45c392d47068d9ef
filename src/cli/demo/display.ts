import { clearScreenDown, cursorTo, moveCursor } from 'node:readline'
import { formatCount, formatPercent, type Colors } from '../format.js'
import type { TextOutput } from '../io.js'
import type { ClientKind } from './clients.js'
import type { LiveSnapshot } from './phase.js'

/** How progress is shown: redrawn in place on a terminal, a plain line now and then, or not at all. */
export type DisplayMode = 'tty' | 'plain' | 'none'

/** Shows a phase's progress while it runs. */
export interface LiveDisplay {
  update(snapshot: LiveSnapshot): void
  /** Leaves the last frame on screen (TTY) and ends the phase's display. */
  finish(): void
}

/** The name each client goes by in the display and the summary. */
export const CLIENT_LABELS: Record<ClientKind, string> = {
  tokenkeeper: 'tokenkeeper',
  naive: 'naive cache (blog post)',
}

const PLAIN_EVERY_MS = 5_000
const MIN_ROWS = 10
const MIN_COLUMNS = 60

/**
 * Whether `stream` is a terminal the live display fits on. A terminal without a size (a
 * pseudo-terminal nobody sized, as some CI runners give) would show nothing: it gets plain lines.
 */
export function fitsLiveDisplay(stream: TextOutput): boolean {
  return stream.isTTY === true && (stream.rows ?? 0) >= MIN_ROWS && (stream.columns ?? 0) >= MIN_COLUMNS
}
const BAR_WIDTH = 28

function hitRatio(snapshot: LiveSnapshot): string {
  const { hits, misses } = snapshot.progress.client
  return hits + misses === 0 ? '–' : formatPercent(hits / (hits + misses))
}

/** Calls per second over roughly the last second (the whole run until a second has passed). */
class RateMeter {
  readonly #samples: { at: number; calls: number }[] = []

  rate(elapsedMs: number, calls: number): number {
    this.#samples.push({ at: elapsedMs, calls })
    while (this.#samples.length > 2 && elapsedMs - (this.#samples[1]?.at ?? elapsedMs) >= 1000)
      this.#samples.shift()
    const first = this.#samples[0]
    if (first === undefined || elapsedMs - first.at <= 0)
      return elapsedMs > 0 ? (calls * 1000) / elapsedMs : 0
    return ((calls - first.calls) * 1000) / (elapsedMs - first.at)
  }
}

function frame(snapshot: LiveSnapshot, rate: number, colors: Colors): string {
  const { progress } = snapshot
  const done = Math.min(1, snapshot.elapsedMs / snapshot.durationMs)
  const filled = Math.round(done * BAR_WIDTH)
  const bar = colors.cyan('█'.repeat(filled)) + colors.dim('░'.repeat(BAR_WIDTH - filled))
  const seconds = `${(snapshot.elapsedMs / 1000).toFixed(1)} / ${(snapshot.durationMs / 1000).toFixed(0)} s`
  const row = (label: string, value: string, note = ''): string =>
    `  ${label.padEnd(22)}${value.padStart(10)}  ${colors.dim(note)}`
  const errors = progress.failed === 0 ? colors.green('0') : colors.red(formatCount(progress.failed))
  const lines = [
    `${colors.bold(CLIENT_LABELS[snapshot.kind].padEnd(24))} ${bar} ${seconds}`,
    row('API calls', formatCount(progress.calls), `${formatCount(rate)}/s`),
    row('token requests', formatCount(snapshot.serverTokenRequests), 'counted by the token server'),
    row('cache hit ratio', hitRatio(snapshot)),
    row(
      'background renewals',
      snapshot.kind === 'tokenkeeper' ? formatCount(progress.client.backgroundRenewals) : '–',
    ),
    `  ${'errors'.padEnd(22)}${' '.repeat(Math.max(0, 10 - formatCount(progress.failed).length))}${errors}`,
  ]
  if (snapshot.outageActive) lines.push(colors.yellow('  ⚠ the token endpoint is down (simulated outage)'))
  return lines.join('\n')
}

function plainLine(snapshot: LiveSnapshot, rate: number): string {
  const { progress } = snapshot
  const count = progress.client.backgroundRenewals
  const renewals =
    snapshot.kind === 'tokenkeeper'
      ? `, ${formatCount(count)} background renewal${count === 1 ? '' : 's'}`
      : ''
  return (
    `${CLIENT_LABELS[snapshot.kind]} ${(snapshot.elapsedMs / 1000).toFixed(1)}/${(snapshot.durationMs / 1000).toFixed(0)} s: ` +
    `${formatCount(progress.calls)} API calls (${formatCount(rate)}/s), ` +
    `${formatCount(snapshot.serverTokenRequests)} token requests, hit ratio ${hitRatio(snapshot)}${renewals}, ` +
    `${formatCount(progress.failed)} errors${snapshot.outageActive ? ', token endpoint down' : ''}\n`
  )
}

// eslint-disable-next-line no-control-regex -- measures a line without its color codes
const STYLE_CODES = /\x1b\[[0-9;]*m/g
const HIDE_CURSOR = '\x1b[?25l'
const SHOW_CURSOR = '\x1b[?25h'

/** How many terminal rows `text` takes on a terminal `columns` wide (long lines wrap). */
function rowsOf(text: string, columns: number): number {
  return text
    .split('\n')
    .reduce((rows, line) => rows + Math.max(1, Math.ceil(line.replace(STYLE_CODES, '').length / columns)), 0)
}

/**
 * Redraws a block of lines in place with Node's own cursor functions: the cursor goes back to the
 * start of the previous frame, the screen below it is cleared, and the new frame is written. The
 * cursor is hidden while frames are drawn and shown again at the end (or when the process exits).
 */
function liveFrames(stream: TextOutput): { draw(text: string): void; done(): void } {
  let previousRows = 0
  let hidden = false
  const show = (): void => {
    if (hidden) stream.write(SHOW_CURSOR)
    hidden = false
  }
  return {
    draw(text) {
      if (!hidden) {
        stream.write(HIDE_CURSOR)
        hidden = true
        process.once('exit', show)
      }
      if (previousRows > 0) {
        cursorTo(stream, 0)
        moveCursor(stream, 0, -(previousRows - 1))
        clearScreenDown(stream)
      }
      stream.write(text)
      previousRows = rowsOf(text, stream.columns !== undefined && stream.columns > 0 ? stream.columns : 80)
    },
    done() {
      if (previousRows > 0) stream.write('\n')
      previousRows = 0
      show()
      process.removeListener('exit', show)
    },
  }
}

/**
 * A display for one phase. On a TTY the status lines are redrawn in place (node:readline); on
 * anything else a plain line (no escape codes) is printed every 5 seconds at most.
 */
export function createDisplay(mode: DisplayMode, stream: TextOutput, colors: Colors): LiveDisplay {
  const meter = new RateMeter()
  if (mode === 'tty') {
    const live = liveFrames(stream)
    return {
      update: (snapshot) =>
        live.draw(frame(snapshot, meter.rate(snapshot.elapsedMs, snapshot.progress.calls), colors)),
      finish: () => live.done(),
    }
  }
  if (mode === 'plain') {
    let lastAt = 0
    return {
      update(snapshot) {
        const rate = meter.rate(snapshot.elapsedMs, snapshot.progress.calls)
        if (snapshot.elapsedMs - lastAt < PLAIN_EVERY_MS) return
        lastAt = snapshot.elapsedMs
        stream.write(plainLine(snapshot, rate))
      },
      finish: () => undefined,
    }
  }
  return { update: () => undefined, finish: () => undefined }
}
