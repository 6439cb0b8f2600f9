import t, { type Test } from 'tap'
import { admin, deployment, me, signIn } from '../helpers/admin.js'
import { buildApp, linkToSharedRedis, PASSWORD, refresh, registerAndLogin, subOf, testEnv, uniqueEmail, uniquePrefix } from '../helpers/app.js'
import { PrivateRedis } from '../helpers/redis-server.js'
import { fromNth, script } from '../helpers/tcp-link.js'

// The operators' command (src/admin.ts) when the store fails it: down at start, refusing its credentials, cut off
// midway, or cut off as it tells the other instances. Its behaviour with a store that answers: test/src/admin.test.ts.

/**
 * `sign-out` of an account signed in on an instance, run over a link to the store that cuts the broadcast of the
 * ended sessions (src/access-revocations.ts records them in <prefix>revoked-sids, where the other instances read them,
 * once the sessions have ended): the first one, or `every` one.
 */
async function signOutWithBroadcastCut (t: Test, every: boolean, logLevel = 'silent') {
  const { b, env } = await deployment(t)
  const email = uniqueEmail()
  const laptop = await registerAndLogin(b, email)
  const link = await linkToSharedRedis(t)
  const cut = link.cutAt((sent) => /\bzadd\r\n/i.test(sent) && sent.includes(`${env.REDIS_KEY_PREFIX as string}revoked-sids`), { every })
  const ran = await admin({ ...env, REDIS_URL: `redis://127.0.0.1:${link.port}`, LOG_LEVEL: logLevel }, ['sign-out', email])
  t.ok(cut(), 'the link was cut as the revocation was broadcast')
  return { b, laptop, ran }
}

t.test('the other instances not told at once (the store cut off as the revocation is broadcast), it waits until they are', async (t) => {
  const { b, laptop, ran } = await signOutWithBroadcastCut(t, false, 'info')
  t.equal(ran.code, 0, ran.stderr)
  t.same(JSON.parse(ran.stdout), { command: 'sign-out', userId: subOf(laptop.accessToken), sessionsEnded: 1 }, 'it answers once the retry got through')
  t.match(ran.stderr, /could not broadcast access-token revocation; retrying[\s\S]*access-token revocation broadcast on retry/, 'saying so in its log, on standard error')
  t.equal((await me(b, laptop.accessToken)).statusCode, 401, 'by which time the other instance refuses the access token')
})

t.test('the other instances never told (every broadcast cut off), it says their access tokens live on, exiting 1', async (t) => {
  const { b, laptop, ran } = await signOutWithBroadcastCut(t, true)
  t.same([ran.code, ran.stdout], [1, ''])
  t.match(ran.stderr, /^admin: the sessions were ended, but the other instances could not be told: their access tokens work until they expire \(ACCESS_TOKEN_TTL, [0-9]+ s\)\n$/,
    'one line on standard error: what was done, and what was not')
  t.equal((await refresh(b, laptop.cookie)).statusCode, 401, 'the session has ended')
})

/** delete-account with the store cut off as it ends the sessions a second time: once, or at every try. */
async function deleteWithSecondEndingCut (t: Test, every: boolean, extraEnv: Record<string, string> = {}) {
  const { b, env } = await deployment(t)
  const email = uniqueEmail()
  const laptop = await registerAndLogin(b, email)
  const link = await linkToSharedRedis(t)
  const cut = link.cutAt(fromNth(2, script('family-revoke-all')), { every })
  const ran = await admin({ ...env, ...extraEnv, REDIS_URL: `redis://127.0.0.1:${link.port}` }, ['delete-account', email])
  t.ok(cut(), 'the link was cut as the sessions were ended again')
  t.equal((await refresh(b, laptop.cookie)).statusCode, 401, 'the session has ended')
  t.equal((await signIn(b, email, PASSWORD)).statusCode, 401, 'and the account is gone')
  return { laptop, ran }
}

t.test('delete-account whose second ending of the sessions the store takes on its retry answers then, not once every unanswered write has settled', async (t) => {
  // A command timeout of 3 s: a write the store did not answer may run up to 24 s late, which the retry need not wait for.
  const { laptop, ran } = await deleteWithSecondEndingCut(t, false, { REDIS_COMMAND_TIMEOUT_MS: '3000' })
  t.equal(ran.code, 0, ran.stderr)
  t.same(JSON.parse(ran.stdout), { command: 'delete-account', userId: subOf(laptop.accessToken), sessionsEnded: 1 })
})

t.test('delete-account whose second ending of the sessions the store never takes (every try cut off) says so, exiting 1; the account is gone', async (t) => {
  const { ran } = await deleteWithSecondEndingCut(t, true)
  t.same([ran.code, ran.stdout], [1, ''])
  t.match(ran.stderr, /^admin: the sessions were ended, but the store did not take their second ending: a session a sign-in began meanwhile lives on until it expires: REFRESH_IDLE_TTL \([0-9]+ s\) unused, REFRESH_ABSOLUTE_TTL \([0-9]+ s\) at most\n$/,
    'one line on standard error: what was done, and what was not')
})

t.test('with the store down it stops at start, saying nothing was done and to run it again', async (t) => {
  const redis = await PrivateRedis.start(t)
  const email = uniqueEmail()
  const app = await buildApp(t, { env: { REDIS_URL: redis.url } })
  await registerAndLogin(app, email)
  await redis.kill()
  const started = performance.now()
  const ran = await admin(testEnv({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '300', LOG_LEVEL: 'warn' }), ['sign-out', email])
  t.same([ran.code, ran.stdout], [1, ''])
  t.match(ran.stderr, /"msg":"redis connection error"[^\n]*\n[\s\S]*\nadmin: Redis is not ready: nothing was done; run the command again once it is\n$/, 'the log says why, and the last line what to do')
  t.ok(performance.now() - started < 15_000, 'it does not wait for Redis to come back')
})

