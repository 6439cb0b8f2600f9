import fc from 'fast-check'
import type { FastifyInstance, InjectOptions } from 'fastify'
import t, { type Test } from 'tap'
import { REFUSED_AS_SENT } from '../../plugins/openapi.js'
import { pathsSentTo } from '../../plugins/refresh-cookie.js'
import * as errors from '../../src/errors.js'
import { buildApp, cookiePath, nextRefreshCookie, PASSWORD, refresh, refreshCookieValue, registerAndLogin, sidOf, type LoggedIn, type StoreKind } from '../helpers/app.js'

// Random requests against every route, built from what an attacker holds: a genuine session of their own (and
// tampered copies of its tokens), garbage, foreign origins, odd content types and encodings, any Unicode. The attacker
// holds a live session throughout, as a browser does: a refresh's new cookie replaces the one sent, and a session a
// request ends (a logout, a revocation, a replay) is followed by a new one, so the routes behind the tokens are
// reached all along, not only until the first request that ends the session.
// FUZZ_RUNS and FUZZ_SEED widen or replay a run; the fixed seed keeps CI's run the same every time.
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)
const SEED = Number(process.env.FUZZ_SEED ?? 20261126)

const APP_ORIGIN = 'https://app.example.com'
/** Passwords a random password change may set, and present as the current one after. */
const NEW_PASSWORDS = ['a fuzzed passphrase 1', 'another fuzzed passphrase 2']
const COOKIE_PATHS = pathsSentTo('/auth')
const CODES = new Set<string>(Object.values(errors).map((ServiceError) => new ServiceError('x').code))

const ROUTES: Array<[string, string]> = [['POST', '/auth/register'], ['POST', '/auth/login'], ['POST', '/auth/refresh'], ['POST', '/auth/logout'],
  ['POST', '/auth/logout-all'], ['POST', '/auth/password'], ['GET', '/auth/sessions'], ['DELETE', '/auth/sessions/:id'], ['GET', '/me'],
  ['GET', '/.well-known/jwks.json'], ['GET', '/health/live'], ['GET', '/health/ready'], ['GET', '/metrics']]
const PATHS = ROUTES.map(([, path]) => path)

/** One character changed: what tampering with a token in transit looks like. */
function tampered (value: string, at: number, char: string): string {
  const i = at % value.length
  return value.slice(0, i) + (value[i] === char ? '_' : char) + value.slice(i + 1)
}

/**
 * What the attacker holds, named in a generated request and filled in as it is sent: their tokens change during a
 * run. `⟦access~12~x⟧` is the access token with its character at 12 changed to x. Counterexamples read as the names.
 */
type Held = 'access' | 'refresh' | 'family' | 'email'
const held = (name: Held): string => `⟦${name}⟧`
/** One of the attacker's values with a character changed: what tampering with a token in transit looks like. */
const tamperedMark = (name: Held): string => `⟦${name}~`
const heldTampered = (name: Held): fc.Arbitrary<string> =>
  fc.tuple(fc.nat(), fc.constantFrom('A', 'x', '.', '-')).map(([at, char]) => `${tamperedMark(name)}${at}~${char}⟧`)
const HELD = /⟦(access|refresh|family|email)(?:~(\d+)~(.))?⟧/g

/** `request` as sent by an attacker holding `attacker`'s session. */
function filledIn (request: InjectOptions, attacker: LoggedIn): InjectOptions & { headers: Record<string, string> } {
  const values: Record<Held, string> = { access: attacker.accessToken, refresh: attacker.refreshToken, family: sidOf(attacker.accessToken), email: attacker.email }
  const fill = (text: string): string => text.replace(HELD, (_, name: Held, at?: string, char?: string) =>
    at === undefined ? values[name] : tampered(values[name], Number(at), char as string))
  const headers = Object.fromEntries(Object.entries(request.headers ?? {}).map(([name, value]) => [name, fill(String(value))]))
  return { ...request, url: fill(String(request.url)), headers, payload: typeof request.payload === 'string' ? fill(request.payload) : request.payload }
}

