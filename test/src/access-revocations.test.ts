import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { RedisAccessRevocations } from '../../src/access-revocations.js'
import { createRedisClient } from '../../src/redis-client.js'
import { RevocationList } from '../../src/revocation-list.js'
import { deleteKeys, linkToSharedRedis, SHARED_REDIS_URL, uniquePrefix } from '../helpers/app.js'
import { PrivateRedis } from '../helpers/redis-server.js'
import { matchList } from '../helpers/match-list.js'

const log = { info () {}, warn () {}, error () {} }

async function instance (t: Test, keyPrefix: string, ttlMs: number, url = SHARED_REDIS_URL, logger: ConstructorParameters<typeof RedisAccessRevocations>[2]['log'] = log) {
  const redis = createRedisClient({ url, commandTimeoutMs: 2000 })
  await redis.connect()
  const list = new RevocationList({ sweepIntervalMs: 100 })
  const revocations = new RedisAccessRevocations(redis, list, { keyPrefix, ttlMs, log: logger })
  await revocations.start()
  t.teardown(async () => { await revocations.close(); await redis.quit() })
  return { redis, list, revocations }
}

interface Said { level: 'info' | 'warn' | 'error', msg: string }

/** A logger that keeps each line's level and message in `said`, the message after `prefix`. */
function recordingLogger (said: Said[], prefix = '') {
  const line = (level: Said['level']) => (_obj: object, msg: string) => { said.push({ level, msg: `${prefix}${msg}` }) }
  return { info: line('info'), warn: line('warn'), error: line('error') }
}

async function until (check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await sleep(10)
  }
}

t.test('10,000 revocations over pub/sub: every instance holds them, bounded, and forgets them after the TTL', async (t) => {
  const prefix = uniquePrefix()
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  const a = await instance(t, prefix, 1500)
  const b = await instance(t, prefix, 1500)
  await sleep(100) // both subscribed

  const ids = Array.from({ length: 10_000 }, (_, i) => `fam${i.toString().padStart(19, '0')}`)
  for (let i = 0; i < ids.length; i += 100) await a.revocations.revoke(ids.slice(i, i + 100))
  await until(() => b.list.size === 10_000, 2000)
  t.equal(b.list.size, 10_000, 'the other instance heard all 10,000')
  t.ok(b.revocations.isRevoked(ids[0] as string) && b.revocations.isRevoked(ids[9999] as string))

  await sleep(1700)
  await until(() => a.list.size === 0 && b.list.size === 0, 1000)
  t.pass('both lists are empty after the TTL, with no traffic')
  t.equal(b.revocations.isRevoked(ids[0] as string), false)
  t.equal(await a.redis.exists(`${prefix}revoked-sids`), 0, 'and the Redis set has expired too')
})

t.test('with revocations coming steadily, the shared set, which then never expires, drops each as its tokens die', async (t) => {
  const prefix = uniquePrefix()
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  const a = await instance(t, prefix, 1000)
  const key = `${prefix}revoked-sids`
  for (let i = 0; i < 9; i++) {
    await a.revocations.revoke([`family-${i}`])
    await sleep(200)
  }
  const before = Date.now()
  await a.revocations.revoke(['family-9'])
  t.equal(await a.redis.zscore(key, 'family-0'), null, 'the first, revoked 1.8 s ago, is gone')
  t.equal(await a.redis.zcount(key, '-inf', `(${before}`), 0, 'as is every one whose tokens had died by the last revocation')
  t.not(await a.redis.zscore(key, 'family-9'), null, 'the last is kept')
})

t.test('an instance that starts later loads the live revocations', async (t) => {
  const prefix = uniquePrefix()
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  const a = await instance(t, prefix, 60_000)
  await a.revocations.revoke(['early-family'])
  const late = await instance(t, prefix, 60_000)
  await until(() => late.revocations.isRevoked('early-family'), 1000)
  t.pass('loaded on connect')
})

