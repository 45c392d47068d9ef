import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

// Every example is type-checked by `npm run typecheck`; here each one also runs, compiled to
// JavaScript inside the package so that `import 'tokenkeeper'` resolves to the built package.
const root = fileURLToPath(new URL('../../', import.meta.url))
const examples = fileURLToPath(new URL('../../examples/', import.meta.url))
const out = fileURLToPath(new URL('../../.tmp/examples/', import.meta.url))

const expected: Record<string, RegExp> = {
  'quickstart.ts': /distinct tokens: 1\ntoken requests: 1\n[\s\S]*API status: 200/,
  'private-key-jwt.ts': /got a Bearer token for reports/,
  'mtls.ts':
    /API with the certificate: 200\ntoken bound to the client certificate: true\ntokens.headers for a mutual-TLS source: MTLS_TRANSPORT_REQUIRED/,
  'dpop.ts':
    /got a DPoP token bound to this key\nthe server bound it to the same thumbprint: true\nAPI status: 200 200\nheaders: authorization, dpop\ntoken requests: 1 issued, 2 nonce demands/,
  'google-service-account.ts':
    /got a Bearer token for reports@my-project\.iam\.gserviceaccount\.com \(https:\/\/www\.googleapis\.com\/auth\/cloud-platform\)\ngoogleServiceAccount: expected a "service_account" key, got a key of type "authorized_user"/,
  'discovery.ts':
    /issuer: http:\/\/127\.0\.0\.1:\d+\/realms\/acme\ndiscovery requests: 2; token requests: 3\nsame key: true; token requests: 3\nAUTH_METHOD_NOT_SUPPORTED: issuer http:\/\/127\.0\.0\.1:\d+\/realms\/acme does not support client authentication by client_secret_post at its token endpoint: it supports client_secret_basic, private_key_jwt/,
  'workload-identity.ts':
    /stale file: ASSERTION_EXPIRED retryable: true\ngot a Bearer token; token requests: 1\n/,
  'opentelemetry.ts':
    /tokenkeeper\.token\.requests \(\{request\}\): 1\n[\s\S]*tokenkeeper\.cache\.lookups \(\{lookup\}\): 1, 1[\s\S]*span tokenkeeper refresh key [\w-]{16}/,
  // pino writes asynchronously: the lines may come in any order.
  'logging.ts':
    /^(?=[\s\S]*"level":40,[^\n]*"msg":"tokenkeeper: foreground token refresh for fn\|example:flaky-source failed: SOURCE_FAILED)(?=[\s\S]*"level":20,[^\n]*failing fast)(?=[\s\S]*obtained a token for fn\|example:console)/,
  'observability.ts': /renewed fn\|example:function-source in \d+ ms \(fetch\)/,
  'undici.ts': /undici request: 200 global fetch: 200\nafter revocation: 50 of 50 ok\ntoken requests: 2/,
  'got-and-ky.ts': /got: 50 of 50 ok\nky: 50 of 50 ok\ntoken requests: 3/,
  'azure.ts': /distinct tokens: 2\ntoken requests: 2\nrefresh after 45 min of 60/,
  'token-exchange.ts':
    /same exchanged token: true; token requests: 2\nissued_token_type: urn:ietf:params:oauth:token-type:access_token\nexpires with its subject: true\nanother subject, another token: true\nunknown audience: invalid_target\n/,
  'testing-your-code.ts':
    /same token during the outage: true\nafter expiry: SERVER_ERROR retryable: true\nrecovered: true/,
}

describe('examples run', () => {
  mkdirSync(out, { recursive: true })
  const files = readdirSync(examples).filter((name) => name.endsWith('.ts'))

  it('every example has an expectation', () => {
    expect(files.sort()).toEqual(Object.keys(expected).sort())
  })

  it.each(files)('%s', (name) => {
    const source = readFileSync(examples + name, 'utf8')
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    })
    const file = out + name.replace(/\.ts$/, '.mjs')
    writeFileSync(file, outputText)
    const result = spawnSync(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 30_000 })
    expect(result.stderr.replace(/^.*ExperimentalWarning.*$/gm, '').trim()).toBe('')
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(expected[name]!)
    expect(result.stdout).not.toMatch(/example-secret|test-secret/)
  })
})
