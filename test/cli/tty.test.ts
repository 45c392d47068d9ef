import { spawnSync } from 'node:child_process'
import { afterAll, describe, expect, it } from 'vitest'
import { cliBuilt, cliPath, root, sandbox } from './helpers.js'

// The demo on a real pseudo-terminal, made by util-linux `script` (Debian's bsdutils, always
// installed there). `stty` gives the terminal a size, or leaves it without one.
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0
const box = sandbox()
afterAll(() => box.cleanup())

function demoOnTerminal(size: string): { status: number | null; output: string } {
  const command = `stty ${size}; exec "${process.execPath}" "${cliPath}" demo --workers 10 --duration 2 --naive-duration 1 --token-lifetime 2 --latency 5ms`
  const result = spawnSync('script', ['-qec', command, '/dev/null'], {
    cwd: root,
    env: box.env,
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: result.status, output: result.stdout }
}

describe.skipIf(!cliBuilt || !hasScript)('tokenkeeper demo on a terminal', { timeout: 90_000 }, () => {
  it('redraws the status lines in place, restores the cursor, then prints the summary', () => {
    const { status, output } = demoOnTerminal('rows 40 cols 120')
    expect(status).toBe(0)
    const frames = output.split('background renewals').length - 1
    expect(frames).toBeGreaterThanOrEqual(2)
    expect(output).toContain('\x1b[?25l') // cursor hidden while drawing
    expect(output).toMatch(new RegExp(String.raw`\x1b\[\d+A`)) // earlier frame lines erased: cursor moved up
    expect(output.lastIndexOf('\x1b[?25h')).toBeGreaterThan(output.lastIndexOf('\x1b[?25l')) // shown again
    expect(output).toMatch(/Summary: 10 workers/)
  })

  it('a terminal without a size gets plain progress, not an empty live display', () => {
    const { status, output } = demoOnTerminal('rows 0 cols 0')
    expect(status).toBe(0)
    expect(output).not.toContain('\x1b[?25l')
    expect(output).toMatch(/Summary: 10 workers/)
    expect(output).toMatch(/token requests/)
  })
})
