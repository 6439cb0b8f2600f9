import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, capturedLogs, CAUGHT_REPLAY, login, PASSWORD, refresh, refreshUntilServed, registerAndLogin, replayCodes, sidOf, nextRefreshCookie } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { PrivateCluster, PrivateRedis, PrivateSentinel, replicatedUnderSentinel } from '../helpers/redis-server.js'
import { matchList } from '../helpers/match-list.js'

// The service on a Redis user granted only what the README's ACL lists: every path that reaches Redis, on two
// instances, must work with it, and Redis must log no denial. The rule is read from the README itself.

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

/** The arguments of the README's `ACL SETUSER <user> …` line, with `password` for its `>password`. */
function readmeRule (user: string, password: string): string[] {
  const rule = new RegExp(`^ACL SETUSER ${user} (.+)$`, 'm').exec(README)?.[1]
  if (rule === undefined) throw new Error(`README: the ACL rule for ${user} is missing`)
  return rule.split(/\s+/).map((arg) => arg === '>password' ? `>${password}` : arg)
}

/** The `ACL SETUSER` arguments the README gives for the key prefix `auth:`, with its additions for a topology. */
function documentedRule (topology: 'server' | 'database' | 'cluster'): string[] {
  const adds = {
    server: '',
    database: /With a database other than 0 in `REDIS_URL`, add `([^`]+)`/.exec(README)?.[1],
    cluster: /on a Redis Cluster, on every node, add `([^`]+)`/.exec(README)?.[1]
  }[topology]
  if (adds === undefined) throw new Error(`README: the ACL rule's additions for a ${topology} are missing`)
  return [...readmeRule('auth-service', SERVICE_PASSWORD), ...adds.split(/\s+/).filter((arg) => arg !== '')]
}

const SERVICE_PASSWORD = 'service-password'

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/**
 * What a server refused since its statistics were reset, by kind of error, less `NOSCRIPT` (a script's first call
 * on a connection; the client then sends the script whole). A server refuses a command or subcommand it does not
 * know before it looks at the ACL, so a command the ACL leaves out shows here on this machine's Redis (7.0) and
 * as a denial on a newer one that knows it: ioredis's `CLIENT SETINFO` and `CLIENT MAINT_NOTIFICATIONS`.
 */
async function refusals (server: { command: (...args: string[]) => Promise<unknown> }): Promise<Record<string, string>> {
  const info = await server.command('INFO', 'errorstats') as string
  return Object.fromEntries([...info.matchAll(/^errorstat_(\w+):count=(\d+)/gm)]
    .filter(([, kind]) => kind !== 'NOSCRIPT').map(([, kind, count]) => [kind, count]))
}

