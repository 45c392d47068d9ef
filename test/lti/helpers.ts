import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach } from 'vitest'
import { TokenManager, type TokenManagerOptions } from '../../src/index.js'
import {
  GradeService,
  MembershipsService,
  type LtiRegistration,
  type LtiServiceOptions,
} from '../../src/lti/index.js'
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

/**
 * A platform's service host that misbehaves: the tokens come from the real test platform, the
 * AGS/NRPS calls go to this server on 127.0.0.1, which answers what each test tells it to.
 */
export async function badServiceHost(
  answer: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => answer(req, res, Buffer.concat(chunks).toString('utf8')))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const { port } = server.address() as AddressInfo
  return `http://127.0.0.1:${port}`
}

/** A grade and a roster service whose calls go to a {@link badServiceHost}, on the harness's test clock. */
export async function services(
  answer: (req: IncomingMessage, res: ServerResponse, body: string) => void,
  options: LtiServiceOptions = {},
): Promise<{ grades: GradeService; roster: MembershipsService; harness: LtiHarness; base: string }> {
  const base = await badServiceHost(answer)
  const harness = await startLti()
  const serviceOptions = { maxResponseBytes: 4_096, clock: harness.clock, ...options }
  const grades = await GradeService.fromClaim(
    harness.tokens,
    harness.registration,
    {
      scope: [SCOPES.lineItem, SCOPES.score, SCOPES.result],
      lineitems: `${base}/courses/1/lineitems`,
      lineitem: `${base}/courses/1/lineitems/7`,
    },
    serviceOptions,
  )
  const roster = await MembershipsService.fromClaim(
    harness.tokens,
    harness.registration,
    { context_memberships_url: `${base}/courses/1/memberships`, service_versions: ['2.0'] },
    serviceOptions,
  )
  return { grades, roster, harness, base }
}

/** `promise`, and whether it has settled yet. */
function tracked<T>(promise: Promise<T>): { readonly observed: Promise<T>; readonly settled: () => boolean } {
  let done = false
  const observed = promise.then(
    (value) => {
      done = true
      return value
    },
    (error: unknown) => {
      done = true
      throw error
    },
  )
  observed.catch(() => undefined)
  return { observed, settled: () => done }
}

/** Advances `clock` in small steps, yielding to the event loop, until `promise` settles. */
export async function settle<T>(clock: TestClock, promise: Promise<T>, stepMs = 10): Promise<T> {
  const { observed, settled } = tracked(promise)
  for (let steps = 0; !settled() && steps < 100_000; steps++) await clock.advanceAsync(stepMs)
  return observed
}

/** Moves `clock` in steps of `stepMs` for at most `totalMs`; reports whether `promise` settled. */
export async function within<T>(
  clock: TestClock,
  promise: Promise<T>,
  totalMs: number,
  stepMs = 100,
): Promise<{ readonly done: boolean; readonly result: T | undefined }> {
  const { observed, settled } = tracked(promise)
  for (let elapsed = 0; !settled() && elapsed < totalMs; elapsed += stepMs) await clock.advanceAsync(stepMs)
  for (let i = 0; !settled() && i < 20; i++) await clock.advanceAsync(0)
  const done = settled()
  return { done, result: done ? await observed : undefined }
}

/** The error a promise rejects with, or undefined when it resolves. */
export function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  )
}
