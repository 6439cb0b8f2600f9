import { chmodSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { admin, adminOnTerminal, deployment, me, signIn } from '../helpers/admin.js'
import { buildApp, login, nextRefreshCookie, PASSWORD, refresh, registerAndLogin, SHARED_REDIS_URL, sidOf, subOf, testEnv, uniqueEmail, uniquePrefix } from '../helpers/app.js'
import { within } from '../helpers/poll.js'

// The operators' command (src/admin.ts) with a store that answers. When the store fails it: test/faults/admin-store.test.ts.

// Each command is a process of its own, starting the service's app: about 1.5 minutes in all, nearer the runner's
// 2 minutes per file when another suite runs beside it.
t.setTimeout(240_000)

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

  await t.test('an account deleted meanwhile is said to be, exiting 1: no password is set, and no account made', async (t) => {
    const email = uniqueEmail()
    const first = await registerAndLogin(a, email)
    const command = admin(env, ['set-password', email], `${chosen}\n`)
    await within(10_000, async () => (await me(a, first.accessToken)).statusCode === 401, 'the first ending')
    t.ok(await a.users.delete(subOf(first.accessToken)), 'the account deleted under the command')
    const ran = await command
    t.same([ran.code, ran.stdout], [1, ''])
    t.equal(ran.stderr, `admin: the account of ${email} was deleted meanwhile\n`, 'said in one line, no stack')
    t.equal(await a.users.findByEmail(email), null, 'no account holds the email')
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
    [`${'x1'.repeat(65)}\n`, /first line has 130\n$/],
    // Characters, as the HTTP routes count them, not UTF-16 code units (15 here).
    ['short 🔑🔒🔓🔐!\n', /first line has 11\n$/]
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

t.test('set-password run on a terminal refuses to read the password there, where it would be echoed: nothing changes', async (t) => {
  const { a, env } = await deployment(t)
  const email = uniqueEmail()
  const session = await registerAndLogin(a, email)
  const { code, stdout: output } = await adminOnTerminal(env, ['set-password', email])
  t.equal(code, 1, output)
  t.match(output, /^admin: set-password reads the new password from standard input, and will not have it echoed on a terminal: pipe it in/)
  t.equal((await refresh(a, session.cookie)).statusCode, 200, 'the session lives on')
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
  const secret = env.REFRESH_TOKEN_SECRET as string
  const dir = t.testdir({ 'not-ours.json': '{}', [secret]: { 'not-ours.json': '{}' } })
  const [notOurs, namedAsSecret] = [join(dir, 'not-ours.json'), join(dir, secret, 'not-ours.json')]
  chmodSync(notOurs, 0o600)
  chmodSync(namedAsSecret, 0o600)
  const cases: Array<[string, Record<string, string | undefined>, string[], RegExp]> = [
    ['no command', env, [], /^admin: usage:\n {2}admin sessions <email> .*\n {2}admin sign-out <email> .*\n {2}admin set-password <email> .*\n {2}admin delete-account <email> /],
    ['an unknown command', env, ['delete', 'a@example.com'], /^admin: usage:/],
    ['an unknown option', env, ['sign-out', '--force', 'a@example.com'], /^admin: Unknown option '--force'.*\nusage:/s],
    ['an extra argument', env, ['sign-out', 'a@example.com', 'b@example.com'], /^admin: usage:/],
    ['no such account', env, ['sign-out', uniqueEmail()], /^admin: no account has the email user\d+\.[0-9a-f]+@example\.com\n$/],
    ['not an email', env, ['sign-out', 'not-an-email'], /^admin: "not-an-email" is not an email address\n$/],
    ['no Redis: the embedded store is the running process\'s own', { ...env, REDIS_URL: undefined }, ['sign-out', 'a@example.com'], /^admin: REDIS_URL is not set: the embedded store lives inside the running service's process/],
    ['no Redis, its address given as other services read it', { ...env, REDIS_URL: undefined, REDIS_HOST: '127.0.0.1' }, ['sign-out', 'a@example.com'],
      /^admin: REDIS_URL is not set: the embedded store .*\. Also: REDIS_HOST is set but not read: no variable of the service has that name; its REDIS_ variables are REDIS_URL, /],
    ['a configuration the service would refuse', { ...env, NODE_ENV: 'production', JWT_SECRET: undefined, ARGON2_MEMORY_COST: '47104' }, ['sign-out', 'a@example.com'], /^admin: the configuration is refused: production needs signing keys/],
    ['a start a plugin refuses: a development secrets file that is not the service\'s', { ...env, JWT_SECRET: undefined, DEV_SECRETS_FILE: notOurs },
      ['sign-out', 'a@example.com'], /^admin: the service refuses to start: JWT_KEYS is not set and .*not-ours\.json cannot keep a generated one .*\n$/],
    ['a refusal that names a secret: the file in a directory named as the refresh secret', { ...env, JWT_SECRET: undefined, DEV_SECRETS_FILE: namedAsSecret },
      ['sign-out', 'a@example.com'], /^admin: the service refuses to start: JWT_KEYS is not set and .*\/\[redacted\]\/not-ours\.json cannot keep /]
  ]
  for (const [what, environment, args, message] of cases) {
    const ran = await admin(environment, args)
    t.same([ran.code, ran.stdout], [1, ''], what)
    t.match(ran.stderr, message, what)
    t.notMatch(ran.stderr, /\n\s+at /, `${what}: no stack`)
    t.notOk(ran.stderr.includes(secret), `${what}: no secret`)
  }
  const help = await admin({}, ['--help'])
  t.same([help.code, help.stderr], [0, ''], '--help is no failure, and needs no configuration')
  t.match(help.stdout, /^usage:\n {2}admin sessions <email> /, 'its usage on standard output')
})
