import t from 'tap'
import { buildApp, PASSWORD, registerAndLogin, uniqueEmail } from '../helpers/app.js'
import { PrivateRedis } from '../helpers/redis-server.js'

t.test('Redis stopped: no route answers a 500; store-backed routes say 503, the rest keep working', async (t) => {
  const redis = await PrivateRedis.start(t)
  const app = await buildApp(t, { env: { REDIS_URL: redis.url } })
  const s = await registerAndLogin(app)
  const auth = { authorization: `Bearer ${s.accessToken}` }
  await redis.kill()

  const expected: Array<[string, string, object, number]> = [
    ['POST', '/auth/register', { payload: { email: uniqueEmail(), password: PASSWORD } }, 503],
    ['POST', '/auth/login', { payload: { email: s.email, password: PASSWORD } }, 503],
    ['POST', '/auth/refresh', { headers: { cookie: s.cookie } }, 503],
    ['POST', '/auth/logout', { headers: { cookie: s.cookie } }, 503],
    ['GET', '/me', { headers: auth }, 200],
    ['GET', '/auth/sessions', { headers: auth }, 503],
    ['DELETE', '/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA', { headers: auth }, 503],
    ['POST', '/auth/logout-all', { headers: auth }, 503],
    ['POST', '/auth/password', { headers: auth, payload: { currentPassword: PASSWORD, newPassword: 'another password!' } }, 503],
    ['DELETE', '/auth/account', { headers: auth, payload: { password: PASSWORD } }, 503],
    ['GET', '/health/live', {}, 200],
    ['GET', '/health/ready', {}, 503],
    ['GET', '/no-such-route', {}, 404]
  ]
  for (const [method, url, options, status] of expected) {
    const res = await app.inject({ method: method as 'GET', url, ...options })
    t.equal(res.statusCode, status, `${method} ${url}: ${status}`)
    t.match(res.headers['content-type'], /^application\/json/)
  }
})
