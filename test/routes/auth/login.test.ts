import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { within } from '../../helpers/poll.js'
import { unansweredRequest, type UnansweredRequest } from '../../helpers/raw-http.js'
import { fromNth, script } from '../../helpers/tcp-link.js'
import { appCall, browserApp, needsChromium, refreshCookieIn } from '../../helpers/browser.js'
import { buildApp, buildAppThroughLink, capturedLogs, cookiePath, listenOnLoopback, login as loginAs, nextRefreshCookie, ONE_SLOW_HASH_AT_A_TIME, PASSWORD, refresh, refreshCookieValue, registerAndLogin, setCookies, SHARED_REDIS_URL, sidOf, storedHash, subOf, uniqueEmail, uniquePrefix } from '../../helpers/app.js'

for (const store of ['redis', 'memory'] as const) {
  t.test(`POST /auth/login (${store} store)`, async (t) => {
    const app = await buildApp(t, { store })
    const email = uniqueEmail()
    await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
    const login = (payload: object, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: '/auth/login', payload, headers })
    const me = (accessToken: string) => app.inject({ url: '/me', headers: { authorization: `Bearer ${accessToken}` } })
    const sessionsOf = async (accessToken: string): Promise<Array<{ id: string }>> =>
      (await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${accessToken}` } })).json().sessions

    t.test('answers 200 with a Bearer access token and sets the refresh cookie', async (t) => {
      const res = await login({ email, password: PASSWORD })
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.same(Object.keys(body).sort(), ['accessToken', 'expiresIn', 'tokenType'])
      t.equal(body.tokenType, 'Bearer')
      t.equal(body.expiresIn, 600)
      t.equal(res.headers['cache-control'], 'no-store')
      const cookie = setCookies(res).find((c) => c.startsWith('__Secure-refresh_token='))
      t.ok(cookie, 'cookie named with the __Secure- prefix by default')
      t.match(cookie, /; Max-Age=604800; Path=\/auth; HttpOnly; Secure; SameSite=Strict$/)
      const token = refreshCookieValue(app, res.headers['set-cookie']) as string
      t.notOk(res.body.includes(token), 'the refresh token is never in the body')
    })

    t.test('the refresh token is opaque with at least 256 bits of secret', async (t) => {
      const { refreshToken } = await registerAndLogin(app)
      const secret = refreshToken.split('.')[3] as string
      t.ok(Buffer.from(secret, 'base64url').length >= 32)
    })

    t.test('the access token carries sub, email, sid, iat, exp, jti, iss, aud', async (t) => {
      const res = await login({ email, password: PASSWORD })
      const [header, payload] = (res.json().accessToken as string).split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()))
      t.match(header, { alg: 'HS256' })
      t.match(payload, { sub: /^[A-Za-z0-9_-]{22}$/, email, sid: /^[A-Za-z0-9_-]{22}$/, jti: String, iss: 'auth-service', aud: 'auth-service' })
      t.equal(payload.exp - payload.iat, 600)
    })

    t.test('email is matched after normalisation', async (t) => {
      t.equal((await login({ email: `  ${email.toUpperCase()} `, password: PASSWORD })).statusCode, 200)
    })

    t.test('an address with an internationalised domain is one account, whichever form of the domain arrives', async (t) => {
      const local = uniqueEmail().split('@')[0] as string
      const typed = `${local}@bücher.example`
      const ascii = `${local}@xn--bcher-kva.example`
      const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: typed, password: PASSWORD } })
      t.equal(registered.statusCode, 201, 'registered as typed')
      t.equal(registered.json().email, ascii, 'kept with the domain in ASCII, as a browser form sends it')
      t.equal((await login({ email: ascii, password: PASSWORD })).statusCode, 200, 'signs in with the ASCII form')
      t.equal((await login({ email: `${local}@BÜCHER.example`, password: PASSWORD })).statusCode, 200, 'and with the Unicode form in capitals')
      const twin = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: ascii, password: PASSWORD } })
      t.equal(twin.json().code, 'AUTH_EMAIL_TAKEN', 'the other form registers no second account')
    })

    t.test('an address copied with a character that shows nothing is the same account', async (t) => {
      const [local, domain] = email.split('@') as [string, string]
      const copied = `${local}\u200b@${domain}\u200b`
      t.equal((await login({ email: copied, password: PASSWORD })).statusCode, 200, 'signs in')
      const lookAlike = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `\u202e${local}\u00ad@${domain}`, password: PASSWORD } })
      t.equal(lookAlike.json().code, 'AUTH_EMAIL_TAKEN', 'and a look-alike registers no second account')
    })

    t.test('the password is matched in any Unicode normalisation form of the one registered', async (t) => {
      // One typed password, as two systems send it: "é" and "ü" composed (NFC), and decomposed into a letter
      // and a combining accent (NFD); and fullwidth digits, which NFKC folds to ASCII.
      const composed = 'café über 2024 pass'.normalize('NFC')
      const other = uniqueEmail()
      t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email: other, password: composed } })).statusCode, 201)
      const decomposed = composed.normalize('NFD')
      t.not(decomposed, composed, 'the two forms are different strings')
      t.equal((await login({ email: other, password: decomposed })).statusCode, 200, 'decomposed')
      t.equal((await login({ email: other, password: composed.replace('2024', '２０２４') })).statusCode, 200, 'fullwidth digits')
      t.equal((await login({ email: other, password: composed.replace('é', 'e') })).statusCode, 401, 'but an accent left out is another password')
    })

    t.test('a login ends the session of the refresh cookie it replaces: one browser, one session', async (t) => {
      const before = await registerAndLogin(app)
      const res = await login({ email: before.email, password: PASSWORD }, { cookie: before.cookie })
      t.equal(res.statusCode, 200)
      const after = nextRefreshCookie(app, res)
      const { accessToken } = res.json()
      t.not(sidOf(accessToken), sidOf(before.accessToken), 'a new session: the one presented is not adopted')
      t.same((await sessionsOf(accessToken)).map((s) => s.id), [sidOf(accessToken)], 'the replaced session is no longer listed')
      t.equal((await me(before.accessToken)).statusCode, 401, 'and its access tokens are revoked')
      const late = await refresh(app, before.cookie)
      t.equal(late.statusCode, 409, 'a tab\'s refresh sent before the new cookie arrived...')
      t.equal(late.json().code, 'AUTH_REFRESH_SUPERSEDED', '...is told to retry with the cookie the browser has now...')
      t.equal(late.headers['set-cookie'], undefined, '...and not to clear it: it is the new login\'s')
      t.equal((await refresh(app, after)).statusCode, 200, 'which refreshes')
    })

    t.test('a refused login leaves the session of the cookie it was sent with alone', async (t) => {
      const before = await registerAndLogin(app)
      const res = await login({ email: before.email, password: 'not the password at all' }, { cookie: before.cookie })
      t.equal(res.statusCode, 401)
      t.equal(res.headers['set-cookie'], undefined, 'the cookie is not touched')
      t.equal((await refresh(app, before.cookie)).statusCode, 200, 'its session lives on')
    })

    t.test('the replaced session may be another account\'s: a browser holds one refresh cookie', async (t) => {
      const previous = await registerAndLogin(app)
      const next = await registerAndLogin(app)
      const res = await login({ email: next.email, password: PASSWORD }, { cookie: previous.cookie })
      t.equal(res.statusCode, 200)
      t.same(await app.sessions.list(subOf(previous.accessToken)), [], 'the previous account\'s session in this browser has ended')
      t.equal((await sessionsOf(next.accessToken)).length, 2, 'the new account\'s other session is untouched')
    })

    t.test('a cookie that is not ours is ignored; with planted duplicates, every genuine session presented ends', async (t) => {
      const mine = await registerAndLogin(app)
      const forged = `${app.config.cookie.name}=${mine.refreshToken.slice(0, -2)}xx`
      t.equal((await login({ email: mine.email, password: PASSWORD }, { cookie: forged })).statusCode, 200, 'a forged cookie: signed in')
      t.equal((await refresh(app, mine.cookie)).statusCode, 200, 'and nothing ended')
      const a = await registerAndLogin(app)
      const b = await registerAndLogin(app)
      const res = await login({ email: a.email, password: PASSWORD }, { cookie: `${a.cookie}; ${b.cookie}` })
      t.equal(res.statusCode, 200)
      t.same([(await app.sessions.list(subOf(a.accessToken))).length, (await app.sessions.list(subOf(b.accessToken))).length], [1, 0], 'both presented sessions ended')
      const refreshCookies = (res: { headers: { 'set-cookie'?: string | string[] } }) => setCookies(res).filter((c) => c.startsWith(`${app.config.cookie.name}=`))
      t.same(refreshCookies(res).map((c) => `${c.split(';')[0]?.endsWith('=') === true ? 'cleared' : 'set'} ${cookiePath(c) ?? ''}`).sort(),
        ['cleared /', 'cleared /auth/', 'cleared /auth/login', 'cleared /auth/logout', 'cleared /auth/refresh', 'set /auth'],
        'the new session\'s cookie set on /auth, and copies on every other path the auth routes are sent from cleared')
      t.same(refreshCookies(await login({ email: a.email, password: PASSWORD }, { cookie: a.cookie })).length, 1,
        'with one cookie presented, only the new one is set')
    })

    t.test('401 with one body for unknown email, wrong password and malformed email', async (t) => {
      const bodies = []
      for (const payload of [{ email: uniqueEmail(), password: PASSWORD }, { email, password: 'wrong password!' }, { email: 'not-an-email', password: PASSWORD }]) {
        const res = await login(payload)
        t.equal(res.statusCode, 401)
        t.notOk(res.headers['set-cookie'], 'no cookie')
        bodies.push(res.body)
      }
      t.same(new Set(bodies).size, 1, 'identical bodies')
      t.match(JSON.parse(bodies[0] as string), { statusCode: 401, code: 'AUTH_INVALID_CREDENTIALS', error: 'Unauthorized', message: String })
    })

    t.test('unknown email and wrong password take comparable time (both run argon2)', async (t) => {
      const time = async (payload: object) => {
        const started = process.hrtime.bigint()
        await login(payload)
        return Number(process.hrtime.bigint() - started) / 1e6
      }
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
      const unknown: number[] = []
      const wrong: number[] = []
      for (let i = 0; i < 7; i++) {
        unknown.push(await time({ email: uniqueEmail(), password: PASSWORD }))
        wrong.push(await time({ email, password: 'wrong password!' }))
      }
      const ratio = median(unknown) / median(wrong)
      t.ok(ratio > 0.5 && ratio < 2, `median unknown/wrong = ${ratio.toFixed(2)}`)
    })

    t.test('400 for bodies that are not credentials', async (t) => {
      for (const payload of [{}, { email }, { email, password: 12345678901234 }, { email, password: PASSWORD, admin: true }]) {
        const res = await login(payload)
        t.equal(res.statusCode, 400, JSON.stringify(payload))
        t.equal(res.json().code, 'REQUEST_VALIDATION')
      }
    })
  })
}

t.test('in Chromium, an account whose domain was registered as typed signs in from a form, which sends the domain in ASCII', needsChromium(), async (t) => {
  // A native app (or an API client) registers the address as its user typed it; Chromium's <input type=email> gives
  // a page the domain in ASCII. One mailbox: the same account.
  const { auth, api, openApp } = await browserApp(t)
  const local = uniqueEmail().split('@')[0] as string
  const typed = `${local}@bücher.example`
  t.equal((await auth.inject({ method: 'POST', url: '/auth/register', payload: { email: typed, password: PASSWORD } })).statusCode, 201)

  const page = await openApp()
  await page.setContent('<form><input id="email" type="email" autocomplete="username"><input id="password" type="password"></form>')
  await page.fill('#email', typed)
  await page.fill('#password', PASSWORD)
  const [email, password] = await page.$$eval('input', (inputs) => inputs.map((i) => (i as unknown as { value: string }).value))
  t.equal(email, `${local}@xn--bcher-kva.example`, 'the form gives the page the domain in ASCII')
  const signIn = await appCall(page, api, '/auth/login', { email, password })
  t.equal(signIn.status, 200, 'and that signs in')
  t.match(signIn.body, { tokenType: 'Bearer' })
})

t.test('logins past the hashing queue\'s bound are answered 503 SERVICE_BUSY at once, with Retry-After', async (t) => {
  const app = await buildApp(t, { store: 'memory', env: { ...ONE_SLOW_HASH_AT_A_TIME, ARGON2_MAX_QUEUE: '2' } })
  const account = await registerAndLogin(app)
  const signIn = async (email: string) => await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  // In this order: light-my-request sends an injection only once it is awaited.
  const sent = [signIn(account.email), signIn(uniqueEmail()), signIn(uniqueEmail()), signIn(uniqueEmail()), signIn(uniqueEmail())]
  await Promise.all(sent.slice(3))
  const during = (await app.inject({ url: '/metrics' })).body
  t.match(during, /^auth_password_hashes\{state="running"\} 1$/m, 'once the refused are answered, /metrics shows the one hash computing')
  t.match(during, /^auth_password_hashes\{state="waiting"\} 2$/m, 'and the two waiting for its slot')
  const burst = await Promise.all(sent)
  t.same(burst.map((r) => r.statusCode), [200, 401, 401, 503, 503], 'one hashing, two waiting; the other two refused')
  for (const refused of burst.slice(3)) {
    t.same(refused.json(), { statusCode: 503, code: 'SERVICE_BUSY', error: 'Service Unavailable', message: 'Too many sign-ins at once, retry shortly' })
    t.equal(refused.headers['retry-after'], '1')
  }
  t.equal((await signIn(account.email)).statusCode, 200, 'and the next login is served')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /^auth_password_hashes_shed_total\{reason="queue_full"\} 2$/m, 'the refusals are counted in /metrics')
  t.match(metrics, /^auth_password_hashes\{state="waiting"\} 0$/m, 'beside the queue\'s depth')
})

t.test('a login whose client has gone while it waited to hash is dropped: the slot goes to the next one', async (t) => {
  const app = await buildApp(t, { store: 'memory', env: ONE_SLOW_HASH_AT_A_TIME })
  const account = await registerAndLogin(app)
  const port = await listenOnLoopback(app)
  const body = JSON.stringify({ email: account.email, password: PASSWORD })
  const signIn = () => fetch(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })

  const ahead = signIn()
  await within(5000, async () => app.passwordHasher.running === 1, 'a login hashes')
  // Three clients that send a login and hang up while it waits for the slot (a client timing out under load).
  const impatient = Array.from({ length: 3 }, () => impatientLogin(port, account.email))
  await within(5000, async () => app.passwordHasher.pending === 3, 'the three wait behind it')
  for (const client of impatient) client.hangUp()
  await within(5000, async () => (await ahead).status === 200, 'the first login is answered')
  await within(5000, async () => app.passwordHasher.pending + app.passwordHasher.running === 0, 'the queue empties')
  t.equal(app.passwordHasher.dropped, 3, 'the three hashes no one awaited were never computed')
  t.equal((await signIn()).status, 200, 'the next login is served')
  t.match((await app.inject({ url: '/metrics' })).body, /^auth_password_hashes_shed_total\{reason="client_gone"\} 3$/m, 'and /metrics counts them')
})

t.test('a login whose client hangs up while its password is verified makes no session: none left behind, none evicted', async (t) => {
  // One session per user: a session made for the abandoned login would evict the one the account has.
  const app = await buildApp(t, { env: { ...ONE_SLOW_HASH_AT_A_TIME, MAX_SESSIONS_PER_USER: '1' } })
  const account = await registerAndLogin(app)
  const port = await listenOnLoopback(app)
  const impatient = impatientLogin(port, account.email)
  await within(5000, async () => app.passwordHasher.running === 1, 'its password is being verified')
  // A client timing out under load: the hash it started runs to its end, and the login goes on without anyone to answer.
  impatient.hangUp()
  // Another account's login, queued behind that hash: answered once the abandoned login has done all it will.
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: `nobody-${account.email}`, password: PASSWORD } })).statusCode, 401)
  const listed = await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${account.accessToken}` } })
  t.equal(listed.statusCode, 200, 'the session the account began with is not evicted')
  t.same(listed.json().sessions.map((s: { current: boolean }) => s.current), [true], 'and is its only one')
  t.equal((await refresh(app, account.cookie)).statusCode, 200, 'it refreshes')
})

