import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, capturedLogs, failedClosed, masterKilledUnderLoad, nextRefreshCookie, PASSWORD, refresh, refreshUntilServed, registerAndLogin, sessionsOn, uniqueEmail, uniquePrefix, UNLIMITED_REFRESHES } from '../helpers/app.js'
import { freePort, PrivateRedis, PrivateSentinel, replicatedUnderSentinel } from '../helpers/redis-server.js'
import { startServiceOverHttp } from '../helpers/server-process.js'
import { silentServerMs } from '../../src/redis-client.js'
import { makeCertificates } from '../helpers/tls.js'
import { within } from '../helpers/poll.js'

/** While a failover settles: refreshes a session once a second, `times` times, each time with its latest token; the statuses. */
async function refreshEverySecond (app: FastifyInstance, cookie: string, times: number): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < times; i++) {
    const res = await refresh(app, cookie)
    statuses.push(res.statusCode)
    if (res.statusCode === 200) cookie = nextRefreshCookie(app, res)
    await sleep(1000)
  }
  return statuses
}

t.test('Redis behind Sentinel: the master is killed, Sentinel promotes its replica, and the service follows it with the sessions it had', async (t) => {
  const { master, replica, sentinel, env: sentinelEnv, replicated } = await replicatedUnderSentinel(t)
  const logs = capturedLogs()
  const env = { LOG_LEVEL: 'trace', ...sentinelEnv }
  const prefix = uniquePrefix()
  const app = await buildApp(t, { logStream: logs.stream, prefix, env })
  // A second instance of the deployment, to hear the revocations the first one publishes.
  const other = await buildApp(t, { logStream: logs.stream, prefix, env })
  const session = await registerAndLogin(app)
  const first = await refresh(app, session.cookie)
  t.equal(first.statusCode, 200, 'refresh works through the Sentinel-named master')
  let cookie = nextRefreshCookie(app, first)
  t.ok(Number(await master.command('DBSIZE')) > 0, 'the sessions are on the master')

  await replicated()

  await master.kill()
  const me = await app.inject({ url: '/me', headers: { authorization: `Bearer ${first.json().accessToken as string}` } })
  t.equal(me.statusCode, 200, '/me verifies access tokens while there is no master')

  const served = await refreshUntilServed(app, cookie, 30_000)
  const refusals = served.refusals
  t.ok(served.cookie !== null, `a refresh succeeded ${served.seconds} s after the failover, ${refusals.length} refused before it`)
  if (served.cookie === null) return
  cookie = served.cookie
  t.ok(failedClosed(refusals), 'until then every refresh failed closed: 503 within 2 s', { refusals })
  t.equal(await sentinel.masterPort(), replica.port, 'the Sentinel promoted the replica')
  t.equal(await replica.replication('role'), 'master', 'and the replica is the master now')

  const rotated = await refresh(app, cookie)
  t.equal(rotated.statusCode, 200, 'the session that existed before the failover keeps rotating')
  const bearer = { authorization: `Bearer ${rotated.json().accessToken as string}` }
  t.equal((await other.inject({ url: '/me', headers: bearer })).statusCode, 200, 'its access token works on the other instance')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'ready')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } })
  t.equal(login.statusCode, 200, 'the account is on the new master: login works')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie } })
  t.equal(logout.statusCode, 204)
  t.equal((await refresh(app, cookie)).statusCode, 401, 'and revocation is written to the new master')
  await within(1000, async () => (await other.inject({ url: '/me', headers: bearer })).statusCode === 401, 'the other instance refuses the revoked session\'s access token')
  t.pass('the other instance heard the revocation within 1 s: its subscription moved to the new master too')

  t.notOk(logs.text().includes(master.password), 'the Redis password is not in the logs')
  t.notOk(logs.text().includes(sentinel.password), 'nor the Sentinel\'s')
  // While the master is gone the client alternates between two failures (the dead master refuses, then no
  // Sentinel names a live one), retrying up to once a second: each kind is logged once per outage.
  const errorLines = logs.text().split('\n').filter((l) => l.includes('"msg":"redis connection error"')).length
  t.ok(errorLines >= 2 && errorLines <= 6, `${errorLines} error lines for two instances over ${refusals.length} refused refreshes`)
})

