import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildApp, fastAndSlowInstances, listenOnLoopback, login, PASSWORD, refresh, registerAndLogin, signedInWhileHeld, storedHash, type LoggedIn } from '../../helpers/app.js'
import { within } from '../../helpers/poll.js'
import { unansweredRequest } from '../../helpers/raw-http.js'
import { script } from '../../helpers/tcp-link.js'

for (const store of ['redis', 'memory'] as const) {
  t.test(`POST /auth/password refuses a new password on the blocklist, and changes nothing (${store} store)`, async (t) => {
    const app = await buildApp(t, { store })
    const owner = await registerAndLogin(app)
    const other = await login(app, owner.email)
    const change = (currentPassword: string, newPassword: string) =>
      app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${owner.accessToken}` }, payload: { currentPassword, newPassword } })

    const weak = await change(PASSWORD, 'password1234')
    t.same([weak.statusCode, weak.json().code], [400, 'AUTH_WEAK_PASSWORD'])
    t.match(weak.json().message, /most common/)
    t.equal((await change(PASSWORD, owner.email)).json().code, 'AUTH_WEAK_PASSWORD', 'nor the email address')
    const same = await change(PASSWORD, PASSWORD)
    t.same([same.statusCode, same.json().code, same.json().message], [400, 'AUTH_WEAK_PASSWORD', 'The new password is the current one; choose another'],
      'nor the current password: a change that changes nothing, and would let whoever else knows it sign in again')
    const wrong = await change('not the password at all', 'password1234')
    t.same([wrong.json().code, wrong.headers['www-authenticate']], ['AUTH_INVALID_CREDENTIALS', undefined],
      'the current password is checked first (a stolen access token learns nothing more), and its refusal is no Bearer challenge')

    t.equal((await refresh(app, other.cookie)).statusCode, 200, 'the other session lives on')
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: PASSWORD } })).statusCode, 200, 'the password is unchanged')
    t.equal((await change(PASSWORD, `${PASSWORD} `)).statusCode, 204, 'one character more is another password')
    t.equal((await change(`${PASSWORD} `, PASSWORD)).statusCode, 204, 'and the old one may come back after another')
  })

  t.test(`two changes at once from one session: one is made, the other refused, and the password is the one made (${store} store)`, async (t) => {
    const app = await buildApp(t, { store })
    const owner = await registerAndLogin(app)
    const newPasswords = ['the first new passphrase 1', 'the second new passphrase 2']
    const answers = await Promise.all(newPasswords.map((newPassword) =>
      app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${owner.accessToken}` }, payload: { currentPassword: PASSWORD, newPassword } })))
    t.same(answers.map((res) => res.statusCode).sort(), [204, 401], 'the second to write finds the password it was sent no longer the current one')
    t.equal(answers.find((res) => res.statusCode === 401)?.json().code, 'AUTH_INVALID_CREDENTIALS')
    const signIn = async (password: string) => (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password } })).statusCode
    t.same(await Promise.all(newPasswords.map(signIn)), answers.map((res) => res.statusCode === 204 ? 200 : 401), 'the change answered 204 set the password')
  })
}

t.test('a rehash of the current password landing while the new one is hashed does not fail the change', async (t) => {
  // Where the account began: weak parameters (the test default). Where the change is made: it hashes slowly, one
  // at a time. And an instance with stronger parameters than the stored hash's, whose logins upgrade it (a rolling
  // deploy of new parameters).
  const { prefix, fast: weak, slow, owner: caller } = await fastAndSlowInstances(t)
  const upgrading = await buildApp(t, { prefix, env: { ARGON2_TIME_COST: '2' } })
  const stored = () => storedHash(weak, caller.email)
  t.match(await stored(), /,t=1\$/, 'registered with the weak parameters')

  const newPassword = 'a brand new passphrase 9'
  let answeredAt = 0
  const change = slow.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${caller.accessToken}` }, payload: { currentPassword: PASSWORD, newPassword } })
    .then((res) => { answeredAt = performance.now(); return res })
  await within(2000, async () => slow.passwordHasher.running > 0, 'the change is hashing')
  const other = await login(upgrading, caller.email)
  await within(2000, async () => /,t=2\$/.test(await stored()), 'the login elsewhere upgraded the hash')
  const rehashedAt = performance.now()
  const res = await change
  t.ok(rehashedAt < answeredAt, 'the rehash landed while the change was under way')
  t.equal(res.statusCode, 204, 'the change is made over the rehashed password', { body: res.body })
  t.equal((await weak.inject({ method: 'POST', url: '/auth/login', payload: { email: caller.email, password: newPassword } })).statusCode, 200, 'the new password signs in')
  t.equal((await weak.inject({ method: 'POST', url: '/auth/login', payload: { email: caller.email, password: PASSWORD } })).statusCode, 401, 'the old one no longer')
  t.equal((await refresh(upgrading, other.cookie)).statusCode, 401, 'and the session begun elsewhere with it ended')
})

t.test('a password change whose client hangs up while the new password is hashed changes nothing: the retry goes through', async (t) => {
  // Registered with the weak test parameters, so that on the slow instance the current password verifies at once
  // and the new one hashes for long.
  const { fast: weak, slow, owner: caller } = await fastAndSlowInstances(t)
  const port = await listenOnLoopback(slow)
  const payload = { currentPassword: PASSWORD, newPassword: 'a brand new passphrase 9' }
  const headers = { authorization: `Bearer ${caller.accessToken}` }
  const impatient = unansweredRequest(port, '/auth/password', { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(payload) })
  await within(5000, async () => slow.passwordHasher.running === 1, 'the change is hashing')
  // Past the current password's verification (milliseconds at the weak parameters): a client gone during it would
  // have its new password's hash dropped unstarted, a case the hasher's own tests cover.
  await sleep(100)
  impatient.hangUp()
  // The retry's hashes wait behind that one: had the abandoned change been made, its current password would be stale.
  const retry = await slow.inject({ method: 'POST', url: '/auth/password', headers, payload })
  t.equal(retry.statusCode, 204, 'the retry, with the same current password, changes it', { body: retry.body })
  t.equal((await weak.inject({ method: 'POST', url: '/auth/login', payload: { email: caller.email, password: payload.newPassword } })).statusCode, 200, 'the new password signs in')
})

t.test('a password change whose session ends while the new password is hashed is refused for its token, and changes nothing', async (t) => {
  const { fast: weak, slow, owner: caller } = await fastAndSlowInstances(t)
  const newPassword = 'a brand new passphrase 9'
  const change = slow.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${caller.accessToken}` }, payload: { currentPassword: PASSWORD, newPassword } })
  await within(2000, async () => slow.passwordHasher.running > 0, 'the change is hashing')
  t.equal((await weak.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: caller.cookie } })).statusCode, 204, 'its session is signed out meanwhile')
  const res = await change
  t.same([res.statusCode, res.json().code, res.headers['www-authenticate']], [401, 'AUTH_TOKEN_INVALID', 'Bearer error="invalid_token"'],
    'refused as its access token is, with the challenge that tells a client to renew it (and not a password it sent)')
  t.equal((await weak.inject({ method: 'POST', url: '/auth/login', payload: { email: caller.email, password: PASSWORD } })).statusCode, 200, 'the old password still signs in')
})

