import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp, buildAppThroughLink, type BuildOptions, capturedLogs, listenOnLoopback, ONE_SLOW_HASH_AT_A_TIME, PASSWORD, refresh, refreshCookieValue, registerAndLogin, SHORT_REQUEST_TIMEOUT, uniquePrefix } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { rawRequest, REFUSED_LOGIN_BODIES, unansweredRequest } from '../helpers/raw-http.js'
import { matchList } from '../helpers/match-list.js'

interface Line { level: number, msg: string, req?: { method: string, url: string, remoteAddress: string }, res?: { statusCode: number }, responseTime?: number }

/** An app whose log lines are collected; `lines()` parses those written so far. */
async function appWithLog (t: Test, env: Record<string, string>, server?: BuildOptions['server']) {
  const logs = capturedLogs<Line>()
  const app = await buildApp(t, { env, logStream: logs.stream, beforeApp: holdOnRequest, server })
  const completed = (url: string) => logs.lines().filter((l) => l.msg === 'request completed' && l.req?.url === url)
  return { app, lines: logs.lines, completed }
}

/** A test's own hook: a request with `x-test-hold` is held 300 ms before its route runs. */
function holdOnRequest (fastify: FastifyInstance): void {
  fastify.addHook('preHandler', async (request) => {
    if (request.headers['x-test-hold'] !== undefined) await sleep(300)
  })
}

const INFO = 30
const DEBUG = 20

t.test('by default the successes of refresh, /me, health and JWKS are logged at debug, everything else at info', async (t) => {
  const { app, lines, completed } = await appWithLog(t, { LOG_LEVEL: 'debug' })
  const session = await registerAndLogin(app)
  t.equal((await refresh(app, session.cookie)).statusCode, 200)
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })).statusCode, 200)
  await app.inject({ url: '/health/live' })
  await app.inject({ url: '/.well-known/jwks.json' })

  for (const url of ['/auth/refresh', '/me', '/health/live', '/.well-known/jwks.json']) {
    t.same(completed(url).map((l) => l.level), [DEBUG], `${url}: its success at debug`)
  }
  for (const url of ['/auth/register', '/auth/login']) {
    t.same(completed(url).map((l) => l.level), [INFO], `${url}: at info`)
  }
  const line = completed('/auth/login')[0]
  t.match(line, { req: { method: 'POST', url: '/auth/login', remoteAddress: '127.0.0.1' }, res: { statusCode: 200 } }, 'method, URL, client and status')
  t.type(line?.responseTime, 'number', 'and the time it took')
  t.notOk(lines().some((l) => l.msg === 'incoming request'), 'one line per request, at completion')
  t.notOk(lines().some((l) => l.msg === 'request abandoned by its client'), 'and no request answered is taken for one abandoned')
})

t.test('every failure of those routes is still logged at info', async (t) => {
  const { app, completed } = await appWithLog(t, { LOG_LEVEL: 'info' })
  const session = await registerAndLogin(app)
  t.equal((await refresh(app, `${app.config.cookie.name}=forged`)).statusCode, 401)
  t.equal((await app.inject({ url: '/me', headers: { authorization: 'Bearer forged' } })).statusCode, 401)
  t.equal((await refresh(app, session.cookie, { origin: 'https://evil.example' })).statusCode, 403)
  t.same(completed('/auth/refresh').map((l) => [l.level, l.res?.statusCode]), [[INFO, 401], [INFO, 403]])
  t.same(completed('/me').map((l) => [l.level, l.res?.statusCode]), [[INFO, 401]])
})

t.test('a refresh token presented again after its rotation is a warning, whatever ACCESS_LOG says', async (t) => {
  const { app, lines } = await appWithLog(t, { LOG_LEVEL: 'info', REFRESH_REUSE_GRACE: '0' })
  const session = await registerAndLogin(app)
  const rotated = await refresh(app, session.cookie)
  t.ok(refreshCookieValue(app, rotated.headers['set-cookie']))
  t.equal((await refresh(app, session.cookie)).json().code, 'AUTH_REFRESH_REUSED')
  t.ok(lines().some((l) => l.level === 40 && /reuse detected/.test(l.msg)), 'logged at warn')
})

t.test('ACCESS_LOG=all logs every request at info', async (t) => {
  const { app, completed } = await appWithLog(t, { LOG_LEVEL: 'info', ACCESS_LOG: 'all' })
  const session = await registerAndLogin(app)
  await refresh(app, session.cookie)
  await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })
  await app.inject({ url: '/health/live' })
  for (const url of ['/auth/refresh', '/me', '/health/live']) {
    t.same(completed(url).map((l) => [l.level, l.res?.statusCode]), [[INFO, 200]], url)
  }
})

/** Sends a request to a listening app and hangs up `afterMs` later, before any answer can come. */
async function hangUp (port: number, path: string, init: { method?: string, headers?: Record<string, string>, body?: string }, afterMs: number): Promise<void> {
  const client = unansweredRequest(port, path, init)
  await sleep(afterMs)
  client.hangUp()
}

const abandoned = (lines: Line[], url: string) => lines.filter((l) => l.msg === 'request abandoned by its client' && l.req?.url === url)