t.test('behind Sentinel, the master killed under refresh load: every refusal is a 503 within 2 s, and every session refreshes on on the promoted replica', async (t) => {
  const { master, replica, env: sentinelEnv, replicated } = await replicatedUnderSentinel(t)
  const env = { ...sentinelEnv, ...UNLIMITED_REFRESHES }
  const prefix = uniquePrefix()
  const apps = [await buildApp(t, { prefix, env }), await buildApp(t, { prefix, env })] as const
  const cookies = await sessionsOn(apps, 24)
  await replicated()
  await masterKilledUnderLoad(t, apps, cookies, master, replica)
})

t.test('a master hung for less than the client waits on a silent server, while Sentinel promotes its replica: 503 while it hangs, then the session lives on on the promoted replica, past the rotation the failover lost', async (t) => {
  // min-replicas-to-write is the operator's side (README): a master that wakes to find its replica gone refuses
  // writes (NOREPLICAS), and the client then asks the Sentinels again. It still runs what was queued while it
  // hung before it notices, so one rotation lands there and is lost with it: the client holds a token one
  // generation ahead of the promoted replica's, which the store takes as current.
  const { master, replica, sentinel, env, replicated } = await replicatedUnderSentinel(t, { masterArgs: ['--min-replicas-to-write', '1', '--min-replicas-max-lag', '2'] })
  // A command timeout of 2.5 s lets the client wait 10 s on a silent server before it connects again: the 8 s hang
  // stays under it, so the client is still on the master when it wakes (a longer silence: the test after this).
  const COMMAND_TIMEOUT_MS = 2500
  t.equal(silentServerMs(COMMAND_TIMEOUT_MS), 10_000)
  const app = await buildApp(t, { env: { ...env, RATE_LIMIT_REFRESH_SESSION: '1000/60', REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) } })
  const session = await registerAndLogin(app)
  let cookie = session.cookie
  await replicated()

  const HANG_MS = 8000
  const hung = Date.now()
  await master.stall(t, HANG_MS / 1000)

  const during: number[] = []
  while (Date.now() - hung < HANG_MS - COMMAND_TIMEOUT_MS - 500) { // each answer within the hang, its timeout included
    during.push((await refresh(app, cookie)).statusCode)
    await sleep(200)
  }
  t.ok(during.length >= 2 && during.every((s) => s === 503), `every refresh while the master hangs is a 503: ${during.join(' ')}`)
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })).statusCode, 200, '/me verifies meanwhile')

  let first = 0
  await within(10_000, async () => {
    const res = await refresh(app, cookie)
    first = res.statusCode
    if (res.statusCode === 200) cookie = nextRefreshCookie(app, res)
    return res.statusCode === 200
  }, 'a refresh succeeds after the hang')
  t.equal(first, 200, `the same session refreshes ${((Date.now() - hung) / 1000).toFixed(1)} s after the hang began`)
  t.equal(await sentinel.masterPort(), replica.port, 'on the promoted replica')
  // The old master is reconfigured as a replica some seconds after it wakes; no rotation may be lost with it.
  const after = await refreshEverySecond(app, cookie, 12)
  t.notOk(after.includes(401), `the family is never taken for reused or lost: ${after.join(' ')}`)
  t.ok(after.filter((s) => s === 200).length >= 10, 'and it keeps rotating')
})

