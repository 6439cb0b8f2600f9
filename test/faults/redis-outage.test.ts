import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildApp, capturedLogs, cookieKept, failedClosedUnderLoad, familyKey, login, type LoggedIn, nextRefreshCookie, PASSWORD, refresh, refreshCookieValue, refreshingWhile, registerAndLogin, sessionsOn, sidOf, uniqueEmail, uniquePrefix, UNLIMITED_REFRESHES } from '../helpers/app.js'
import { appCall, browserApp, needsChromium, refreshCookieIn } from '../helpers/browser.js'
import { within } from '../helpers/poll.js'
import { PrivateRedis } from '../helpers/redis-server.js'
import { silentServerMs } from '../../src/redis-client.js'

async function timed<T> (fn: () => Promise<T>): Promise<{ value: T, ms: number }> {
  const started = performance.now()
  const value = await fn()
  return { value, ms: performance.now() - started }
}

async function waitUntilReady (app: FastifyInstance, timeoutMs = 10_000): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < timeoutMs) {
    if ((await app.inject({ url: '/health/ready' })).statusCode === 200) return performance.now() - started
    await sleep(100)
  }
  throw new Error('never became ready')
}

/**
 * Runs `request` with Redis stalling for 2 s from the moment `object[method]` has answered: the store command the
 * route sends next reaches a stalled server, which runs it when it wakes, after the route has answered 503.
 */
async function stallingAfter<O extends object, K extends keyof O, R> (t: Test, redis: PrivateRedis, object: O, method: K, request: () => Promise<R>) {
  const original = object[method] as (...args: unknown[]) => Promise<unknown>
  let stall: { woken: Promise<void> } | undefined
  object[method] = (async (...args: unknown[]) => {
    const value = await original.apply(object, args)
    stall = await redis.stall(t, 2)
    return value
  }) as O[K]
  try {
    const res = await request()
    if (stall === undefined) throw new Error(`${String(method)} was never called`)
    return { res, woken: stall.woken }
  } finally {
    object[method] = original as O[K]
  }
}

t.test('Redis killed mid-traffic: 503 within 2 s where the store is needed, /me keeps working, recovery without restart', async (t) => {
  const redis = await PrivateRedis.start(t, { appendOnly: true })
  const app = await buildApp(t, { env: { REDIS_URL: redis.url } })
  const session = await registerAndLogin(app)
  const rotated = refreshCookieValue(app, (await refresh(app, session.cookie)).headers['set-cookie'])
  const cookie = `${app.config.cookie.name}=${rotated}`

  await redis.kill()

  for (const [name, request] of Object.entries({
    login: () => app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } }),
    register: () => app.inject({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail(), password: PASSWORD } }),
    refresh: () => refresh(app, cookie),
    logout: () => app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie } }),
    ready: () => app.inject({ url: '/health/ready' })
  })) {
    const { value: res, ms } = await timed(request)
    t.equal(res.statusCode, 503, `${name}: 503`)
    t.match(res.json(), { statusCode: 503, code: name === 'ready' ? 'SERVICE_NOT_READY' : 'AUTH_STORE_UNAVAILABLE' }, `${name}: stable code`)
    t.ok(ms < 2000, `${name}: answered in ${ms.toFixed(0)} ms`)
  }
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })).statusCode, 200, '/me verifies access tokens without Redis')
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'still live')

  await redis.start()
  const recoveredMs = await waitUntilReady(app)
  t.pass(`ready again ${recoveredMs.toFixed(0)} ms after Redis came back`)
  const res = await refresh(app, cookie)
  t.equal(res.statusCode, 200, 'the session survived the Redis restart (AOF) and refreshes')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } })).statusCode, 200, 'login works again')
})

