import { Agent, request } from 'node:http'
import { connect } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { PASSWORD, SHARED_REDIS_URL, UNLIMITED_REFRESHES, deleteKeys, testEnv, uniqueEmail, uniquePrefix, type StoreKind } from './app.js'
import { REFRESH_COOKIE } from './browser.js'
import { REFUSED_LOGIN_BODIES } from './raw-http.js'
import { freePort } from './redis-server.js'
import { startProcess, type ServerProcess } from './server-process.js'
import { within } from './poll.js'
import { programObjects, readHeapSnapshot } from './heap-snapshot.js'

/**
 * A service under hours of traffic must not keep a little of every request. `underSustainedTraffic` drives src/server.ts, as
 * a process, through rounds of the traffic it sees in production (sign-ins right and wrong, refresh chains, replays,
 * forged cookies, bearer calls with good and tampered tokens, logouts, malformed bodies, unknown paths, scrapes,
 * clients that hang up mid-request) and counts the objects alive in its heap after the warm-up and at the end.
 *
 * Every bounded table of the service is made small or short-lived here: the verified-token cache holds 100 tokens,
 * an access token lives 2 s (so a revocation is kept 7 s), a replaced token has no grace window, a user keeps 4
 * sessions. After the warm-up rounds fill them, anything still growing is held by no bound: a leak.
 */
const WARM_UP_ROUNDS = 2
const MEASURED_ROUNDS = 4
const CYCLES_PER_ROUND = 120
const CONCURRENT = 8
const ACCOUNTS = 16
/**
 * Revocations are kept for an access token's lifetime and 5 s more, and dropped by a sweep every second: each probe
 * waits that long after the traffic, so both find none. (The memory store's record of recently ended sessions is
 * pruned at its next write, or by a sweep every minute: each probe still finds the last 7 s of it.)
 */
const DRAIN_MS = (2 + 5 + 1.5) * 1000
/**
 * Objects the measured rounds may leave alive per request: the last seconds of ended sessions and the idle
 * connections differ from one probe to the next. A leak of one object per request, the least a leak can be, is twice
 * it; a leaked request, reply or closure is dozens.
 */
const MAX_OBJECTS_PER_REQUEST = 0.5

interface Answer { status: number, cookie: string | undefined, body: string }

function client (port: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENT })
  let requests = 0
  const call = (method: string, path: string, options: { headers?: Record<string, string>, body?: string } = {}) =>
    new Promise<Answer>((resolve, reject) => {
      requests += 1
      const headers = { ...options.headers, ...(options.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(options.body)) }) }
      const req = request({ host: '127.0.0.1', port, path, method, agent, headers }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { body += chunk })
        res.on('end', () => {
          const cookie = res.headers['set-cookie']?.find((c) => c.startsWith(`${REFRESH_COOKIE}=`))?.split(';')[0]
          resolve({ status: res.statusCode ?? 0, cookie, body })
        })
      })
      req.on('error', reject)
      req.end(options.body)
    })
  /** A login that stops halfway through its body and hangs up. */
  const abandon = async () => {
    requests += 1
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(REFUSED_LOGIN_BODIES.tooSlow)
    await new Promise((resolve) => setTimeout(resolve, 5))
    socket.destroy()
  }
  return { call, abandon, requests: () => requests, close: () => agent.destroy() }
}

const JSON_TYPE = { 'content-type': 'application/json' }
const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' }
/**
 * In headers the service reads and keeps a part of: the refresh cookie (the family id), the user agent (its first 128
 * characters), the address a trusted proxy forwards (its last entry). Each marked past the part kept, so a kept part
 * that is a view into the header (the whole header alive with it) shows as the marker left in the heap.
 */
const MARKER = 'sent-by-the-endurance-test'
const MARKED = {
  cookie: (cookie: string) => `${cookie}; site_preferences=${MARKER}-${'c'.repeat(1000)}`,
  'user-agent': `Mozilla/5.0 (X11; Linux x86_64) ${'Plugin/1.0 '.repeat(20)}${MARKER}`,
  'x-forwarded-for': `${MARKER}, ${'192.0.2.1, '.repeat(100)}203.0.113.195`
}