/** Every path of the service that touches Redis, on two instances of one deployment. */
async function everyStorePath (t: Test, a: FastifyInstance, b: FastifyInstance): Promise<void> {
  t.equal((await a.inject({ url: '/health/ready' })).statusCode, 200, 'ready')
  const owner = await registerAndLogin(a)
  t.equal((await a.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: `${PASSWORD}!` } })).statusCode, 401, 'a failed login is counted')
  const rotated = await refresh(b, owner.cookie)
  t.equal(rotated.statusCode, 200, 'a refresh rotates on the other instance')
  t.equal((await refresh(a, owner.cookie)).statusCode, 200, 'the parent again within the grace window')
  const next = await refresh(a, nextRefreshCookie(a, rotated))
  t.equal(next.statusCode, 200)
  t.match(await replayCodes(async () => (await refresh(b, owner.cookie)).json().code, b.config.refresh.reuseGraceSeconds), CAUGHT_REPLAY, 'a replay ends the family')
  await within(1000, async () => (await a.inject({ url: '/me', headers: bearer(next.json().accessToken) })).statusCode === 401, 'the other instance hears the revocation')
  t.pass('and the other instance hears of it')

  const phone = await login(b, owner.email, 'Phone')
  const laptop = await login(a, owner.email, 'Laptop')
  t.equal((await a.inject({ url: '/auth/sessions', headers: bearer(laptop.accessToken) })).json().sessions.length, 2, 'sessions are listed')
  t.equal((await b.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(phone.accessToken)}`, headers: bearer(laptop.accessToken) })).statusCode, 204, 'and one revoked')
  // The second instance keeps two sessions per user: its logins evict the least recently used.
  for (const agent of ['Watch', 'TV']) await login(b, owner.email, agent)
  t.equal((await a.inject({ url: '/auth/sessions', headers: bearer(laptop.accessToken) })).statusCode, 401, 'evicted by the cap')
  const tablet = await login(a, owner.email, 'Tablet')
  const changed = await a.inject({ method: 'POST', url: '/auth/password', headers: bearer(tablet.accessToken), payload: { currentPassword: PASSWORD, newPassword: 'a brand new passphrase 9' } })
  t.equal(changed.statusCode, 204, 'the password changes', { body: changed.body })
  t.equal((await b.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: tablet.cookie } })).statusCode, 204, 'a logout')
  const watch = await b.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: 'a brand new passphrase 9' } })
  const again = await a.inject({ method: 'POST', url: '/auth/login', headers: { cookie: nextRefreshCookie(b, watch) }, payload: { email: owner.email, password: 'a brand new passphrase 9' } })
  t.equal(again.statusCode, 200, 'a login that replaces a session')
  t.equal((await refresh(b, nextRefreshCookie(b, watch))).statusCode, 409, 'whose tab refreshing meanwhile is told to retry')
  t.equal((await a.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(again.json().accessToken) })).statusCode, 204, 'and a logout everywhere')
  // Past the cap of the instance that keeps two, a sign-in reads which of the user's sessions sign-ins are replacing.
  const signIns = []
  for (const agent of ['Console', 'Car', 'Kiosk']) {
    signIns.push(await b.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': agent }, payload: { email: owner.email, password: 'a brand new passphrase 9' } }))
  }
  t.same(signIns.map((res) => res.statusCode), [200, 200, 200], 'sign-ins past the cap')
  const listed = await b.inject({ url: '/auth/sessions', headers: bearer((signIns[2] as typeof again).json().accessToken) })
  t.same(listed.json().sessions.map((s: { userAgent: string }) => s.userAgent).sort(), ['Car', 'Kiosk'], 'evict the least recently used')
  const deleted = await a.inject({ method: 'DELETE', url: '/auth/account', headers: bearer((signIns[2] as typeof again).json().accessToken), payload: { password: 'a brand new passphrase 9' } })
  t.equal(deleted.statusCode, 204, 'the account is deleted')
  t.equal((await b.inject({ method: 'POST', url: '/auth/register', payload: { email: owner.email, password: PASSWORD } })).statusCode, 201, 'and its email registers again')
}

for (const topology of ['server', 'database'] as const) {
  t.test(`the service needs no more of a Redis server than the ACL the README gives${topology === 'database' ? ', in a database other than 0' : ''}`, async (t) => {
    const redis = await PrivateRedis.start(t)
    await redis.command('ACL', 'SETUSER', 'auth-service', 'reset', ...documentedRule(topology))
    await redis.command('CONFIG', 'RESETSTAT')
    const url = `redis://auth-service:${SERVICE_PASSWORD}@127.0.0.1:${redis.port}${topology === 'database' ? '/3' : ''}`
    const a = await buildApp(t, { prefix: 'auth:', env: { REDIS_URL: url } })
    const b = await buildApp(t, { prefix: 'auth:', env: { REDIS_URL: url, MAX_SESSIONS_PER_USER: '2' } })
    await everyStorePath(t, a, b)

    t.same(await redis.command('ACL', 'LOG'), [], 'Redis denied the service nothing')
    t.same(await refusals(redis), {}, 'nor refused it a command it does not know')
    const keyspace = await redis.command('INFO', 'keyspace') as string
    t.match(keyspace, topology === 'database' ? /^db3:keys=/m : /^db0:keys=/m, 'its keys are in the database its URL names')
    const denied = await redis.command('ACL', 'DRYRUN', 'auth-service', 'GET', 'other-app:secret').catch((err: Error) => err.message)
    t.match(denied, /no permissions to access/, 'and grants it no key outside its prefix')
  })
}