function requests (cookieName: string, othersSession: string): fc.Arbitrary<InjectOptions> {
  const text = fc.string({ unit: 'grapheme', maxLength: 40 })
  // Header values: printable ASCII, as the HTTP parser lets through.
  const headerText = fc.string({ unit: 'grapheme-ascii', maxLength: 60 })
  const sessionId = fc.oneof(
    // Their own session, another user's (which they must not be able to end), one that does not exist.
    fc.constantFrom(held('family'), othersSession, 'AAAAAAAAAAAAAAAAAAAAAA'),
    fc.string({ unit: 'grapheme-ascii', maxLength: 30 }).map((s) => encodeURIComponent(s)),
    fc.constantFrom('%', '%E0%A4%A', '..%2f..%2f', 'a'.repeat(101))
  )
  const withId = (path: string) => path.endsWith(':id') ? sessionId.map((id) => path.replace(':id', id)) : fc.constant(path)
  // Mostly a route as it is served, method and all; then any method on any path, and paths no route serves.
  const target = fc.oneof(
    { arbitrary: fc.constantFrom(...ROUTES).chain(([method, path]) => withId(path).map((url) => ({ method, url }))), weight: 6 },
    { arbitrary: fc.record({ method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD'), url: fc.constantFrom(...PATHS).chain(withId) }), weight: 2 },
    fc.record({
      method: fc.constantFrom('GET', 'POST'),
      url: fc.oneof(
        fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
        fc.tuple(fc.constantFrom(...PATHS), fc.constantFrom('/', '?', '?x=%', '%', '%E0%A4%A', '/..%2f', '#')).map(([path, suffix]) => path + suffix)
      )
    })
  )
  // The genuine credentials most often: the routes' own work lies behind them.
  const bearer = fc.oneof(
    { arbitrary: fc.constant(`Bearer ${held('access')}`), weight: 4 },
    heldTampered('access').map((token) => `Bearer ${token}`),
    headerText.map((s) => `Bearer ${s}`),
    headerText
  )
  const cookie = fc.oneof(
    { arbitrary: fc.constant(`${cookieName}=${held('refresh')}`), weight: 4 },
    heldTampered('refresh').map((token) => `${cookieName}=${token}`),
    headerText.map((s) => `${cookieName}=${s}`),
    // Two cookies of the name (one planted by a sibling host, or by header injection), either first.
    fc.tuple(fc.oneof(fc.constant(held('refresh')), heldTampered('refresh'), headerText), fc.boolean())
      .map(([planted, first]) => first ? `${cookieName}=${planted}; ${cookieName}=${held('refresh')}` : `${cookieName}=${held('refresh')}; ${cookieName}=${planted}`),
    headerText
  )
  const credentials = fc.record({ email: fc.oneof(fc.constant(held('email')), fc.emailAddress(), text), password: fc.oneof(fc.constant(PASSWORD), text) },
    { requiredKeys: [] })
  const body = fc.oneof(
    credentials.map((c) => JSON.stringify(c)),
    fc.record({ currentPassword: fc.oneof(fc.constant(PASSWORD), text), newPassword: text }, { requiredKeys: [] }).map((c) => JSON.stringify(c)),
    fc.json({ maxDepth: 3 }),
    text
  )
  const random = fc.record({
    target,
    headers: fc.record({
      authorization: bearer,
      cookie,
      // The last is the origin inject's requests are addressed to (Host: localhost:80): a browser without Fetch
      // Metadata on the API's own origin.
      origin: fc.constantFrom(APP_ORIGIN, 'https://evil.example', 'null', 'http://localhost:80'),
      'access-control-request-method': fc.constantFrom('POST', 'DELETE'),
      'content-type': fc.oneof({ arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8'), weight: 6 },
        fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'), headerText),
      'content-encoding': fc.constantFrom('gzip', 'identity', 'identity'),
      'user-agent': headerText,
      'x-forwarded-for': fc.ipV4()
    }, { requiredKeys: [] }),
    payload: fc.option(body, { nil: undefined })
  }).map(({ target, headers, payload }) => ({ ...target, headers, payload }) as InjectOptions)
  // A password change as the attacker's own app sends it, the current password one of those the account may have by
  // then: random requests alone all but never change it, and what follows a change would go untried.
  const passwordChange = fc.record({ currentPassword: fc.constantFrom(PASSWORD, ...NEW_PASSWORDS), newPassword: fc.constantFrom(...NEW_PASSWORDS) })
    .map((body): InjectOptions => ({
      method: 'POST',
      url: '/auth/password',
      headers: { authorization: `Bearer ${held('access')}`, 'content-type': 'application/json' },
      payload: JSON.stringify(body)
    }))
  return fc.oneof({ arbitrary: random, weight: 30 }, passwordChange)
}

/** What every answer must be, whatever was asked. Returns what is wrong with it, or null. */
function fault (request: InjectOptions, res: Awaited<ReturnType<FastifyInstance['inject']>>): string | null {
  if (res.statusCode >= 500) return `a ${res.statusCode}: ${res.body}`
  if (res.headers['x-content-type-options'] !== 'nosniff') return 'no nosniff'
  const cacheable = res.statusCode === 200 && String(request.url).startsWith('/.well-known/jwks.json')
  if (!cacheable && res.headers['cache-control'] !== 'no-store') return `cache-control ${String(res.headers['cache-control'])}`
  for (const setCookie of [res.headers['set-cookie'] ?? []].flat()) {
    // On /auth, or, clearing planted copies, on a path from which browsers send cookies to the auth routes.
    const path = cookiePath(setCookie)
    const onItsPath = path === '/auth' || (/^[^=]+=;/.test(setCookie) && COOKIE_PATHS.includes(path ?? ''))
    if (!/; HttpOnly/.test(setCookie) || !/; Secure/.test(setCookie) || !/; SameSite=Strict/.test(setCookie) || !onItsPath) {
      return `a cookie without its attributes: ${setCookie}`
    }
  }
  if (res.statusCode < 400 || request.method === 'HEAD') return null
  if (!/^application\/json/.test(String(res.headers['content-type']))) return `an error as ${String(res.headers['content-type'])}`
  let error: Record<string, unknown>
  try {
    error = res.json()
  } catch {
    return `an error body that is not JSON: ${res.body}`
  }
  if (error.statusCode !== res.statusCode || typeof error.error !== 'string' || typeof error.message !== 'string') return `an error of another shape: ${res.body}`
  if (!CODES.has(error.code as string)) return `an error code the service does not define: ${String(error.code)}`
  return null
}

type Operation = { method: string, path: RegExp, responses: Map<string, string[]>, bearer: boolean }

/** A documented response header: one of the document's components, or the route's own (the JWKS's caching ones). */
type Documented = { headers?: Record<string, { $ref: string } | { required?: boolean }> }

/** The operations of the service's OpenAPI document, each with the answers it documents. */
async function documentedOperations (app: FastifyInstance): Promise<Operation[]> {
  const doc = (await app.inject({ url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, { responses: Record<string, Documented>, security?: Array<Record<string, string[]>> }>>
    components: { headers: Record<string, { required?: boolean }> }
  }
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({
    method: method.toUpperCase(),
    path: new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`),
    responses: new Map(Object.entries(operation.responses).map(([status, response]) => [status, Object.entries(response.headers ?? {})
      .filter(([, header]) => ('$ref' in header ? doc.components.headers[header.$ref.split('/').pop() as string] : header)?.required === true)
      .map(([name]) => name.toLowerCase())])),
    // Only the access token satisfies it: every alternative requirement names it (an empty list would require nothing).
    bearer: operation.security !== undefined && operation.security.length > 0 && operation.security.every((requirement) => 'accessToken' in requirement)
  })))
}

/** The documented operation a request is for, if any. */
function operationOf (operations: Operation[], request: InjectOptions): Operation | undefined {
  const path = String(request.url).split('?')[0] as string
  return operations.find((op) => op.method === request.method && op.path.test(path))
}

/**
 * What of an answer its operation does not document, or null: each route's own statuses and the range of refusals as
 * sent, and the headers documented as always there.
 */
function undocumented (operation: Operation | undefined, res: Awaited<ReturnType<FastifyInstance['inject']>>): string | null {
  if (operation === undefined) return null
  const code = res.statusCode >= 400 && res.statusCode < 500 ? String(res.json().code) : ''
  const required = operation.responses.get(String(res.statusCode)) ?? (code.startsWith('REQUEST_') ? operation.responses.get(REFUSED_AS_SENT) : undefined)
  if (required === undefined) return `a ${res.statusCode} ${code} its OpenAPI operation does not document`
  const missing = required.filter((name) => res.headers[name] === undefined)
  return missing.length === 0 ? null : `a ${res.statusCode} ${code} without ${missing.join(', ')}, which its OpenAPI operation documents`
}

/**
 * Whether a success answered a tampered copy of a token the route relies on, or a refresh two cookies of the refresh
 * name (which is genuine, the service cannot tell). Checked on the request as generated, where the tampered copies are
 * still named: a token is accepted only as it was issued, never respelled.
 */
function acceptedTampered (operation: Operation | undefined, generated: InjectOptions, res: Awaited<ReturnType<FastifyInstance['inject']>>, cookieName: string): string | null {
  if (res.statusCode >= 300) return null
  const headers = generated.headers ?? {}
  if (operation?.bearer === true && String(headers.authorization).includes(tamperedMark('access'))) return 'a tampered access token accepted'
  if (generated.method === 'POST' && generated.url === '/auth/refresh' && String(headers.cookie).includes(tamperedMark('refresh'))) return 'a tampered refresh token accepted'
  if (generated.method === 'POST' && generated.url === '/auth/refresh' && String(headers.cookie).split(`${cookieName}=`).length > 2) return 'a refresh with two cookies of the name accepted'
  return null
}

/** Each store's answers to the same random requests, in order. */
const answered = new Map<StoreKind, number[]>()

async function fuzz (t: Test, store: StoreKind): Promise<void> {
  const app = await buildApp(t, { store, env: { ALLOWED_ORIGINS: APP_ORIGIN } })
  // A user the random requests know nothing of: what they do must leave this account and its session intact.
  const bystander = await registerAndLogin(app)
  let attacker = await registerAndLogin(app)
  const cookieName = app.config.cookie.name
  const account = await app.users.findByEmail(attacker.email)
  if (account === null) throw new Error('the attacker\'s account is not stored')
  const operations = await documentedOperations(app)
  const statuses = new Map<number, number>()
  const sequence: number[] = []
  answered.set(store, sequence)
  let bearerSuccesses = 0
  let passwordChanges = 0
  let renewals = 0

  await fc.assert(fc.asyncProperty(requests(cookieName, sidOf(bystander.accessToken)), async (generated) => {
    const request = filledIn(generated, attacker)
    const res = await app.inject(request)
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    sequence.push(res.statusCode)
    const operation = operationOf(operations, request)
    const wrong = fault(request, res) ?? undocumented(operation, res) ?? acceptedTampered(operation, generated, res, cookieName)
    if (wrong !== null) throw new Error(`${String(request.method)} ${String(request.url)}: ${wrong}`)
    if (res.statusCode < 300 && request.headers.authorization === `Bearer ${attacker.accessToken}` && ['/me', '/auth/sessions'].includes(String(request.url))) bearerSuccesses++
    if (res.statusCode === 204 && request.url === '/auth/password') passwordChanges++

    // As the attacker's browser: the cookie a refresh sets replaces the one it sent, with the access token answered.
    const next = refreshCookieValue(app, res.headers['set-cookie'])
    if (res.statusCode === 200 && request.url === '/auth/refresh' && request.headers.cookie === `${cookieName}=${attacker.refreshToken}` && next !== undefined && next !== '') {
      attacker = { ...attacker, refreshToken: next, cookie: `${cookieName}=${next}`, accessToken: res.json().accessToken }
    }
    // A session the request ended, or whose access tokens it revoked: the attacker starts another (through the store,
    // so that the rate limits and lockouts random sign-ins run into stay the requests' own).
    if ((await app.inject({ url: '/me', headers: { authorization: `Bearer ${attacker.accessToken}` } })).statusCode !== 200) {
      const session = await app.sessions.start(account, { userAgent: 'fuzz', ip: '127.0.0.1' })
      attacker = { ...attacker, accessToken: app.accessTokens.issue(session).accessToken, refreshToken: session.refreshToken, cookie: `${cookieName}=${session.refreshToken}` }
      renewals++
    }
  }), { numRuns: RUNS, seed: SEED })

  t.comment(`${RUNS} random requests: statuses ${[...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(', ')}; ` +
    `the attacker's session renewed ${renewals} times`)
  t.ok([...statuses.keys()].some((s) => s < 300) && statuses.size >= 4, 'the requests reached routes and their successes, not only one kind of refusal')
  t.ok(bearerSuccesses >= RUNS / 100, `the routes behind the access token answered the attacker's genuine one throughout (${bearerSuccesses} successes of /me and /auth/sessions)`)
  t.ok(passwordChanges > 0, `and changed the attacker's password (${passwordChanges} times)`)
  const rotated = await refresh(app, bystander.cookie)
  t.equal(rotated.statusCode, 200, 'the bystander\'s session still refreshes')
  t.equal((await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${rotated.json().accessToken as string}` } })).json().sessions.length, 1,
    'and is still the bystander\'s only session')
  t.equal((await refresh(app, nextRefreshCookie(app, rotated))).statusCode, 200, 'and rotates again')
  const signIn = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: bystander.email, password: PASSWORD } })
  t.equal(signIn.statusCode, 200, 'the bystander still signs in with the password')
  const other = answered.get(store === 'redis' ? 'memory' : 'redis')
  if (other !== undefined) t.same(sequence, other, 'both stores gave the same answer to each request, in order')
}

t.test('random requests on the embedded store: never a 5xx, every error the service\'s own and documented, other accounts untouched', (t) => fuzz(t, 'memory'))
t.test('random requests on Redis: never a 5xx, every error the service\'s own and documented, other accounts untouched', (t) => fuzz(t, 'redis'))
