// `npm run demo [-- options]`: runs `tokenkeeper demo` from dist/, building dist/ first only when
// it is missing or older than its sources, so `npm run demo -- --help` answers at once.
//
// dist/ is up to date when every src/**/*.ts (not tests, not .d.ts) has its dist/**/*.js, written
// after both the source and the tsconfig files last changed. File times alone: each file compiles
// to its own .js (isolatedModules), so no other file's change can alter it.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import process from 'node:process'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))

/** The modification time of `path` in ms, or `undefined` when there is no such file. */
function modifiedAt(path) {
  try {
    return statSync(path).mtimeMs
  } catch {
    return undefined
  }
}

/** Why dist/ must be built before it runs, or `undefined` when it is up to date. */
function staleReason() {
  const configAt = Math.max(
    ...['tsconfig.json', 'tsconfig.build.json'].map((name) => modifiedAt(join(root, name)) ?? 0),
  )
  const src = join(root, 'src')
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    const { name } = entry
    if (!entry.isFile() || !name.endsWith('.ts') || name.endsWith('.d.ts') || name.endsWith('.test.ts'))
      continue
    const source = join(entry.parentPath, name)
    const output = join(root, 'dist', relative(src, source)).replace(/\.ts$/, '.js')
    const builtAt = modifiedAt(output)
    if (builtAt === undefined) return `${relative(root, output)} is missing`
    if (builtAt < Math.max(modifiedAt(source) ?? 0, configAt)) return `${relative(root, source)} changed`
  }
  return undefined
}

const reason = staleReason()
if (reason !== undefined) {
  process.stderr.write(`npm run demo: building dist/ first (${reason})\n`)
  // Under `npm run`, npm_execpath is npm's own script: the same npm, on any platform.
  const npm = process.env.npm_execpath
  const build =
    npm === undefined
      ? spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
      : spawnSync(process.execPath, [npm, 'run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
  if (build.status !== 0) {
    process.stderr.write('npm run demo: the build failed\n')
    process.exit(build.status ?? 1)
  }
}

// The command line as the `tokenkeeper` bin would get it, then the CLI itself, in this process.
const main = join(root, 'dist', 'cli', 'main.js')
process.argv = [process.argv[0] ?? process.execPath, main, 'demo', ...process.argv.slice(2)]
await import(pathToFileURL(main).href)
