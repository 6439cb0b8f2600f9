import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildApp, buildAppThroughLink, listenOnLoopback, ONE_SLOW_HASH_AT_A_TIME, PASSWORD, refresh, registerAndLogin, setCookies, SHORT_REQUEST_TIMEOUT, uniqueEmail, uniquePrefix } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { startServiceOverHttp } from '../helpers/server-process.js'
import { rawRequest, REFUSED_LOGIN_BODIES, unansweredRequest } from '../helpers/raw-http.js'

/** The value of one sample of the exposition, or undefined when it is absent. */
function sample (body: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of body.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    const inside = line.slice(name.length + 1, line.indexOf('}'))
    const parts = inside.split(',')
    if (wanted.every((w) => parts.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

/** Every label set of the exposition, one per line: a value such as a byte count can hold any digits, a label must not. */
function labelSets (body: string): string {
  return body.split('\n').filter((line) => !line.startsWith('#') && line.includes('{'))
    .map((line) => line.slice(line.indexOf('{'), line.lastIndexOf('}') + 1)).join('\n')
}

t.test('GET /metrics answers the Prometheus text format', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /^# HELP http_requests_total /m)
  t.match(res.body, /^process_cpu_user_seconds_total \d/m, 'process metrics too')
  t.match(res.body, /^nodejs_eventloop_lag_p99_seconds /m, 'including the event loop delay')
  t.match(res.body, /^# TYPE auth_password_hashes gauge\n(auth_password_hashes\{state="(running|waiting)"\} 0\n){2}/m, 'and the password hasher\'s load')
})

t.test('requests are counted by route pattern and status, with their latency', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const s = await registerAndLogin(app)
  for (let i = 0; i < 3; i++) await app.inject({ url: '/me', headers: { authorization: `Bearer ${s.accessToken}` } })
  await app.inject({ url: '/me' })
  await app.inject({ method: 'DELETE', url: '/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA', headers: { authorization: `Bearer ${s.accessToken}` } })
  const body = (await app.inject({ url: '/metrics' })).body

  t.equal(sample(body, 'http_requests_total', { method: 'GET', route: '/me', status_code: '200' }), 3)
  t.equal(sample(body, 'http_requests_total', { method: 'GET', route: '/me', status_code: '401' }), 1)
  t.equal(sample(body, 'http_requests_total', { route: '/auth/sessions/:id', status_code: '404' }), 1, 'the pattern, never the raw URL')
  t.notMatch(labelSets(body), /AAAAAAAAAAAAAAAAAAAAAA/, 'no path parameter becomes a label')
  t.equal(sample(body, 'http_request_duration_seconds_count', { method: 'GET', route: '/me' }), 4)
  await app.inject({ url: '/wp-admin/setup.php' })
  await app.inject({ url: '/.env' })
  const after = (await app.inject({ url: '/metrics' })).body
  t.equal(sample(after, 'http_requests_total', { route: '(unmatched)', status_code: '404' }), 2, 'unknown paths under one label')
  t.notMatch(labelSets(after), /wp-admin|\.env/, 'a scanner\'s guesses never become labels')
  t.equal(sample(body, 'http_request_duration_seconds_bucket', { method: 'GET', route: '/me', le: '+Inf' }), 4)
})

t.test('requests no route answers are counted under (unmatched) with their status, whatever refused them', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const port = await listenOnLoopback(app)
  t.equal((await app.inject({ url: '/%E0%A4%A' })).statusCode, 400, 'a URL the router cannot decode: 400')
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${'A'.repeat(200)}` })).statusCode, 414, 'a path segment over its limit: 414')
  // Answered by Node's server before Fastify sees them (src/client-errors.ts).
  t.equal((await rawRequest(port, 'GET /me HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n')).statusCode, 417, 'an unmet Expect: 417')
  t.equal((await rawRequest(port, 'CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n')).statusCode, 404, 'a tunnel asked for: 404')
  t.equal((await app.inject({ url: '/auth/login?secret=AAAAAAAAAA' })).statusCode, 405, 'a path served with another method: 405')
  const body = (await app.inject({ url: '/metrics' })).body

  for (const status of ['400', '414', '417', '404', '405']) {
    t.equal(sample(body, 'http_requests_total', { method: '*', route: '(unmatched)', status_code: status }), 1, `${status} under (unmatched)`)
  }
  t.equal(sample(body, 'http_request_duration_seconds_count', { route: '(unmatched)' }), 5, 'each with its latency')
  t.match(labelSets(body), /route="\(unmatched\)"/, 'the label sets are read')
  t.notMatch(labelSets(body), /%E0|AAAAAAAA|6379/, 'none of what they asked for becomes a label')
})

t.test('a request whose client hangs up before its answer is counted once, as 499, with the time its client waited', async (t) => {
  const app = await buildApp(t, { store: 'memory', env: ONE_SLOW_HASH_AT_A_TIME })
  const port = await listenOnLoopback(app)
  const signIn = { email: uniqueEmail(), password: PASSWORD }
  const impatient = unansweredRequest(port, '/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(signIn) })
  await within(5000, async () => app.passwordHasher.running === 1, 'its password is being verified')
  await sleep(150)
  impatient.hangUp()
  // Queued behind that hash: answered once the abandoned login has run on to its end (a 401 written to no one).
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: signIn })).statusCode, 401)
  const body = (await app.inject({ url: '/metrics' })).body

  t.equal(sample(body, 'auth_login_total', { outcome: 'invalid_credentials' }), 2, 'both logins ran to their end')
  t.equal(sample(body, 'http_requests_total', { route: '/auth/login', status_code: '499' }), 1, 'the abandoned one is counted as 499')
  t.equal(sample(body, 'http_requests_total', { route: '/auth/login', status_code: '401' }), 1, 'and not again as the answer no one received')
  t.equal(sample(body, 'http_request_duration_seconds_count', { route: '/auth/login' }), 2, 'each has its latency')
  t.equal(sample(body, 'http_request_duration_seconds_bucket', { route: '/auth/login', le: '0.1' }), 0, 'the abandoned one\'s the time its client waited (over 150 ms), not none')
})

t.test('a request abandoned while a route\'s own hook waits on the store is counted as 499: the count\'s hook runs before the route\'s', async (t) => {
  const { app, link } = await buildAppThroughLink(t, { prefix: uniquePrefix(), env: { REDIS_COMMAND_TIMEOUT_MS: '2000' } })
  const port = await listenOnLoopback(app)
  const session = await registerAndLogin(app)
  // The session list's own hooks ask the store whether the session lives (plugins/live-session.ts): held, it waits.
  link.hold()
  try {
    const impatient = unansweredRequest(port, '/auth/sessions', { headers: { authorization: `Bearer ${session.accessToken}` } })
    await sleep(100)
    impatient.hangUp()
    const abandoned = async () => sample((await app.inject({ url: '/metrics' })).body, 'http_requests_total', { route: '/auth/sessions', status_code: '499' })
    await within(1500, async () => await abandoned() !== undefined, 'counted while the store is still held')
    t.equal(await abandoned(), 1, 'once, as 499, before the store answers')
  } finally {
    link.release()
  }
})

t.test('a request the server cuts off once routed is counted with the status the server wrote, not as abandoned', async (t) => {
  const app = await buildApp(t, { store: 'memory', server: SHORT_REQUEST_TIMEOUT })
  const port = await listenOnLoopback(app)
  t.equal((await rawRequest(port, REFUSED_LOGIN_BODIES.tooSlow)).statusCode, 408, 'a body too slow: 408')
  t.equal((await rawRequest(port, REFUSED_LOGIN_BODIES.notInChunks)).statusCode, 400, 'a body not in chunks: 400')
  const body = (await app.inject({ url: '/metrics' })).body

  t.equal(sample(body, 'http_requests_total', { route: '/auth/login', status_code: '408' }), 1, 'the timed-out one as 408')
  t.equal(sample(body, 'http_requests_total', { route: '/auth/login', status_code: '400' }), 1, 'the malformed one as 400')
  t.equal(sample(body, 'http_requests_total', { route: '/auth/login', status_code: '499' }), undefined, 'neither as abandoned by its client')
  t.equal(sample(body, 'http_request_duration_seconds_bucket', { route: '/auth/login', le: '0.1' }), 1, 'each with its time: the timed-out one over the 300 ms it was given')
})

t.test('refresh and login outcomes are counted, reuse among them', async (t) => {
  const app = await buildApp(t, { env: { REFRESH_REUSE_GRACE: '0' } })
  const s = await registerAndLogin(app)
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: s.email, password: 'not the password at all' } })
  t.equal((await refresh(app, s.cookie)).statusCode, 200)
  t.equal((await refresh(app, s.cookie)).json().code, 'AUTH_REFRESH_REUSED')
  await refresh(app, `${app.config.cookie.name}=forged`)
  await app.inject({ method: 'POST', url: '/auth/refresh' })
  const body = (await app.inject({ url: '/metrics' })).body

  t.equal(sample(body, 'auth_refresh_total', { outcome: 'rotated' }), 1)
  t.equal(sample(body, 'auth_refresh_total', { outcome: 'reused' }), 1)
  t.equal(sample(body, 'auth_refresh_total', { outcome: 'invalid' }), 2, 'a forged token and a missing cookie')
  t.equal(sample(body, 'auth_login_total', { outcome: 'success' }), 1)
  t.equal(sample(body, 'auth_login_total', { outcome: 'invalid_credentials' }), 1)
})

t.test('the logins from browsers their accounts have signed in from before are counted again by themselves', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const signIn = (password: string, headers = {}) => app.inject({ method: 'POST', url: '/auth/login', headers, payload: { email, password } })
  const first = await signIn(PASSWORD)
  const device = setCookies(first).find((c) => c.startsWith(`${app.config.cookie.name}_device=`))
  t.ok(device, 'the first sign-in left a device cookie')
  const withDevice = { cookie: device?.split(';')[0] }
  t.equal((await signIn(PASSWORD, withDevice)).statusCode, 200)
  t.equal((await signIn('not the password at all', withDevice)).statusCode, 401)
  t.equal((await signIn('not the password at all')).statusCode, 401)
  const body = (await app.inject({ url: '/metrics' })).body

  t.equal(sample(body, 'auth_login_total', { outcome: 'success' }), 2, 'every login counts where it did')
  t.equal(sample(body, 'auth_login_total', { outcome: 'invalid_credentials' }), 2)
  t.equal(sample(body, 'auth_login_known_browser_total', { outcome: 'success' }), 1, 'the sign-in with the cookie, not the first')
  t.equal(sample(body, 'auth_login_known_browser_total', { outcome: 'invalid_credentials' }), 1, 'the wrong password with the cookie, not without')
})

t.test('two apps in one process keep their own counts', async (t) => {
  const a = await buildApp(t, { store: 'memory' })
  const b = await buildApp(t, { store: 'memory' })
  await a.inject({ url: '/health/live' })
  t.equal(sample((await a.inject({ url: '/metrics' })).body, 'http_requests_total', { route: '/health/live' }), 1)
  t.equal(sample((await b.inject({ url: '/metrics' })).body, 'http_requests_total', { route: '/health/live' }), undefined)
})

t.test('the process\'s metrics count from its start: its first scrape reads the event loop as it ran, and the garbage collections before it', async (t) => {
  const { port } = await startServiceOverHttp(t, {})
  // Longer than the event-loop monitor's 10 ms resolution, and time for a collection or two.
  await sleep(200)
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1])
  t.ok(value('nodejs_eventloop_lag_min_seconds') < 1, `the least delay seen, not the monitor's empty 9.2e9 s (${value('nodejs_eventloop_lag_min_seconds')})`)
  t.ok(Number.isFinite(value('nodejs_eventloop_lag_mean_seconds')), `a mean delay, not NaN (${value('nodejs_eventloop_lag_mean_seconds')})`)
  t.ok(value('process_cpu_seconds_total') > 0.05, `the CPU spent building the app and serving since (${value('process_cpu_seconds_total')} s)`)
})
