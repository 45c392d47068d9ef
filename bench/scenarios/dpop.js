// Scenario 8, DPoP: what a proof costs on the hot path. Every API request with a DPoP-bound token
// carries a fresh signed proof (RFC 9449 §4), so signing is paid per request, not per token.
//
// A. Proofs per second (ES256, EdDSA, RS256) and tokens.headers() for a DPoP source, each against
//    tokens.headers() for a bearer source (a cache hit and a header string) in the same round.
// B. The fetch wrapper's cost per request, DPoP against bearer: tokens.fetch(source) with an
//    injected fetch that answers at once (no network), so the difference is the wrapper's own work.
// C. The same over real HTTP: tokens.fetch to a plain node:http server on 127.0.0.1 (keep-alive),
//    bearer against DPoP, so the proof's share of a whole request is seen.
//
// Cases run interleaved, round after round, in a rotating order; each ratio is taken against the
// baseline of the same round (as in warm-hit.js). Counts are small: the machine may have 2 cores.
/* global console, Response, Buffer */
import { createPrivateKey, randomUUID, sign } from 'node:crypto'
import { createServer } from 'node:http'
import {
  clientCredentials,
  clientSecretBasic,
  dpopKey,
  generateDpopKey,
  TokenManager,
} from '../../dist/index.js'
import { startTokenServer } from '../../dist/testing/index.js'
import { compareInterleaved, num, printTable, printVerdicts, ratio, sink, verdict } from './util.js'

const interleaved = (cases) => compareInterleaved(cases, { rounds: ROUNDS, warmupRounds: WARMUP_ROUNDS })

const ROUNDS = 9
const WARMUP_ROUNDS = 2
const SIGN_OPS = 1_000
const RSA_OPS = 150
const WRAPPER_OPS = 1_000
const HTTP_OPS = 400

function rows(results) {
  return results.map((r, i) => ({
    case: r.name,
    'µs/op': num(r.ns / 1000, 1),
    'ops/s': num(1e9 / r.ns),
    'ratio vs baseline': i === 0 ? 'baseline' : ratio(r.ratio),
    'ratio p25–p75': i === 0 ? '' : `${num(r.low, 2)}–${num(r.high, 2)}`,
  }))
}

