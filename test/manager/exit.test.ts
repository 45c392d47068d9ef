/**
 * A process that uses a TokenManager must be able to end by itself: after `close()`, and even
 * without it (proactive timers are unref'd). These tests run a child Node process against the
 * BUILT library in dist/ (the test command builds it first), because the child cannot load
 * TypeScript sources.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const distIndex = fileURLToPath(new URL('../../dist/index.js', import.meta.url))
const hasDist = existsSync(distIndex)
if (!hasDist) console.warn(`exit.test.ts: skipped, ${distIndex} is missing (run "npm run build" first)`)

/** How long a child may take before the test calls it hung (a bound, not a measurement). */
const HANG_MS = 8_000

interface ChildResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly hung: boolean
}

function runChild(script: string, env: Record<string, string> = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, DIST_URL: pathToFileURL(distIndex).href, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let hung = false
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => {
      hung = true
      child.kill('SIGKILL')
    }, HANG_MS)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    // 'close' follows 'exit' once the child's output has drained.
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, hung })
    })
  })
}

const FUNCTION_SOURCE = `
const { TokenManager, tokenSource } = await import(process.env.DIST_URL)
let calls = 0
const source = tokenSource('exit-test', () => ({ access_token: 'value-' + ++calls, expires_in: 5 }))
const tokens = new TokenManager({ proactive: true })
const token = await tokens.get(source)
console.log('token', token.type, calls)
`

describe.skipIf(!hasDist)('process exit (child process against dist/)', () => {
  let server: Server
  let tokenUrl: string
  let requests = 0

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        res.end(
          JSON.stringify({ access_token: `http-token-${requests}`, token_type: 'Bearer', expires_in: 5 }),
        )
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
  })

  afterAll(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  it('a proactive manager with a function source exits after close()', async () => {
    const result = await runChild(`${FUNCTION_SOURCE}
await tokens.close()
console.log('closed')
`)
    expect(result.hung, `child hung; stderr: ${result.stderr}`).toBe(false)
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('token Bearer 1\nclosed\n')
  })

  it('a proactive manager exits even without close(): its timers do not hold the process', async () => {
    const result = await runChild(`${FUNCTION_SOURCE}
console.log('done')
`)
    expect(result.hung, `child hung; stderr: ${result.stderr}`).toBe(false)
    expect(result.code).toBe(0)
    // It ended before the 4 s proactive refresh would have fetched again.
    expect(result.stdout).toBe('token Bearer 1\ndone\n')
  })

  it('a proactive manager with a client-credentials source over HTTP exits after close()', async () => {
    const before = requests
    const result = await runChild(
      `
const { TokenManager, clientCredentials, clientSecretPost } = await import(process.env.DIST_URL)
const source = clientCredentials({
  tokenUrl: process.env.TOKEN_URL,
  clientId: 'exit-test',
  auth: clientSecretPost('exit-secret'),
})
const tokens = new TokenManager({ proactive: true })
const token = await tokens.get(source)
const again = await tokens.get(source)
console.log('token', token === again)
await tokens.close()
console.log('closed')
`,
      { TOKEN_URL: tokenUrl },
    )
    expect(result.hung, `child hung; stderr: ${result.stderr}`).toBe(false)
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('token true\nclosed\n')
    expect(requests - before).toBe(1)
  })
})
