#!/usr/bin/env node
// The tokenkeeper command line. Its own entry point: importing 'tokenkeeper' never loads it.
import { readFileSync } from 'node:fs'
import { describeFailure, ExitCode, type ExitCodeValue } from './errors.js'
import { printable } from './format.js'
import type { CommandIo } from './io.js'

const USAGE = `Usage: tokenkeeper <command> [options]

Commands:
  demo     Many concurrent workers against an embedded token server: what tokenkeeper does
           for a busy service, compared with a naive token cache
  token    Print an access token (cached across invocations) for shell scripts

Options:
  -h, --help     Show help (also: tokenkeeper <command> --help)
  -v, --version  Show the version

Docs: docs/CLI.md in the tokenkeeper package (node_modules/tokenkeeper/docs/CLI.md)
`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

async function run(argv: readonly string[], io: CommandIo): Promise<ExitCodeValue> {
  const [command, ...rest] = argv
  switch (command) {
    case undefined:
      io.stderr.write(USAGE)
      return ExitCode.usage
    case '-h':
    case '--help':
    case 'help':
      if (command === 'help' && rest[0] !== undefined) return run([rest[0], '--help'], io)
      io.stdout.write(USAGE)
      return ExitCode.ok
    case '-v':
    case '--version':
      io.stdout.write(`${version()}\n`)
      return ExitCode.ok
    case 'demo': {
      const { demoCommand } = await import('./demo/command.js')
      return demoCommand(rest, io)
    }
    case 'token': {
      const { tokenCommand } = await import('./token/command.js')
      return tokenCommand(rest, io)
    }
    default:
      // Echoed only when it looks like a command word, never a pasted secret.
      io.stderr.write(
        `tokenkeeper: unknown command${/^[a-z][a-z-]{0,19}$/.test(command) ? ` "${command}"` : ''}\n\n${USAGE}`,
      )
      return ExitCode.usage
  }
}

// A reader that has gone (`tokenkeeper ... | head -c0`) closes the pipe: later writes fail with
// EPIPE, emitted as an 'error' event that would otherwise end the process with a stack trace
// (exit 1). Output to a closed pipe is dropped, and the command ends with its own exit code.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') process.exitCode = ExitCode.failure
  })
}

const io: CommandIo = { env: process.env, stdout: process.stdout, stderr: process.stderr }
const argv = process.argv.slice(2)
try {
  process.exitCode = await run(argv, io)
} catch (error) {
  const { exitCode, message } = describeFailure(error)
  const command = argv[0] === 'demo' || argv[0] === 'token' ? ` ${argv[0]}` : ''
  // The message may quote a config file, a path, the environment or a server: never raw to a terminal.
  process.stderr.write(`tokenkeeper${command}: ${printable(message)}\n`)
  process.exitCode = exitCode
}
