import type { FastifyInstance } from 'fastify'
import type { Cluster } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildApp, CAUGHT_REPLAY, capturedLogs, failedClosed, type LoggedIn, login, masterKilledUnderLoad, nextRefreshCookie, PASSWORD, refresh, refreshingWhile, refreshUntilServed, registerAndLogin, replayCodes, sessionsOn, uniquePrefix, UNLIMITED_REFRESHES } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { PrivateCluster } from '../helpers/redis-server.js'

// The deployment on a Redis Cluster: two instances of the service (same secrets, same key prefix) on three
// masters, each instance given every node as a seed (REDIS_CLUSTER_NODES).

const bearer = (s: { accessToken: string }) => ({ authorization: `Bearer ${s.accessToken}` })

t.test('on a Redis Cluster of three masters', async (t) => {
  const cluster = await PrivateCluster.start(t, { appendOnly: true })
  const prefix = uniquePrefix()
  const env = { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList }
  const a = await buildApp(t, { prefix, env })
  const b = await buildApp(t, { prefix, env })

  t.test('accounts and sessions spread over the masters, and every session moves between instances', async (t) => {
    const sessions: LoggedIn[] = []
    for (let i = 0; i < 12; i++) sessions.push(await registerAndLogin(i % 2 === 0 ? a : b))
    for (const [i, s] of sessions.entries()) {
      const res = await refresh(i % 2 === 0 ? b : a, s.cookie)
      t.equal(res.statusCode, 200, `session ${i} refreshed on the other instance`)
    }
    const sizes = await Promise.all(cluster.nodes.map(async (n) => Number(await n.command('DBSIZE'))))
    t.ok(sizes.filter((size) => size > 0).length >= 2, `keys on more than one master: ${sizes.join(', ')}`)
    t.equal((await a.inject({ url: '/health/ready' })).statusCode, 200, 'ready')
  })

  t.test('two instances refreshing one token at once give one successor; a replay ends the family on both', async (t) => {
    const first = await registerAndLogin(a)
    const [ra, rb] = await Promise.all([refresh(a, first.cookie), refresh(b, first.cookie)])
    t.equal(ra.statusCode, 200)
    t.equal(rb.statusCode, 200)
    t.equal(nextRefreshCookie(a, ra), nextRefreshCookie(b, rb), 'one successor')
    const third = await refresh(a, nextRefreshCookie(a, ra))
    t.equal(third.statusCode, 200)

    // Two generations old.
    t.match(await replayCodes(async () => (await refresh(b, first.cookie)).json().code, b.config.refresh.reuseGraceSeconds), CAUGHT_REPLAY, 'the replay is caught')
    t.equal((await refresh(a, nextRefreshCookie(a, third))).statusCode, 401, 'the current token is dead too')
    const access = { accessToken: third.json().accessToken as string }
    for (const [name, app] of Object.entries({ a, b })) {
      const what = `instance ${name} refuses the family's access token within 1 s (revocation published through the cluster)`
      await within(1000, async () => (await app.inject({ url: '/me', headers: bearer(access) })).statusCode === 401, what)
      t.pass(what)
    }
  })

  t.test('sessions are listed and revoked, one or all, and a password change keeps only the caller', async (t) => {
    const phone = await registerAndLogin(a, undefined, 'Phone/1.0')
    const laptop = await login(b, phone.email, 'Laptop/2.0')
    const tablet = await login(a, phone.email, 'Tablet/3.0')
    const list = await b.inject({ url: '/auth/sessions', headers: bearer(phone) })
    t.equal(list.statusCode, 200)
    t.equal(list.json().sessions.length, 3)
    const laptopId = (list.json().sessions as Array<{ id: string, userAgent: string }>).find((s) => s.userAgent === 'Laptop/2.0')?.id as string
    t.equal((await a.inject({ method: 'DELETE', url: `/auth/sessions/${laptopId}`, headers: bearer(phone) })).statusCode, 204)
    t.equal((await refresh(b, laptop.cookie)).statusCode, 401, 'the revoked session no longer refreshes')

    const change = await a.inject({ method: 'POST', url: '/auth/password', headers: bearer(phone), payload: { currentPassword: PASSWORD, newPassword: 'a brand new password' } })
    t.equal(change.statusCode, 204)
    t.equal((await refresh(b, tablet.cookie)).statusCode, 401, 'the other session ended with the password change')
    t.equal((await refresh(b, phone.cookie)).statusCode, 200, 'the caller\'s session lives on')
    const relogin = await b.inject({ method: 'POST', url: '/auth/login', payload: { email: phone.email, password: 'a brand new password' } })
    t.equal(relogin.statusCode, 200, 'the new password logs in on the other instance')

    t.equal((await b.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(relogin.json()) })).statusCode, 204)
    const what = 'logged out everywhere: the other instance refuses the access token within 1 s'
    await within(1000, async () => (await a.inject({ url: '/auth/sessions', headers: bearer(relogin.json()) })).statusCode === 401, what)
    t.pass(what)
  })

  t.test('a master that evicts keys when full is named at connection, whichever master it is', async (t) => {
    const evicting = cluster.nodes[cluster.nodes.length - 1] as (typeof cluster.nodes)[number]
    await evicting.command('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru')
    t.teardown(() => evicting.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction'))
    const logs = capturedLogs()
    await buildApp(t, { prefix, env: { ...env, LOG_LEVEL: 'info' }, logStream: logs.stream })
    await within(3000, async () => logs.lines().some((line) => line.maxmemoryPolicy === 'volatile-lru'), 'the evicting master named')
    t.equal(logs.lines().filter((line) => line.maxmemoryPolicy !== undefined).length, 1, 'once, for the one master that evicts')
    // The other checks of a connection run beside that one: give their lines every chance to be written.
    await sleep(100)
    t.same(logs.lines().filter((line) => line.level >= 50 && line.maxmemoryPolicy === undefined).map((line) => line.msg), [],
      'and no other error: its nodes are a cluster\'s, as REDIS_CLUSTER_NODES says, not a server that cannot serve it')
  })
})

