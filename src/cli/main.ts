#!/usr/bin/env node
// The tokenkeeper command line. Its own entry point: importing 'tokenkeeper' never loads it.
import { readFileSync } from 'node:fs'

const USAGE = `Usage: tokenkeeper <command> [options]

Commands:
  demo     Run many concurrent workers against an embedded token server and show what caching does
  token    Print an access token for shell scripts

Options:
  -h, --help     Show help
  -v, --version  Show the version
`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

const [command, ...rest] = process.argv.slice(2)
if (command === undefined || command === '-h' || command === '--help' || rest.includes('--help')) {
  process.stdout.write(USAGE)
} else if (command === '-v' || command === '--version') {
  process.stdout.write(`${version()}\n`)
} else if (command === 'demo' || command === 'token') {
  process.stderr.write(`tokenkeeper ${command}: not available in this build yet\n`)
  process.exitCode = 2
} else {
  process.stderr.write(`tokenkeeper: unknown command "${command}"\n\n${USAGE}`)
  process.exitCode = 2
}