t.test('a master that stops answering for good (frozen or cut off, its connections left open): the service leaves it for the promoted replica while it is still gone', async (t) => {
  // No error and no closed connection ever tells the client: a stopped process keeps its sockets, and the kernel
  // still accepts connections to it. Only silence does.
  const { master, replica, sentinel, env, replicated } = await replicatedUnderSentinel(t, { masterArgs: ['--min-replicas-to-write', '1', '--min-replicas-max-lag', '2'] })
  const prefix = uniquePrefix()
  const app = await buildApp(t, { prefix, env: { ...env, RATE_LIMIT_REFRESH_SESSION: '1000/60' } })
  const other = await buildApp(t, { prefix, env }) // its connections sit idle on the master: it serves only /me here
  const session = await registerAndLogin(app)
  let cookie = session.cookie
  await replicated()

  master.pause()
  const served = await refreshUntilServed(app, cookie, 20_000)
  t.ok(served.cookie !== null, `the session refreshes ${served.seconds} s after the master stopped, while it is still stopped`)
  if (served.cookie === null) return
  cookie = served.cookie
  t.ok(failedClosed(served.refusals), 'until then every refresh failed closed: 503 within 2 s', { refusals: served.refusals })
  t.equal(await sentinel.masterPort(), replica.port, 'on the promoted replica')

  // The other instance's subscription was on the stopped master too: it must hear a revocation published on the new one.
  const res = await refresh(app, cookie)
  t.equal(res.statusCode, 200)
  cookie = nextRefreshCookie(app, res)
  const bearer = { authorization: `Bearer ${res.json().accessToken as string}` }
  t.equal((await other.inject({ url: '/me', headers: bearer })).statusCode, 200, 'the access token works on the other instance')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie } })).statusCode, 204)
  await within(5000, async () => (await other.inject({ url: '/me', headers: bearer })).statusCode === 401, 'the other instance refuses the revoked session\'s access token')
  t.pass('the other instance refuses the logged-out session\'s access token: its subscription left the stopped master')

  // Back, it runs what its sockets still held, then Sentinel makes it a replica: nothing it ran may end a session.
  master.resume()
  const again = await registerAndLogin(app)
  const after = await refreshEverySecond(app, again.cookie, 6)
  t.same(after, [200, 200, 200, 200, 200, 200], 'after the old master is back, sessions rotate on, every one a 200')
  await within(10_000, async () => await master.replication('role') === 'slave', 'the old master is made a replica')
  t.pass('and the old master is a replica now')
})

t.test('no Sentinel answering at start: the service starts, answers 503 fast, and serves once one answers', async (t) => {
  const master = await PrivateRedis.start(t)
  const sentinelPort = await freePort()
  const sentinelPassword = randomBytes(16).toString('hex')
  const started = performance.now()
  const app = await buildApp(t, {
    env: { REDIS_URL: `redis://:${master.password}@unused.invalid/0`, REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`, REDIS_SENTINEL_MASTER: 'authmaster', REDIS_SENTINEL_PASSWORD: sentinelPassword }
  })
  t.ok(performance.now() - started < 5000, `started in ${(performance.now() - started).toFixed(0)} ms`)
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready')
  const before = performance.now()
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail(), password: PASSWORD } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
  t.ok(performance.now() - before < 2000, 'answered within 2 s')

  await PrivateSentinel.start(t, master, { port: sentinelPort, password: sentinelPassword })
  await within(10_000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready once a Sentinel answers')
  const session = await registerAndLogin(app)
  t.equal((await refresh(app, session.cookie)).statusCode, 200, 'and serves sessions')
})

t.test('the same failover over TLS: Sentinels, master and replica reached by name, certificates checked', async (t) => {
  const certs = await makeCertificates(t)
  const { master, replicaPort, sentinel, env, replicated } = await replicatedUnderSentinel(t, { certs })
  // Node reads NODE_EXTRA_CA_CERTS at start: the services run as processes of their own.
  const trusted = await startServiceOverHttp(t, { ...env, NODE_EXTRA_CA_CERTS: certs.ca })
  const untrusted = await startServiceOverHttp(t, env)
  t.equal((await untrusted.call('/health/ready')).status, 503, 'without the CA: not ready, no fall-back to plaintext')

  const email = uniqueEmail()
  t.equal((await trusted.call('/auth/register', { email, password: PASSWORD })).status, 201)
  const login = await trusted.call('/auth/login', { email, password: PASSWORD })
  t.equal(login.status, 200)
  await replicated()

  await master.kill()
  const statuses: number[] = []
  let answer = await trusted.call('/auth/refresh', undefined, login.cookie)
  const deadline = Date.now() + 30_000
  while (answer.status !== 200 && Date.now() < deadline) {
    statuses.push(answer.status)
    await sleep(100)
    answer = await trusted.call('/auth/refresh', undefined, login.cookie)
  }
  t.equal(answer.status, 200, `the session refreshes on the promoted replica, ${statuses.length} refused before`)
  t.ok(statuses.every((s) => s === 503), 'every refusal before it was a 503')
  t.equal(await sentinel.masterPort(), replicaPort, 'the Sentinel promoted the replica')
  t.equal((await trusted.call('/auth/login', { email, password: PASSWORD })).status, 200, 'the account is there: login works')
  t.notOk(trusted.output().includes(master.password) || untrusted.output().includes(master.password), 'no Redis password in the logs')
})