t.test('rate limits and failed-login counters are shared through the cluster', async (t) => {
  const cluster = await PrivateCluster.start(t)
  const prefix = uniquePrefix()
  const env = { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList, RATE_LIMIT_LOGIN_ACCOUNT_IP: '3/60', RATE_LIMIT_REGISTER_IP: '4/60' }
  const a = await buildApp(t, { prefix, env })
  const b = await buildApp(t, { prefix, env })

  const victim = await registerAndLogin(a)
  const statuses = []
  for (let i = 0; i < 4; i++) {
    const app = i % 2 === 0 ? a : b
    statuses.push((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: victim.email, password: 'wrong password!!' } })).statusCode)
  }
  t.same(statuses, [401, 401, 401, 429], 'the fourth failure, on either instance, is refused')

  const registrations = []
  for (let i = 0; i < 4; i++) {
    const app = i % 2 === 0 ? b : a
    registrations.push((await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `spread${i}.${prefix.slice(5, 13)}@example.com`, password: PASSWORD } })).statusCode)
  }
  t.same(registrations, [201, 201, 201, 429], 'one per-IP budget across both instances (one registration was the victim\'s)')
})

t.test('slots moving between masters under refresh load (an operator rebalancing the cluster): every refresh is served, and no session is lost', async (t) => {
  const cluster = await PrivateCluster.start(t)
  const prefix = uniquePrefix()
  const env = { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList, ...UNLIMITED_REFRESHES }
  const apps = [await buildApp(t, { prefix, env }), await buildApp(t, { prefix, env })] as const
  const cookies = await sessionsOn(apps, 24)
  type Node = PrivateCluster['nodes'][number]
  const families = async (node: Node) => await node.command('KEYS', `${prefix}*:f:*`) as string[]
  const before = await Promise.all(cluster.nodes.map(async (node) => (await families(node)).length))
  const from = before.indexOf(Math.max(...before))
  const source = cluster.nodes[from] as Node
  const target = cluster.nodes[(from + 1) % cluster.nodes.length] as Node
  // The slots of the source's families: each holds every session key of a user (their hash tag).
  const slots = [...new Set(await Promise.all((await families(source)).map(async (key) => Number(await source.command('CLUSTER', 'KEYSLOT', key)))))]
  await Promise.all(cluster.nodes.map((node) => node.command('CONFIG', 'RESETSTAT')))

  // Every session refreshes without pause, on both instances in turn, while those slots move to another master.
  const { outcomes } = await refreshingWhile(apps, cookies, async () => {
    for (const slot of slots) await cluster.migrateSlot(slot, source, target, 20)
  })

  t.equal((await families(source)).length, 0, `the ${slots.length} slots of ${before[from]} families moved, every key with them`)
  t.equal((await families(target)).length, (before[from] as number) + (before[(from + 1) % cluster.nodes.length] as number), 'to the other master')
  const redirections: Record<string, number> = {}
  for (const node of cluster.nodes) {
    for (const [, name, count] of String(await node.command('INFO', 'errorstats')).matchAll(/^errorstat_(\w+):count=(\d+)/gm)) redirections[name as string] = (redirections[name as string] ?? 0) + Number(count)
  }
  t.ok((redirections.ASK ?? 0) > 0 && (redirections.MOVED ?? 0) > 0, `refreshes met the slots half moved (ASK: ${redirections.ASK}, TRYAGAIN: ${redirections.TRYAGAIN ?? 0}) and moved (MOVED: ${redirections.MOVED})`, { redirections })
  t.same(Object.keys(outcomes), ['200'], `all ${outcomes['200']} refreshes made meanwhile were served`, { outcomes, redirections })
  const after = []
  for (const [i, cookie] of cookies.entries()) after.push((await refresh(apps[i % 2] as FastifyInstance, cookie)).statusCode)
  t.same(after, cookies.map(() => 200), 'and afterwards every session refreshes again: none was lost or taken for a replay')
})

