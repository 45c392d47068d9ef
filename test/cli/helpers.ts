import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../../', import.meta.url))
export const cliPath = join(root, 'dist', 'cli', 'main.js')

/** The CLI tests run the built CLI; `npm test` builds first. Locally, without a build, they are skipped. */
export const cliBuilt = existsSync(cliPath) || process.env['CI'] !== undefined

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** A private HOME with XDG directories, so that the CLI never touches the real user's files. */
export function sandbox(): { dir: string; env: Record<string, string>; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tokenkeeper-cli-'))
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || /^(TOKENKEEPER_|XDG_)/.test(name)) continue
    if (name === 'FORCE_COLOR' || name === 'NO_COLOR' || name.startsWith('VITEST') || name === 'NODE_OPTIONS')
      continue
    env[name] = value
  }
  Object.assign(env, {
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    XDG_DATA_HOME: join(dir, 'data'),
  })
  return { dir, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/**
 * Runs `node dist/cli/main.js ...args` with exactly `env`; stdout and stderr are pipes (not a TTY).
 * With `closedStdout`, the reading end of stdout is closed at once (nothing is read from it).
 */
export function runCli(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
  options: { readonly closedStdout?: boolean } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env,
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    // A reader that has gone (`tokenkeeper ... | head -c0`): the pipe is closed before the CLI writes.
    if (options.closedStdout === true) child.stdout.destroy()
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