t.test('the README\'s rule without the +select a database other than 0 needs: no command runs in database 0; the store fails closed until the ACL grants it, then serves in its database', async (t) => {
  const redis = await PrivateRedis.start(t)
  await redis.command('ACL', 'SETUSER', 'auth-service', 'reset', ...documentedRule('server'))
  const url = `redis://auth-service:${SERVICE_PASSWORD}@127.0.0.1:${redis.port}/3`
  const app = await buildApp(t, { prefix: 'auth:', env: { REDIS_URL: url } })
  const register = async () => await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `select-${Date.now()}@example.com`, password: PASSWORD } })

  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready while Redis refuses SELECT 3 (NOPERM)')
  t.equal((await register()).json().code, 'AUTH_STORE_UNAVAILABLE', 'a registration fails closed: 503')
  t.notMatch(await redis.command('INFO', 'keyspace') as string, /^db[0-9]+:/m, 'and nothing is written, in database 0 or any other')

  // The addition the README gives for a database other than 0.
  await redis.command('ACL', 'SETUSER', 'auth-service', ...documentedRule('database').slice(readmeRule('auth-service', SERVICE_PASSWORD).length))
  await within(5000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready once the ACL grants SELECT')
  t.equal((await register()).statusCode, 201, 'then it serves')
  const keyspace = await redis.command('INFO', 'keyspace') as string
  t.match(keyspace, /^db3:keys=/m, 'in the database its URL names')
  t.notMatch(keyspace, /^db0:/m, 'and in no other')
})

t.test('the README\'s rule for another key prefix than the service\'s: not ready, and the log says why, once, until the ACL grants the prefix', async (t) => {
  const redis = await PrivateRedis.start(t)
  await redis.command('ACL', 'SETUSER', 'auth-service', 'reset', ...documentedRule('server'))
  const logs = capturedLogs()
  const app = await buildApp(t, { prefix: 'shop:', logStream: logs.stream, env: { REDIS_URL: `redis://auth-service:${SERVICE_PASSWORD}@127.0.0.1:${redis.port}`, ACCESS_TOKEN_REVOCATION: 'off', LOG_LEVEL: 'warn' } })
  const probes = async (n: number): Promise<number[]> => await Promise.all(Array.from({ length: n }, async () => (await app.inject({ url: '/health/ready' })).statusCode))
  const said = () => logs.lines().filter((line) => line.msg.startsWith('redis refuses the readiness check'))

  t.same(await probes(3), [503, 503, 503], 'not ready: Redis refuses the keys of shop: (NOPERM)')
  matchList(t, said(), [{
    level: 50,
    refusal: /^NOPERM /,
    msg: 'redis refuses the readiness check, so the instance is not ready: grant the service\'s Redis user the keys and channels of REDIS_KEY_PREFIX (~shop:* &shop:*) and the commands of the README\'s ACL rule (Running with Redis)'
  }], 'said once for three probes, with what to grant (where before nothing said why)')

  await redis.command('ACL', 'SETUSER', 'auth-service', '~shop:*', '&shop:*')
  await within(5000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'ready once the ACL grants the prefix')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `prefix-${Date.now()}@example.com`, password: PASSWORD } })).statusCode, 201, 'and it serves')
  t.equal(said().length, 1, 'with nothing more said')

  // Taken back from a ready instance: each store route refuses, and so does the probe, which read the key only once.
  await redis.command('ACL', 'SETUSER', 'auth-service', 'resetkeys', '~auth:*')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `prefix-${Date.now()}@example.com`, password: PASSWORD } })).statusCode, 503, 'the store refused again')
  t.same(await probes(2), [503, 503], 'not ready again (it stayed ready)')
  t.equal(said().length, 2, 'and said again, once: the first episode was over')
})