t.test('a master of the cluster killed: store routes answer 503 within 2 s, /me keeps working, and the sessions are back with the node', async (t) => {
  const cluster = await PrivateCluster.start(t, { appendOnly: true })
  const logs = capturedLogs()
  const app = await buildApp(t, { logStream: logs.stream, env: { LOG_LEVEL: 'trace', REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList } })
  const session = await registerAndLogin(app)
  const rotated = await refresh(app, session.cookie)
  t.equal(rotated.statusCode, 200)
  const cookie = nextRefreshCookie(app, rotated)

  // Kill the master that holds this session's family (the account's keys may sit on others).
  const holders = await Promise.all(cluster.nodes.map(async (n) => (await n.command('KEYS', '*:f:*') as string[]).length === 1))
  t.equal(holders.filter(Boolean).length, 1, 'one master holds the family')
  const victim = cluster.nodes[holders.indexOf(true)] as PrivateCluster['nodes'][number]
  await victim.kill()

  const started = performance.now()
  const res = await refresh(app, cookie)
  const ms = performance.now() - started
  t.equal(res.statusCode, 503, 'refresh fails closed')
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
  t.ok(ms < 2000, `answered in ${ms.toFixed(0)} ms`)
  t.equal((await app.inject({ url: '/me', headers: bearer(rotated.json()) })).statusCode, 200, '/me verifies without the store')
  const ready = async () => (await app.inject({ url: '/health/ready' })).statusCode
  await within(5000, async () => await ready() === 503, 'not ready once the cluster marks its slots unserved')
  t.pass('not ready once the cluster marks its slots unserved')
  // Each surviving master turns to cluster_state:fail when it marks the victim failed, not all at once: until every
  // one has, a probe that reaches a later one would rightly hear "ok".
  const survivors = cluster.nodes.filter((n) => n !== victim)
  await within(5000, async () => (await Promise.all(survivors.map(async (n) => /cluster_state:fail/.test(String(await n.command('CLUSTER', 'INFO')))))).every(Boolean), 'every other master says the cluster has failed')
  const probes = []
  for (let i = 0; i < 12; i++) probes.push(await ready())
  t.same(probes, Array(12).fill(503), 'and every probe says so, whichever node it reaches: the other masters still answer PING')

  await victim.start()
  await cluster.waitUntilOk()
  await within(10_000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready again')
  t.pass('ready again')
  await within(10_000, async () => (await refresh(app, cookie)).statusCode === 200, 'the session refreshes once its master is back')
  t.pass('the session survived (AOF) and refreshes once its master is back')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } })).statusCode, 200, 'login works')
  t.match(logs.text(), /redis connection error|store/, 'the outage was logged')
  t.notOk(logs.text().includes(cluster.password), 'without the cluster\'s password')
})