t.test('Redis killed and restarted under refresh load: every refusal is a 503 within 2 s, and every session refreshes on', async (t) => {
  const redis = await PrivateRedis.start(t, { appendOnly: true })
  const env = { REDIS_URL: redis.url, ...UNLIMITED_REFRESHES }
  const prefix = uniquePrefix()
  const apps = [await buildApp(t, { prefix, env }), await buildApp(t, { prefix, env })] as const
  const cookies = await sessionsOn(apps, 24)
  let backAfterMs = 0
  const load = await refreshingWhile(apps, cookies, async () => {
    await sleep(300)
    const killed = performance.now()
    await redis.kill()
    await sleep(1000)
    await redis.start()
    for (const app of apps) await waitUntilReady(app)
    backAfterMs = performance.now() - killed
    await sleep(1000)
  })
  await failedClosedUnderLoad(t, apps, cookies, load, `while Redis was killed, restarted (AOF) and ready ${(backAfterMs / 1000).toFixed(1)} s later, and 1 s after`)
})

t.test('Redis down at start: the service starts, answers 503 fast, and recovers when Redis appears', async (t) => {
  const redis = await PrivateRedis.create(t)
  const { value: app, ms } = await timed(() => buildApp(t, { env: { REDIS_URL: redis.url, JWT_SECRET: 'x'.repeat(40), REFRESH_TOKEN_SECRET: 'y'.repeat(40) } }))
  t.ok(ms < 5000, `started in ${ms.toFixed(0)} ms without Redis`)
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200)
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503)
  const login = await timed(() => app.inject({ method: 'POST', url: '/auth/login', payload: { email: uniqueEmail(), password: PASSWORD } }))
  t.equal(login.value.statusCode, 503)
  t.ok(login.ms < 2000, `login answered in ${login.ms.toFixed(0)} ms`)
  const skew = async () => /^auth_store_clock_skew_seconds .*$/m.exec((await app.inject({ url: '/metrics' })).body)?.[0]
  t.equal(await skew(), undefined, 'no clock skew shown before the store\'s clock is read (not a skew of 0)')

  // Now bring Redis up on that very port.
  await redis.start()
  await waitUntilReady(app)
  t.match(await skew(), /^auth_store_clock_skew_seconds -?\d/, 'and shown once it is')
  const session = await registerAndLogin(app)
  t.equal((await refresh(app, session.cookie)).statusCode, 200, 'login and refresh work once Redis is there')
})

t.test('slow Redis: requests get 503 within 2 s instead of hanging, then the service recovers', async (t) => {
  const redis = await PrivateRedis.start(t)
  const app = await buildApp(t, { env: { REDIS_URL: redis.url } })
  const session = await registerAndLogin(app)
  const others = await Promise.all(Array.from({ length: 8 }, () => registerAndLogin(app)))

  // The whole server blocked for 3 s: every command in that window stalls.
  const stall = await redis.stall(t, 3)
  const results = await Promise.all([
    // Many requests at once: each must be bounded by one command timeout, not queue behind the others.
    ...others.map((s) => timed(() => refresh(app, s.cookie))),
    timed(() => refresh(app, session.cookie)),
    timed(() => app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } })),
    timed(() => app.inject({ url: '/health/ready' }))
  ])
  for (const { value, ms } of results) {
    t.equal(value.statusCode, 503)
    t.ok(ms < 2000, `answered in ${ms.toFixed(0)} ms while Redis stalls`)
  }
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })).statusCode, 200)
  await stall.woken
  await waitUntilReady(app)
  // The stalled refresh may or may not have been applied by Redis after the stall; the grace window
  // makes the same token good either way, which is exactly what a client retrying after a 503 needs.
  t.equal((await refresh(app, session.cookie)).statusCode, 200, 'retrying the same token after the stall succeeds')
})

