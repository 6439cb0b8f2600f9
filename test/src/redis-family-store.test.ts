import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import calculateSlot from 'cluster-key-slot'
import { clampUserAgent, type RotateInput } from '../../src/family-store.js'
import { RedisFamilyStore } from '../../src/redis-family-store.js'
import { RefreshTokenCodec, type RefreshToken } from '../../src/refresh-token.js'
import { newUserId } from '../../src/user-directory.js'
import { connectedCluster, connectedRedis, deleteKeys, SHARED_REDIS_URL, uniquePrefix } from '../helpers/app.js'
import { PrivateCluster } from '../helpers/redis-server.js'
import { familyStoreContract } from './family-store.contract.js'

// The contract waits out real TTLs, a second at a time, here twice (one Redis, a Cluster): about 40 s alone, and the
// in-memory store's one run took 84 s in CI beside the other files. Twice tap's 120 s per file, so that it finishes.
t.setTimeout(240_000)

/** A store on the shared Redis under a prefix of its own, removed after the test. */
async function setup (t: Test) {
  const redis = await connectedRedis(t)
  const prefix = uniquePrefix()
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  return { redis, prefix, store: new RedisFamilyStore(redis, policy, prefix), codec: new RefreshTokenCodec('redis-store-test-secret-0123456789abcdef') }
}

const policy = { idleTtlSeconds: 60, absoluteTtlSeconds: 600, reuseGraceSeconds: 10, maxFamiliesPerUser: 100, refreshLimit: { max: 100, windowSeconds: 60 }, rememberEndedMs: 605_000 }

/**
 * The store as the service serves it: ready, so its clock has been read (a store's requests are timed on the wall clock
 * only before that, src/redis-clock.ts).
 */
async function ready (store: RedisFamilyStore): Promise<RedisFamilyStore> {
  await store.ping()
  return store
}

t.test('RedisFamilyStore fulfils the FamilyStore contract', async (t) => {
  familyStoreContract(t, async (t, policy) => {
    const redis = await connectedRedis(t)
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
    return await ready(new RedisFamilyStore(redis, policy, prefix))
  })
})

t.test('RedisFamilyStore fulfils the FamilyStore contract on a Redis Cluster', async (t) => {
  const cluster = await PrivateCluster.start(t)
  familyStoreContract(t, async (t, policy) => {
    const redis = await connectedCluster(t, cluster)
    return await ready(new RedisFamilyStore(redis, policy, uniquePrefix()))
  })
})

