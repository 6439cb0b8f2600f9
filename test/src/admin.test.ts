import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildApp, linkToSharedRedis, login, nextRefreshCookie, PASSWORD, refresh, registerAndLogin, SHARED_REDIS_URL, sidOf, subOf, testEnv, uniqueEmail, uniquePrefix } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { PrivateRedis } from '../helpers/redis-server.js'
import { fromNth, script } from '../helpers/tcp-link.js'

const ROOT = join(import.meta.dirname, '..', '..')

interface Ran { code: number | null, stdout: string, stderr: string }

/** `npm run admin -- <args>` as its own process, with exactly this environment, `input` on its standard input. */
async function admin (env: Record<string, string | undefined>, args: string[], input: string | Buffer = ''): Promise<Ran> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/admin.ts', ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv })
  let [stdout, stderr] = ['', '']
  child.stdout.on('data', (d) => { stdout += String(d) })
  child.stderr.on('data', (d) => { stderr += String(d) })
  child.stdin.end(input)
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(killer)
  return { code, stdout, stderr }
}

/** Two instances of the service on one Redis, and the environment they run with, which the command is given too. */
async function deployment (t: Test) {
  const prefix = uniquePrefix()
  const [a, b] = [await buildApp(t, { prefix }), await buildApp(t, { prefix })]
  return { a, b, env: testEnv({ REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix }) }
}

const me = (app: Awaited<ReturnType<typeof buildApp>>, accessToken: string) => app.inject({ url: '/me', headers: { authorization: `Bearer ${accessToken}` } })
const signIn = (app: Awaited<ReturnType<typeof buildApp>>, email: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })

t.test('sign-out ends every session of the account: its refresh cookies and, on every instance, its access tokens are refused', async (t) => {
  const { a, b, env } = await deployment(t)
  const email = uniqueEmail()
  const laptop = await registerAndLogin(a, email)
  const phone = await login(a, email, 'phone')
  const bystander = await registerAndLogin(a)

  const listed = await admin(env, ['sessions', email])
  t.equal(listed.code, 0, listed.stderr)
  const { sessions, ...whose } = JSON.parse(listed.stdout) as { sessions: Array<{ id: string, userAgent: string, ip: string, createdAt: string }> }
  t.same(whose, { command: 'sessions', userId: subOf(laptop.accessToken) }, 'sessions: whose')
  t.same(sessions.map((s) => [s.id, s.userAgent, s.ip]).sort(), [[sidOf(laptop.accessToken), 'test-agent', '127.0.0.1'], [sidOf(phone.accessToken), 'phone', '127.0.0.1']].sort(),
    'and each of its sessions, as GET /auth/sessions shows them: id, device, address')
  t.ok(sessions.every((s) => !Number.isNaN(Date.parse(s.createdAt))), 'with ISO dates')

  const ran = await admin(env, ['sign-out', email.toUpperCase()])
  t.equal(ran.code, 0, ran.stderr)
  t.same(JSON.parse(ran.stdout), { command: 'sign-out', userId: subOf(laptop.accessToken), sessionsEnded: 2 }, 'one JSON line: whose, and how many sessions ended')
  t.equal(ran.stderr, '', 'nothing else said')

  await within(2000, async () => (await me(b, laptop.accessToken)).statusCode === 401 && (await me(b, phone.accessToken)).statusCode === 401,
    'the other instance refuses the access tokens')
  t.equal((await me(a, laptop.accessToken)).statusCode, 401, 'so does the first')
  t.same([(await refresh(b, laptop.cookie)).statusCode, (await refresh(a, phone.cookie)).statusCode], [401, 401], 'neither refresh cookie works')
  t.same([(await me(b, bystander.accessToken)).statusCode, (await refresh(b, bystander.cookie)).statusCode], [200, 200], 'another account is untouched')
  t.equal((await signIn(b, email, PASSWORD)).statusCode, 200, 'and the account is not locked: its owner signs in again')
  const after = await admin(env, ['sessions', bystander.email])
  t.equal(JSON.parse(after.stdout).sessions.length, 1, 'sessions of another account: its own one')
})