/** One user's visit, every answer checked: a leak hunt on wrong answers would measure the wrong paths. */
async function visit (t: Test, http: ReturnType<typeof client>, email: string, n: number) {
  const credentials = JSON.stringify({ email, password: PASSWORD })
  const { 'user-agent': userAgent, 'x-forwarded-for': forwardedFor } = MARKED
  const login = await http.call('POST', '/auth/login', { headers: { ...JSON_TYPE, 'user-agent': userAgent, 'x-forwarded-for': forwardedFor }, body: credentials })
  if (login.status !== 200) {
    t.fail(`a sign-in answered ${login.status}: ${login.body}`)
    return
  }
  // The bearer calls below take the latest refresh's access token: tokens live 2 s here, and on a loaded machine the
  // sign-in's could expire during the refreshes.
  let { accessToken } = JSON.parse(login.body) as { accessToken: string }
  const first = login.cookie ?? ''
  let cookie = first
  for (let i = 0; i < 4; i++) {
    const refreshed = await http.call('POST', '/auth/refresh', { headers: { ...SAME_ORIGIN, cookie } })
    if (refreshed.status !== 200 || refreshed.cookie === undefined) t.fail(`refresh answered ${refreshed.status}: ${refreshed.body}`)
    else ({ accessToken } = JSON.parse(refreshed.body) as { accessToken: string })
    cookie = refreshed.cookie ?? cookie
  }
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } })
  const expected: Array<[Promise<Answer>, number]> = [
    [http.call('GET', '/me', bearer(accessToken)), 200],
    [http.call('GET', '/auth/sessions', bearer(accessToken)), 200],
    [http.call('GET', '/me', bearer(accessToken.slice(0, -4) + 'AAAA')), 401],
    [http.call('GET', '/me', bearer(`e30.e30.${n}`)), 401],
    [http.call('GET', '/me'), 401],
    [http.call('POST', '/auth/login', { headers: JSON_TYPE, body: JSON.stringify({ email, password: `${PASSWORD} ${n}` }) }), 401],
    [http.call('POST', '/auth/login', { headers: JSON_TYPE, body: '{"email":' }), 400],
    [http.call('POST', '/auth/login', { headers: { 'content-type': 'text/plain' }, body: credentials }), 415],
    [http.call('POST', '/auth/refresh', { headers: { ...SAME_ORIGIN, cookie: `${REFRESH_COOKIE}=forged${n}` } }), 401],
    [http.call('GET', `/no/such/path/${n}`), 404],
    [http.call('GET', '/metrics'), 200]
  ]
  for (const [answer, status] of expected) {
    const { status: got, body } = await answer
    if (got !== status) t.fail(`expected ${status}, got ${got}: ${body}`)
  }
  // The first token of the chain, replayed: the whole family is revoked.
  const replay = await http.call('POST', '/auth/refresh', { headers: { ...SAME_ORIGIN, cookie: MARKED.cookie(first) } })
  if (replay.status !== 401) t.fail(`a replay answered ${replay.status}`)
  const again = await http.call('POST', '/auth/login', { headers: JSON_TYPE, body: credentials })
  const logout = await http.call('POST', '/auth/logout', { headers: { ...SAME_ORIGIN, cookie: MARKED.cookie(again.cookie ?? '') } })
  if (again.status !== 200 || logout.status !== 204) t.fail(`sign-in and logout answered ${again.status}, ${logout.status}`)
  // A session left signed in, as most are: the per-user cap ends the oldest.
  const kept = await http.call('POST', '/auth/login', { headers: { ...JSON_TYPE, 'user-agent': userAgent, 'x-forwarded-for': forwardedFor }, body: credentials })
  if (kept.status !== 200) t.fail(`a sign-in answered ${kept.status}`)
  await http.abandon()
}

interface Probe {
  heapUsed: number
  sockets: number
  objects: number
  /** Distinct strings in the heap holding MARKER: what is left of the headers the test sent. */
  marked: string[]
}

/**
 * What the heap probe saw: live heap, open sockets, and the number of objects the program made that are still
 * alive. Counting objects, not bytes, keeps what V8 does for itself out of the measure (`programObjects`), while a
 * leak adds objects with every request it leaks from.
 */
async function probe (server: ServerProcess, options: { drain: boolean }): Promise<Probe> {
  if (options.drain) await sleep(DRAIN_MS)
  const before = server.output().split('heap-probe ').length
  server.child.kill('SIGWINCH')
  await within(30_000, async () => server.output().split('heap-probe ').length > before, 'the heap probe answers')
  const line = JSON.parse(server.output().split('heap-probe ').at(-1)!.split('\n')[0]!) as { heapUsed: number, sockets: number, snapshot: string }
  const snapshot = await readHeapSnapshot(line.snapshot)
  return { heapUsed: line.heapUsed, sockets: line.sockets, objects: programObjects(snapshot), marked: snapshot.strings.filter((text) => text.includes(MARKER)) }
}