export async function dpop() {
  const server = await startTokenServer({
    clients: [{ clientId: 'bench-client', clientSecret: 'bench-client-secret-value' }],
    dpop: true,
  })
  const source = (key) =>
    clientCredentials({
      tokenUrl: server.tokenUrl,
      clientId: 'bench-client',
      auth: clientSecretBasic('bench-client-secret-value'),
      ...(key === undefined ? {} : { dpop: key }),
    })
  const keys = {
    ES256: dpopKey(await generateDpopKey('ES256')),
    EdDSA: dpopKey(await generateDpopKey('EdDSA')),
    RS256: dpopKey(await generateDpopKey('RS256')),
  }
  const bearer = source()
  const bound = source(keys.ES256)
  const tokens = new TokenManager()
  const bearerToken = await tokens.get(bearer)
  const boundToken = await tokens.get(bound)
  const url = 'https://api.example/v1/things?page=2'
  const headersLoop = (s) => async (n) => {
    let acc = 0
    for (let i = 0; i < n; i++) acc += (await tokens.headers(s, { method: 'GET', url })).authorization.length
    return acc
  }
  const proofLoop = (key) => async (n) => {
    let acc = 0
    for (let i = 0; i < n; i++) {
      acc += (await key.proof({ htm: 'GET', htu: url, now: Date.now(), accessToken: boundToken.value }))
        .length
    }
    return acc
  }
  // Diagnostic: the same ES256 JWS signed synchronously with node:crypto on the main thread (not
  // what tokenkeeper does: it signs with jose, whose WebCrypto signing runs on the thread pool).
  const rawKey = createPrivateKey(
    (await generateDpopKey('ES256')).privateKey.export({ format: 'pem', type: 'pkcs8' }),
  )
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const rawLoop = async (n) => {
    let acc = 0
    for (let i = 0; i < n; i++) {
      const input = `${part({ typ: 'dpop+jwt', alg: 'ES256', jwk: keys.ES256.publicJwk })}.${part({ htm: 'GET', htu: url, iat: Math.floor(Date.now() / 1000), jti: randomUUID() })}`
      acc +=
        sign('sha256', Buffer.from(input), { key: rawKey, dsaEncoding: 'ieee-p1363' }).length + input.length
    }
    return acc
  }
  const signing = await interleaved([
    { name: 'tokens.headers(), bearer source  [baseline]', ops: SIGN_OPS, loop: headersLoop(bearer) },
    { name: 'tokens.headers(), DPoP source (ES256 proof)', ops: SIGN_OPS, loop: headersLoop(bound) },
    { name: 'proof alone, ES256', ops: SIGN_OPS, loop: proofLoop(keys.ES256) },
    { name: 'proof alone, EdDSA (Ed25519)', ops: SIGN_OPS, loop: proofLoop(keys.EdDSA) },
    { name: 'proof alone, RS256 (2048-bit)', ops: RSA_OPS, loop: proofLoop(keys.RS256) },
    { name: 'ES256 JWS with node:crypto.sign, synchronous  [diagnostic]', ops: SIGN_OPS, loop: rawLoop },
  ])
  printTable(
    '8a. DPoP proofs per second (one fresh proof per API request; jose SignJWT, WebCrypto key)',
    rows(signing),
  )

  // B: the wrapper alone, the network replaced by a fetch that answers at once.
  const proofsSeen = new Set()
  const instant = (request) => {
    const proof = request.headers.get('dpop')
    if (proof !== null) proofsSeen.add(proof)
    return Promise.resolve(new Response(null, { status: 204 }))
  }
  const wrapped = (s, send) => {
    const api = tokens.fetch(s, { fetch: send })
    return async (n) => {
      let acc = 0
      for (let i = 0; i < n; i++) acc += (await api(url)).status
      return acc
    }
  }
  const wrapper = await interleaved([
    {
      name: 'tokens.fetch, bearer, no network  [baseline]',
      ops: WRAPPER_OPS,
      loop: wrapped(bearer, instant),
    },
    { name: 'tokens.fetch, DPoP ES256, no network', ops: WRAPPER_OPS, loop: wrapped(bound, instant) },
  ])
  printTable(
    "8b. The fetch wrapper's own cost per request, DPoP vs bearer (injected fetch, no network)",
    rows(wrapper),
  )

  // C: a real request to a plain server on 127.0.0.1.
  const plain = createServer((req, res) => {
    req.resume()
    res.writeHead(204)
    res.end()
  })
  await new Promise((resolve) => plain.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${plain.address().port}`
  const overHttp = (s) => {
    const api = tokens.fetch(s)
    return async (n) => {
      let acc = 0
      for (let i = 0; i < n; i++) {
        const res = await api(`${origin}/v1/things`)
        await res.arrayBuffer()
        acc += res.status
      }
      return acc
    }
  }
  const http = await interleaved([
    { name: 'tokens.fetch, bearer, loopback HTTP  [baseline]', ops: HTTP_OPS, loop: overHttp(bearer) },
    { name: 'tokens.fetch, DPoP ES256, loopback HTTP', ops: HTTP_OPS, loop: overHttp(bound) },
  ])
  printTable(
    '8c. A whole request over loopback HTTP, DPoP vs bearer (node:http server, keep-alive)',
    rows(http),
  )
  console.log(`  (sink ${sink.value % 10})`)

  const wrapperRequests = (ROUNDS + WARMUP_ROUNDS) * WRAPPER_OPS
  const verdicts = [
    verdict(
      'dpop',
      'every DPoP request through the wrapper carried its own proof',
      `${num(proofsSeen.size)} distinct proofs for ${num(wrapperRequests)} requests`,
      proofsSeen.size === wrapperRequests,
      'correctness',
    ),
    verdict(
      'dpop',
      'bound and bearer tokens: 2 token requests in all (proofs never renew a token)',
      `${server.stats().tokensIssued} tokens issued, type ${boundToken.type} and ${bearerToken.type}`,
      server.stats().tokensIssued === 2 && boundToken.type === 'DPoP' && bearerToken.type === 'Bearer',
      'correctness',
    ),
    verdict(
      'dpop',
      'a DPoP request over loopback HTTP costs at most 2x a bearer one',
      ratio(http[1].ratio),
      http[1].ratio <= 2,
      'timing',
    ),
  ]
  printVerdicts(verdicts)
  plain.closeAllConnections()
  await new Promise((resolve) => plain.close(resolve))
  await tokens.close()
  await server.close()
  return {
    verdicts,
    summary: {
      es256ProofsPerSecond: 1e9 / signing[2].ns,
      wrapperRatio: wrapper[1].ratio,
      httpRatio: http[1].ratio,
    },
  }
}