t.test('a refresh answered 503 sets the successor: the client stays signed in past the grace window, whether the rotation ran late or never', async (t) => {
  const GRACE_SECONDS = 1
  const redis = await PrivateRedis.start(t, { appendOnly: true })
  const app = await buildApp(t, { env: { REDIS_URL: redis.url, REFRESH_REUSE_GRACE: String(GRACE_SECONDS) } })
  const [ranLate, neverRan, keptOldToken] = [await registerAndLogin(app), await registerAndLogin(app), await registerAndLogin(app)]
  // The family's generation as the store holds it: the token is userId.familyId.generation.secret.tag.
  const generation = async (session: { refreshToken: string }) => {
    const [userId, familyId] = session.refreshToken.split('.') as [string, string]
    return Number(await redis.command('HGET', familyKey(app.config.redis!.keyPrefix, userId, familyId), 'g'))
  }

  // Redis stalls with the rotations already sent: it runs them once it wakes, after the service has answered 503.
  const stall = await redis.stall(t, 2)
  const [late, kept] = await Promise.all([refresh(app, ranLate.cookie), refresh(app, keptOldToken.cookie)])
  t.same([late.statusCode, kept.statusCode], [503, 503], 'both refreshes answered 503 while Redis stalled')
  const lateCookie = cookieKept(app, late, ranLate.cookie)
  t.not(lateCookie, ranLate.cookie, 'the 503 set a new refresh cookie')
  t.match(late.headers['set-cookie'], /; Max-Age=\d+; Path=\/auth; HttpOnly; Secure; SameSite=Strict$/, 'with the refresh cookie\'s attributes')
  await stall.woken
  t.same([await generation(ranLate), await generation(keptOldToken)], [1, 1], 'Redis ran both rotations after the 503s')

  // Redis down: nothing is sent, the rotation never runs.
  await redis.kill()
  const down = await refresh(app, neverRan.cookie)
  t.equal(down.statusCode, 503, 'a refresh while Redis is down answers 503')
  const downCookie = cookieKept(app, down, neverRan.cookie)
  t.not(downCookie, neverRan.cookie, 'and sets a new refresh cookie too')
  await redis.start()
  await waitUntilReady(app)
  t.equal(await generation(neverRan), 0, 'that rotation never ran')

  await sleep(GRACE_SECONDS * 1000 + 200)
  const afterLate = await refresh(app, lateCookie)
  t.equal(afterLate.statusCode, 200, 'past the grace window, the cookie the 503 set refreshes: its rotation ran, so it is current')
  const afterDown = await refresh(app, downCookie)
  t.equal(afterDown.statusCode, 200, 'and where the rotation never ran, it refreshes as a token ahead of the store\'s')
  t.equal(await generation(neverRan), 2, 'which the store then takes as current')
  t.equal((await refresh(app, nextRefreshCookie(app, afterDown))).statusCode, 200, 'and the session rotates on from there')
  const old = await refresh(app, keptOldToken.cookie)
  t.match({ status: old.statusCode, code: old.json().code }, { status: 401, code: 'AUTH_REFRESH_REUSED' },
    'a client that ignored the cookie and kept its old token is taken for a replay once the grace window has passed')
  t.match((await app.inject({ url: '/metrics' })).body, /^auth_refresh_total\{outcome="unavailable"\} 3$/m, 'the three 503s are counted as refreshes the store did not answer')
})

