import t from 'tap'
import { buildApp, fastAndSlowInstances, listenOnLoopback, login, ONE_SLOW_HASH_AT_A_TIME, PASSWORD, refresh, registerAndLogin, setCookies, signedInWhileHeld, subOf, uniquePrefix } from '../../helpers/app.js'
import { within } from '../../helpers/poll.js'
import { unansweredRequest } from '../../helpers/raw-http.js'
import { script } from '../../helpers/tcp-link.js'

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })

for (const store of ['redis', 'memory'] as const) {
  t.test(`DELETE /auth/account deletes the account: its sessions end everywhere, its password no longer signs in, its email is free (${store} store)`, async (t) => {
    const prefix = uniquePrefix()
    const a = await buildApp(t, { store, prefix })
    // A second instance on the same Redis: the access tokens must fail there too.
    const b = store === 'redis' ? await buildApp(t, { prefix }) : a
    const owner = await registerAndLogin(a)
    const phone = await login(a, owner.email, 'phone')
    const bystander = await registerAndLogin(a)

    const deleted = await a.inject({ method: 'DELETE', url: '/auth/account', headers: bearer(owner.accessToken), payload: { password: PASSWORD } })
    t.equal(deleted.statusCode, 204, deleted.body)
    t.match(setCookies(deleted).join('\n'), new RegExp(`^${a.config.cookie.name}=;.*Max-Age=0`, 'm'), 'the caller\'s refresh cookie is cleared')

    await within(2000, async () => (await b.inject({ url: '/me', headers: bearer(phone.accessToken) })).statusCode === 401, 'the other device\'s access token, refused on every instance')
    t.equal((await a.inject({ url: '/me', headers: bearer(owner.accessToken) })).statusCode, 401, 'the caller\'s too')
    t.same([(await refresh(b, owner.cookie)).statusCode, (await refresh(b, phone.cookie)).statusCode], [401, 401], 'no refresh cookie of the account works')
    const signIn = await b.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: PASSWORD } })
    t.same([signIn.statusCode, signIn.json().code], [401, 'AUTH_INVALID_CREDENTIALS'], 'its password signs in to nothing, answered as an unknown email is')

    const again = await b.inject({ method: 'POST', url: '/auth/register', payload: { email: owner.email.toUpperCase(), password: 'a new owner\'s passphrase' } })
    t.equal(again.statusCode, 201, 'the email registers again')
    t.not(again.json().id, subOf(owner.accessToken), 'as a new account')
    t.equal((await b.inject({ url: '/me', headers: bearer(owner.accessToken) })).statusCode, 401, 'which the old access token does not reach')

    t.same([(await a.inject({ url: '/me', headers: bearer(bystander.accessToken) })).statusCode, (await refresh(a, bystander.cookie)).statusCode], [200, 200], 'another account is untouched')
  })
}

t.test('the password is asked again: a wrong one deletes nothing, and guesses are limited as at login', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '3/900' } })
  const owner = await registerAndLogin(app)
  const remove = (payload: unknown, accessToken = owner.accessToken) => app.inject({ method: 'DELETE', url: '/auth/account', headers: bearer(accessToken), payload: payload as object })
  for (let guess = 1; guess <= 3; guess++) {
    const res = await remove({ password: `a wrong guess number ${guess}` })
    t.same([res.statusCode, res.json().code, res.headers['www-authenticate']], [401, 'AUTH_INVALID_CREDENTIALS', undefined],
      `guess ${guess}: refused, with no Bearer challenge (the token was not what was refused)`)
  }
  const limited = await remove({ password: PASSWORD })
  t.same([limited.statusCode, limited.json().code], [429, 'RATE_LIMITED'], 'the fourth is not even checked, the right password included')
  t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After')
  t.equal((await refresh(app, owner.cookie)).statusCode, 200, 'the session lives on')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: PASSWORD } })).statusCode, 200, 'and the account')
})

