import { connect, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { within } from '../../helpers/poll.js'
import { buildApp, buildAppThroughLink, CAUGHT_REPLAY, capturedLogs, connectedRedis, familyKey, fastAndSlowInstances, listenOnLoopback, login, PASSWORD, refresh, refreshCookieValue, registerAndLogin, replayCodes, sidOf, subOf, uniquePrefix, type LoggedIn } from '../../helpers/app.js'
import { script } from '../../helpers/tcp-link.js'

const bearer = (s: LoggedIn) => ({ authorization: `Bearer ${s.accessToken}` })
const me = (app: FastifyInstance, s: LoggedIn) => app.inject({ url: '/me', headers: bearer(s) })

/** Two instances of one deployment: same Redis, same prefix, same secrets. */
async function twoInstances (t: Test) {
  const prefix = uniquePrefix()
  const a = await buildApp(t, { prefix })
  const b = await buildApp(t, { prefix })
  return { a, b }
}

t.test('GET /auth/sessions lists each login with its user agent and marks the caller\'s', async (t) => {
  const app = await buildApp(t)
  const phone = await registerAndLogin(app, undefined, 'Phone/1.0')
  const laptop = await login(app, phone.email, 'Laptop/2.0')
  const res = await app.inject({ url: '/auth/sessions', headers: bearer(laptop) })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const { sessions } = res.json()
  t.equal(sessions.length, 2)
  t.match(sessions[0], { id: /^[A-Za-z0-9_-]{22}$/, userAgent: 'Laptop/2.0', ip: '127.0.0.1', current: true })
  t.match(sessions[1], { userAgent: 'Phone/1.0', current: false })
  for (const s of sessions) {
    for (const field of ['createdAt', 'lastUsedAt', 'expiresAt']) t.equal(new Date(s[field]).toISOString(), s[field], `${field} is an ISO date`)
  }
  t.equal((await app.inject({ url: '/auth/sessions' })).statusCode, 401, '401 without a token')
})

t.test('the user agent and ip are updated on refresh', async (t) => {
  const app = await buildApp(t)
  const s = await registerAndLogin(app, undefined, 'Old/1.0')
  const res = await refresh(app, s.cookie, { 'user-agent': 'New/2.0' })
  const { sessions } = (await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${res.json().accessToken}` } })).json()
  t.equal(sessions[0].userAgent, 'New/2.0')
})

t.test('on a dual-stack listener (HOST=::, the image\'s), an IPv4 client is listed and logged at its IPv4 address', async (t) => {
  const logs = capturedLogs()
  // A load balancer at 127.0.0.1, which the listener sees at ::ffff:127.0.0.1.
  const app = await buildApp(t, { logStream: logs.stream, env: { LOG_LEVEL: 'info', TRUST_PROXY: '127.0.0.1' } })
  // Every interface, on a port of the system's choosing, for this test's own requests over loopback.
  await app.listen({ host: '::', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const { email } = await registerAndLogin(app)
  const signIn = async (host: string, headers: Record<string, string> = {}): Promise<string> => {
    const res = await fetch(`http://${host}:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ email, password: PASSWORD }) })
    t.equal(res.status, 200, `signed in from ${host}`)
    return ((await res.json()) as { accessToken: string }).accessToken
  }
  await signIn('127.0.0.1')
  await signIn('127.0.0.1', { 'x-forwarded-for': '198.51.100.9' })
  await signIn('127.0.0.1', { 'x-forwarded-for': '::ffff:198.51.100.10' })
  const accessToken = await signIn('[::1]')
  const { sessions } = (await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${accessToken}` } })).json()
  t.same(sessions.map((s: { ip: string }) => s.ip), ['::1', '198.51.100.10', '198.51.100.9', '127.0.0.1', '127.0.0.1'],
    'the IPv4 client as 127.0.0.1, not ::ffff:127.0.0.1; the trusted proxy\'s clients as it names them, a mapped one as IPv4; an IPv6 client as it is')
  const logged = logs.lines().filter((line) => line.msg === 'request completed').map((line) => (line.req as { remoteAddress: string }).remoteAddress)
  t.same(logged.slice(-5, -1), ['127.0.0.1', '198.51.100.9', '198.51.100.10', '::1'], 'and so in the access log')
})

t.test('what a trusted proxy names a client by and is no address is listed, logged and counted bounded, as a user agent is', async (t) => {
  const logs = capturedLogs()
  const prefix = uniquePrefix()
  const app = await buildApp(t, { prefix, logStream: logs.stream, env: { LOG_LEVEL: 'info', TRUST_PROXY: '1' } })
  const port = await listenOnLoopback(app)
  const { email } = await registerAndLogin(app)
  // Squid's "unknown", an RFC 7239 obfuscated identifier, and what a client writes itself where TRUST_PROXY counts a
  // hop that is not there: 6,000 characters, or bytes outside ASCII.
  const named = ['unknown', '_hidden', 'A'.repeat(6000), 'caf\u00e9']
  const signIn = async (forwardedFor: string, password = PASSWORD): Promise<Response> =>
    await fetch(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor }, body: JSON.stringify({ email, password }) })
  let accessToken = ''
  for (const forwardedFor of named) {
    const res = await signIn(forwardedFor)
    t.equal(res.status, 200, `signed in as ${forwardedFor.slice(0, 10)}`)
    accessToken = ((await res.json()) as { accessToken: string }).accessToken
  }
  t.equal((await signIn('B'.repeat(6000), 'a wrong password')).status, 401, 'a failed sign-in, counted by that name')
  const { sessions } = (await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${accessToken}` } })).json()
  t.same(sessions.map((s: { ip: string }) => s.ip).slice(0, 4), ['caf?', 'A'.repeat(64), '_hidden', 'unknown'],
    'a short printable name as it is; a long one cut to 64 characters, a byte outside ASCII as ?')
  const logged = logs.lines().filter((line) => line.msg === 'request completed' && (line.req as { url: string }).url === '/auth/login')
    .map((line) => (line.req as { remoteAddress: string }).remoteAddress)
  t.same(logged.slice(-5), ['unknown', '_hidden', 'A'.repeat(64), 'caf?', 'B'.repeat(64)], 'and so in the access log, not 6,000 characters a line')
  const redis = app.redis as NonNullable<typeof app.redis>
  const longest = Math.max(...(await redis.keys(`${prefix}*`)).map((key) => key.length))
  t.ok(longest < prefix.length + 150, `every key it made is short: the limiters count the name cut (longest ${longest} characters)`)
  const userId = (await app.inject({ url: '/me', headers: { authorization: `Bearer ${accessToken}` } })).json().id
  const { id } = sessions.find((s: { ip: string }) => s.ip.length === 64)
  t.equal(await redis.call('OBJECT', 'ENCODING', familyKey(prefix, userId, id as string)), 'listpack', 'the session named by 6,000 characters stays compact in Redis')
})

