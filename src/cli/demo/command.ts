import { writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { ExitCode, type ExitCodeValue } from '../errors.js'
import { colorsFor, formatMs, wrap } from '../format.js'
import type { CommandIo } from '../io.js'
import { naiveClient, tokenkeeperClient, type ClientKind } from './clients.js'
import { createDisplay, fitsLiveDisplay, type DisplayMode } from './display.js'
import { startFleet, type Fleet } from './fleet.js'
import { runPhase, startDemoServer, type DemoServer, type PhaseResult, type WorkloadRunner } from './phase.js'
import { DEMO_HELP, parseDemoCommandLine, type DemoSettings } from './settings.js'
import { renderReport } from './report.js'
import { renderSummary, summarizePhase, type DemoSummary } from './summary.js'
import { runWorkload } from './workload.js'

const WARM_UP_MS = 1_000

/** Runs every worker in this process. */
const inProcess: WorkloadRunner = {
  run: (spec, shape) =>
    runWorkload(spec.kind === 'tokenkeeper' ? tokenkeeperClient(spec) : naiveClient(spec), shape),
}

function packageVersion(): string {
  const url = new URL('../../../package.json', import.meta.url)
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version
}

function introduction(settings: DemoSettings): string {
  const where =
    settings.processes > 1 || settings.redis
      ? ` in ${settings.processes} process${settings.processes > 1 ? 'es' : ''}${settings.redis ? ' sharing tokens through Redis' : ''}`
      : ''
  const naive =
    settings.naiveDurationMs > 0
      ? `, then the same through a naive token cache for ${formatMs(settings.naiveDurationMs)}`
      : ''
  return (
    `tokenkeeper demo: ${settings.workers} workers${where} call a protected API on 127.0.0.1 through tokenkeeper ` +
    `for ${formatMs(settings.durationMs)}${naive}. Tokens live ${formatMs(settings.tokenLifetimeMs)}; ` +
    `the token endpoint answers in ${formatMs(settings.latencyMs)}` +
    `${settings.fault === 'outage' ? ' and goes down once, mid-run' : ''}.`
  )
}

/**
 * Short, unreported runs of both clients before the measured ones, so that neither pays alone
 * for the process warming up (JIT, first connections).
 */
async function warmUp(settings: DemoSettings, server: DemoServer, runner: WorkloadRunner): Promise<void> {
  for (const kind of ['tokenkeeper', 'naive'] as const) {
    await runPhase(
      {
        kind,
        durationMs: Math.min(WARM_UP_MS, Math.round(settings.durationMs / 8)),
        workers: settings.workers,
        thinkMs: settings.thinkTimeMs,
        tokenLifetimeMs: settings.tokenLifetimeMs,
        latencyMs: settings.latencyMs,
        outage: false,
      },
      server,
      runner,
      () => undefined,
    )
  }
}

/** `tokenkeeper demo`. Resolves to the exit code. */
export async function demoCommand(argv: readonly string[], io: CommandIo): Promise<ExitCodeValue> {
  const line = parseDemoCommandLine(argv)
  if (line.help) {
    io.stdout.write(DEMO_HELP)
    return ExitCode.ok
  }
  const { settings } = line
  const colors = colorsFor(io.stdout, io.env)
  const mode: DisplayMode = line.json ? 'none' : fitsLiveDisplay(io.stdout) ? 'tty' : 'plain'
  let fleet: Fleet | undefined
  if (settings.redis || settings.processes > 1) fleet = await startFleet(settings.processes, line.redisUrl)
  let server: DemoServer | undefined
  try {
    server = await startDemoServer(settings)
    const demoServer = server
    if (mode !== 'none') io.stdout.write(`${wrap(introduction(settings))}\n\n`)
    const phase = async (kind: ClientKind, durationMs: number): Promise<PhaseResult> => {
      const display = createDisplay(mode, io.stdout, colors)
      try {
        return await runPhase(
          {
            kind,
            durationMs,
            workers: settings.workers,
            thinkMs: settings.thinkTimeMs,
            tokenLifetimeMs: settings.tokenLifetimeMs,
            latencyMs: settings.latencyMs,
            outage: settings.fault === 'outage',
          },
          demoServer,
          fleet ?? inProcess,
          (snapshot) => display.update(snapshot),
        )
      } finally {
        display.finish()
        if (mode !== 'none') io.stdout.write('\n')
      }
    }
    await warmUp(settings, demoServer, fleet ?? inProcess)
    const tokenkeeper = await phase('tokenkeeper', settings.durationMs)
    const naive = settings.naiveDurationMs > 0 ? await phase('naive', settings.naiveDurationMs) : undefined
    const summary: DemoSummary = {
      version: packageVersion(),
      settings,
      tokenkeeper: summarizePhase(tokenkeeper, settings.processes),
      naive: naive === undefined ? null : summarizePhase(naive, settings.processes),
    }
    io.stdout.write(line.json ? `${JSON.stringify(summary, null, 2)}\n` : renderSummary(summary, colors))
    if (line.reportPath !== undefined) {
      await writeFile(line.reportPath, renderReport(settings, tokenkeeper, naive))
      if (!line.json) io.stdout.write(`\nReport written to ${line.reportPath}\n`)
    }
    return ExitCode.ok
  } finally {
    await server?.server.close()
    await fleet?.close()
  }
}
