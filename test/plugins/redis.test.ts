import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp, capturedLogs, PASSWORD, refresh, registerAndLogin, uniqueEmail } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { PrivateCluster, PrivateRedis, PrivateSentinel } from '../helpers/redis-server.js'
import { tcpLink } from '../helpers/tcp-link.js'
import { matchList } from '../helpers/match-list.js'

/** The lines that name an eviction policy, and those whose message matches a pattern. */
function logCollector () {
  const logs = capturedLogs()
  return {
    stream: logs.stream,
    evictionErrors: () => logs.lines().filter((l) => l.maxmemoryPolicy !== undefined),
    saying: (pattern: RegExp) => logs.lines().filter((l) => pattern.test(l.msg))
  }
}

/**
 * How many INFO commands the server has answered: each connection asks five times (ioredis's ready check, then the
 * service: its policy, its append-only file, its role, cluster or not).
 */
async function infoCalls (redis: PrivateRedis): Promise<number> {
  const stats = await redis.command('INFO', 'commandstats') as string
  return Number(/^cmdstat_info:calls=([0-9]+)/m.exec(stats)?.[1] ?? 0)
}

/** Closes the service's connection, and waits until the new one has been asked all it is asked. */
async function reconnected (redis: PrivateRedis, what: string): Promise<void> {
  const asked = await infoCalls(redis)
  await redis.command('CLIENT', 'KILL', 'TYPE', 'normal')
  await within(3000, async () => await infoCalls(redis) >= asked + 5, what)
  // The answers are read right after they arrive; give the log line every chance to be written.
  await sleep(100)
}

t.test('a Redis that evicts keys when full is named at connection, as an error, once per policy', async (t) => {
  const redis = await PrivateRedis.start(t, { args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] })
  const logs = logCollector()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: redis.url }, logStream: logs.stream })
  await within(2000, async () => logs.evictionErrors().length > 0, 'the eviction policy logged')
  matchList(t, logs.evictionErrors(), [{ level: 50, maxmemoryPolicy: 'allkeys-lru', msg: /maxmemory-policy is allkeys-lru: .* set maxmemory-policy noeviction/ }])

  // Reconnections (an outage, a failover) check again, and say only what they have not said.
  await reconnected(redis, 'the policy asked again on the new connection')
  t.equal(logs.evictionErrors().length, 1, 'the same policy is not said again')
  await redis.command('CONFIG', 'SET', 'maxmemory-policy', 'volatile-ttl')
  await redis.command('CLIENT', 'KILL', 'TYPE', 'normal')
  await within(3000, async () => logs.evictionErrors().length === 2, 'a new policy said')
  t.match(logs.evictionErrors()[1], { maxmemoryPolicy: 'volatile-ttl' })
  const session = await registerAndLogin(app)
  t.equal((await refresh(app, session.cookie)).statusCode, 200, 'and the service serves meanwhile: it is a warning to the operator, not a refusal')
})

t.test('noeviction, the policy the README asks for, is not mentioned', async (t) => {
  const redis = await PrivateRedis.start(t, { args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'] })
  const logs = logCollector()
  await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: redis.url }, logStream: logs.stream })
  await within(2000, async () => await infoCalls(redis) >= 5, 'the policy asked')
  // The answer is read right after it arrives; give the log line every chance to be written.
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(logs.evictionErrors(), [])
})

t.test('a Redis that keeps no append-only file is named at connection, as a warning, once until one keeps it', async (t) => {
  const redis = await PrivateRedis.start(t)
  const logs = logCollector()
  const noFile = () => logs.saying(/^redis keeps no append-only file/)
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: redis.url }, logStream: logs.stream })
  await within(2000, async () => noFile().length > 0, 'the missing file logged')
  matchList(t, noFile(), [{ level: 40, msg: /loses what was written since its last snapshot, .* accounts and password changes as well as sessions; set appendonly yes/ }], 'as a warning, saying what is lost and what to set')

  await reconnected(redis, 'asked again on a new connection')
  t.equal(noFile().length, 1, 'another connection to the same server: not said again')
  // Once the server keeps one, a server that stops keeping it is news again.
  await redis.command('CONFIG', 'SET', 'appendonly', 'yes')
  await reconnected(redis, 'asked on a connection to a server that keeps one')
  t.equal(noFile().length, 1, 'nor for a server that keeps one')
  await redis.command('CONFIG', 'SET', 'appendonly', 'no')
  await redis.command('CLIENT', 'KILL', 'TYPE', 'normal')
  await within(3000, async () => noFile().length === 2, 'said again once it stops keeping one')
  await within(3000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready')
  const session = await registerAndLogin(app)
  t.equal((await refresh(app, session.cookie)).statusCode, 200, 'and the service serves meanwhile')
})