t.test('a login whose client hangs up after its session is made, before its answer is written, leaves no session behind', async (t) => {
  const app = await buildApp(t, { beforeApp: holdAnswers })
  const account = await registerAndLogin(app)
  const port = await listenOnLoopback(app)
  const sessionCount = () => sessionCountOf(app, account)
  const impatient = impatientLogin(port, account.email, { 'x-test-hold': '1' })
  await within(5000, async () => await sessionCount() === 2, 'the login has made its session, and its answer is held')
  impatient.hangUp()
  await within(5000, async () => await sessionCount() === 1, 'the session no one received ends with its client')
  t.equal(await sessionCount(), 1, 'the account is left with the session it began with')
})

/** How many sessions `app` lists for the account a session of which holds `accessToken`. */
async function sessionCountOf (app: FastifyInstance, { accessToken }: { accessToken: string }): Promise<number> {
  return (await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${accessToken}` } })).json().sessions.length
}

/** A login over a connection of its own, left unanswered until the test hangs up. */
function impatientLogin (port: number, email: string, headers: Record<string, string> = {}): UnansweredRequest {
  return unansweredRequest(port, '/auth/login', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ email, password: PASSWORD }) })
}

/** A test's own hook: the answer to a request with `x-test-hold` is held 2 s before it is written. */
function holdAnswers (fastify: FastifyInstance): void {
  fastify.addHook('onSend', async (request) => {
    if (request.headers['x-test-hold'] !== undefined) await sleep(2000)
  })
}

t.test('a hash of older parameters is not upgraded while other logins wait for a slot, and is at the next quiet login', async (t) => {
  const prefix = uniquePrefix()
  const before = await buildApp(t, { prefix, env: { ARGON2_TIME_COST: '1' } })
  const account = await registerAndLogin(before)
  const stored = () => storedHash(before, account.email)
  t.match(await stored(), /,t=1\$/, 'the account\'s hash is of the older parameters')

  // New parameters deployed, and a queue of logins on the instance.
  const busy = await buildApp(t, { prefix, env: ONE_SLOW_HASH_AT_A_TIME })
  const signIn = (email: string) => busy.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  const ahead = signIn(uniqueEmail())
  await within(5000, async () => busy.passwordHasher.running === 1, 'a login hashes')
  const owner = signIn(account.email)
  await within(5000, async () => busy.passwordHasher.pending === 1, 'the owner\'s login waits its turn')
  const behind = [signIn(uniqueEmail()), signIn(uniqueEmail())]
  await within(5000, async () => busy.passwordHasher.pending === 3, 'two more wait behind it')
  t.equal((await owner).statusCode, 200, 'the owner signs in')
  await Promise.all([ahead, ...behind])
  await within(10_000, async () => busy.passwordHasher.pending + busy.passwordHasher.running === 0, 'the queue empties')
  t.match(await stored(), /,t=1\$/, 'no rehash took a slot from the logins that waited')

  t.equal((await signIn(account.email)).statusCode, 200, 'a login with no one waiting')
  await within(10_000, async () => (await stored()).includes(`,t=${ONE_SLOW_HASH_AT_A_TIME.ARGON2_TIME_COST}$`), 'upgrades the hash after its answer')
  t.equal((await signIn(account.email)).statusCode, 200, 'and the password still works')
})

t.test('an instance still on weaker parameters never downgrades a hash the stronger ones made (a deploy midway)', async (t) => {
  const prefix = uniquePrefix()
  const stronger = await buildApp(t, { prefix, env: { ARGON2_TIME_COST: '2' } })
  const weaker = await buildApp(t, { prefix, env: { ARGON2_TIME_COST: '1' } })
  const account = await registerAndLogin(stronger)
  const stored = () => storedHash(weaker, account.email)
  const strong = await stored()
  t.match(strong, /,t=2\$/)
  for (let i = 0; i < 3; i++) t.equal((await weaker.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: PASSWORD } })).statusCode, 200, `login ${i + 1} on the weaker instance`)
  // A rehash runs after the answer: the account's next write would show by now (the test above waits as long).
  await within(2000, async () => weaker.passwordHasher.pending + weaker.passwordHasher.running === 0, 'no hash under way')
  t.equal(await stored(), strong, 'the stronger hash is kept')
})

t.test('a sign-in whose account\'s hash was upgraded meanwhile (the same password, stronger parameters) is answered', async (t) => {
  // The sign-in read the account's hash, then waited with its session's creation on its way; another instance's
  // sign-in upgraded the hash meanwhile. The hash read again once the session exists differs, and takes the password.
  const prefix = uniquePrefix()
  const { app: weaker, link } = await buildAppThroughLink(t, { prefix, env: { ARGON2_TIME_COST: '1' } })
  const stronger = await buildApp(t, { prefix, env: { ARGON2_TIME_COST: '2' } })
  const account = await registerAndLogin(weaker)
  const stored = () => storedHash(stronger, account.email)
  t.match(await stored(), /,t=1\$/, 'a hash of the weaker parameters')
  const holding = link.holdAt(script('family-create'))
  const late = weaker.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: PASSWORD } })
  await within(5000, async () => holding(), 'the sign-in has verified the hash it read, and its session is on its way')
  await loginAs(stronger, account.email, 'another instance')
  await within(10_000, async () => /,t=2\$/.test(await stored()), 'another instance\'s sign-in upgrades the hash')
  link.release()
  const res = await late
  t.equal(res.statusCode, 200, 'the late sign-in is answered')
  t.equal((await refresh(stronger, nextRefreshCookie(stronger, res))).statusCode, 200, 'and its session refreshes')
})

t.test('a login whose client hangs up as the account is read again, its session made, leaves no session behind', async (t) => {
  const prefix = uniquePrefix()
  const { app, link } = await buildAppThroughLink(t, { prefix })
  const other = await buildApp(t, { prefix })
  const account = await registerAndLogin(app)
  const sessionCount = () => sessionCountOf(other, account)
  // The login's second read of the account (the first is before its password is verified).
  const holding = link.holdAt(fromNth(2, (sent) => /hmget/i.test(sent)))
  const impatient = impatientLogin(await listenOnLoopback(app), account.email)
  await within(5000, async () => holding(), 'the session made, the account read again')
  t.equal(await sessionCount(), 2, 'the login\'s session exists')
  impatient.hangUp()
  // Time for the instance to see the connection close before the read is answered.
  await sleep(200)
  link.release()
  await within(5000, async () => await sessionCount() === 1, 'the session no one will receive is discarded')
  t.equal(await sessionCount(), 1, 'the account is left with the session it began with')
})

t.test('after the grace window, a refresh of the replaced session is refused as invalid and clears its cookie', async (t) => {
  const app = await buildApp(t, { env: { REFRESH_REUSE_GRACE: '1' } })
  const before = await registerAndLogin(app)
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: before.email, password: PASSWORD }, headers: { cookie: before.cookie } })
  t.equal(res.statusCode, 200)
  t.equal((await refresh(app, before.cookie)).statusCode, 409, 'within the window: superseded')
  await sleep(1100)
  const late = await refresh(app, before.cookie)
  t.equal(late.statusCode, 401)
  t.equal(late.json().code, 'AUTH_REFRESH_INVALID')
  t.equal(refreshCookieValue(app, late.headers['set-cookie']), '', 'the cookie cleared')
})

for (const store of ['redis', 'memory'] as const) {
  t.test(`signing in again at the session cap replaces the browser's own session and signs no other device out (${store} store)`, async (t) => {
    const app = await buildApp(t, { store, env: { MAX_SESSIONS_PER_USER: '3' } })
    const laptop = await registerAndLogin(app, uniqueEmail(), 'Laptop')
    const phone = await loginAs(app, laptop.email, 'Phone')
    const tablet = await loginAs(app, laptop.email, 'Tablet')
    await sleep(5)
    // The laptop in use since: the phone is now the least recently used session, the one the cap would evict.
    const laptopCookie = nextRefreshCookie(app, await refresh(app, laptop.cookie))
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: laptop.email, password: PASSWORD }, headers: { cookie: laptopCookie, 'user-agent': 'Laptop' } })
    t.equal(res.statusCode, 200)
    const { accessToken } = res.json()
    const listed = await app.sessions.list(subOf(accessToken))
    t.same(listed.map((s) => s.familyId).sort(), [sidOf(accessToken), sidOf(phone.accessToken), sidOf(tablet.accessToken)].sort(),
      'the new session took the place of the laptop\'s old one; the phone and the tablet are still signed in')
    t.equal((await refresh(app, phone.cookie)).statusCode, 200, 'the phone refreshes')
    t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${phone.accessToken}` } })).statusCode, 200, 'and its access token is not revoked')
    t.equal((await refresh(app, laptopCookie)).statusCode, 409, 'the laptop\'s old session has ended, as any replaced one')

    // At the cap with no session to replace, the least recently used is evicted as before.
    const desktop = await loginAs(app, laptop.email, 'Desktop')
    t.equal((await app.sessions.list(subOf(desktop.accessToken))).length, 3, 'still three sessions')
    t.equal((await refresh(app, tablet.cookie)).statusCode, 401, 'the tablet, least recently used, was evicted for the desktop')
  })
}

t.test('a store error while ending the replaced session does not undo the login: it is answered, and the error logged without the token', async (t) => {
  const prefix = uniquePrefix()
  const logs = capturedLogs()
  const app = await buildApp(t, { prefix, logStream: logs.stream, env: { LOG_LEVEL: 'info' } })
  const before = await registerAndLogin(app)
  // A real error from Redis on the way: the user's ended-families key holds a string, so the script that ends a
  // session fails (WRONGTYPE) when it records the ending.
  const redis = new Redis(SHARED_REDIS_URL)
  t.teardown(() => redis.quit())
  await redis.set(`${prefix}{${subOf(before.accessToken)}}:ended`, 'not a sorted set')
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: before.email, password: PASSWORD }, headers: { cookie: before.cookie } })
  t.equal(res.statusCode, 200, 'signed in')
  t.equal((await refresh(app, nextRefreshCookie(app, res))).statusCode, 200, 'with a session that refreshes')
  const warning = logs.lines().find((line) => line.msg === 'the session of the replaced refresh cookie was not ended')
  t.ok(warning, 'the failure is logged')
  t.match(JSON.stringify(warning), /WRONGTYPE/, 'with the store\'s error')
  t.notMatch(logs.text(), before.refreshToken.split('.').pop() as string, 'and never the refresh token')
})

t.test('in Chromium, signing in again in the same browser leaves one session, not two', needsChromium(), async (t) => {
  // The refresh cookie lives on /auth, so the browser sends it with the second sign-in, which replaces it.
  const { auth, api, email, context, openApp } = await browserApp(t)
  const page = await openApp()
  const first = await appCall(page, api, '/auth/login', { email, password: PASSWORD })
  t.equal(first.status, 200)
  const firstCookie = (await refreshCookieIn(context))?.value
  const second = await appCall(await openApp(), api, '/auth/login', { email, password: PASSWORD })
  t.equal(second.status, 200, 'signed in again from another tab')
  t.not((await refreshCookieIn(context))?.value, firstCookie, 'the browser holds the new cookie')
  const { accessToken } = second.body as { accessToken: string }
  const listed = (await auth.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${accessToken}` } })).json().sessions as Array<{ id: string }>
  t.same(listed.map((s) => s.id), [sidOf(accessToken)], 'one session: the first one ended')
  t.equal((await appCall(page, api, '/auth/refresh')).status, 200, 'and the first tab refreshes on the shared cookie')
})