t.test('the cluster down at start: the service starts, answers 503 fast, and serves once the cluster is up', async (t) => {
  const cluster = await PrivateCluster.create(t)
  const started = performance.now()
  const app = await buildApp(t, { env: { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList } })
  t.ok(performance.now() - started < 5000, 'started without the cluster')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready')
  const before = performance.now()
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `early.${uniquePrefix().slice(5, 13)}@example.com`, password: PASSWORD } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
  t.ok(performance.now() - before < 2000, 'answered within 2 s')

  await cluster.start()
  await within(10_000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready once the cluster is')
  t.pass('ready once the cluster is')
  const session = await registerAndLogin(app)
  t.equal((await refresh(app, session.cookie)).statusCode, 200, 'and serves sessions')
})

for (const fault of ['killed', 'frozen'] as const) {
  t.test(`a master with a replica ${fault === 'killed' ? 'killed' : 'frozen (it answers nothing and closes nothing)'}: the cluster promotes the replica, and the service follows it with the sessions`, async (t) => {
    const cluster = await PrivateCluster.start(t, { replicas: 1 })
    const prefix = uniquePrefix()
    const env = { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList }
    const app = await buildApp(t, { prefix, env })
    const other = await buildApp(t, { prefix, env })
    const session = await registerAndLogin(app)
    const rotated = await refresh(app, session.cookie)
    t.equal(rotated.statusCode, 200)
    let cookie = nextRefreshCookie(app, rotated)

    const holder = (await Promise.all(cluster.nodes.map(async (n) => (await n.command('KEYS', '*:f:*') as string[]).length === 1 && await n.replication('role') === 'master')))
      .indexOf(true)
    const victim = cluster.nodes[holder] as PrivateCluster['nodes'][number]
    const replica = await cluster.syncedReplicaOf(victim)
    if (fault === 'killed') {
      await victim.kill()
    } else {
      victim.pause()
      t.teardown(() => { victim.resume() }) // before the instances close: they say goodbye to every node
    }
    const served = await refreshUntilServed(app, cookie, 20_000)
    t.ok(served.cookie !== null, `the session refreshes ${served.seconds} s after its master was ${fault}, ${served.refusals.length} refused before`)
    if (served.cookie === null) return
    cookie = served.cookie
    t.ok(failedClosed(served.refusals), 'until then every refresh failed closed: 503 within 2 s', { refusals: served.refusals })
    t.equal(await replica.replication('role'), 'master', 'on the promoted replica')
    await within(10_000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready')
    t.pass('ready')
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } })).statusCode, 200, 'login works')

    // The other instance served no request meanwhile: it learns the new slot map all the same (from its own
    // once-a-second revocation reads and pings, and from asking for the map every 2 s), so its first command for
    // this session goes to the promoted replica, not to the lost master, which would hold it until the timeout.
    const otherClient = other.redis as Cluster
    await within(5000, async () => otherClient.nodes('master').some((node) => node.options.port === replica.port), 'the other instance knows the promoted replica')
    t.pass('the other instance learns the new slot map while idle')
    const onOther = await refreshUntilServed(other, cookie, 5000)
    t.ok(onOther.cookie !== null, `the session rotates on the other instance too, ${onOther.seconds} s after its first try`)
    t.same(onOther.refusals, [], 'at the first try')
    if (onOther.cookie === null || onOther.accessToken === null) return
    // A revocation published now reaches the other instance, whichever node its subscription was on.
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: onOther.cookie } })).statusCode, 204)
    const accessToken = onOther.accessToken
    await within(5000, async () => (await other.inject({ url: '/me', headers: bearer({ accessToken }) })).statusCode === 401, 'the other instance refuses the logged-out session\'s access token')
    t.pass('the other instance refuses the logged-out session\'s access token')
  })
}