t.test('a Redis that keeps an append-only file: nothing said', async (t) => {
  const redis = await PrivateRedis.start(t, { args: ['--appendonly', 'yes'] })
  const logs = logCollector()
  await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: redis.url }, logStream: logs.stream })
  await within(2000, async () => await infoCalls(redis) >= 5, 'the server asked')
  await sleep(100)
  t.same(logs.saying(/append-only/), [])
})

t.test('a database the server does not have: nothing runs in database 0; the store fails closed, and the log says why once', async (t) => {
  const redis = await PrivateRedis.start(t, { args: ['--databases', '2'] })
  const logs = logCollector()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: `${redis.url}/5` }, logStream: logs.stream })

  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready')
  const payload = { email: uniqueEmail(), password: PASSWORD }
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload })).json().code, 'AUTH_STORE_UNAVAILABLE', 'a registration: 503')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload })).json().code, 'AUTH_STORE_UNAVAILABLE', 'a login: 503')
  t.equal(await redis.command('DBSIZE'), 0, 'nothing was written in database 0')

  // The client keeps connecting, and selecting, in the background.
  const connections = async () => Number(/^total_connections_received:([0-9]+)/m.exec(await redis.command('INFO', 'stats') as string)?.[1])
  const before = await connections()
  await sleep(2500)
  t.ok(await connections() > before, 'it keeps trying')
  const refusals = logs.saying(/redis refused to select/)
  t.equal(refusals.length, 1, 'said once, however many connections it refused')
  matchList(t, refusals, [
    { level: 50, err: { message: 'ERR DB index is out of range' }, msg: 'redis refused to select database 5, the one REDIS_URL names: no command is sent until it does, and store-backed routes answer 503' }
  ], 'as an error, with the database')
  t.equal(logs.saying(/revocation resync failed/).length, 0,
    'the revocations\' subscriber is closed with it, not left to read through the closed one every second')
  t.equal(await redis.command('DBSIZE'), 0, 'and still nothing in database 0')
})

t.test('REDIS_URL at a replica: not ready, and the log says why once; ready once it is promoted', async (t) => {
  const master = await PrivateRedis.start(t, { args: ['--repl-diskless-sync-delay', '0'] })
  const replica = await PrivateRedis.start(t, { password: master.password, args: ['--replicaof', '127.0.0.1', String(master.port), '--masterauth', master.password] })
  await within(5000, async () => await replica.replication('master_link_status') === 'up', 'the replica is in sync')
  const logs = logCollector()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: replica.url }, logStream: logs.stream })
  const replicaLines = () => logs.saying(/replica/)

  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready: PING answers, but no write would be taken')
  const payload = { email: uniqueEmail(), password: PASSWORD }
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload })).json().code, 'AUTH_STORE_UNAVAILABLE', 'a registration: 503')
  await within(3000, async () => replicaLines().length > 0, 'the replica named in the log')
  // A refused write (READONLY) makes the client connect again, to the same server, which it reads the role of again.
  const checked = await infoCalls(replica)
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload })).statusCode, 503, 'another: 503')
  await within(5000, async () => await infoCalls(replica) >= checked + 5, 'a new connection, read as a new one is')
  await sleep(200)
  t.equal(replicaLines().length, 1, 'said once, however many connections find it')
  matchList(t, replicaLines(), [{ level: 50, msg: /^the Redis server is a replica: it refuses writes .*: the instance is not ready, and its store routes answer 503, until the server it connects to can serve it$/ }],
    'as an error')

  await replica.command('REPLICAOF', 'NO', 'ONE')
  await within(5000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready once the server is a master')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload })).statusCode, 201, 'and it serves')
})

