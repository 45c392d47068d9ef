import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))

// The load hook runs on the hooks thread: it appends each URL to a file with a synchronous write,
// so nothing is lost when the process exits before that thread's stream writes would have been
// flushed (a fast machine loses them). The importing process then writes an end marker, so a
// recording that stopped early fails instead of passing with fewer modules.
const recorder = `
import { register } from 'node:module'
import { appendFileSync } from 'node:fs'
const log = process.argv[2]
const hooks = 'data:text/javascript,' + encodeURIComponent(\`
  import { appendFileSync } from 'node:fs'
  export async function load(url, context, next) {
    appendFileSync(\${JSON.stringify(log)}, url + '\\\\n')
    return next(url, context)
  }\`)
register(hooks)
await import(process.argv[1])
appendFileSync(log, 'END\\n')
`

/** Imports `entry` (a URL) in a fresh Node process and returns the URL of every module it loaded. */
export function modulesLoadedBy(entry: URL): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'tokenkeeper-loads-'))
  const log = join(dir, 'loaded.txt')
  try {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', recorder, entry.href, log], {
      cwd: root,
      encoding: 'utf8',
    })
    if (result.status !== 0) throw new Error(`importing ${entry.href} failed: ${result.stderr}`)
    const lines = readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
    if (lines.at(-1) !== 'END') throw new Error(`the recording of ${entry.href} is incomplete`)
    const urls = lines.slice(0, -1)
    if (!urls.includes(entry.href))
      throw new Error(`the recording of ${entry.href} does not show the entry itself`)
    return urls
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