t.test('a revocation whose message is lost is applied within about a second: each instance reads what was recorded since its last read', async (t) => {
  const prefix = uniquePrefix()
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  const ttlMs = 60_000
  const a = await instance(t, prefix, ttlMs)
  await sleep(1500) // past its first read on connect
  // Recorded as revoke() records it, by an instance whose clock runs 3 s behind, but never published.
  await a.redis.zadd(`${prefix}revoked-sids`, Date.now() - 3000 + ttlMs, 'unheard-family')
  const recorded = Date.now()
  await until(() => a.revocations.isRevoked('unheard-family'), 2500)
  t.pass(`applied ${Date.now() - recorded} ms after it was recorded, with no message`)
})

t.test('a revocation that cannot be broadcast (Redis down) is broadcast once Redis is back', async (t) => {
  const redis = await PrivateRedis.start(t)
  const errors: string[] = []
  const a = await instance(t, 'p:', 60_000, redis.url)
  const b = await instance(t, 'p:', 60_000, redis.url)
  const logged = { info () {}, warn () {}, error (_obj: object, msg: string) { errors.push(msg) } }
  const revoker = new RedisAccessRevocations(a.redis, new RevocationList(), { keyPrefix: 'p:', ttlMs: 60_000, log: logged })
  await revoker.start()
  t.teardown(() => revoker.close())

  await redis.kill()
  await revoker.revoke(['unsent-family'])
  t.ok(revoker.isRevoked('unsent-family'), 'revoked on the instance itself at once')
  t.same(errors, ['could not broadcast access-token revocation; retrying'])
  await revoker.revoke(['second-unsent'])
  t.equal(revoker.pending, 2, 'both counted as not yet told to the others')
  await sleep(1500)
  t.equal(revoker.pending, 2, 'still, after a retry while Redis is down')
  await redis.start() // empty: the set is gone with the server, only the retry can bring the revocation back
  await until(() => b.revocations.isRevoked('unsent-family') && b.revocations.isRevoked('second-unsent'), 5000)
  t.pass('the other instance applies them after Redis is back')
  t.ok(await a.redis.zscore('p:revoked-sids', 'unsent-family') !== null, 'and they are in the shared set, for instances that start later')
  t.equal(revoker.pending, 0, 'none left to tell')
})

t.test('the channel refused (an ACL without it): revocations reach the other instances within a second, from the record, and the refusal is said once', async (t) => {
  const redis = await PrivateRedis.start(t)
  // Redis 7 grants no channel unless told (acl-pubsub-default resetchannels): the keys and commands alone.
  await redis.command('ACL', 'SETUSER', 'no-channel', 'on', '>no-channel-password', '~p:*', 'resetchannels', '+@all')
  const url = `redis://no-channel:no-channel-password@127.0.0.1:${redis.port}`
  const said: Said[] = []
  const logger = (name: string) => recordingLogger(said, `${name}: `)
  const a = await instance(t, 'p:', 60_000, url, logger('a'))
  const b = await instance(t, 'p:', 60_000, url, logger('b'))

  // Revoked once both have loaded the record at start: the other one reads it again only on its catch-up.
  await until(() => said.length === 2, 2000)
  const revokedAt = Date.now()
  await a.revocations.revoke(['family-1'])
  t.equal(a.revocations.pending, 0, 'recorded: nothing left to tell, though the announcement was refused')
  await until(() => b.revocations.isRevoked('family-1'), 2500)
  t.ok(Date.now() - revokedAt < 2500, `the other instance refuses its tokens within a second or so (${Date.now() - revokedAt} ms)`)
  await sleep(2500)
  const refusal = /^[ab]: the subscription to p:revoked-sids was refused: other instances' access-token revocations reach this one within a second \(read from the store\), not at once, until it is granted \(the README's ACL grants the channel\); retrying$/
  t.same(said.map((line) => line.level), ['error', 'error'], 'an error for each instance, said once however often it retries')
  matchList(t, said.map((line) => line.msg).sort(), [refusal, refusal], 'each saying what is missing')
  t.equal(said.filter((line) => line.msg.startsWith('a:')).length, 1, 'one of them by each')

  const subscribers = async () => Number((await redis.command('PUBSUB', 'NUMSUB', 'p:revoked-sids') as [string, number])[1])
  t.equal(await subscribers(), 0, 'no instance subscribed meanwhile')

  // Granted: the next try subscribes (tried again after 1, 2, 4, … s).
  await redis.command('ACL', 'SETUSER', 'no-channel', '&p:*')
  const deadline = Date.now() + 20_000
  while (await subscribers() < 2 && Date.now() < deadline) await sleep(100)
  t.equal(await subscribers(), 2, 'both subscribe once the channel is granted')
  t.equal(said.filter((line) => line.level === 'info').length, 2, 'and say so')
})