t.test('REDIS_URL at a node of a Redis Cluster, without REDIS_CLUSTER_NODES: not ready, and the log says to set them, once', async (t) => {
  const cluster = await PrivateCluster.start(t)
  const node = cluster.nodes[0] as PrivateRedis
  const logs = logCollector()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: `redis://:${cluster.password}@127.0.0.1:${node.port}` }, logStream: logs.stream })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready: the node answers PING, but refuses the keys of the other nodes\' slots')
  await within(3000, async () => logs.saying(/Redis Cluster/).length > 0, 'the log says why')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'still not ready')
  const said = logs.saying(/Redis Cluster/)
  t.equal(said.length, 1, 'once')
  matchList(t, said, [{ level: 50, msg: /^the Redis server is a node of a Redis Cluster, which refuses the keys of other nodes' slots: set REDIS_CLUSTER_NODES: the instance is not ready/ }], 'as an error, saying what to set')
})

t.test('a user the ACL refuses INFO: PING says the server serves, as before its role was read', async (t) => {
  const redis = await PrivateRedis.start(t)
  await redis.command('ACL', 'SETUSER', 'no-info', 'on', '>no-info-password', '~*', '&*', '+@all', '-info')
  const app = await buildApp(t, { env: { REDIS_URL: `redis://no-info:no-info-password@127.0.0.1:${redis.port}` } })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'ready')
  t.equal((await registerAndLogin(app)).accessToken.split('.').length, 3, 'and it serves')
})

t.test('REDIS_URL\'s ?family= reaches the client: its host name is resolved to that address family only', async (t) => {
  const redis = await PrivateRedis.start(t)
  // The server listens on 127.0.0.1 only; localhost has that address, and here no IPv6 one (or one nobody listens on).
  const byName = `redis://:${redis.password}@localhost:${redis.port}`
  const v4 = await buildApp(t, { env: { REDIS_URL: `${byName}?family=4` } })
  t.equal((await v4.inject({ url: '/health/ready' })).statusCode, 200, 'IPv4: ready')
  t.equal((await registerAndLogin(v4)).accessToken.split('.').length, 3, 'and it serves')
  const v6 = await buildApp(t, { env: { REDIS_URL: `${byName}?family=6` } })
  await sleep(1000)
  t.equal((await v6.inject({ url: '/health/ready' })).statusCode, 503, 'IPv6 only: never connected')
})

t.test('a Redis slow to answer at start (0.6 s, within its command timeout) is waited for: the instance starts ready, and says nothing of it', async (t) => {
  const redis = await PrivateRedis.start(t)
  const link = await tcpLink(t, redis.port)
  link.hold()
  const releasing = sleep(600).then(() => link.release())
  const logs = logCollector()
  const env = { LOG_LEVEL: 'info', REDIS_URL: `redis://:${redis.password}@127.0.0.1:${link.port}`, REDIS_COMMAND_TIMEOUT_MS: '1500' }
  const app = await buildApp(t, { env, logStream: logs.stream })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'ready as it starts')
  t.same(logs.saying(/not ready at start/), [])
  await releasing
})

t.test('a connection reset once the service has served is an outage: logged without the hint that REDIS_URL may want TLS', async (t) => {
  const redis = await PrivateRedis.start(t)
  const link = await tcpLink(t, redis.port)
  const logs = logCollector()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: `redis://:${redis.password}@127.0.0.1:${link.port}` }, logStream: logs.stream })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'ready')
  const cut = link.cutAt(() => true, { reset: true })
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail(), password: PASSWORD } })
  t.ok(cut(), 'the connection was reset')
  await within(3000, async () => logs.saying(/^redis connection error$/).length > 0, 'the reset logged')
  matchList(t, logs.saying(/^redis connection error$/), [{ err: { code: 'ECONNRESET' } }], 'as ECONNRESET')
  t.equal(logs.saying(/^redis connection error$/).filter((l) => 'hint' in l).length, 0, 'without the hint')
  await within(3000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready again')
})

t.test('credentials the server refuses: not ready, 503, the log says which setting once, as an error; once the server takes them, it serves', async (t) => {
  const redis = await PrivateRedis.start(t)
  const logs = logCollector()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: `redis://svc:svc-password@127.0.0.1:${redis.port}` }, logStream: logs.stream })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready: the user does not exist yet')
  const payload = { email: uniqueEmail(), password: PASSWORD }
  t.match((await app.inject({ method: 'POST', url: '/auth/register', payload })).json(), { code: 'AUTH_STORE_UNAVAILABLE' }, 'the store fails closed')
  // The client tries again every second: each refusal is the same line.
  await sleep(2500)
  const said = logs.saying(/^redis refused the credentials/)
  t.equal(said.length, 1, 'said once')
  matchList(t, said, [{
    level: 50,
    err: { message: /^WRONGPASS/ },
    msg: /^redis refused the credentials: the server refused the user name and password in REDIS_URL: .* store-backed routes answer 503$/
  }], 'as an error that names REDIS_URL')
  t.same(logs.saying(/^redis connection error$/), [], 'and not again as a connection error')
  t.equal(logs.saying(/^redis is not ready at start: /).filter((l) => l.level === 50).length, 1, 'the start says it is not ready, not that Redis is unreachable')
  t.notOk(JSON.stringify(logs.saying(/./)).includes('svc-password'), 'the password is in no line')

  await redis.command('ACL', 'SETUSER', 'svc', 'on', '>svc-password', '~*', '&*', '+@all')
  await within(5000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready once the server takes them')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload })).statusCode, 201, 'and it serves')
})

