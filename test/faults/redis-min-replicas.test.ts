import t from 'tap'
import { buildApp, capturedLogs, login, PASSWORD, refreshUntilServed, registerAndLogin, uniqueEmail } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { PrivateRedis } from '../helpers/redis-server.js'

// The README asks for `min-replicas-to-write` on a master with replicas: cut off from them, it refuses writes
// (NOREPLICAS) instead of taking rotations and logouts that a failover would discard. The service must take that
// refusal as an outage of the store: 503 wherever it writes, never a 500, no half-done rotation, /me still
// verifying; and it must serve again as soon as the master takes writes.

t.test('a master that lost its replica refuses writes: the service answers 503 where it writes, keeps /me, and resumes with the replica', async (t) => {
  const master = await PrivateRedis.start(t, { args: ['--min-replicas-to-write', '1', '--min-replicas-max-lag', '1', '--repl-diskless-sync-delay', '0'] })
  const replica = await PrivateRedis.start(t, { password: master.password, args: ['--replicaof', '127.0.0.1', String(master.port), '--masterauth', master.password] })
  const goodReplicas = async () => Number(await master.replication('min_slaves_good_slaves'))
  await within(10_000, async () => await goodReplicas() === 1, 'the master counts its replica')

  const logs = capturedLogs()
  const app = await buildApp(t, { logStream: logs.stream, env: { REDIS_URL: master.url, LOG_LEVEL: 'warn' } })
  const s = await registerAndLogin(app)
  const auth = { authorization: `Bearer ${s.accessToken}` }

  await replica.kill()
  await within(10_000, async () => await goodReplicas() === 0, 'the master notices its replica is gone')

  const writes: Array<[string, string, object]> = [
    ['POST', '/auth/refresh', { headers: { cookie: s.cookie } }],
    ['POST', '/auth/login', { payload: { email: s.email, password: PASSWORD } }],
    ['POST', '/auth/register', { payload: { email: uniqueEmail(), password: PASSWORD } }],
    ['POST', '/auth/logout', { headers: { cookie: s.cookie } }],
    ['POST', '/auth/logout-all', { headers: auth }]
  ]
  for (const [method, url, options] of writes) {
    const res = await app.inject({ method: method as 'POST', url, ...options })
    t.equal(res.statusCode, 503, `${method} ${url}: 503`)
    t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE', 'with the store\'s code')
  }
  const me = await app.inject({ url: '/me', headers: auth })
  t.equal(me.statusCode, 200, '/me keeps verifying the access token')
  const refused = logs.lines().filter((line) => line.msg === 'store unavailable').map((line) => (line.err as { message: string }).message)
  t.match(refused[0], /^NOREPLICAS /, 'the log says why the first was refused', { refused })

  await replica.start()
  await within(10_000, async () => await goodReplicas() === 1, 'the master counts its replica again')
  // The refused refresh rotated nothing and the refused logouts ended nothing: the first cookie still works.
  const served = await refreshUntilServed(app, s.cookie, 5000)
  t.not(served.cookie, null, `the session refreshes again, ${served.seconds} s after the replica is back`, { refusals: served.refusals })
  t.equal((await login(app, s.email, 'Laptop')).accessToken.split('.').length, 3, 'and logins are served')
})
