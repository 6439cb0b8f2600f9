import t, { type Test } from 'tap'
import { buildApp, type BuildOptions, capturedLogs, nextRefreshCookie, PASSWORD, refresh, registerAndLogin, sidOf, subOf, uniqueEmail } from '../helpers/app.js'
import { PrivateRedis } from '../helpers/redis-server.js'
import { matchList } from '../helpers/match-list.js'

interface Line { level: number, msg: string, reqId?: string, userId?: string, sessionId?: string, req?: { method: string, url: string }, res?: { statusCode: number } }

const INFO = 30
const WARN = 40

/** An app logging at debug into a buffer; `completed(method, url)`: the access-log lines of those requests. */
async function appWithLog (t: Test, options: BuildOptions = {}) {
  const logs = capturedLogs<Line>()
  const app = await buildApp(t, { ...options, env: { LOG_LEVEL: 'debug', ...options.env }, logStream: logs.stream })
  const completed = (method: string, url: string) => logs.lines().filter((l) => l.msg === 'request completed' && l.req?.method === method && l.req.url === url)
  return { app, logs, completed }
}

/** What a line names: the fields this module adds, and the status. */
const named = (line: Line | undefined) => ({ status: line?.res?.statusCode, userId: line?.userId, sessionId: line?.sessionId })

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })

