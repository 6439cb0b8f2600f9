import t, { type Test } from 'tap'
import { RedisUserDirectory } from '../../src/redis-user-directory.js'
import { connectedCluster, connectedRedis, deleteKeys, SHARED_REDIS_URL, uniquePrefix } from '../helpers/app.js'
import { PrivateCluster } from '../helpers/redis-server.js'
import { userDirectoryContract } from './user-directory.contract.js'

/** A directory on the shared Redis under a prefix of its own, removed after the test. */
async function setup (t: Test) {
  const redis = await connectedRedis(t)
  const prefix = uniquePrefix()
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  return { redis, prefix, users: new RedisUserDirectory(redis, prefix) }
}

t.test('RedisUserDirectory fulfils the UserDirectory contract', async (t) => {
  userDirectoryContract(t, async (t) => (await setup(t)).users)
})

t.test('RedisUserDirectory fulfils the UserDirectory contract on a Redis Cluster', async (t) => {
  const cluster = await PrivateCluster.start(t)
  userDirectoryContract(t, async (t) => {
    const redis = await connectedCluster(t, cluster)
    return new RedisUserDirectory(redis, uniquePrefix())
  })
})

t.test('in Redis: two keys per account, no email in a key name, no pointer left by a lost race', async (t) => {
  const { redis, prefix, users } = await setup(t)
  const email = 'someone.private@example.com'
  const results = await Promise.all(Array.from({ length: 10 }, () => users.create(email, 'hash')))
  const winner = results.find((r) => r !== null)!
  const keys = (await redis.keys(`${prefix}*`)).map((k) => k.slice(prefix.length)).sort()
  t.same(keys, [`user:email:${keys[0]!.slice('user:email:'.length)}`, `user:id:${winner.id}`], 'the account and its id pointer')
  t.notOk(keys.some((k) => k.includes('someone') || k.includes('example.com')), 'a key listing shows no address')
})

t.test('an id pointer that does not lead back to its own account is no account', async (t) => {
  const { redis, prefix, users } = await setup(t)
  const victim = (await users.create('victim@example.com', 'victim-hash'))!
  const victimAccountKey = await redis.get(`${prefix}user:id:${victim.id}`)
  // What a failed registration can leave (the pointer is written before the account), or a pointer
  // to someone else's account: neither may answer as an account for that id.
  await redis.set(`${prefix}user:id:dangling0000000000000`, `${prefix}user:email:nothing-here`)
  await redis.set(`${prefix}user:id:crossed00000000000000`, victimAccountKey!)
  t.equal(await users.findById('dangling0000000000000'), null)
  t.equal(await users.findById('crossed00000000000000'), null)
  t.equal(await users.updatePasswordHash('dangling0000000000000', 'victim-hash', 'x'), false)
  t.equal(await redis.exists(`${prefix}user:email:nothing-here`), 0, 'updating through a dangling pointer writes nothing')
  t.equal(await users.updatePasswordHash('crossed00000000000000', 'victim-hash', 'attacker-hash'), false)
  t.equal((await users.findById(victim.id))?.passwordHash, 'victim-hash', 'nor into the account a crossed pointer leads to')
  t.equal(await users.delete('crossed00000000000000'), false, 'nor deleting through it')
  t.same(await users.findById(victim.id), { id: victim.id, email: 'victim@example.com', passwordHash: 'victim-hash' }, 'the account it leads to stays')
  t.equal(await redis.exists(`${prefix}user:id:crossed00000000000000`), 0, 'and the crossed pointer is gone')
  t.equal(await users.delete('dangling0000000000000'), false, 'a dangling one: nothing to delete, and it goes too')
  t.equal(await redis.exists(`${prefix}user:id:dangling0000000000000`), 0)
})