/**
 * A hop on the network between the browser and the service that holds every connection it gets until `release()`,
 * then relays its bytes as they came, cookie and all: a request already on its way when the browser's cookie changed.
 */
async function holdingHop (t: Test, target: string): Promise<{ url: string, release: () => void }> {
  let release = (): void => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  const { hostname, port } = new URL(target)
  const sockets = new Set<Socket>()
  const hop = createServer((client) => {
    sockets.add(client)
    client.on('error', () => {})
    // Nothing is read from the browser until then: what it sent waits in the socket.
    released.then(() => {
      const upstream = connect(Number(port), hostname)
      sockets.add(upstream)
      upstream.on('error', () => client.destroy())
      client.pipe(upstream).pipe(client)
    }, () => {})
  })
  await new Promise<void>((resolve) => hop.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    hop.close()
  })
  return { url: `http://127.0.0.1:${(hop.address() as AddressInfo).port}`, release }
}

t.test('in Chromium, a tab\'s refresh sent before another tab signs in again does not sign the browser out', needsChromium(), async (t) => {
  const { api, email, context, openApp } = await browserApp(t)
  const first = await openApp()
  t.equal((await appCall(first, api, '/auth/login', { email, password: PASSWORD })).status, 200)
  const before = (await refreshCookieIn(context))?.value as string
  // Cookies are not kept apart by port: the hop's address gets the service's cookie.
  const hop = await holdingHop(t, api)
  const refreshing = appCall(first, hop.url, '/auth/refresh')
  const second = await appCall(await openApp(), api, '/auth/login', { email, password: PASSWORD })
  t.equal(second.status, 200, 'another tab signs in again while the first tab\'s refresh is on its way')
  const after = (await refreshCookieIn(context))?.value
  t.not(after, before, 'with a new cookie')
  hop.release()
  const late = await refreshing
  t.match(late, { status: 409, body: { code: 'AUTH_REFRESH_SUPERSEDED' } }, 'the late refresh, with the old cookie, is told to retry')
  t.equal((await refreshCookieIn(context))?.value, after, 'and the browser keeps the new cookie')
  const retried = await appCall(first, api, '/auth/refresh')
  t.equal(retried.status, 200, 'so the first tab\'s retry refreshes: the browser is still signed in')
})