t.test('in Redis: only hashes, every key with a TTL, all keys of a user in one hash slot', async (t) => {
  const { redis, prefix, store, codec } = await setup(t)
  const userId = newUserId()
  const tokens = []
  for (let i = 0; i < 3; i++) {
    const token = codec.mint(userId)
    tokens.push(token)
    await store.create({ userId, email: 'a@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: 'ua', ip: '127.0.0.1' })
  }
  await store.rotate({ userId, familyId: tokens[0]!.familyId, generation: 0, presentedHash: codec.seal(tokens[0]!).digest, successorHash: codec.seal(codec.successor(tokens[0]!)).digest, requestedAtMs: Date.now(), userAgent: 'ua', ip: '127.0.0.1' })

  await store.revoke(userId, tokens[2]!.familyId)

  const keys = await redis.keys(`${prefix}*`)
  t.same(keys.map((k) => k.slice(k.lastIndexOf(':'))).sort(), [':ended', ':fams', `:${tokens[0]!.familyId}`, `:${tokens[1]!.familyId}`].sort(),
    'two live families, their index, and the ended one')
  const slots = new Set<number>()
  for (const key of keys) {
    t.ok(await redis.pttl(key) > 0, `${key.slice(prefix.length)} has a TTL`)
    slots.add(calculateSlot(key))
    t.match(key, `{${userId}}`, 'carries the user hash tag')
  }
  t.equal(slots.size, 1, 'one hash slot: every script runs on Redis Cluster')
  const dump = JSON.stringify(await Promise.all(keys.filter((k) => k.includes(':f:')).map((k) => redis.hgetallBuffer(k))))
  for (const token of [...tokens, codec.successor(tokens[0]!)]) {
    t.notOk(dump.includes(token.secret) || dump.includes(codec.seal(token).value), 'no token is stored in plaintext')
  }
})

t.test('in Redis: after evictions at the cap and a replacing sign-in, every key keeps a TTL and the index lists only live families', async (t) => {
  const { redis, prefix, codec } = await setup(t)
  const store = new RedisFamilyStore(redis, { ...policy, maxFamiliesPerUser: 2 }, prefix)
  const userId = newUserId()
  const create = async (replacing?: string[]) => {
    const token = codec.mint(userId)
    await store.create({ userId, email: 'a@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: 'ua', ip: '127.0.0.1', replacing })
    await sleep(5) // the next one used later: the least recently used is one family, not a tie
    return token.familyId
  }
  const [a, b, c] = [await create(), await create(), await create()]
  // A sign-in in the browser holding c, at the cap: it takes c's place (and its caller then ends c).
  const d = await create([c])
  const user = `${prefix}{${userId}}`
  t.equal(await redis.exists(`${user}:f:${a}`), 0, 'the least recently used evicted')
  t.same((await redis.zrange(`${user}:fams`, 0, -1)).sort(), [b, c, d].sort(), 'and gone from the index')
  const keys = (await redis.keys(`${user}*`)).map((key) => key.slice(user.length)).sort()
  t.same(keys, [':ended', ':fams', `:f:${b}`, `:f:${c}`, `:f:${d}`, ':replacing'].sort(), 'the live families, their index, the ended and the replacing')
  for (const key of keys) t.ok(await redis.pttl(`${user}${key}`) > 0, `${key} has a TTL`)
})

t.test('rotation is one Redis command on the wire', async (t) => {
  const { redis, store, codec } = await setup(t)
  const token = codec.mint(newUserId())
  await store.create({ userId: token.userId, email: 'a@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: '', ip: '' })
  const sent: string[] = []
  const original = redis.sendCommand.bind(redis)
  redis.sendCommand = (command) => { sent.push(command.name); return original(command) }
  await store.rotate({ userId: token.userId, familyId: token.familyId, generation: 0, presentedHash: codec.seal(token).digest, successorHash: codec.seal(codec.successor(token)).digest, requestedAtMs: Date.now(), userAgent: '', ip: '' })
  redis.sendCommand = original
  t.same(sent, ['evalsha'])
})

t.test('a family stays in the compact listpack encoding, even with a long browser user agent', async (t) => {
  const { redis, prefix, store, codec } = await setup(t)
  const token = codec.mint(newUserId())
  const userAgent = clampUserAgent('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 ' + 'x'.repeat(100))
  t.equal(userAgent.length, 128)
  await store.create({ userId: token.userId, email: 'someone@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent, ip: '203.0.113.45' })
  await store.rotate({ userId: token.userId, familyId: token.familyId, generation: 0, presentedHash: codec.seal(token).digest, successorHash: codec.seal(codec.successor(token)).digest, requestedAtMs: Date.now(), userAgent, ip: '203.0.113.45' })
  const key = `${prefix}{${token.userId}}:f:${token.familyId}`
  t.equal(await redis.call('OBJECT', 'ENCODING', key), 'listpack')
  t.equal((await store.list(token.userId))[0]?.userAgent, userAgent, 'the whole 128 characters come back')
})

t.test('a browser user agent is stored compacted in one field; a long one in two, and no stale half stays', async (t) => {
  const { redis, prefix, store, codec } = await setup(t)
  let token = codec.mint(newUserId())
  const key = `${prefix}{${token.userId}}:f:${token.familyId}`
  const browser = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
  const long = clampUserAgent('x'.repeat(200))
  await store.create({ userId: token.userId, email: 'someone@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: browser, ip: '203.0.113.45' })
  const stored = await redis.hget(key, 'u1')
  t.ok(stored !== null && stored.length < 16, `${browser.length} characters stored as ${stored?.length}`)
  t.equal(await redis.hexists(key, 'u2'), 0)
  for (const [userAgent, halves] of [[long, 1], [browser, 0], [long, 1], ['', 0]] as const) {
    await store.rotate({ userId: token.userId, familyId: token.familyId, generation: token.generation, presentedHash: codec.seal(token).digest, successorHash: codec.seal(codec.successor(token)).digest, requestedAtMs: Date.now(), userAgent, ip: '203.0.113.45' })
    token = codec.successor(token)
    t.equal(await redis.hexists(key, 'u2'), halves, `second half after a rotation by a ${userAgent.length}-character agent`)
  }
})

t.test('a user agent stored before compaction lists as it was stored', async (t) => {
  const { redis, prefix, store, codec } = await setup(t)
  const token = codec.mint(newUserId())
  const userAgent = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
  await store.create({ userId: token.userId, email: 'someone@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: '', ip: '203.0.113.45' })
  await redis.hset(`${prefix}{${token.userId}}:f:${token.familyId}`, 'u1', userAgent.slice(0, 64), 'u2', userAgent.slice(64))
  t.equal((await store.list(token.userId))[0]?.userAgent, userAgent)
})

/** A refresh presenting `token`, asked for now, from a client without agent or address. */
function presenting (codec: RefreshTokenCodec, token: RefreshToken): RotateInput {
  return { userId: token.userId, familyId: token.familyId, generation: token.generation, presentedHash: codec.seal(token).digest, successorHash: codec.seal(codec.successor(token)).digest, requestedAtMs: Date.now(), userAgent: '', ip: '' }
}

// A rolling deploy runs the release before beside this one: that release kept when a run of rotations began (b, bt)
// and not when each later token was superseded (bh), and may leave bh behind from an earlier run. Whatever the two
// leave, a token counts from no later than it was superseded.
t.test('times of superseded tokens the release before left are read so that no token outlives its window', async (t) => {
  const { redis, prefix, store, codec } = await setup(t)
  const cases: Array<{ name: string, fields: (now: number) => Record<string, number | string>, rotations: number, presented: number, status: string }> = [
    { name: 'b and bt alone, the run begun 1 s ago', fields: (now) => ({ b: 0, bt: now - 1000 }), rotations: 3, presented: 1, status: 'superseded' },
    { name: 'b and bt alone, the run begun 11 s ago: every token of it counts from then', fields: (now) => ({ b: 0, bt: now - 11_000 }), rotations: 3, presented: 1, status: 'reused' },
    { name: 'bh without b, left when that release ended a run', fields: (now) => ({ bt: now - 11_000, bh: '0:10000' }), rotations: 3, presented: 1, status: 'reused' },
    { name: 'bh of another b, from an earlier run', fields: (now) => ({ b: 0, bt: now - 11_000, bh: '5:10000' }), rotations: 3, presented: 1, status: 'reused' },
    { name: 'bh of this b', fields: (now) => ({ b: 0, bt: now - 11_000, bh: '0:10000' }), rotations: 3, presented: 1, status: 'superseded' },
    { name: 'fewer times in bh than generations (rotated since by that release): the last one given', fields: (now) => ({ b: 0, bt: now - 11_000, bh: '0:10000' }), rotations: 4, presented: 2, status: 'superseded' }
  ]
  for (const c of cases) {
    let token = codec.mint(newUserId())
    let old = token
    await store.create({ userId: token.userId, email: 'a@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: '', ip: '' })
    for (let i = 0; i < c.rotations; i++) {
      await store.rotate(presenting(codec, token))
      token = codec.successor(token)
      if (token.generation === c.presented) old = token
    }
    const key = `${prefix}{${token.userId}}:f:${token.familyId}`
    const [seconds, micros] = await redis.time()
    await redis.hdel(key, 'b', 'bt', 'bh')
    await redis.hset(key, c.fields(Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)))
    t.equal((await store.rotate(presenting(codec, old))).status, c.status, c.name)
  }
})

t.test('a family keeps no times of superseded tokens it will not read again', async (t) => {
  const { redis, prefix, store, codec } = await setup(t)
  let token = codec.mint(newUserId())
  const key = `${prefix}{${token.userId}}:f:${token.familyId}`
  await store.create({ userId: token.userId, email: 'a@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: '', ip: '' })
  const rotate = async () => {
    await store.rotate(presenting(codec, token))
    token = codec.successor(token)
    return await redis.hmget(key, 'b', 'bt', 'bh')
  }
  const [seconds] = await redis.time()
  t.same(await rotate(), [null, null, null], 'a first rotation: the parent alone was superseded')
  t.match(await rotate(), ['0', /^\d+$/, null], 'a second within the window: one time kept')
  t.match(await rotate(), ['0', /^\d+$/, /^0:\d+$/], 'a third: two')
  // The first two kept fall out of the window: one left, so no bh.
  await redis.hset(key, 'bt', Number(seconds) * 1000 - 20_000, 'bh', '0:0')
  t.match(await rotate(), ['2', /^\d+$/, null], 'a fourth, the two before it out of the window: one kept, no bh left')
  // As the release before leaves a run it ended: bh without b.
  await redis.hdel(key, 'b', 'bt')
  await redis.hset(key, 'bh', '2:0', 'r', Number(seconds) * 1000 - 20_000)
  t.same(await rotate(), [null, null, null], 'a rotation outside the window drops what was left')
})

t.test('a family keeping all the times it keeps, at the longest grace window, stays in the compact listpack encoding', async (t) => {
  const { redis, prefix, codec } = await setup(t)
  const store = new RedisFamilyStore(redis, { ...policy, reuseGraceSeconds: 300, idleTtlSeconds: 3600, absoluteTtlSeconds: 86_400 }, prefix)
  let token = codec.mint(newUserId())
  const key = `${prefix}{${token.userId}}:f:${token.familyId}`
  const userAgent = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
  await store.create({ userId: token.userId, email: 'someone@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent, ip: '203.0.113.45' })
  for (let i = 0; i < 9; i++) {
    await store.rotate({ ...presenting(codec, token), userAgent, ip: '203.0.113.45' })
    token = codec.successor(token)
  }
  // As if the window's 300 s had been spread over the run: seven gaps of 42 s, the widest the window holds.
  const [seconds] = await redis.time()
  const now = Number(seconds) * 1000
  await redis.hset(key, 'b', 1, 'bt', now - 294_000, 'bh', `1:${Array(6).fill(42_000).join(',')}`, 'r', now - 1)
  await store.rotate({ ...presenting(codec, token), userAgent, ip: '203.0.113.45' })
  t.match(await redis.hmget(key, 'b', 'bh'), ['1', /^1:(\d{5},){6}\d{5}$/], 'eight times kept: the seven before and the one this rotation superseded')
  t.equal(await redis.call('OBJECT', 'ENCODING', key), 'listpack', 'a hash in the compact encoding')
})
