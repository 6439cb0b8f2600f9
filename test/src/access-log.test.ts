import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { buildApp, refresh, refreshCookieValue, registerAndLogin } from '../helpers/app.js'

interface Line { level: number, msg: string, req?: { method: string, url: string, remoteAddress: string }, res?: { statusCode: number }, responseTime?: number }

/** An app whose log lines are collected, parsed. */
async function appWithLog (t: Test, env: Record<string, string>) {
  const lines: Line[] = []
  const stream = new Writable({
    write (chunk, _enc, done) {
      for (const text of String(chunk).split('\n')) if (text !== '') lines.push(JSON.parse(text) as Line)
      done()
    }
  })
  const app = await buildApp(t, { env, logStream: stream })
  const completed = (url: string) => lines.filter((l) => l.msg === 'request completed' && l.req?.url === url)
  return { app, lines, completed }
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
  t.notOk(lines.some((l) => l.msg === 'incoming request'), 'one line per request, at completion')
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
  t.ok(lines.some((l) => l.level === 40 && /reuse detected/.test(l.msg)), 'logged at warn')
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