t.test('a master with a replica killed under refresh load: every refresh answers 200 or fails closed, and every session lives on on the promoted replica', async (t) => {
  const cluster = await PrivateCluster.start(t, { replicas: 1 })
  const prefix = uniquePrefix()
  const env = { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList, ...UNLIMITED_REFRESHES }
  const apps = [await buildApp(t, { prefix, env }), await buildApp(t, { prefix, env })] as const
  const cookies = await sessionsOn(apps, 24)
  type Node = PrivateCluster['nodes'][number]
  const held = await Promise.all(cluster.nodes.map(async (n) => await n.replication('role') === 'master' ? (await n.command('KEYS', `${prefix}*:f:*`) as string[]).length : -1))
  const victim = cluster.nodes[held.indexOf(Math.max(...held))] as Node
  const replica = await cluster.syncedReplicaOf(victim)

  // Rotations the master acknowledged but had not yet sent to its replica are lost with it: their sessions go on
  // from a token ahead of the promoted replica's, which the store takes as current.
  await masterKilledUnderLoad(t, apps, cookies, victim, replica)
})

t.test('the node an instance listens for revocations on frozen: its subscription moves to another node and hears the next revocation', async (t) => {
  const cluster = await PrivateCluster.start(t, { replicas: 1 })
  const prefix = uniquePrefix()
  const env = { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList }
  const listener = await buildApp(t, { prefix, env })
  // Its subscription is the only one yet: the node whose client list shows it.
  let node: PrivateCluster['nodes'][number] | undefined
  await within(5000, async () => {
    const lists = await Promise.all(cluster.nodes.map(async (n) => String(await n.command('CLIENT', 'LIST'))))
    node = cluster.nodes[lists.findIndex((list) => list.includes('name=ioredis-cluster(subscriber)'))]
    return node !== undefined
  }, 'the listener has subscribed')
  const frozen = node as PrivateCluster['nodes'][number]
  const wasMaster = await frozen.replication('role') === 'master'
  const replica = wasMaster ? await cluster.syncedReplicaOf(frozen) : null
  const app = await buildApp(t, { prefix, env })
  const session = await registerAndLogin(app)
  t.equal((await listener.inject({ url: '/me', headers: bearer(session) })).statusCode, 200)

  frozen.pause()
  t.teardown(() => { frozen.resume() }) // before the instances close: they say goodbye to every node
  // A frozen master's slots move to its replica; a frozen replica is only marked failed.
  await within(15_000, async () => replica === null
    ? String(await (cluster.nodes.find((n) => n !== frozen) as typeof frozen).command('CLUSTER', 'NODES')).split('\n').some((l) => l.includes(`:${frozen.port}@`) && (l.split(' ')[2] ?? '').split(',').includes('fail'))
    : await replica.replication('role') === 'master', 'the cluster has failed the frozen node')
  t.pass(`the cluster failed the frozen ${wasMaster ? 'master over to its replica' : 'replica'}`)
  await within(10_000, async () => (await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: session.cookie } })).statusCode === 204, 'logged out')
  await within(10_000, async () => (await listener.inject({ url: '/me', headers: bearer(session) })).statusCode === 401, 'the listener refuses the logged-out session\'s access token')
  t.pass('the listener refuses the logged-out session\'s access token: its subscription left the frozen node')
})
