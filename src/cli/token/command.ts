import { systemClock } from '../../clock.js'
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../http/token-request.js'
import { TokenManager } from '../../manager/manager.js'
import { clientSecretBasic, clientSecretPost } from '../../sources/auth.js'
import { clientCredentials } from '../../sources/client-credentials.js'
import type { TokenSource } from '../../sources/types.js'
import { parseFlags } from '../args.js'
import { configError, ExitCode, usageError, type ExitCodeValue } from '../errors.js'
import { printable } from '../format.js'
import type { CommandIo } from '../io.js'
import { fileStore } from '../../stores/file/store.js'
import { cacheDirPath, keyFilePath } from './paths.js'
import { resolveSettings, type TokenSettings } from './settings.js'

export const TOKEN_HELP = `Usage: tokenkeeper token [options]

Prints an OAuth 2.0 access token (client credentials grant) and a newline to stdout, so that
  curl -H "Authorization: Bearer $(tokenkeeper token --profile api)" https://api.example/v1
works. Tokens are cached, encrypted, in the user's cache directory and reused until they are
due for renewal; parallel invocations share one token request.

Options:
  --profile NAME              Use a profile from the config file (flags override its fields)
  --config PATH               The config file (default: $TOKENKEEPER_CONFIG, else
                              \${XDG_CONFIG_HOME:-~/.config}/tokenkeeper/config.json)
  --token-url URL             The token endpoint (https, or http on loopback)
  --client-id ID              The client id
  --client-secret-env VAR     Read the client secret from environment variable VAR
  --client-secret-file PATH   Read the client secret from a file (one trailing newline is dropped)
  --scope S                   A scope to request; repeat it, or give several separated by spaces
  --audience A                The audience parameter (Auth0, Okta, ...)
  --auth basic|post           client_secret_basic (default) or client_secret_post
  --timeout DURATION          Token request timeout (default 10s; a bare number is seconds)
  --json                      Print {accessToken, tokenType, expiresAt, expiresInSeconds, scopes, fromCache}
  --format token|json|exec-credential
                              What to print: the token (default), --json's object, or a Kubernetes
                              ExecCredential (client.authentication.k8s.io/v1) for kubectl and client-go
  --no-cache                  Do not read or write the token cache
  -h, --help                  Show this help

There is no --client-secret: a secret on the command line leaks into shell history and ps.

Cache: $TOKENKEEPER_CACHE_DIR, else \${XDG_CACHE_HOME:-~/.cache}/tokenkeeper (0700, files 0600,
AES-256-GCM). Key: $TOKENKEEPER_KEY_FILE, else \${XDG_DATA_HOME:-~/.local/share}/tokenkeeper/cache.key.

Exit codes: 0 ok, 1 unexpected error, 2 usage, 3 configuration, 4 refused by the token
endpoint, 5 token endpoint unreachable, timed out or unavailable.
`

const OPTIONS = {
  profile: { type: 'string' },
  config: { type: 'string' },
  'token-url': { type: 'string' },
  'client-id': { type: 'string' },
  'client-secret-env': { type: 'string' },
  'client-secret-file': { type: 'string' },
  scope: { type: 'string', multiple: true },
  audience: { type: 'string' },
  auth: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  format: { type: 'string' },
  'no-cache': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

/** How long a cache lock may be held: a token request's timeout plus some slack. */
const LOCK_SLACK_MS = 5_000

function buildSource(settings: TokenSettings): TokenSource {
  try {
    return clientCredentials({
      tokenUrl: settings.tokenUrl,
      clientId: settings.clientId,
      auth:
        settings.auth === 'post'
          ? clientSecretPost(settings.clientSecret)
          : clientSecretBasic(settings.clientSecret),
      scopes: settings.scopes,
      ...(settings.audience === undefined ? {} : { audience: settings.audience }),
      ...(settings.timeoutMs === undefined ? {} : { timeoutMs: settings.timeoutMs }),
    })
  } catch (error) {
    if (error instanceof TypeError) throw configError(error.message)
    throw error
  }
}

/** `tokenkeeper token`: prints a (cached) access token. Resolves to the exit code. */
export async function tokenCommand(argv: readonly string[], io: CommandIo): Promise<ExitCodeValue> {
  if (argv.some((arg) => arg === '--client-secret' || arg.startsWith('--client-secret='))) {
    throw usageError(
      '--client-secret is refused: a secret on the command line leaks into shell history and ps; use --client-secret-env VAR or --client-secret-file PATH',
    )
  }
  const values = parseFlags('token', argv, OPTIONS)
  if (values['help'] === true) {
    io.stdout.write(TOKEN_HELP)
    return ExitCode.ok
  }
  const chosen = typeof values['format'] === 'string' ? values['format'] : undefined
  if (chosen !== undefined && !['token', 'json', 'exec-credential'].includes(chosen))
    throw usageError('--format takes token, json or exec-credential')
  if (chosen !== undefined && chosen !== 'json' && values['json'] === true)
    throw usageError('--json is --format json: give one of them')
  const format = chosen ?? (values['json'] === true ? 'json' : 'token')
  const settings = await resolveSettings(values, io.env)
  const source = buildSource(settings)
  const store =
    values['no-cache'] === true
      ? undefined
      : fileStore({ dir: cacheDirPath(io.env), keyFile: keyFilePath(io.env) })
  const tokens = new TokenManager({
    ...(store === undefined ? {} : { store }),
    lockTtlMs: (settings.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS) + LOCK_SLACK_MS,
  })
  let warned = false
  tokens.on('storeError', (event) => {
    if (warned) return
    warned = true
    io.stderr.write(
      `tokenkeeper token: warning: the token cache could not be used (${event.operation}: ${printable(event.message)})\n`,
    )
  })
  // The manager's timers are unref()ed (a library must not keep a process alive), so while this
  // invocation waits for another one's token (polling the cache) something must hold the process.
  const keepAlive = setInterval(() => undefined, 60_000)
  try {
    const token = await tokens.get(source)
    const now = systemClock.now()
    const expiresInMs = Math.max(0, token.expiresAt - now)
    // The manager's instants are on its monotonic clock: the calendar time is read from the wall.
    const expiresAt = new Date(Date.now() + expiresInMs)
    if (format === 'json') {
      const output = {
        accessToken: token.value,
        tokenType: token.type,
        expiresAt: expiresAt.toISOString(),
        expiresInSeconds: Math.floor(expiresInMs / 1000),
        scopes: token.scopes,
        fromCache: tokens.stats().storeHits > 0,
      }
      io.stdout.write(`${JSON.stringify(output, null, 2)}\n`)
    } else if (format === 'exec-credential') {
      // https://kubernetes.io/docs/reference/access-authn-authz/authentication/#input-and-output-formats
      const credential = {
        apiVersion: 'client.authentication.k8s.io/v1',
        kind: 'ExecCredential',
        status: {
          token: token.value,
          expirationTimestamp: expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        },
      }
      io.stdout.write(`${JSON.stringify(credential)}\n`)
    } else {
      io.stdout.write(`${token.value}\n`)
    }
    return ExitCode.ok
  } finally {
    clearInterval(keepAlive)
    await tokens.close()
  }
}