t.test('set-password sets the password read from standard input and ends every session; the password is never printed', async (t) => {
  const { a, b, env } = await deployment(t)
  const email = uniqueEmail()
  const session = await registerAndLogin(a, email)
  const chosen = 'an operator-set passphrase, long'
  const ran = await admin(env, ['set-password', email], `${chosen}\n`)
  t.equal(ran.code, 0, ran.stderr)
  t.same(JSON.parse(ran.stdout), { command: 'set-password', userId: subOf(session.accessToken), sessionsEnded: 1 })
  t.notOk(`${ran.stdout}${ran.stderr}`.includes(chosen), 'the password is not in what it prints')
  t.equal((await signIn(b, email, PASSWORD)).statusCode, 401, 'the old password no longer signs in')
  t.equal((await signIn(b, email, chosen)).statusCode, 200, 'the new one does, the line ending not part of it')
  t.equal((await refresh(a, session.cookie)).statusCode, 401, 'the session from before is ended')
  await within(2000, async () => (await me(b, session.accessToken)).statusCode === 401, 'and its access token refused everywhere')
})

t.test('set-password wins over what happens to the account while it hashes: a sign-in with the old password, a change of the hash', async (t) => {
  // The command's hash takes long enough (about a second) for the test to act while it computes it.
  const prefix = uniquePrefix()
  const slow = { ARGON2_TIME_COST: '10', ARGON2_MEMORY_COST: '262144' }
  const a = await buildApp(t, { prefix })
  const env = testEnv({ REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix, ...slow })
  const chosen = 'an operator-set passphrase, long'

  await t.test('a session begun with the old password while the new one hashes is ended too', async (t) => {
    const email = uniqueEmail()
    const first = await registerAndLogin(a, email)
    const command = admin(env, ['set-password', email], `${chosen}\n`)
    // Its first ending has run once the session's access token is refused: the command is hashing now.
    await within(10_000, async () => (await me(a, first.accessToken)).statusCode === 401, 'the first ending')
    const late = await signIn(a, email, PASSWORD)
    t.equal(late.statusCode, 200, 'the old password still signs in while the new one hashes')
    const ran = await command
    t.equal(ran.code, 0, ran.stderr)
    t.equal(JSON.parse(ran.stdout).sessionsEnded, 2, 'both sessions counted')
    t.equal((await refresh(a, nextRefreshCookie(a, late))).statusCode, 401, 'the late session is ended')
    t.equal((await signIn(a, email, chosen)).statusCode, 200, 'and the new password is set')
  })

  await t.test('a hash changed meanwhile (a sign-in\'s rehash, the user\'s own change) does not stand in its way', async (t) => {
    const email = uniqueEmail()
    const first = await registerAndLogin(a, email)
    const command = admin(env, ['set-password', email], `${chosen}\n`)
    await within(10_000, async () => (await me(a, first.accessToken)).statusCode === 401, 'the first ending')
    const user = await a.users.findByEmail(email)
    const other = await a.passwordHasher.hash('another passphrase, set meanwhile')
    t.ok(user !== null && await a.users.updatePasswordHash(user.id, user.passwordHash, other), 'the hash changed under the command')
    const ran = await command
    t.equal(ran.code, 0, ran.stderr)
    t.same([(await signIn(a, email, chosen)).statusCode, (await signIn(a, email, 'another passphrase, set meanwhile')).statusCode], [200, 401],
      'the operator\'s password is the one set')
  })
})

t.test('delete-account ends every session and deletes the account, whose email is then free', async (t) => {
  const { a, b, env } = await deployment(t)
  const email = uniqueEmail()
  const session = await registerAndLogin(a, email)
  const ran = await admin(env, ['delete-account', email])
  t.equal(ran.code, 0, ran.stderr)
  t.same(JSON.parse(ran.stdout), { command: 'delete-account', userId: subOf(session.accessToken), sessionsEnded: 1 })
  t.equal((await refresh(a, session.cookie)).statusCode, 401, 'its session is ended')
  await within(2000, async () => (await me(b, session.accessToken)).statusCode === 401, 'and its access token refused everywhere')
  t.equal((await signIn(b, email, PASSWORD)).statusCode, 401, 'its password signs in to nothing')
  t.equal((await admin(env, ['sessions', email])).stderr, `admin: no account has the email ${email}\n`, 'the command finds no account')
  t.equal((await b.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).statusCode, 201, 'and the email registers again')
})