t.test('a browser\'s user agent lists exactly as sent, however it is stored; control characters are replaced', async (t) => {
  for (const store of ['redis', 'memory'] as const) {
    const app = await buildApp(t, { store })
    const edge = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0'
    const s = await registerAndLogin(app, undefined, edge)
    const list = async (token: string) => (await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${token}` } })).json().sessions
    t.equal((await list(s.accessToken))[0].userAgent, edge, `${store}: after login`)
    const res = await refresh(app, s.cookie, { 'user-agent': 'evil\u0001\u0002agent' })
    t.equal((await list(res.json().accessToken))[0].userAgent, 'evil??agent', `${store}: after a refresh by a hostile agent`)
  }
})

t.test('DELETE /auth/sessions/:id kills that refresh token and, within 1 s, its access token on the other instance', async (t) => {
  const { a, b } = await twoInstances(t)
  const phone = await registerAndLogin(a, undefined, 'Phone')
  const laptop = await login(a, phone.email, 'Laptop')
  const phoneId = (await a.inject({ url: '/auth/sessions', headers: bearer(laptop) })).json().sessions.find((s: { userAgent: string }) => s.userAgent === 'Phone').id
  t.equal((await me(b, phone)).statusCode, 200, 'the phone token works on B before')

  const res = await a.inject({ method: 'DELETE', url: `/auth/sessions/${phoneId}`, headers: bearer(laptop) })
  t.equal(res.statusCode, 204)
  const ms = await within(1000, async () => (await me(b, phone)).statusCode === 401)
  t.pass(`the phone's access token fails on instance B ${ms.toFixed(0)} ms later`)
  t.equal((await me(a, phone)).statusCode, 401, 'and on A at once')
  t.equal((await refresh(b, phone.cookie)).statusCode, 401, 'its refresh token is dead')
  t.equal((await me(b, laptop)).statusCode, 200, 'the caller keeps working')
  t.equal((await refresh(b, laptop.cookie)).statusCode, 200)
  t.equal((await a.inject({ method: 'DELETE', url: `/auth/sessions/${phoneId}`, headers: bearer(laptop) })).statusCode, 404, 'deleting again: 404')
  t.equal(res.headers['set-cookie'], undefined, 'the caller\'s own cookie is left alone')
})

t.test('DELETE /auth/sessions/:id of the caller\'s own session is a logout: its refresh cookie is cleared too', async (t) => {
  const app = await buildApp(t)
  const laptop = await registerAndLogin(app)
  const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(laptop.accessToken)}`, headers: bearer(laptop) })
  t.equal(res.statusCode, 204)
  t.equal(refreshCookieValue(app, res.headers['set-cookie']), '', 'the cookie cleared')
  t.equal((await refresh(app, laptop.cookie)).statusCode, 401, 'the session has ended')
  t.equal((await me(app, laptop)).statusCode, 401, 'with its access token')
})

t.test('another user\'s session id is a 404, the same as an unknown id, and the victim keeps refreshing', async (t) => {
  const app = await buildApp(t)
  const victim = await registerAndLogin(app)
  const attacker = await registerAndLogin(app)
  const victimId = (await app.inject({ url: '/auth/sessions', headers: bearer(victim) })).json().sessions[0].id
  const foreign = await app.inject({ method: 'DELETE', url: `/auth/sessions/${victimId}`, headers: bearer(attacker) })
  const unknown = await app.inject({ method: 'DELETE', url: '/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA', headers: bearer(attacker) })
  t.equal(foreign.statusCode, 404)
  t.same(foreign.json(), unknown.json(), 'no oracle: identical answers')
  t.equal(foreign.json().code, 'AUTH_SESSION_NOT_FOUND')
  t.equal((await refresh(app, victim.cookie)).statusCode, 200, 'the victim still refreshes')
  t.equal((await me(app, victim)).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/sessions/..%2F..%2Fetc', headers: bearer(attacker) })).statusCode, 400, 'malformed ids are a 400')
})

t.test('POST /auth/logout-all kills every refresh and access token of the user on both instances', async (t) => {
  const { a, b } = await twoInstances(t)
  const first = await registerAndLogin(a)
  const second = await login(b, first.email)
  const third = await login(a, first.email)
  const bystander = await registerAndLogin(b)

  const res = await b.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(first) })
  t.equal(res.statusCode, 204)
  t.equal(refreshCookieValue(b, res.headers['set-cookie']), '', 'the caller\'s cookie is cleared')
  for (const [name, s] of Object.entries({ first, second, third })) {
    for (const [instance, app] of Object.entries({ a, b })) {
      await within(1000, async () => (await me(app, s)).statusCode === 401)
      t.equal((await refresh(app, s.cookie)).statusCode, 401, `${name} refresh dead on ${instance}`)
    }
  }
  t.pass('every access token fails on both instances within 1 s')
  t.equal((await me(a, bystander)).statusCode, 200, 'another user is untouched')
  t.equal((await a.inject({ url: '/auth/sessions', headers: bearer(bystander) })).json().sessions.length, 1)
})

t.test('POST /auth/logout-all by a session that expires as it is asked still kills that session\'s access tokens', async (t) => {
  const prefix = uniquePrefix()
  const { app, link } = await buildAppThroughLink(t, { prefix })
  const caller = await registerAndLogin(app)
  const holding = link.holdAt(script('family-revoke-all'))
  const answer = app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(caller) })
  await within(5000, async () => holding(), 'the session found live, the revocation on its way')
  // Its idle timeout passes meanwhile: the family's key expires, so the revocation does not find it among those it ends.
  const redis = await connectedRedis(t)
  t.equal(await redis.del(familyKey(prefix, subOf(caller.accessToken), sidOf(caller.accessToken))), 1, 'the session expires')
  link.release()
  t.equal((await answer).statusCode, 204)
  t.equal((await me(app, caller)).statusCode, 401, 'its access token is refused all the same')
})

t.test('POST /auth/password keeps the caller, kills the others, and the old password no longer logs in', async (t) => {
  const { a, b } = await twoInstances(t)
  const caller = await registerAndLogin(a)
  const other = await login(b, caller.email)
  const change = (s: LoggedIn, payload: object) => a.inject({ method: 'POST', url: '/auth/password', headers: bearer(s), payload })

  const wrong = await change(caller, { currentPassword: 'not the password', newPassword: 'a brand new password' })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'AUTH_INVALID_CREDENTIALS')
  t.equal((await change(caller, { currentPassword: PASSWORD, newPassword: 'short' })).statusCode, 400, 'policy: 400')
  t.equal((await change(caller, { currentPassword: PASSWORD, newPassword: 'x'.repeat(129) })).statusCode, 400)

  t.equal((await change(caller, { currentPassword: PASSWORD, newPassword: 'a brand new password' })).statusCode, 204)
  t.equal((await me(b, caller)).statusCode, 200, 'the caller\'s access token still works')
  t.equal((await refresh(b, caller.cookie)).statusCode, 200, 'the caller\'s session still refreshes')
  await within(1000, async () => (await me(a, other)).statusCode === 401)
  t.equal((await refresh(a, other.cookie)).statusCode, 401, 'the other session is dead')

  const oldLogin = await a.inject({ method: 'POST', url: '/auth/login', payload: { email: caller.email, password: PASSWORD } })
  t.equal(oldLogin.statusCode, 401, 'the old password no longer logs in')
  const newLogin = await a.inject({ method: 'POST', url: '/auth/login', payload: { email: caller.email, password: 'a brand new password' } })
  t.equal(newLogin.statusCode, 200, 'the new one does')
})

t.test('a login that verified the old password while a change completed elsewhere gets no session, and its rehash does not undo the change', async (t) => {
  // The slow instance is busy, and a login it serves also rehashes the password.
  const { fast, slow: busy, owner } = await fastAndSlowInstances(t)
  const login = (app: FastifyInstance, email: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })

  const ahead = login(busy, `nobody-${owner.email}`, PASSWORD)
  await within(5000, async () => busy.passwordHasher.running === 1, 'another login hashes on the busy instance')
  const attacker = login(busy, owner.email, PASSWORD)
  await within(5000, async () => busy.passwordHasher.pending === 1, 'the attacker\'s login has read the account and waits its turn to hash')
  const changed = await fast.inject({ method: 'POST', url: '/auth/password', headers: bearer(owner), payload: { currentPassword: PASSWORD, newPassword: 'the owner\'s new password' } })
  t.equal(changed.statusCode, 204, 'the owner changes the password on the other instance')
  t.equal(busy.passwordHasher.pending, 1, 'while the attacker\'s login, which read the old hash, still waits')

  const res = await attacker
  t.same([res.statusCode, res.json().code], [401, 'AUTH_INVALID_CREDENTIALS'], 'the old password, checked against the hash it read, signs no one in')
  t.notOk(refreshCookieValue(busy, res.headers['set-cookie']), 'no refresh cookie')
  const listed = (await fast.inject({ url: '/auth/sessions', headers: bearer(owner) })).json().sessions as Array<{ current: boolean }>
  t.same(listed.map((s) => s.current), [true], 'the owner\'s session is the account\'s only one')

  await ahead
  // The busy instance started a rehash of the old password for that login; one more hash there runs after it.
  await login(busy, `nobody-${owner.email}`, PASSWORD)
  t.equal((await login(fast, owner.email, PASSWORD)).statusCode, 401, 'the old password stays changed')
  t.equal((await login(fast, owner.email, 'the owner\'s new password')).statusCode, 200, 'the new one signs in')
})

t.test('a login whose client hangs up while it takes its second look at the password leaves no session behind', async (t) => {
  const { fast, slow: busy, owner } = await fastAndSlowInstances(t)
  const port = await listenOnLoopback(busy)

  const ahead = busy.inject({ method: 'POST', url: '/auth/login', payload: { email: `nobody-${owner.email}`, password: PASSWORD } })
  await within(5000, async () => busy.passwordHasher.running === 1, 'another login hashes on the busy instance')
  const body = JSON.stringify({ email: owner.email, password: PASSWORD })
  const client = connect(port, '127.0.0.1')
  client.on('error', () => {})
  client.write(`POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  await within(5000, async () => busy.passwordHasher.pending === 1, 'the login has read the old hash and waits to verify it')
  t.equal((await fast.inject({ method: 'POST', url: '/auth/password', headers: bearer(owner), payload: { currentPassword: PASSWORD, newPassword: 'the owner\'s new password' } })).statusCode, 204)
  await ahead
  // The old password verifies against the hash the login read; it makes its session, and queues its second look
  // (against the changed hash) behind the rehash it started.
  await within(5000, async () => busy.passwordHasher.pending === 0, 'the login verifies')
  await within(5000, async () => busy.passwordHasher.pending === 1, 'its second look waits behind its rehash')
  client.destroy()
  await within(10_000, async () => busy.passwordHasher.pending + busy.passwordHasher.running === 0, 'the busy instance is idle')
  t.equal(busy.passwordHasher.dropped, 1, 'the second look was dropped with its client')
  const listed = (await fast.inject({ url: '/auth/sessions', headers: bearer(owner) })).json().sessions as Array<{ current: boolean }>
  t.same(listed.map((s) => s.current), [true], 'and the session it had made is gone: the owner\'s is the account\'s only one')
})

t.test('of two password changes made at once with the same current password, the second is refused', async (t) => {
  const { a, b } = await twoInstances(t)
  const first = await registerAndLogin(a)
  const second = await login(b, first.email)
  const change = (app: FastifyInstance, s: LoggedIn, newPassword: string) =>
    app.inject({ method: 'POST', url: '/auth/password', headers: bearer(s), payload: { currentPassword: PASSWORD, newPassword } })
  const results = await Promise.all([change(a, first, 'the first new password'), change(b, second, 'the second new password')])
  t.same(results.map((r) => r.statusCode === 204 ? '204' : `${r.statusCode} ${r.json().code as string} ${String(r.headers['www-authenticate'])}`).sort(),
    ['204', '401 AUTH_TOKEN_INVALID Bearer error="invalid_token"'], 'one change, and one told its session has ended (its token refused): the other ended it first')
  const winner = results[0]!.statusCode === 204 ? 'the first new password' : 'the second new password'
  const [kept, signedOut] = results[0]!.statusCode === 204 ? [first, second] : [second, first]
  t.equal((await a.inject({ method: 'POST', url: '/auth/login', payload: { email: first.email, password: winner } })).statusCode, 200, 'the winner\'s password signs in')
  t.equal((await refresh(a, kept.cookie)).statusCode, 200, 'the winner\'s session lives')
  t.equal((await refresh(a, signedOut.cookie)).statusCode, 401, 'the other was signed out by the change')
})

t.test('reuse detection revokes the family\'s access tokens too, on every instance', async (t) => {
  const { a, b } = await twoInstances(t)
  const s = await registerAndLogin(a)
  const child = refreshCookieValue(a, (await refresh(a, s.cookie)).headers['set-cookie'])
  const rotated = await refresh(a, `${a.config.cookie.name}=${child}`)
  const latestAccess = { ...s, accessToken: rotated.json().accessToken as string }
  t.match(await replayCodes(async () => (await refresh(b, s.cookie)).json().code, b.config.refresh.reuseGraceSeconds), CAUGHT_REPLAY, 'the replay is caught')
  await within(1000, async () => (await me(a, latestAccess)).statusCode === 401)
  t.equal((await me(b, s)).statusCode, 401, 'the first access token too')
})

t.test('an instance started after a revocation still rejects that sid', async (t) => {
  const prefix = uniquePrefix()
  const a = await buildApp(t, { prefix })
  const s = await registerAndLogin(a)
  await a.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: s.cookie } })
  const late = await buildApp(t, { prefix })
  await within(1000, async () => (await me(late, s)).statusCode === 401)
  t.pass('the late instance loaded the revocation at start')
})