t.test('a subscription lost with its connection is a warning, not a refusal: it subscribes again once reconnected', async (t) => {
  const prefix = uniquePrefix()
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  const link = await linkToSharedRedis(t)
  const said: Said[] = []
  const logger = recordingLogger(said)
  // The subscriber's first SUBSCRIBE, reset on its way: the store's reads (on the other connection) go through.
  const cut = link.cutAt((sent) => /\r\nsubscribe\r\n/i.test(sent), { reset: true })
  const cutOff = await instance(t, prefix, 60_000, `redis://127.0.0.1:${link.port}`, logger)
  await until(() => said.some((line) => line.level === 'info'), 5000)
  t.ok(cut(), 'the subscription was cut off')
  t.same(said.map((line) => [line.level, line.msg]), [['warn', 'access-token revocation resync failed; retrying'], ['info', 'access-token revocation resync done']],
    'a warning, and then that it is done; no error saying the subscription was refused')
  const other = await instance(t, prefix, 60_000)
  const revokedAt = Date.now()
  await other.revocations.revoke(['family-1'])
  await until(() => cutOff.revocations.isRevoked('family-1'), 1000)
  t.ok(Date.now() - revokedAt < 1000, 'subscribed again: another instance\'s revocation reaches it')
})

t.test('the channel refused, through reconnections: one retry of the subscription pending at most', async (t) => {
  const redis = await PrivateRedis.start(t)
  await redis.command('ACL', 'SETUSER', 'no-channel', 'on', '>no-channel-password', '~p:*', 'resetchannels', '+@all')
  const client = createRedisClient({ url: `redis://no-channel:no-channel-password@127.0.0.1:${redis.port}`, commandTimeoutMs: 2000 })
  await client.connect()
  // Retried every second at most, so that retries piling up would show within seconds; a reconnection (about 250 ms
  // here) then ends before the retry pending through it.
  const revocations = new RedisAccessRevocations(client, new RevocationList(), { keyPrefix: 'p:', ttlMs: 60_000, log, maxResyncDelayMs: 1000 })
  await revocations.start()
  t.teardown(async () => { await revocations.close(); client.disconnect() })
  const refused = async () => Number(/^cmdstat_subscribe:.*rejected_calls=([0-9]+)/m.exec(await redis.command('INFO', 'commandstats') as string)?.[1] ?? 0)
  await sleep(1000)
  // Each reconnection tries at once; a try that fails leaves one retry, in place of any other.
  for (let i = 0; i < 8; i++) {
    await redis.command('CLIENT', 'KILL', 'USER', 'no-channel')
    await sleep(300)
  }
  const before = await refused()
  await sleep(2000)
  const retries = await refused() - before
  t.ok(retries >= 1 && retries <= 3, `${retries} tries in 2 s after the last reconnection: one a second, not one per reconnection each`)
})

t.test('a first load the store refused is made by the next catch-up once it serves, not by a resync backing off', async (t) => {
  const redis = await PrivateRedis.start(t)
  const earlier = await instance(t, 'p:', 60_000, redis.url)
  await earlier.revocations.revoke(['before-it-started'])
  // Its subscription is taken; its reads of the record are refused, until granted.
  await redis.command('ACL', 'SETUSER', 'no-read', 'on', '>no-read-password', '~p:*', '&p:*', '+@all', '-zrangebyscore')
  const later = await instance(t, 'p:', 60_000, `redis://no-read:no-read-password@127.0.0.1:${redis.port}`)
  await sleep(4000) // the resync's retries are 1, 2, 4, … s apart by now
  t.notOk(later.revocations.isRevoked('before-it-started'), 'not loaded while refused')
  await redis.command('ACL', 'SETUSER', 'no-read', '+zrangebyscore')
  const grantedAt = Date.now()
  await until(() => later.revocations.isRevoked('before-it-started'), 2500)
  t.pass(`loaded ${Date.now() - grantedAt} ms after the grant`)
})