t.test('a password that is refused changes nothing: not the password, not the sessions', async (t) => {
  const { a, env } = await deployment(t)
  const email = uniqueEmail()
  const session = await registerAndLogin(a, email)
  const cases: Array<[string, RegExp]> = [
    ['password1234\n', /^admin: the password is refused: This password is one of the most common ones; choose another\n$/],
    [`${email}\n`, /^admin: the password is refused: A password must not be the account's email address\n$/],
    ['too short\n', /^admin: the password must be 12 to 128 characters; standard input's first line has 9\n$/],
    ['', /^admin: the password must be 12 to 128 characters; standard input's first line has 0\n$/],
    [`${'x1'.repeat(65)}\n`, /first line has 130\n$/]
  ]
  let cookie = session.cookie
  for (const [input, message] of cases) {
    const ran = await admin(env, ['set-password', email], input)
    t.same([ran.code, ran.stdout], [1, ''], `refused: ${JSON.stringify(input.slice(0, 20))}`)
    t.match(ran.stderr, message)
    const rotated = await refresh(a, cookie)
    t.equal(rotated.statusCode, 200, 'the session lives on')
    cookie = nextRefreshCookie(a, rotated)
  }
  t.equal((await signIn(a, email, PASSWORD)).statusCode, 200, 'and the password is the one it was')
})

t.test('set-password takes standard input\'s bytes as UTF-8, and refuses a line that is not', async (t) => {
  const { a, env } = await deployment(t)
  const email = uniqueEmail()
  const session = await registerAndLogin(a, email)
  // From a terminal in Latin-1: "ä" one byte, which read as UTF-8 would be U+FFFD, and any other such byte with it.
  const latin1 = await admin(env, ['set-password', email], Buffer.from('bättery staple horse\n', 'latin1'))
  t.same([latin1.code, latin1.stdout], [1, ''], 'refused')
  t.equal(latin1.stderr, 'admin: standard input\'s first line is not UTF-8 (a terminal in another encoding, such as Latin-1?): its bytes would be set as another password than the one typed\n')
  t.equal((await refresh(a, session.cookie)).statusCode, 200, 'nothing was done: the session lives on')
  for (const guess of ['b\ufffdttery staple horse', 'böttery staple horse']) t.equal((await signIn(a, email, guess)).statusCode, 401, `${guess} does not sign in`)

  const chosen = 'bättery staple hörse'
  const ran = await admin(env, ['set-password', email], Buffer.from(`${chosen}\n`, 'utf8'))
  t.equal(ran.code, 0, ran.stderr)
  t.equal((await signIn(a, email, chosen)).statusCode, 200, 'the same password in UTF-8 is set, and signs in from the API')
})

t.test('what it cannot do it says in one line on standard error, exiting 1, having done nothing', async (t) => {
  const { env } = await deployment(t)
  const notOurs = join(t.testdir({ 'not-ours.json': '{}' }), 'not-ours.json')
  chmodSync(notOurs, 0o600)
  const cases: Array<[string, Record<string, string | undefined>, string[], RegExp]> = [
    ['no command', env, [], /^admin: usage:\n {2}admin sessions <email> .*\n {2}admin sign-out <email> .*\n {2}admin set-password <email> .*\n {2}admin delete-account <email> /],
    ['an unknown command', env, ['delete', 'a@example.com'], /^admin: usage:/],
    ['an unknown option', env, ['sign-out', '--force', 'a@example.com'], /^admin: Unknown option '--force'.*\nusage:/s],
    ['an extra argument', env, ['sign-out', 'a@example.com', 'b@example.com'], /^admin: usage:/],
    ['no such account', env, ['sign-out', uniqueEmail()], /^admin: no account has the email user\d+\.[0-9a-f]+@example\.com\n$/],
    ['not an email', env, ['sign-out', 'not-an-email'], /^admin: "not-an-email" is not an email address\n$/],
    ['no Redis: the embedded store is the running process\'s own', { ...env, REDIS_URL: undefined }, ['sign-out', 'a@example.com'], /^admin: REDIS_URL is not set: the embedded store lives inside the running service's process/],
    ['a configuration the service would refuse', { ...env, NODE_ENV: 'production', JWT_SECRET: undefined }, ['sign-out', 'a@example.com'], /^admin: the configuration is refused: production needs signing keys/],
    ['a start a plugin refuses: a development secrets file that is not the service\'s', { ...env, JWT_SECRET: undefined, DEV_SECRETS_FILE: notOurs },
      ['sign-out', 'a@example.com'], /^admin: the service refuses to start: JWT_KEYS is not set and .*not-ours\.json cannot keep a generated one .*\n$/]
  ]
  for (const [what, environment, args, message] of cases) {
    const ran = await admin(environment, args)
    t.same([ran.code, ran.stdout], [1, ''], what)
    t.match(ran.stderr, message, what)
    t.notMatch(ran.stderr, /\n\s+at /, `${what}: no stack`)
  }
  const help = await admin({}, ['--help'])
  t.same([help.code, help.stderr], [0, ''], '--help is no failure, and needs no configuration')
  t.match(help.stdout, /^usage:\n {2}admin sessions <email> /, 'its usage on standard output')
})

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