t.test('the README\'s rule without its channel (&auth:*), as Redis 7 makes a user unless told: a session ended on one instance still ends its access tokens on the other, within a second', async (t) => {
  const redis = await PrivateRedis.start(t)
  const rule = documentedRule('server')
  t.ok(rule.includes('&auth:*'), 'the README grants the channel')
  await redis.command('ACL', 'SETUSER', 'auth-service', 'reset', ...rule.filter((arg) => arg !== '&auth:*'))
  const url = `redis://auth-service:${SERVICE_PASSWORD}@127.0.0.1:${redis.port}`
  const logs = [capturedLogs(), capturedLogs()]
  const [a, b] = await Promise.all(logs.map(async (log) => await buildApp(t, { prefix: 'auth:', env: { REDIS_URL: url, LOG_LEVEL: 'info' }, logStream: log.stream })))
  if (a === undefined || b === undefined) throw new Error('two instances')
  t.equal((await a.inject({ url: '/health/ready' })).statusCode, 200, 'ready: everything but the channel is granted')
  const session = await registerAndLogin(a)
  t.equal((await b.inject({ url: '/me', headers: bearer(session.accessToken) })).statusCode, 200, 'its access token works on the other instance')
  t.equal((await a.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(session.accessToken) })).statusCode, 204, 'a logout of all devices')
  await within(2000, async () => (await b.inject({ url: '/me', headers: bearer(session.accessToken) })).statusCode === 401, 'the other instance refuses the access token')
  t.pass('the other instance refuses it within about a second')
  t.equal(a.accessRevocations.pending, 0, 'nothing left to retry: the revocation is recorded')
  for (const [i, log] of logs.entries()) {
    const said = log.lines().filter((line) => /revoked-sids|revocation/.test(line.msg))
    matchList(t, said, [{ level: 50, msg: /^the subscription to auth:revoked-sids was refused: .*the README's ACL grants the channel/ }], `instance ${i + 1} says what is missing, once, as an error`)
  }
})

const SENTINEL_PASSWORD = 'sentinel-password'

/**
 * The README's rules: the service's user on each of `servers` (their statistics reset), its own user on the Sentinel;
 * the service's settings to reach the master through the Sentinel as those users.
 */
async function grantReadmeRules (servers: PrivateRedis[], sentinel: PrivateSentinel): Promise<Record<string, string>> {
  for (const server of servers) {
    await server.command('ACL', 'SETUSER', 'auth-service', 'reset', ...documentedRule('server'))
    await server.command('CONFIG', 'RESETSTAT')
  }
  await sentinel.command('ACL', 'SETUSER', 'auth-sentinel', 'reset', ...readmeRule('auth-sentinel', SENTINEL_PASSWORD))
  return {
    REDIS_URL: `redis://auth-service:${SERVICE_PASSWORD}@unused.invalid/0`,
    REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
    REDIS_SENTINEL_MASTER: sentinel.masterName,
    REDIS_SENTINEL_USERNAME: 'auth-sentinel',
    REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD
  }
}

t.test('nor of a master found through a Sentinel, nor of the Sentinel', async (t) => {
  const master = await PrivateRedis.start(t)
  const sentinel = await PrivateSentinel.start(t, master)
  const env = await grantReadmeRules([master], sentinel)
  const a = await buildApp(t, { prefix: 'auth:', env })
  const b = await buildApp(t, { prefix: 'auth:', env: { ...env, MAX_SESSIONS_PER_USER: '2' } })
  await everyStorePath(t, a, b)

  t.same(await master.command('ACL', 'LOG'), [], 'the master denied the service nothing')
  t.same(await refusals(master), {}, 'nor refused it a command it does not know')
  // The password is auth-sentinel's alone (the Sentinel's default user has another): every path above went through
  // the Sentinel as that user.
  t.same(await sentinel.command('ACL', 'LOG'), [], 'and the Sentinel denied its user nothing')

  // Less than the rule is not enough: without `sentinel|sentinels` ioredis counts the Sentinel as unreachable.
  const short = readmeRule('auth-sentinel', SENTINEL_PASSWORD).filter((arg) => arg !== '+sentinel|sentinels')
  await sentinel.command('ACL', 'SETUSER', 'auth-sentinel', 'reset', ...short)
  const c = await buildApp(t, { prefix: 'auth:', env })
  await within(5000, async () => JSON.stringify(await sentinel.command('ACL', 'LOG')).includes('sentinel|sentinels'), 'the Sentinel denies it')
  t.pass('the Sentinel denies it')
  t.equal((await c.inject({ url: '/health/ready' })).statusCode, 503, 'and an instance whose Sentinel user lacks it is not ready')
})

t.test('nor, through a Sentinel failover, of the replica it promotes, given the same rule', async (t) => {
  const { master, replica, sentinel, replicated } = await replicatedUnderSentinel(t)
  // ACL users are not replicated: the rule is set on each server the Sentinel may name.
  const env = await grantReadmeRules([master, replica], sentinel)
  const a = await buildApp(t, { prefix: 'auth:', env })
  const b = await buildApp(t, { prefix: 'auth:', env: { ...env, MAX_SESSIONS_PER_USER: '2' } })
  const session = await registerAndLogin(a)
  await replicated()

  await master.kill()
  const served = await refreshUntilServed(b, session.cookie, 30_000)
  t.ok(served.cookie !== null, `the session refreshes ${served.seconds} s after the master was killed`)
  t.equal(await replica.replication('role'), 'master', 'on the promoted replica')
  await everyStorePath(t, a, b)
  t.same(await replica.command('ACL', 'LOG'), [], 'which denied the service nothing')
  // The Sentinel's own CONFIG REWRITE, as it promotes the replica, fails: these servers run without a config file.
  const rewrites = Number(/^cmdstat_config\|rewrite:.*failed_calls=(\d+)/m.exec(await replica.command('INFO', 'commandstats') as string)?.[1] ?? 0)
  t.same(await refusals(replica), rewrites === 0 ? {} : { ERR: String(rewrites) }, 'nor refused it a command it does not know, but the Sentinel\'s rewrite')
  t.same(await sentinel.command('ACL', 'LOG'), [], 'nor did the Sentinel its user, while it named the new master')
})

t.test('nor of a Redis Cluster', async (t) => {
  const cluster = await PrivateCluster.start(t)
  for (const node of cluster.nodes) {
    await node.command('ACL', 'SETUSER', 'auth-service', 'reset', ...documentedRule('cluster'))
    await node.command('CONFIG', 'RESETSTAT')
  }
  const env = { REDIS_URL: `redis://auth-service:${SERVICE_PASSWORD}@cluster`, REDIS_CLUSTER_NODES: cluster.seedList }
  const a = await buildApp(t, { prefix: 'auth:', env })
  const b = await buildApp(t, { prefix: 'auth:', env: { ...env, MAX_SESSIONS_PER_USER: '2' } })
  await everyStorePath(t, a, b)

  for (const [i, node] of cluster.nodes.entries()) {
    t.same(await node.command('ACL', 'LOG'), [], `node ${i + 1} denied the service nothing`)
    // ioredis's cluster subscriber makes its connection with options of its own (6.1.0): it sends its two
    // `CLIENT SETINFO` whatever the service's options say, which is why the README adds `+client|setinfo` on
    // a Redis that knows it. Nothing else may be refused.
    const subscribes = Number(/^cmdstat_subscribe:calls=(\d+)/m.exec(await node.command('INFO', 'commandstats') as string)?.[1] ?? 0)
    t.same(await refusals(node), subscribes === 0 ? {} : { ERR: String(2 * subscribes) }, 'nor refused it a command it does not know, but the subscriber\'s two')
  }
})
