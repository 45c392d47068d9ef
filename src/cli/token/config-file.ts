import { dirname, isAbsolute, resolve } from 'node:path'
import { configError } from '../errors.js'
import { expandHome, type Environment } from './paths.js'
import { MAX_CONFIG_BYTES, readSmallFile } from './read-file.js'

/** The client authentication methods `tokenkeeper token` offers. */
export type AuthName = 'basic' | 'post'

/**
 * One profile of the config file. Every field may also be given (or overridden) by a flag.
 * Secrets are never written here: name an environment variable or a file that holds one.
 */
export interface Profile {
  readonly tokenUrl?: string
  readonly clientId?: string
  /** The name of an environment variable that holds the client secret. */
  readonly clientSecretEnv?: string
  /** A file that holds the client secret (relative paths are relative to the config file; `~/` works). */
  readonly clientSecretFile?: string
  readonly scopes?: readonly string[]
  /** `basic` (client_secret_basic, the default) or `post` (client_secret_post). */
  readonly auth?: AuthName
  /** The `audience` parameter some servers (Auth0, Okta) want. */
  readonly audience?: string
  /** Timeout of the token request in milliseconds. */
  readonly timeoutMs?: number
}

const STRING_FIELDS = ['tokenUrl', 'clientId', 'clientSecretEnv', 'clientSecretFile', 'audience'] as const
const KNOWN_FIELDS = new Set<string>([...STRING_FIELDS, 'scopes', 'auth', 'timeoutMs'])
const SECRET_FIELDS = new Set(['clientSecret', 'client_secret', 'secret', 'password'])

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Reads profile `name` from the config file at `path` and checks its shape.
 *
 * What the user typed on the command line is repeated only once the file proves it is not a
 * secret typed in the wrong place: a `--config` path once the file was read, a `--profile` name
 * once the file has a profile of that name. `pathFromFlag` says the path came from `--config`
 * (a path from `$TOKENKEEPER_CONFIG` or the default location is always shown).
 */
export async function loadProfile(
  path: string,
  name: string,
  env: Environment,
  pathFromFlag = false,
): Promise<Profile> {
  let text: string
  try {
    text = await readSmallFile(path, MAX_CONFIG_BYTES)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`
    throw configError(
      `${pathFromFlag ? 'the config file named by --config' : `config file ${path}`} ${why}; it is needed for --profile`,
    )
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw configError(`config file ${path} is not valid JSON`)
  }
  if (!isObject(data) || !isObject(data['profiles'])) {
    throw configError(`config file ${path} must be a JSON object with a "profiles" object`)
  }
  const profiles = data['profiles']
  const raw = Object.hasOwn(profiles, name) ? profiles[name] : undefined
  if (raw === undefined) {
    const known = Object.keys(profiles).sort().join(', ') || 'none'
    throw configError(`the profile named by --profile is not in ${path} (profiles: ${known})`)
  }
  return checkProfile(raw, `profile "${name}" in ${path}`, dirname(path), env)
}

function checkProfile(raw: unknown, where: string, baseDir: string, env: Environment): Profile {
  if (!isObject(raw)) throw configError(`${where} must be an object`)
  for (const field of Object.keys(raw)) {
    if (SECRET_FIELDS.has(field)) {
      throw configError(
        `${where}: "${field}" is not allowed; keep secrets out of the config file and name them with clientSecretEnv or clientSecretFile`,
      )
    }
    if (!KNOWN_FIELDS.has(field)) throw configError(`${where}: unknown field "${field}"`)
  }
  const profile: Record<string, unknown> = {}
  for (const field of STRING_FIELDS) {
    const value = raw[field]
    if (value === undefined) continue
    if (typeof value !== 'string' || value.length === 0)
      throw configError(`${where}: ${field} must be a non-empty string`)
    profile[field] = value
  }
  if (typeof profile['clientSecretFile'] === 'string') {
    const file = expandHome(profile['clientSecretFile'], env)
    profile['clientSecretFile'] = isAbsolute(file) ? file : resolve(baseDir, file)
  }
  const scopes = raw['scopes']
  if (scopes !== undefined) {
    if (!Array.isArray(scopes) || !scopes.every((scope) => typeof scope === 'string')) {
      throw configError(`${where}: scopes must be an array of strings`)
    }
    profile['scopes'] = scopes
  }
  const auth = raw['auth']
  if (auth !== undefined) {
    if (auth !== 'basic' && auth !== 'post') throw configError(`${where}: auth must be "basic" or "post"`)
    profile['auth'] = auth
  }
  const timeoutMs = raw['timeoutMs']
  if (timeoutMs !== undefined) {
    if (
      typeof timeoutMs !== 'number' ||
      !Number.isFinite(timeoutMs) ||
      timeoutMs <= 0 ||
      timeoutMs > 600_000
    ) {
      throw configError(`${where}: timeoutMs must be a number of milliseconds from 1 to 600000`)
    }
    profile['timeoutMs'] = timeoutMs
  }
  return profile
}