t.test('what it refuses as sent, it refuses before anything is checked', async (t) => {
  const app = await buildApp(t)
  const owner = await registerAndLogin(app)
  const cases: Array<[string, { payload?: string | object, headers?: Record<string, string> }, number, string]> = [
    ['no password', { payload: {} }, 400, 'REQUEST_VALIDATION'],
    ['an empty one', { payload: { password: '' } }, 400, 'REQUEST_VALIDATION'],
    ['a field it does not take', { payload: { password: PASSWORD, confirm: true } }, 400, 'REQUEST_VALIDATION'],
    ['no body', {}, 400, 'REQUEST_VALIDATION'],
    ['not JSON', { payload: 'password=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE']
  ]
  for (const [what, request, status, code] of cases) {
    const res = await app.inject({ method: 'DELETE', url: '/auth/account', ...request, headers: { ...bearer(owner.accessToken), ...request.headers } })
    t.same([res.statusCode, res.json().code], [status, code], what)
  }
  const anonymous = await app.inject({ method: 'DELETE', url: '/auth/account', payload: { password: PASSWORD } })
  t.same([anonymous.statusCode, anonymous.json().code], [401, 'AUTH_TOKEN_INVALID'], 'no access token: 401, whatever the password')
  t.equal((await refresh(app, owner.cookie)).statusCode, 200, 'and the account lives on')
})

t.test('an ended session cannot delete its account: the access token of a session logged out is refused', async (t) => {
  const app = await buildApp(t)
  const owner = await registerAndLogin(app)
  const other = await login(app, owner.email, 'other')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: owner.cookie } })).statusCode, 204)
  const res = await app.inject({ method: 'DELETE', url: '/auth/account', headers: bearer(owner.accessToken), payload: { password: PASSWORD } })
  t.same([res.statusCode, res.json().code], [401, 'AUTH_TOKEN_INVALID'])
  t.equal((await refresh(app, other.cookie)).statusCode, 200, 'the account and its other session live on')
})

t.test('a deletion whose client hangs up while its password is verified deletes nothing', async (t) => {
  // Registered with the slow parameters: the password the deletion sends takes long to verify.
  const slow = await buildApp(t, { env: ONE_SLOW_HASH_AT_A_TIME })
  const owner = await registerAndLogin(slow)
  const body = JSON.stringify({ password: PASSWORD })
  // Node's client frames no DELETE body on its own: its length is said, as a browser's fetch says it.
  const headers = { ...bearer(owner.accessToken), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }
  const impatient = unansweredRequest(await listenOnLoopback(slow), '/auth/account', { method: 'DELETE', headers, body })
  await within(5000, async () => slow.passwordHasher.running === 1, 'its password is being verified')
  impatient.hangUp()
  await within(5000, async () => slow.passwordHasher.running + slow.passwordHasher.pending === 0, 'the verification has run to its end')
  // A sign-in checks the account again once its session exists: had the deletion gone on, it would be refused.
  t.equal((await slow.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: PASSWORD } })).statusCode, 200, 'the account signs in')
  t.equal((await refresh(slow, owner.cookie)).statusCode, 200, 'and its session lives on')
})

t.test('a sign-in that read the account before it was deleted is refused once its session is made, and leaves none behind', async (t) => {
  // On the slow instance a sign-in reads the account, then waits for the hash ahead of it.
  const { fast, slow, owner } = await fastAndSlowInstances(t)
  const ahead = await registerAndLogin(slow)
  const signIn = (app: typeof fast, email: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })

  const busy = signIn(slow, ahead.email)
  await within(5000, async () => slow.passwordHasher.running === 1, 'a hash under way')
  const late = signIn(slow, owner.email)
  await within(5000, async () => slow.passwordHasher.pending === 1, 'the owner\'s sign-in waiting for its turn, the account read')
  t.equal((await fast.inject({ method: 'DELETE', url: '/auth/account', headers: bearer(owner.accessToken), payload: { password: PASSWORD } })).statusCode, 204,
    'the account is deleted meanwhile')
  t.equal(slow.passwordHasher.pending, 1, 'before that sign-in had its turn')
  t.equal((await busy).statusCode, 200)
  const refused = await late
  t.same([refused.statusCode, refused.json().code], [401, 'AUTH_INVALID_CREDENTIALS'], 'the sign-in is refused as for an unknown email, though the password was the account\'s')
  t.same(setCookies(refused), [], 'with no refresh cookie')
  t.same(await fast.sessions.list(subOf(owner.accessToken)), [], 'and the session it made is gone: the deleted account has none')
})

t.test('a sign-in answered while the account is being deleted, its sessions already ended, has its session ended by the deletion', async (t) => {
  // The deletion held as it deletes the account: its sessions ended, the account there for the sign-in to see.
  const { other, owner, late, answer } = await signedInWhileHeld(t, script('user-delete'), (app, owner) =>
    app.inject({ method: 'DELETE', url: '/auth/account', headers: bearer(owner.accessToken), payload: { password: PASSWORD } }))
  t.equal(answer.statusCode, 204, 'the account is deleted')
  t.equal((await refresh(other, late.cookie)).statusCode, 401, 'and the session that sign-in began has ended')
  await within(2000, async () => (await other.inject({ url: '/me', headers: bearer(late.accessToken) })).statusCode === 401, 'its access token refused on the other instance')
  t.same(await other.sessions.list(subOf(owner.accessToken)), [], 'the deleted account has no session')
})