t.test('a login whose client hangs up before its answer is still logged at info, with its client and without its password', async (t) => {
  // One slow hash at a time: the login is still hashing when its client hangs up.
  const { app, lines } = await appWithLog(t, { LOG_LEVEL: 'info', ...ONE_SLOW_HASH_AT_A_TIME })
  const port = await listenOnLoopback(app)
  const body = JSON.stringify({ email: 'someone@example.com', password: PASSWORD })
  await hangUp(port, '/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body }, 30)
  await within(5000, async () => abandoned(lines(), '/auth/login').length > 0, 'a line for the abandoned login')
  const [line] = abandoned(lines(), '/auth/login')
  t.match(line, { level: INFO, req: { method: 'POST', url: '/auth/login', remoteAddress: '127.0.0.1' } }, 'at info, with method, URL and client')
  t.type(line?.responseTime, 'number', 'and how long the client waited')
  t.notMatch(JSON.stringify(lines()), PASSWORD, 'no password in any line')
  t.notMatch(JSON.stringify(lines()), 'someone@example.com', 'nor the email')
  t.same(lines().filter((l) => l.msg === 'request completed' && l.req?.url === '/auth/login'), [], 'and no completion line: nothing was answered')
})

t.test('a request abandoned while a route\'s own hook waits on the store is logged: the line\'s hook runs before the route\'s', async (t) => {
  const logs = capturedLogs<Line>()
  const env = { LOG_LEVEL: 'info', REDIS_COMMAND_TIMEOUT_MS: '2000' }
  const { app, link } = await buildAppThroughLink(t, { prefix: uniquePrefix(), env, logStream: logs.stream })
  const port = await listenOnLoopback(app)
  const session = await registerAndLogin(app)
  // The session list's own hooks ask the store whether the session lives (plugins/live-session.ts): held, it waits.
  link.hold()
  try {
    await hangUp(port, '/auth/sessions', { headers: { authorization: `Bearer ${session.accessToken}` } }, 100)
    await within(1500, async () => abandoned(logs.lines(), '/auth/sessions').length > 0, 'a line for it while the store is still held')
    matchList(t, abandoned(logs.lines(), '/auth/sessions'), [{ level: INFO, req: { method: 'GET', url: '/auth/sessions' } }], 'one line, at info, before the store answers')
  } finally {
    link.release()
  }
})

t.test('an abandoned request of a high-volume route gets a line only where its successes would: ACCESS_LOG=all', async (t) => {
  for (const [accessLog, expected] of [['notable', 0], ['all', 1]] as const) {
    // A route held by the test's own hook, so that its client can hang up before the answer.
    const { app, lines } = await appWithLog(t, { LOG_LEVEL: 'debug', ACCESS_LOG: accessLog })
    const port = await listenOnLoopback(app)
    const session = await registerAndLogin(app)
    await hangUp(port, '/me', { headers: { authorization: `Bearer ${session.accessToken}`, 'x-test-hold': '1' } }, 50)
    await sleep(400)
    t.equal(abandoned(lines(), '/me').length, expected, `ACCESS_LOG=${accessLog}: ${expected} line`)
  }
})

t.test('a login whose body the server refuses once it is routed is logged with the status written, not as abandoned', async (t) => {
  const { app, lines, completed } = await appWithLog(t, { LOG_LEVEL: 'info' }, SHORT_REQUEST_TIMEOUT)
  const port = await listenOnLoopback(app)
  t.equal((await rawRequest(port, REFUSED_LOGIN_BODIES.tooSlow)).statusCode, 408, 'a body too slow: 408')
  t.equal((await rawRequest(port, REFUSED_LOGIN_BODIES.notInChunks)).statusCode, 400, 'a body not in chunks: 400')
  await within(5000, async () => completed('/auth/login').length === 2, 'a line for each')

  matchList(t, completed('/auth/login'), [
    { level: INFO, req: { method: 'POST', url: '/auth/login', remoteAddress: '127.0.0.1' }, res: { statusCode: 408 } },
    { level: INFO, res: { statusCode: 400 } }
  ], 'each at info with the status the server wrote')
  t.ok((completed('/auth/login')[0]?.responseTime ?? 0) >= 250, 'the timed-out one with the time it was given')
  t.same(abandoned(lines(), '/auth/login'), [], 'neither taken for a request its client abandoned')
})

t.test('what Node answers before any route (an unmet Expect, a CONNECT) is logged at info like any other failure', async (t) => {
  const { app, lines } = await appWithLog(t, { LOG_LEVEL: 'info' })
  const port = await listenOnLoopback(app)
  t.equal((await rawRequest(port, 'GET /me HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n')).statusCode, 417)
  t.equal((await rawRequest(port, 'CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n')).statusCode, 404)
  await within(5000, async () => lines().filter((l) => l.msg === 'request completed').length === 2, 'a line for each')

  matchList(t, lines().filter((l) => l.msg === 'request completed'), [
    { level: INFO, req: { method: 'GET', url: '/me', remoteAddress: '127.0.0.1' }, res: { statusCode: 417 } },
    { level: INFO, req: { method: 'CONNECT', url: '127.0.0.1:6379', remoteAddress: '127.0.0.1' }, res: { statusCode: 404 } }
  ], 'with method, URL, client and status')
})