t.test('a login answered 503 whose session Redis makes only after the answer leaves no session behind', async (t) => {
  const redis = await PrivateRedis.start(t)
  const app = await buildApp(t, { env: { REDIS_URL: redis.url } })
  const session = await registerAndLogin(app)
  const listed = async () => (await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${session.accessToken}` } }))
    .json<{ sessions: Array<{ id: string }> }>().sessions.map((s) => s.id)
  // What Redis does to the user's families, as it does it.
  await redis.command('CONFIG', 'SET', 'notify-keyspace-events', 'Kgh')
  const watcher = new Redis(redis.url)
  t.teardown(() => watcher.disconnect())
  const families: Array<{ key: string, event: string }> = []
  watcher.on('pmessage', (_pattern: string, channel: string, event: string) => { families.push({ key: channel.replace(/^__keyspace@0__:/, ''), event }) })
  await watcher.psubscribe(`__keyspace@0__:*{${session.refreshToken.split('.')[0]}}:f:*`)

  // Redis stalls once the password is verified. The first command after it is the session's create, sent to the
  // stalled server, which runs it when it wakes: after the service has answered 503.
  const { res, woken } = await stallingAfter(t, redis, app.passwordHasher, 'verify',
    () => app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } }))
  t.match({ status: res.statusCode, code: res.json().code }, { status: 503, code: 'AUTH_STORE_UNAVAILABLE' }, 'the login is answered 503 while Redis stalls')
  t.equal(res.headers['set-cookie'], undefined, 'with no cookie')
  await woken

  await within(2000, async () => families.some((f) => f.event === 'del'), 'Redis deletes a family once awake')
  t.same(families.map((f) => f.event), ['hset', 'expire', 'del'], 'once awake, Redis runs the create (a hash with its TTL), then deletes it')
  t.ok(families.every((f) => f.key === families[0]?.key), 'all of one family, not the one signed in')
  t.same(await listed(), [sidOf(session.accessToken)], 'only the session that signed in is listed')
})

t.test('a login that fails after its session began, Redis killed, ends that session once Redis is back', async (t) => {
  const redis = await PrivateRedis.start(t, { appendOnly: true })
  const app = await buildApp(t, { env: { REDIS_URL: redis.url } })
  const session = await registerAndLogin(app)
  // Redis dies between the session's create and the login's second look at the password (routes/auth/login.ts).
  const { users } = app
  const findByEmail = users.findByEmail.bind(users)
  let looks = 0
  users.findByEmail = async (email) => {
    if (++looks === 2) await redis.kill()
    return await findByEmail(email)
  }
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } })
  users.findByEmail = findByEmail
  t.equal(looks, 2, 'the login read the account twice, Redis dying before the second')
  t.match({ status: res.statusCode, code: res.json().code }, { status: 503, code: 'AUTH_STORE_UNAVAILABLE' }, 'the login is answered 503')
  t.equal(res.headers['set-cookie'], undefined, 'with no cookie')

  await redis.start()
  await waitUntilReady(app)
  const families = () => redis.command('ZCARD', `${app.config.redis!.keyPrefix}{${session.refreshToken.split('.')[0]}}:fams`)
  await within(3000, async () => await families() === 1, 'the session the failed login made is ended')
  const listed = (await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${session.accessToken}` } })).json<{ sessions: Array<{ id: string }> }>()
  t.same(listed.sessions.map((s) => s.id), [sidOf(session.accessToken)], 'only the session that signed in is listed')
})

t.test('a session ended by a revoke answered 503 that Redis runs late has its access tokens refused too, though the retry finds nothing to end', async (t) => {
  const redis = await PrivateRedis.start(t)
  const app = await buildApp(t, { env: { REDIS_URL: redis.url } })
  const owner = await registerAndLogin(app)
  const thief = await login(app, owner.email)
  const me = async (s: LoggedIn) => (await app.inject({ url: '/me', headers: { authorization: `Bearer ${s.accessToken}` } })).statusCode
  // Redis stalls once the owner's session is found live: the revoke that follows is sent to the stalled server, which
  // runs it when it wakes, after the service has answered 503.
  const end = () => app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(thief.accessToken)}`, headers: { authorization: `Bearer ${owner.accessToken}` } })
  const { res, woken } = await stallingAfter(t, redis, app.sessions, 'isLive', end)
  t.equal(res.statusCode, 503, 'the owner ends the thief\'s session: 503, Redis stalled')
  await woken
  t.equal((await refresh(app, thief.cookie)).statusCode, 401, 'Redis ran the revoke once awake: the thief\'s session is over')
  t.equal((await end()).statusCode, 404, 'so the owner\'s retry finds nothing to end')
  const pending = async () => Number(/^auth_unanswered_writes_pending (\d+)$/m.exec((await app.inject({ url: '/metrics' })).body)?.[1])
  t.equal(await pending(), 1, 'one follow-up waits for the late writes to settle, as /metrics shows')
  // The follow-up waits out the late writes (4 s from the 503 by default), then revokes within a second.
  const refusedAfterMs = await within(app.familyStore.lateWritesMs + 3000, async () => await me(thief) === 401, 'the thief\'s access token refused')
  t.pass(`the thief's access token is refused ${(refusedAfterMs / 1000).toFixed(1)} s after Redis woke, once the late writes had settled`)
  t.equal(await me(owner), 200, 'the owner\'s is not')
  await within(1000, async () => await pending() === 0, 'no follow-up pending once it is done')
  t.pass('and none once it is done')
})