t.test('a sign-in with the old password answered while the password changes, the other sessions already ended, has its session ended by the change', async (t) => {
  // The change held as it writes the new password: the other sessions ended, the old password still the one.
  const { other, owner: caller, late, answer } = await signedInWhileHeld(t, script('user-set-hash'), (app, caller) =>
    app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${caller.accessToken}` }, payload: { currentPassword: PASSWORD, newPassword: 'a brand new passphrase 9' } }))
  t.equal(answer.statusCode, 204, 'the password is changed')
  t.equal((await refresh(other, late.cookie)).statusCode, 401, 'and the session that sign-in began has ended')
  t.equal((await refresh(other, caller.cookie)).statusCode, 200, 'the caller\'s is kept')
})

/** `POST /auth/password` from the session `s`, to a new password. */
const changeFrom = (app: FastifyInstance, s: LoggedIn, currentPassword: string) =>
  app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${s.accessToken}` }, payload: { currentPassword, newPassword: 'a brand new passphrase 9' } })

for (const store of ['redis', 'memory'] as const) {
  t.test(`the guesses made with a stolen access token stop that session, not the owner's own change from another device (${store} store)`, async (t) => {
    const app = await buildApp(t, { store, env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '3/900', RATE_LIMIT_LOGIN_ACCOUNT: '5/900' } })
    const owner = await registerAndLogin(app, undefined, 'laptop')
    const stolen = await login(app, owner.email, 'a device whose token was stolen')
    const change = (s: LoggedIn, currentPassword: string) => changeFrom(app, s, currentPassword)
    const guesses = []
    for (let guess = 1; guess <= 4; guess++) guesses.push((await change(stolen, `a wrong guess number ${guess}`)).statusCode)
    t.same(guesses, [401, 401, 401, 429], 'three guesses with the stolen token, then 429 for that session')
    const limited = await change(stolen, PASSWORD)
    t.same([limited.statusCode, limited.json().code], [429, 'RATE_LIMITED'], 'the right password included')
    t.equal((await change(owner, PASSWORD)).statusCode, 204, 'the owner, on another device, changes the password')
    t.equal((await refresh(app, stolen.cookie)).statusCode, 401, 'which ends the stolen session')
  })
}

t.test('the right password clears the mistakes made before it: the session\'s count starts again', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '3/900', RATE_LIMIT_LOGIN_ACCOUNT: '5/900' } })
  const owner = await registerAndLogin(app)
  const answers = []
  for (const password of ['a mistyped password 1', 'a mistyped password 2', PASSWORD]) answers.push((await changeFrom(app, owner, password)).statusCode)
  for (let guess = 3; guess <= 6; guess++) answers.push((await changeFrom(app, owner, `a mistyped password ${guess}`)).statusCode)
  t.same(answers, [401, 401, 204, 401, 401, 401, 429], 'two mistakes, the change, then three more before the limit')
})

t.test('the guesses of several stolen sessions together stop at the account\'s limit, for every session of the account', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '3/900', RATE_LIMIT_LOGIN_ACCOUNT: '5/900' } })
  const owner = await registerAndLogin(app, undefined, 'laptop')
  const [first, second, third] = [await login(app, owner.email, 'one'), await login(app, owner.email, 'two'), await login(app, owner.email, 'three')]
  const change = (s: LoggedIn, currentPassword: string) => changeFrom(app, s, currentPassword)
  const guesses = []
  for (const [s, n] of [[first, 1], [first, 2], [first, 3], [second, 4], [second, 5]] as const) guesses.push((await change(s, `a wrong guess number ${n}`)).statusCode)
  t.same(guesses, [401, 401, 401, 401, 401], 'five guesses over two sessions, each under its own limit')
  t.same([(await change(third, 'a wrong guess number 6')).statusCode, (await change(owner, PASSWORD)).statusCode], [429, 429],
    'then the account\'s limit: a third session, and the owner\'s too, wait out the window')
  const deletion = await app.inject({ method: 'DELETE', url: '/auth/account', headers: { authorization: `Bearer ${owner.accessToken}` }, payload: { password: PASSWORD } })
  t.equal(deletion.statusCode, 429, 'as does a deletion, which asks for the password too')
})
