import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildApp, PASSWORD, refresh, refreshCookieValue, registerAndLogin, uniquePrefix } from '../helpers/app.js'
import { PrivateRedis, PrivateSentinel } from '../helpers/redis-server.js'

/** Polls `check` every 50 ms until it holds; fails the test's setup after `ms`. */
async function until (what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms
  while (!await check().catch(() => false)) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`)
    await sleep(50)
  }
}

const field = (info: unknown, name: string): string | undefined => new RegExp(`^${name}:(\\S+)`, 'm').exec(String(info))?.[1]

t.test('Redis behind Sentinel: the master is killed, Sentinel promotes its replica, and the service follows it with the sessions it had', async (t) => {
  const master = await PrivateRedis.start(t)
  const replica = await PrivateRedis.start(t, { password: master.password, args: ['--replicaof', '127.0.0.1', String(master.port), '--masterauth', master.password] })
  await until('the replica is in sync', 5000, async () => field(await replica.command('INFO', 'replication'), 'master_link_status') === 'up')
  const sentinel = await PrivateSentinel.start(t, master)
  await until('the Sentinel knows the replica', 15_000, async () => {
    const replicas = await sentinel.command('SENTINEL', 'replicas', sentinel.masterName) as string[][]
    return replicas.some((r) => r[r.indexOf('port') + 1] === String(replica.port) && r[r.indexOf('flags') + 1] === 'slave')
  })

  let logs = ''
  const logStream = new Writable({ write (chunk, _enc, done) { logs += String(chunk); done() } })
  const env = {
    LOG_LEVEL: 'trace',
    // Its host names no server: with Sentinels, the URL gives only the credentials and the database.
    REDIS_URL: `redis://:${master.password}@unused.invalid/0`,
    REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
    REDIS_SENTINEL_MASTER: sentinel.masterName,
    REDIS_SENTINEL_PASSWORD: sentinel.password
  }
  const prefix = uniquePrefix()
  const app = await buildApp(t, { logStream, prefix, env })
  // A second instance of the deployment, to hear the revocations the first one publishes.
  const other = await buildApp(t, { logStream, prefix, env })
  const session = await registerAndLogin(app)
  const first = await refresh(app, session.cookie)
  t.equal(first.statusCode, 200, 'refresh works through the Sentinel-named master')
  let cookie = `${app.config.cookie.name}=${refreshCookieValue(app, first.headers['set-cookie'])}`
  t.ok(Number(await master.command('DBSIZE')) > 0, 'the sessions are on the master')

  // What the replica has is what survives: wait until it has everything the master wrote.
  const written = Number(field(await master.command('INFO', 'replication'), 'master_repl_offset'))
  await until('the replica has every write', 5000, async () => Number(field(await replica.command('INFO', 'replication'), 'slave_repl_offset')) >= written)

  await master.kill()
  const me = await app.inject({ url: '/me', headers: { authorization: `Bearer ${first.json().accessToken as string}` } })
  t.equal(me.statusCode, 200, '/me verifies access tokens while there is no master')

  const refusals: string[] = []
  let recovered = false
  const deadline = Date.now() + 30_000
  while (!recovered && Date.now() < deadline) {
    const started = performance.now()
    const res = await refresh(app, cookie)
    const ms = performance.now() - started
    if (res.statusCode === 200) {
      recovered = true
      cookie = `${app.config.cookie.name}=${refreshCookieValue(app, res.headers['set-cookie'])}`
    } else {
      refusals.push(`${res.statusCode} ${res.json().code as string} in ${ms.toFixed(0)} ms`)
      await sleep(100)
    }
  }
  t.ok(recovered, `a refresh succeeded after the failover, ${refusals.length} refused before it`)
  t.ok(refusals.every((r) => /^503 AUTH_STORE_UNAVAILABLE in \d+ ms$/.test(r) && Number(r.split(' ')[3]) < 2000),
    'until then every refresh failed closed: 503 within 2 s', { refusals })
  t.equal(await sentinel.masterPort(), replica.port, 'the Sentinel promoted the replica')
  t.equal(field(await replica.command('INFO', 'replication'), 'role'), 'master', 'and the replica is the master now')

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
  await until('the other instance refuses the revoked session\'s access token', 1000, async () => (await other.inject({ url: '/me', headers: bearer })).statusCode === 401)
  t.pass('the other instance heard the revocation within 1 s: its subscription moved to the new master too')

  t.notOk(logs.includes(master.password), 'the Redis password is not in the logs')
  t.notOk(logs.includes(sentinel.password), 'nor the Sentinel\'s')
})