t.test('a real browser keeps the successor a 503 sets, and its session outlives the grace window after Redis stalled', needsChromium(), async (t) => {
  const GRACE_SECONDS = 1
  const redis = await PrivateRedis.start(t)
  const { api, email, context, openApp } = await browserApp(t, { env: { REDIS_URL: redis.url, REFRESH_REUSE_GRACE: String(GRACE_SECONDS) } })
  const page = await openApp()
  t.equal((await appCall(page, api, '/auth/login', { email, password: PASSWORD })).status, 200, 'the app logs in')
  const before = await refreshCookieIn(context)

  const stall = await redis.stall(t, 2)
  const refused = await appCall(page, api, '/auth/refresh')
  t.match(refused, { status: 503, body: { code: 'AUTH_STORE_UNAVAILABLE' } }, 'a refresh while Redis stalls: 503')
  const kept = await refreshCookieIn(context)
  t.ok(kept !== undefined && kept.value !== before?.value, 'the browser stored the cookie the 503 set')
  t.match(kept, { httpOnly: true, secure: true, path: '/auth' }, 'with its attributes')
  await stall.woken

  await sleep(GRACE_SECONDS * 1000 + 200)
  t.equal((await appCall(page, api, '/auth/refresh')).status, 200, 'past the grace window the app refreshes: it presents the stalled rotation\'s successor, not a replay')
})

t.test('Redis frozen longer than the client waits on a silent server: 503 within 2 s throughout, and back without restart when it answers again', async (t) => {
  const redis = await PrivateRedis.start(t)
  const logs = capturedLogs()
  const app = await buildApp(t, { logStream: logs.stream, env: { LOG_LEVEL: 'info', REDIS_URL: redis.url } })
  const session = await registerAndLogin(app)

  // SIGSTOP: the connections stay open and new ones are still accepted by the kernel, but nothing answers.
  redis.pause()
  const frozen = Date.now()
  const answers: string[] = []
  while (Date.now() - frozen < 3 * silentServerMs(app.config.redis!.commandTimeoutMs)) {
    const { value: res, ms } = await timed(() => refresh(app, session.cookie))
    answers.push(`${res.statusCode} ${res.json().code as string} ${ms < 2000 ? 'fast' : `in ${ms.toFixed(0)} ms`}`)
    await sleep(200)
  }
  t.same(new Set(answers), new Set(['503 AUTH_STORE_UNAVAILABLE fast']), `${answers.length} refreshes while Redis is frozen: every one a 503 within 2 s`)
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })).statusCode, 200, '/me verifies meanwhile')
  t.match(logs.text(), /"msg":"redis connection error"[^\n]*Socket timeout|Socket timeout[^\n]*"msg":"redis connection error"/, 'the client noticed the silence and logged it')

  redis.resume()
  const recoveredMs = await waitUntilReady(app)
  t.pass(`ready ${recoveredMs.toFixed(0)} ms after Redis answers again`)
  t.equal((await refresh(app, session.cookie)).statusCode, 200, 'the session refreshes')
  // The connections the client gave up on while Redis was frozen are closed, not left open on the server.
  const clients = Number(/^connected_clients:(\d+)/m.exec(String(await redis.command('INFO', 'clients')))?.[1])
  t.ok(clients <= 3, `${clients} connections on Redis: the service's command and subscriber connections, and this one`)
})

t.test('an outage is logged once per kind of failure, not once per reconnect attempt, and its end once', async (t) => {
  const redis = await PrivateRedis.start(t)
  const logs = capturedLogs()
  const app = await buildApp(t, { logStream: logs.stream, env: { LOG_LEVEL: 'info', REDIS_URL: redis.url } })
  const count = (msg: string) => logs.lines().filter((l) => l.msg === msg).length

  for (const outage of [1, 2]) {
    await redis.kill()
    await sleep(3000) // the client retries every 100 ms to 1 s meanwhile
    t.ok(count('redis connection error') >= outage, `outage ${outage} is logged`)
    t.ok(count('redis connection error') <= 3 * outage, `with at most three lines (${count('redis connection error')} in all so far), not one per attempt`)
    await redis.start()
    await waitUntilReady(app)
    t.equal(count('redis connection restored'), outage, 'its end is logged once')
  }
})
