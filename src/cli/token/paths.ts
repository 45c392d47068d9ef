import { homedir } from 'node:os'
import { isAbsolute, join } from 'node:path'

/** The environment variables the CLI reads its locations from. */
export type Environment = Readonly<Record<string, string | undefined>>

/** An XDG base directory from `variable`, or `fallback` under the home directory (relative values are ignored, as the spec says). */
function xdgDir(env: Environment, variable: string, fallback: string): string {
  const value = env[variable]
  if (value !== undefined && value !== '' && isAbsolute(value)) return value
  return join(env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : homedir(), fallback)
}

function override(env: Environment, variable: string): string | undefined {
  const value = env[variable]
  return value !== undefined && value !== '' ? value : undefined
}

/** `$TOKENKEEPER_CONFIG`, else `${XDG_CONFIG_HOME:-~/.config}/tokenkeeper/config.json`. */
export function configFilePath(env: Environment): string {
  return (
    override(env, 'TOKENKEEPER_CONFIG') ??
    join(xdgDir(env, 'XDG_CONFIG_HOME', '.config'), 'tokenkeeper', 'config.json')
  )
}

/** `$TOKENKEEPER_CACHE_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/tokenkeeper`. */
export function cacheDirPath(env: Environment): string {
  return (
    override(env, 'TOKENKEEPER_CACHE_DIR') ?? join(xdgDir(env, 'XDG_CACHE_HOME', '.cache'), 'tokenkeeper')
  )
}

/**
 * The cache's encryption key: `$TOKENKEEPER_KEY_FILE`, else
 * `${XDG_DATA_HOME:-~/.local/share}/tokenkeeper/cache.key`. It lives apart from the cache, so a
 * copy of the cache directory alone (a backup, a synced folder) holds no usable token.
 */
export function keyFilePath(env: Environment): string {
  return (
    override(env, 'TOKENKEEPER_KEY_FILE') ??
    join(xdgDir(env, 'XDG_DATA_HOME', '.local/share'), 'tokenkeeper', 'cache.key')
  )
}

/** Expands a leading `~/` to the home directory. */
export function expandHome(path: string, env: Environment): string {
  if (path !== '~' && !path.startsWith('~/')) return path
  const home = env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : homedir()
  return join(home, path.slice(1))
}
