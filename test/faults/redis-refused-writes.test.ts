import t from 'tap'
import { buildApp, capturedLogs, login, PASSWORD, refresh, registerAndLogin } from '../helpers/app.js'
import { PrivateRedis } from '../helpers/redis-server.js'

// A store that takes some writes and refuses others (an ACL: read-only keys, answered NOPERM), as a route's commands
// meet an outage one at a time: what a route has done before its 503 must leave the account safe. And a store that
// refuses every write it is sent, being full.

const NEW_PASSWORD = 'a brand new passphrase 9'

t.test('a password change answered 503 never leaves the password changed with the other sessions alive', async (t) => {
  const redis = await PrivateRedis.start(t)
  const app = await buildApp(t, { env: { REDIS_URL: redis.url } })
  const prefix = app.config.redis!.keyPrefix
  // Every key of the service writable, but those of `readOnly`: the accounts' (user:) or the sessions' ({userId}).
  const writableAllBut = (readOnly: 'user:' | '{') => redis.command('ACL', 'SETUSER', 'default', 'resetkeys',
    ...['user:', 'failures:', 'revoked-sids', 'rl:', '{'].map((kind) => `${kind === readOnly ? '%R' : ''}~${prefix}${kind}*`))

  const owner = await registerAndLogin(app)
  const thief = await login(app, owner.email, 'Thief')
  const [userId, thiefFamily] = thief.refreshToken.split('.') as [string, string]
  const storedHash = async () => (await app.users.findByEmail(owner.email))?.passwordHash
  const before = await storedHash()
  const change = (currentPassword: string) => app.inject({
    method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${owner.accessToken}` }, payload: { currentPassword, newPassword: NEW_PASSWORD }
  })

  await writableAllBut('{')
  const sessionsRefused = await change(PASSWORD)
  t.same([sessionsRefused.statusCode, sessionsRefused.json().code], [503, 'AUTH_STORE_UNAVAILABLE'], 'sessions cannot be ended: 503')
  t.equal(await storedHash(), before, 'and the password is unchanged, not changed with the thief still signed in')
  t.ok(await app.familyStore.isLive(userId, thiefFamily), 'the other session lives, as before the request')

  await writableAllBut('user:')
  const accountRefused = await change(PASSWORD)
  t.same([accountRefused.statusCode, accountRefused.json().code], [503, 'AUTH_STORE_UNAVAILABLE'], 'the account cannot be written: 503')
  t.equal(await storedHash(), before, 'the password is unchanged')
  t.notOk(await app.familyStore.isLive(userId, thiefFamily), 'the other sessions already ended: they end before the password changes')

  await redis.command('ACL', 'SETUSER', 'default', 'allkeys')
  const retried = await change(PASSWORD)
  t.equal(retried.statusCode, 204, 'the retry, with the same current password, changes it', { body: retried.body })
  t.not(await storedHash(), before)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: NEW_PASSWORD } })).statusCode, 200, 'the new password signs in')
})

t.test('a full Redis (maxmemory reached, noeviction) refuses the writes: sign-ins, registrations and refreshes answer 503, logged with its answer; the rest is served', async (t) => {
  const logs = capturedLogs()
  const redis = await PrivateRedis.start(t)
  const app = await buildApp(t, { env: { REDIS_URL: redis.url, LOG_LEVEL: 'warn' }, logStream: logs.stream })
  const owner = await registerAndLogin(app)
  const me = () => app.inject({ url: '/me', headers: { authorization: `Bearer ${owner.accessToken}` } })

  await redis.fill()
  const refused = [
    await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: PASSWORD } }),
    await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `other-${owner.email}`, password: PASSWORD } }),
    await refresh(app, owner.cookie)
  ]
  t.same(refused.map((res) => [res.statusCode, res.json().code]), Array(3).fill([503, 'AUTH_STORE_UNAVAILABLE']), 'each write refused: 503')
  t.equal(logs.lines().filter((l) => /^OOM command not allowed when used memory > 'maxmemory'/.test((l.err as { message?: string } | undefined)?.message ?? '')).length, 3,
    'each logged with what Redis answered')
  t.equal((await me()).statusCode, 200, 'an access token is still served')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'and the instance is ready: Redis answers, and would refuse every instance alike')

  await redis.makeRoom()
  t.equal((await refresh(app, owner.cookie)).statusCode, 200, 'once it has room, the refresh cookie refused meanwhile works')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: PASSWORD } })).statusCode, 200, 'and so does a sign-in')
})