t.test('no password where the server requires one: the log says REDIS_URL gives none', async (t) => {
  const redis = await PrivateRedis.start(t)
  const logs = logCollector()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: `redis://127.0.0.1:${redis.port}` }, logStream: logs.stream })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready')
  await within(3000, async () => logs.saying(/^redis refused the credentials/).length > 0, 'the refusal logged')
  matchList(t, logs.saying(/^redis refused the credentials/), [{ level: 50, err: { message: /^NOAUTH/ }, msg: /the server requires a password, and REDIS_URL gives none/ }], 'as an error that says REDIS_URL gives none')
})

t.test('Sentinels that refuse the service\'s credentials: the log names REDIS_SENTINEL_PASSWORD, not REDIS_URL', async (t) => {
  const master = await PrivateRedis.start(t)
  const sentinel = await PrivateSentinel.start(t, master)
  const env = { LOG_LEVEL: 'info', REDIS_URL: `redis://:${master.password}@unused.invalid/0`, REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, REDIS_SENTINEL_MASTER: sentinel.masterName }
  const cases = [
    { name: 'a wrong password', password: 'not-the-password', says: /the Sentinels refused REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD/ },
    { name: 'none', password: undefined, says: /the Sentinels require a password: set REDIS_SENTINEL_PASSWORD/ }
  ]
  for (const { name, password, says } of cases) {
    const logs = logCollector()
    const app = await buildApp(t, { env: password === undefined ? env : { ...env, REDIS_SENTINEL_PASSWORD: password }, logStream: logs.stream })
    t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, `${name}: not ready`)
    await sleep(1500)
    const said = logs.saying(/^redis refused the credentials/)
    t.equal(said.length, 1, `${name}: said once, though the client asked the Sentinels again meanwhile`)
    matchList(t, said, [{ level: 50, msg: says }], `${name}: naming the Sentinels' settings`)
  }
  const app = await buildApp(t, { env: { ...env, REDIS_SENTINEL_PASSWORD: sentinel.password } })
  await within(5000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'and with the right one, ready')
})

t.test('a Redis Cluster that refuses the password: the log names REDIS_URL, once', async (t) => {
  const cluster = await PrivateCluster.start(t)
  const logs = logCollector()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: 'redis://:not-the-password@unused.invalid', REDIS_CLUSTER_NODES: cluster.seedList }, logStream: logs.stream })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready')
  await sleep(2500)
  const said = logs.saying(/^redis refused the credentials/)
  t.equal(said.length, 1, 'said once, though every node refused it, again and again')
  matchList(t, said, [{ level: 50, msg: /the server refused the user name and password in REDIS_URL/ }], 'naming REDIS_URL')
})

t.test('a master name the Sentinels do not know: the log names REDIS_SENTINEL_MASTER, once, not "All sentinels are unreachable"', async (t) => {
  const master = await PrivateRedis.start(t)
  const sentinel = await PrivateSentinel.start(t, master)
  const logs = logCollector()
  const env = { LOG_LEVEL: 'info', REDIS_URL: `redis://:${master.password}@unused.invalid/0`, REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, REDIS_SENTINEL_PASSWORD: sentinel.password }
  const app = await buildApp(t, { env: { ...env, REDIS_SENTINEL_MASTER: 'mymaster' }, logStream: logs.stream })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready')
  await sleep(1500)
  const said = logs.saying(/^the Sentinels know no master/)
  t.equal(said.length, 1, 'said once, though the client asked the Sentinels again meanwhile')
  matchList(t, said, [{ level: 50, msg: 'the Sentinels know no master named mymaster: set REDIS_SENTINEL_MASTER to the name their configuration gives it (sentinel monitor <name> …); store-backed routes answer 503 until they know it' }], 'as an error naming the setting and the name')
  t.same(logs.saying(/^redis connection error$/), [], 'and not as a connection error')
  const named = await buildApp(t, { env: { ...env, REDIS_SENTINEL_MASTER: sentinel.masterName } })
  await within(5000, async () => (await named.inject({ url: '/health/ready' })).statusCode === 200, `ready under the name the Sentinels give it (${sentinel.masterName})`)
})
