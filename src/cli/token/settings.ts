import { MAX_SECRET_FILE_BYTES, readSmallFile } from './read-file.js'
import { parseDurationMs, stringFlag, stringsFlag, type ParsedValues } from '../args.js'
import { configError, usageError } from '../errors.js'
import { loadProfile, type AuthName, type Profile } from './config-file.js'
import { configFilePath, type Environment } from './paths.js'

/** Everything `tokenkeeper token` needs to ask for a token, with the secret already read. */
export interface TokenSettings {
  readonly tokenUrl: string
  readonly clientId: string
  /** Secret. Never printed. */
  readonly clientSecret: string
  readonly scopes: readonly string[]
  readonly auth: AuthName
  readonly audience: string | undefined
  readonly timeoutMs: number | undefined
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Reads the secret. `fromProfile` names the config-file profile the variable name or file path
 * came from: such a name or path is written by the user on purpose and is shown in errors; one
 * from the command line is not (a secret pasted in its place would reach stderr).
 */
async function readSecret(
  profile: Profile,
  env: Environment,
  fromProfile: string | undefined,
): Promise<string> {
  if (profile.clientSecretEnv !== undefined) {
    const name = profile.clientSecretEnv
    if (!ENV_NAME.test(name))
      throw usageError(`--client-secret-env takes the NAME of an environment variable`)
    const value = env[name]
    if (value === undefined || value === '') {
      throw configError(
        fromProfile === undefined
          ? // Named only when it looks like a conventional variable name (upper case, digits and
            // underscores): a mixed-case word may be a secret typed in the wrong place.
            `the environment variable ${/^[A-Z][A-Z0-9_]*$/.test(name) ? `${name} ` : ''}named by --client-secret-env is not set or empty`
          : `the environment variable ${name} (clientSecretEnv of profile "${fromProfile}") is not set or empty`,
      )
    }
    return value
  }
  if (profile.clientSecretFile !== undefined) {
    let text: string
    try {
      text = await readSmallFile(profile.clientSecretFile, MAX_SECRET_FILE_BYTES)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error'
      throw configError(
        fromProfile === undefined
          ? `the file named by --client-secret-file cannot be read (${code})`
          : `the client secret file ${profile.clientSecretFile} (clientSecretFile of profile "${fromProfile}") cannot be read (${code})`,
      )
    }
    const secret = text.replace(/\r?\n$/, '')
    if (secret === '')
      throw configError(
        fromProfile === undefined
          ? 'the file named by --client-secret-file is empty'
          : `the client secret file ${profile.clientSecretFile} (clientSecretFile of profile "${fromProfile}") is empty`,
      )
    return secret
  }
  throw usageError('a client secret is needed: --client-secret-env VAR or --client-secret-file PATH')
}

/** The flags as a profile, so that they can override one field by field. */
function flagsAsProfile(values: ParsedValues): Profile {
  const profile: Record<string, unknown> = {}
  const strings = [
    ['token-url', 'tokenUrl'],
    ['client-id', 'clientId'],
    ['client-secret-env', 'clientSecretEnv'],
    ['client-secret-file', 'clientSecretFile'],
    ['audience', 'audience'],
  ] as const
  for (const [flag, field] of strings) {
    const value = stringFlag(values, flag)
    if (value !== undefined) profile[field] = value
  }
  const scopes = stringsFlag(values, 'scope').flatMap((scope) => scope.split(/\s+/).filter((s) => s !== ''))
  if (scopes.length > 0) profile['scopes'] = scopes
  const auth = stringFlag(values, 'auth')
  if (auth !== undefined) {
    if (auth !== 'basic' && auth !== 'post') throw usageError('--auth must be basic or post')
    profile['auth'] = auth
  }
  const timeout = stringFlag(values, 'timeout')
  if (timeout !== undefined)
    profile['timeoutMs'] = parseDurationMs(timeout, 'timeout', { min: 1, max: 600_000 })
  return profile
}

/**
 * Combines `--profile` (from the config file) with the flags, flags winning, and reads the
 * secret from the environment variable or file it names.
 */
export async function resolveSettings(values: ParsedValues, env: Environment): Promise<TokenSettings> {
  const flags = flagsAsProfile(values)
  if (flags.clientSecretEnv !== undefined && flags.clientSecretFile !== undefined) {
    throw usageError('give --client-secret-env or --client-secret-file, not both')
  }
  const name = stringFlag(values, 'profile')
  let merged: Profile = flags
  let secretFromProfile: string | undefined
  if (name !== undefined) {
    const flagPath = stringFlag(values, 'config')
    const profile = await loadProfile(flagPath ?? configFilePath(env), name, env, flagPath !== undefined)
    const secretFromFlags = flags.clientSecretEnv !== undefined || flags.clientSecretFile !== undefined
    const base: Record<string, unknown> = { ...profile }
    if (secretFromFlags) {
      delete base['clientSecretEnv']
      delete base['clientSecretFile']
    }
    merged = { ...base, ...flags }
    if (!secretFromFlags) secretFromProfile = name
  }
  const where = name === undefined ? '' : ` (not in the flags nor in profile "${name}")`
  if (merged.tokenUrl === undefined) {
    throw usageError(`--token-url is required${where}${name === undefined ? '; or give --profile NAME' : ''}`)
  }
  if (merged.clientId === undefined) throw usageError(`--client-id is required${where}`)
  return {
    tokenUrl: merged.tokenUrl,
    clientId: merged.clientId,
    clientSecret: await readSecret(merged, env, secretFromProfile),
    scopes: merged.scopes ?? [],
    auth: merged.auth ?? 'basic',
    audience: merged.audience,
    timeoutMs: merged.timeoutMs,
  }
}