/**
 * The endurance test of one store (test/endurance): traffic in rounds, the service's live objects counted after the
 * warm-up and at the end, and its sockets once the clients have gone.
 */
export async function underSustainedTraffic (t: Test, store: StoreKind): Promise<void> {
  const port = await freePort()
  const prefix = uniquePrefix()
  const server = startProcess(process.execPath, ['--expose-gc', '--import', 'tsx', '--import', './test/helpers/heap-probe.ts', 'src/server.ts'], testEnv({
    PORT: String(port),
    LOG_LEVEL: 'warn',
    // A store call's deadline well past the default 500 ms: on a loaded machine the service, Redis and this client
    // share two cores, and a late answer (503) is a question for the fault tests, not a leak.
    ...(store === 'redis' ? { REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix, REDIS_COMMAND_TIMEOUT_MS: '5000' } : {}),
    ACCESS_TOKEN_CACHE_SIZE: '100',
    ACCESS_TOKEN_TTL: '2',
    JWT_CLOCK_TOLERANCE: '0',
    REFRESH_REUSE_GRACE: '0',
    ...UNLIMITED_REFRESHES,
    TRUST_PROXY: '127.0.0.1',
    MAX_SESSIONS_PER_USER: '4'
  }))
  t.teardown(async () => {
    server.child.kill('SIGKILL')
    if (store === 'redis') await deleteKeys(SHARED_REDIS_URL, prefix)
  })
  const http = client(port)
  await within(20_000, async () => (await http.call('GET', '/health/live')).status === 200, 'the service answers')
  t.teardown(() => http.close())
  const emails = Array.from({ length: ACCOUNTS }, () => uniqueEmail())
  for (const email of emails) {
    const registered = await http.call('POST', '/auth/register', { headers: JSON_TYPE, body: JSON.stringify({ email, password: PASSWORD }) })
    t.equal(registered.status, 201, 'account registered')
  }
  // Sockets held with no client connected: the store's connections, if any. (Loopback closes land within a few ms.)
  http.close()
  await sleep(300)
  const idle = await probe(server, { drain: false })

  let start: (Probe & { requests: number }) | undefined
  for (let round = 0; round < WARM_UP_ROUNDS + MEASURED_ROUNDS; round++) {
    for (let cycle = 0; cycle < CYCLES_PER_ROUND; cycle += CONCURRENT) {
      // At most one visit per account at a time: visits of one account would race each other's replays.
      await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => visit(t, http, emails[(cycle + i) % ACCOUNTS]!, round * CYCLES_PER_ROUND + cycle + i)))
    }
    if (round === WARM_UP_ROUNDS - 1) start = { ...await probe(server, { drain: true }), requests: http.requests() }
  }
  const end = await probe(server, { drain: true })
  const requests = http.requests() - start!.requests
  const added = end.objects - start!.objects
  t.ok(added / requests < MAX_OBJECTS_PER_REQUEST,
    `over ${requests} requests after the warm-up the service's live objects went from ${start!.objects} to ${end.objects} ` +
    `(${(added / requests).toFixed(4)} per request, under ${MAX_OBJECTS_PER_REQUEST}); its heap from ` +
    `${(start!.heapUsed / 1024).toFixed(0)} to ${(end.heapUsed / 1024).toFixed(0)} KiB`)
  const left: Record<string, number> = {}
  for (const text of end.marked) {
    const header = text.includes('site_preferences=') ? 'cookie' : text.startsWith('Mozilla/') ? 'user-agent' : text.includes('192.0.2.1') ? 'x-forwarded-for' : 'other'
    left[header] = (left[header] ?? 0) + 1
  }
  t.same(left, {}, 'no header a client sent is left in memory: the parts of it the service keeps are copies, not views into it')

  http.close()
  // As before the idle probe: the closes land within a few ms, then each probe (a heap snapshot, read whole) takes
  // seconds on a loaded machine, so the window allows several. A socket the service let go of only by its own
  // timeouts would still be held at its end: the request timeout is 30 s, the keep-alive timeout 72 s.
  await sleep(300)
  let sockets = Number.POSITIVE_INFINITY
  await within(20_000, async () => (sockets = (await probe(server, { drain: false })).sockets) <= idle.sockets).catch(() => {})
  t.ok(sockets <= idle.sockets, `once its clients are gone the server holds ${sockets} sockets, no more than before the traffic with no client connected (${idle.sockets}: its store's connections)`)
  t.equal(server.child.exitCode, null, 'the service is still running')
  t.notMatch(server.output(), /"level":(50|60)/, 'nothing logged as an error')
}
