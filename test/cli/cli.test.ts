import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cliBuilt, root, runCli, sandbox } from './helpers.js'

const box = sandbox()
afterAll(() => box.cleanup())

describe.skipIf(!cliBuilt)('tokenkeeper (the command)', { timeout: 60_000 }, () => {
  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
    for (const flag of ['--version', '-v']) {
      const result = await runCli([flag], box.env)
      expect(result).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' })
    }
  })

  it('--help lists the commands; no command is a usage error', async () => {
    const help = await runCli(['--help'], box.env)
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/Usage: tokenkeeper <command>/)
    expect(help.stdout).toMatch(/demo/)
    expect(help.stdout).toMatch(/token/)
    const none = await runCli([], box.env)
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/Usage/)
  })

  it.each([
    ['demo', /--workers N/],
    ['token', /--client-secret-env VAR/],
  ])('%s --help (and help %s) describe the command', async (command, pattern) => {
    for (const args of [
      [command, '--help'],
      [command, '-h'],
      ['help', command],
    ]) {
      const result = await runCli(args, box.env)
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(pattern)
      expect(result.stdout).toMatch(/Exit codes|Durations/)
      expect(result.stderr).toBe('')
    }
  })

  it('an unknown command or option is a usage error (exit 2)', async () => {
    const command = await runCli(['frobnicate'], box.env)
    expect(command.code).toBe(2)
    expect(command.stderr).toMatch(/unknown command "frobnicate"/)
    const option = await runCli(['demo', '--frobnicate'], box.env)
    expect(option.code).toBe(2)
    // The option is located, not repeated: an unknown option may be a secret typed as one.
    expect(option.stderr).toMatch(/unknown option \(argument 1 after "demo"; see tokenkeeper demo --help\)/)
    expect(option.stderr).not.toContain('frobnicate')
    for (const argv of [
      ['token', '--token-url', 'https://idp.example/t', '--client-secret=Pasted-Secret-42'],
      ['token', '--Pasted-Secret-42'],
      ['token', '--token-url', 'https://idp.example/t', 'Pasted-Secret-42'],
      ['token', '--json=Pasted-Secret-42'],
      ['demo', '-P', 'Pasted-Secret-42'],
    ]) {
      const pasted = await runCli(argv, box.env)
      expect(pasted.code).toBe(2)
      expect(pasted.stderr).toMatch(/tokenkeeper (token|demo): /)
      expect(pasted.stderr).not.toContain('Pasted-Secret-42')
      expect(pasted.stderr).not.toContain('Pasted-Secret')
    }
    const hinted = await runCli(['token', '--client-secret', 'Pasted-Secret-42'], box.env)
    expect(hinted.stderr).toMatch(/use --client-secret-env VAR or --client-secret-file PATH/)
    expect(hinted.stderr).not.toContain('Pasted-Secret-42')
    const value = await runCli(['demo', '--workers', 'many'], box.env)
    expect(value.code).toBe(2)
    expect(value.stderr).toMatch(/--workers must be a whole number/)
  })

  it('a closed stdout (tokenkeeper ... | head -c0) ends quietly: no EPIPE stack trace, the exit code of the command', async () => {
    for (const [args, code] of [
      [['--version'], 0],
      [['--help'], 0],
      [['token', '--help'], 0],
      [['token', '--auth', 'digest'], 2],
    ] as const) {
      const result = await runCli(args, box.env, 30_000, { closedStdout: true })
      expect(result.stderr).not.toMatch(/EPIPE|Unhandled|at /)
      expect(result.code).toBe(code)
    }
  })
})
