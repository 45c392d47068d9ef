import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { afterEach } from 'vitest'
import { TokenManager, type TokenManagerOptions } from '../../src/index.js'
import type { LtiRegistration } from '../../src/lti/index.js'
import {
  createTestClock,
  startLtiPlatform,
  type LtiPlatform,
  type LtiPlatformOptions,
  type LtiTool,
  type TestClock,
} from '../../src/testing/index.js'

export const CLIENT_ID = 'tool-client-1'
export const KID = 'tool-key-2026'
export const ISSUER = 'https://lms.example.test'
export const LEARNER = 'http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'
export const INSTRUCTOR = 'http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor'

export const SCOPES = {
  lineItem: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem',
  lineItemReadOnly: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly',
  result: 'https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly',
  score: 'https://purl.imsglobal.org/spec/lti-ags/scope/score',
  nrps: 'https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly',
} as const

let keys: { privateKey: KeyObject; publicKey: KeyObject; pem: string } | undefined

/** The tool's RSA key pair, generated once per test file. */
export function toolKeys(): { privateKey: KeyObject; publicKey: KeyObject; pem: string } {
  if (keys === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    keys = { privateKey, publicKey, pem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }
  }
  return keys
}

const cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  const pending = cleanups.splice(0).reverse()
  for (const cleanup of pending) await cleanup()
})

/** Runs `cleanup` after the current test. */
export function onCleanup(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup)
}

export interface LtiHarness {
  readonly clock: TestClock
  readonly platform: LtiPlatform
  readonly tokens: TokenManager
  readonly registration: LtiRegistration
}

export interface LtiHarnessOptions {
  readonly platform?: Omit<LtiPlatformOptions, 'tools' | 'clock'>
  readonly tool?: Partial<LtiTool>
  readonly registration?: Partial<LtiRegistration>
  readonly manager?: Omit<TokenManagerOptions, 'clock' | 'random'>
}

/** A test platform, a manager and a registration, all on one test clock. */
export async function startLti(options: LtiHarnessOptions = {}): Promise<LtiHarness> {
  const clock = createTestClock()
  const { publicKey, pem } = toolKeys()
  const platform = await startLtiPlatform({
    tools: [{ clientId: CLIENT_ID, publicKey, kid: KID, ...options.tool }],
    issuer: ISSUER,
    ...options.platform,
    clock,
  })
  const tokens = new TokenManager({ ...options.manager, clock, random: () => 0.5 })
  onCleanup(() => platform.close())
  onCleanup(() => tokens.close())
  const registration: LtiRegistration = {
    issuer: ISSUER,
    clientId: CLIENT_ID,
    tokenUrl: platform.tokenUrl,
    privateKey: pem,
    kid: KID,
    ...options.registration,
  }
  return { clock, platform, tokens, registration }
}

/** Collects an async iterable. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = []
  for await (const item of iterable) items.push(item)
  return items
}

/** A completed, fully graded score for `userId`. */
export function score(
  userId: string,
  scoreGiven = 7,
): {
  userId: string
  scoreGiven: number
  scoreMaximum: number
  activityProgress: 'Completed'
  gradingProgress: 'FullyGraded'
} {
  return {
    userId,
    scoreGiven,
    scoreMaximum: 10,
    activityProgress: 'Completed',
    gradingProgress: 'FullyGraded',
  }
}