t.test('with credentials Redis refuses, the log names REDIS_URL, and nothing was done', async (t) => {
  const redis = await PrivateRedis.start(t)
  const ran = await admin(testEnv({ REDIS_URL: `redis://:not-the-password@127.0.0.1:${redis.port}`, LOG_LEVEL: 'warn' }), ['sign-out', uniqueEmail()])
  t.same([ran.code, ran.stdout], [1, ''])
  t.match(ran.stderr, /"msg":"redis refused the credentials: the server refused the user name and password in REDIS_URL[^\n]*\n[\s\S]*\nadmin: Redis is not ready: nothing was done; run the command again once it is\n$/, 'the log says why, and the last line what to do')
  t.notOk(ran.stderr.includes('not-the-password'), 'the password is not in it')
})

t.test('with the store cut off once it is under way, it says part of it may have been done, and to run it again', async (t) => {
  const { b, env } = await deployment(t)
  const email = uniqueEmail()
  const laptop = await registerAndLogin(b, email)
  const link = await linkToSharedRedis(t)
  const cut = link.cutAt(script('family-revoke-all'), { every: true })
  const ran = await admin({ ...env, REDIS_URL: `redis://127.0.0.1:${link.port}`, REDIS_COMMAND_TIMEOUT_MS: '300' }, ['sign-out', email])
  t.ok(cut(), 'the link was cut as the sessions were ended')
  t.same([ran.code, ran.stdout], [1, ''])
  t.match(ran.stderr, /^admin: the store did not answer \(Redis down or too slow\): nothing was done, or part of it; run the command again once it answers\n$/, 'one line: maybe part of it, and to run it again')
  const again = await admin(env, ['sign-out', email])
  t.equal(again.code, 0, `run again once the store answers, it succeeds: ${again.stderr}`)
  t.equal((await refresh(b, laptop.cookie)).statusCode, 401, 'run again, it ends the session')
})

/** An account signed in on an instance whose Redis is the test's own, to fill or edit, and the command's environment. */
async function accountOnPrivateRedis (t: Test, logLevel: string) {
  const redis = await PrivateRedis.start(t)
  const prefix = uniquePrefix()
  const app = await buildApp(t, { prefix, env: { REDIS_URL: redis.url } })
  const email = uniqueEmail()
  const laptop = await registerAndLogin(app, email)
  return { redis, app, email, laptop, env: testEnv({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, LOG_LEVEL: logLevel }) }
}

t.test('with a store that refuses the writes (out of memory), it says so, not that the store did not answer; run again once it takes them, it succeeds', async (t) => {
  const { redis, app, email, laptop, env } = await accountOnPrivateRedis(t, 'silent')
  const chosen = 'an operator-set passphrase, long'
  await redis.fill()
  const ran = await admin(env, ['set-password', email], `${chosen}\n`)
  t.same([ran.code, ran.stdout], [1, ''])
  t.match(ran.stderr, /^admin: the store refused it \(OOM command not allowed when used memory > 'maxmemory'[^\n]*\): nothing was done, or part of it; run the command again once it takes it\n$/,
    'one line: what Redis answered, maybe part of it done, and when to run it again')
  t.equal((await signIn(app, email, chosen)).statusCode, 503, 'the new password was not set (the sign-in is refused by the store too)')

  await redis.makeRoom()
  const again = await admin(env, ['set-password', email], `${chosen}\n`)
  t.equal(again.code, 0, `run again once the store takes writes, it succeeds: ${again.stderr}`)
  t.equal((await signIn(app, email, chosen)).statusCode, 200, 'the new password signs in')
  t.equal((await refresh(app, laptop.cookie)).statusCode, 401, 'and the session from before is ended')
})

t.test('a record the service did not write (a session\'s time edited by hand) stops it with one line, the error logged as the service logs one', async (t) => {
  const { redis, email, env } = await accountOnPrivateRedis(t, 'warn')
  const [familyKey] = await redis.command('KEYS', '*:f:*') as string[]
  await redis.command('HSET', familyKey as string, 'r', 'not a time')
  const ran = await admin(env, ['sessions', email])
  t.same([ran.code, ran.stdout], [1, ''])
  const [logged, said, ...rest] = ran.stderr.split('\n').filter((line) => line.startsWith('{"level":60') || line.startsWith('admin:'))
  t.same(rest, [], 'one fatal line, and one of its own')
  t.match(JSON.parse(logged ?? '{}'), { msg: 'the command stopped on an unexpected error', err: { type: 'RangeError', message: 'Invalid time value', stack: /^RangeError: / } },
    'the log says which error, with its stack')
  t.equal(said, 'admin: an unexpected error stopped it (logged above, at level fatal): nothing was done, or part of it', 'and the last line says so')
  t.notMatch(ran.stderr, /\n\s+at /, 'Node printed no error of its own')
  t.notOk(ran.stderr.includes(new URL(redis.url).password), 'the Redis password is nowhere')
  const silent = await admin({ ...env, LOG_LEVEL: 'silent' }, ['sessions', email])
  t.same([silent.code, silent.stderr], [1, 'admin: an unexpected error stopped it (not logged: LOG_LEVEL is silent): nothing was done, or part of it\n'],
    'with the log silenced, the one line says it was not logged')
})