t.test('logout revokes the access tokens of that session', async (t) => {
  const { a, b } = await twoInstances(t)
  const s = await registerAndLogin(a)
  await a.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: s.cookie } })
  await within(1000, async () => (await me(b, s)).statusCode === 401)
  t.pass('rejected on the other instance within 1 s')
})

t.test('with ACCESS_TOKEN_REVOCATION=off, access tokens live out their TTL', async (t) => {
  const app = await buildApp(t, { env: { ACCESS_TOKEN_REVOCATION: 'off' } })
  const s = await registerAndLogin(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: s.cookie } })
  t.equal((await refresh(app, s.cookie)).statusCode, 401, 'the refresh token is dead')
  t.equal((await me(app, s)).statusCode, 200, 'the access token is not')
})

t.test('a session ended on one instance manages the account on no other from that moment, before any revocation reaches it', async (t) => {
  const prefix = uniquePrefix()
  const a = await buildApp(t, { prefix })
  // An instance that never hears of revocations (its access tokens live out their TTL): the longest possible lag.
  const b = await buildApp(t, { prefix, env: { ACCESS_TOKEN_REVOCATION: 'off' } })
  const kept = await registerAndLogin(a)
  const ended = await login(a, kept.email)
  t.equal((await a.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(ended.accessToken)}`, headers: bearer(kept) })).statusCode, 204, 'one session ends another on instance A')

  t.equal((await me(b, ended)).statusCode, 200, 'B still takes the ended session\'s access token for /me, as configured')
  const refusals = [
    await b.inject({ url: '/auth/sessions', headers: bearer(ended) }),
    await b.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(kept.accessToken)}`, headers: bearer(ended) }),
    await b.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(ended) }),
    await b.inject({ method: 'POST', url: '/auth/password', headers: bearer(ended), payload: { currentPassword: PASSWORD, newPassword: 'a password the thief chose' } })
  ]
  t.same(refusals.map((r) => [r.statusCode, r.json().code, r.headers['www-authenticate']]), Array(4).fill([401, 'AUTH_TOKEN_INVALID', 'Bearer error="invalid_token"']),
    'but not to list, end or sign out sessions, nor to change the password')
  t.equal((await me(a, kept)).statusCode, 200, 'the session kept is untouched')
  t.same((await b.inject({ url: '/auth/sessions', headers: bearer(kept) })).json().sessions.map((s: { id: string }) => s.id), [sidOf(kept.accessToken)], 'and manages the account on B')
  t.equal((await a.inject({ method: 'POST', url: '/auth/login', payload: { email: kept.email, password: PASSWORD } })).statusCode, 200, 'the password is unchanged')
})

t.test('the per-user cap evicts the least recently used session and revokes its access tokens', async (t) => {
  const app = await buildApp(t, { env: { MAX_SESSIONS_PER_USER: '2' } })
  const first = await registerAndLogin(app)
  await sleep(5)
  const second = await login(app, first.email)
  await sleep(5)
  const third = await login(app, first.email)
  t.equal((await app.inject({ url: '/auth/sessions', headers: bearer(third) })).json().sessions.length, 2)
  t.equal((await refresh(app, first.cookie)).statusCode, 401, 'the oldest was evicted')
  t.equal((await me(app, first)).statusCode, 401, 'with its access token')
  t.equal((await refresh(app, second.cookie)).statusCode, 200)
})
