import t from 'tap'
import { buildApp, cookiePath, refresh, refreshCookieValue, registerAndLogin, setCookies } from '../../helpers/app.js'

t.test('POST /auth/logout', async (t) => {
  const app = await buildApp(t)
  const logout = (cookie?: string) => app.inject({ method: 'POST', url: '/auth/logout', headers: cookie === undefined ? {} : { cookie } })

  t.test('204, the family is revoked and the cookie cleared', async (t) => {
    const session = await registerAndLogin(app)
    const res = await logout(session.cookie)
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    t.equal(refreshCookieValue(app, res.headers['set-cookie']), '')
    t.match(setCookies(res)[0], /Max-Age=0|Expires=Thu, 01 Jan 1970/)
    t.equal((await refresh(app, session.cookie)).statusCode, 401)
  })

  t.test('204 also without a cookie, or with an invalid one', async (t) => {
    t.equal((await logout()).statusCode, 204)
    t.equal((await logout('__Secure-refresh_token=garbage')).statusCode, 204)
  })

  t.test('an older token of the family ends the family too', async (t) => {
    const session = await registerAndLogin(app)
    const next = refreshCookieValue(app, (await refresh(app, session.cookie)).headers['set-cookie'])
    t.equal((await logout(session.cookie)).statusCode, 204)
    t.equal((await refresh(app, `__Secure-refresh_token=${next}`)).statusCode, 401)
  })

  t.test('ends only the presented session: other logins of the user keep working', async (t) => {
    const first = await registerAndLogin(app)
    const { login } = await import('../../helpers/app.js')
    const second = await login(app, first.email)
    await logout(first.cookie)
    t.equal((await refresh(app, second.cookie)).statusCode, 200)
  })
  t.test('with a copy planted beside the browser\'s own, every session presented ends, and the cookie is cleared on every path', async (t) => {
    const mine = await registerAndLogin(app)
    const planted = await registerAndLogin(app)
    const res = await logout(`${planted.cookie}; ${mine.cookie}`)
    t.equal(res.statusCode, 204)
    t.same([(await refresh(app, mine.cookie)).statusCode, (await refresh(app, planted.cookie)).statusCode], [401, 401], 'both sessions ended')
    t.same(setCookies(res).map(cookiePath).sort(), ['/', '/auth', '/auth/', '/auth/login', '/auth/logout', '/auth/refresh'],
      'cleared on its own path and on every other path a copy would be sent to the auth routes from')
  })
})