t.test('the access-log line of each request that acts on an account names the account, and the session it acted in', async (t) => {
  const { app, logs, completed } = await appWithLog(t)
  const email = uniqueEmail()
  const session = await registerAndLogin(app, email)
  const [userId, sessionId] = [subOf(session.accessToken), sidOf(session.accessToken)]
  t.same(named(completed('POST', '/auth/register')[0]), { status: 201, userId, sessionId: undefined }, 'register: the account made')
  t.same(named(completed('POST', '/auth/login')[0]), { status: 200, userId, sessionId }, 'login: the account signed in to, and the session begun')

  const other = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  const otherSid = sidOf(other.json().accessToken)
  t.equal((await app.inject({ url: '/auth/sessions', headers: bearer(session.accessToken) })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${otherSid}`, headers: bearer(session.accessToken) })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(session.accessToken), payload: { currentPassword: PASSWORD, newPassword: 'another long passphrase here' } })).statusCode, 204)
  t.same(named(completed('GET', '/auth/sessions')[0]), { status: 200, userId, sessionId }, 'the sessions listed: whose, and from which session')
  t.same(named(completed('DELETE', `/auth/sessions/${otherSid}`)[0]), { status: 204, userId, sessionId }, 'a session ended: by whom (the URL names the one ended)')
  t.same(named(completed('POST', '/auth/password')[0]), { status: 204, userId, sessionId }, 'a password changed')

  const rotated = await refresh(app, session.cookie)
  const cookie = nextRefreshCookie(app, rotated)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie } })).statusCode, 204)
  t.same(named(completed('POST', '/auth/logout')[0]), { status: 204, userId, sessionId }, 'logout: the session of the cookie, ended')

  const third = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'another long passphrase here' } })
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(third.json().accessToken) })).statusCode, 204)
  t.same(named(completed('POST', '/auth/logout-all')[0]), { status: 204, userId, sessionId: sidOf(third.json().accessToken) }, 'everyone signed out: by whom')

  const text = logs.text()
  for (const [what, value] of [['email', email], ['password', PASSWORD], ['refresh token', session.refreshToken], ['access token', session.accessToken]]) {
    t.notOk(text.includes(value as string), `no ${what} in any line`)
  }
})

t.test('a refused login names the account tried when there is one, and nothing for an unknown email', async (t) => {
  const { app, completed } = await appWithLog(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '2/60' } })
  const email = uniqueEmail()
  const session = await registerAndLogin(app, email)
  const userId = subOf(session.accessToken)
  const tryLogin = (as: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email: as, password: 'a wrong password, long enough' } })
  t.equal((await tryLogin(email)).statusCode, 401)
  t.equal((await tryLogin(email)).statusCode, 401)
  t.equal((await tryLogin(email)).statusCode, 429, 'the third guess from this address is refused unheard')
  t.equal((await tryLogin(uniqueEmail())).statusCode, 401)
  t.same(completed('POST', '/auth/login').slice(1).map(named), [
    { status: 401, userId, sessionId: undefined },
    { status: 401, userId, sessionId: undefined },
    { status: 429, userId, sessionId: undefined },
    { status: 401, userId: undefined, sessionId: undefined }
  ], 'guesses at an account show as attempts at it; no session begun')
})

t.test('a registration of a taken email names the account asked about', async (t) => {
  const { app, completed } = await appWithLog(t)
  const email = uniqueEmail()
  const session = await registerAndLogin(app, email)
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email: email.toUpperCase(), password: PASSWORD } })).statusCode, 409)
  t.same(named(completed('POST', '/auth/register')[1]), { status: 409, userId: subOf(session.accessToken), sessionId: undefined })
})

t.test('a refresh token replayed: the warning and the access line name the account and the session ended', async (t) => {
  const { app, logs, completed } = await appWithLog(t, { env: { REFRESH_REUSE_GRACE: '0' } })
  const session = await registerAndLogin(app)
  const expected = { userId: subOf(session.accessToken), sessionId: sidOf(session.accessToken) }
  t.equal((await refresh(app, session.cookie)).statusCode, 200)
  t.equal((await refresh(app, session.cookie)).json().code, 'AUTH_REFRESH_REUSED')
  const warning = logs.lines().find((l) => l.level === WARN && /reuse detected/.test(l.msg))
  t.match(warning, expected, 'the warning')
  t.same(completed('POST', '/auth/refresh').map(named), [{ status: 200, userId: undefined, sessionId: undefined }, { status: 401, ...expected }],
    'the replay\'s line; a routine refresh names no one (its line is at debug, and it is the route load testers hammer)')
  t.equal(completed('POST', '/auth/refresh')[1]?.reqId, warning?.reqId, 'the same request')
})

t.test('a genuine access token of an ended session names its account and session where it is refused, /me included', async (t) => {
  const { app, completed } = await appWithLog(t)
  const session = await registerAndLogin(app)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: session.cookie } })).statusCode, 204)
  t.equal((await app.inject({ url: '/auth/sessions', headers: bearer(session.accessToken) })).statusCode, 401)
  t.same(named(completed('GET', '/auth/sessions')[0]), { status: 401, userId: subOf(session.accessToken), sessionId: sidOf(session.accessToken) })
  t.equal((await app.inject({ url: '/me', headers: bearer(session.accessToken) })).statusCode, 401)
  t.same(named(completed('GET', '/me')[0]), { status: 401, userId: subOf(session.accessToken), sessionId: sidOf(session.accessToken) }, '/me too: a copy kept past a logout')
  t.equal((await app.inject({ url: '/me', headers: bearer(`${session.accessToken.slice(0, -4)}AAAA`) })).statusCode, 401)
  t.same(named(completed('GET', '/me')[1]), { status: 401, userId: undefined, sessionId: undefined }, 'a forged one names no one: its claims are no one\'s word')
  const fresh = await registerAndLogin(app)
  t.equal((await app.inject({ url: '/me', headers: bearer(fresh.accessToken) })).statusCode, 200)
  t.same(named(completed('GET', '/me')[2]), { status: 200, userId: undefined, sessionId: undefined }, 'nor does a success of /me: it is answered all the time, for every client')
})

t.test('a logout the store cannot take (503) names the session all the same: the token vouches for it', async (t) => {
  const redis = await PrivateRedis.start(t)
  const { app, completed } = await appWithLog(t, { env: { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '200' } })
  const session = await registerAndLogin(app)
  await redis.kill()
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: session.cookie } })).statusCode, 503)
  t.same(named(completed('POST', '/auth/logout')[0]), { status: 503, userId: subOf(session.accessToken), sessionId: sidOf(session.accessToken) })
})

t.test('a logout with copies of the cookie planted beside the browser\'s own warns, naming each session, and binds none to the line', async (t) => {
  const { app, logs, completed } = await appWithLog(t)
  const mine = await registerAndLogin(app)
  const planted = await registerAndLogin(app)
  const name = app.config.cookie.name
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `${name}=${planted.refreshToken}; ${name}=${mine.refreshToken}` } })).statusCode, 204)
  const warnings = logs.lines().filter((l) => l.level === WARN && /planted/.test(l.msg))
  t.equal(warnings.length, 1, 'one warning')
  matchList(t, warnings, [{
    msg: 'logout of several refresh cookies: copies were planted beside the browser\'s own',
    sessions: [{ userId: subOf(planted.accessToken), sessionId: sidOf(planted.accessToken) }, { userId: subOf(mine.accessToken), sessionId: sidOf(mine.accessToken) }]
  }])
  t.same(named(completed('POST', '/auth/logout')[0]), { status: 204, userId: undefined, sessionId: undefined }, 'which is the user\'s is not known')
  t.equal(completed('POST', '/auth/logout')[0]?.level, INFO)
})
