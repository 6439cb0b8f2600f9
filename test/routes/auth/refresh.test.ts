import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp, cookiePath, listenOnLoopback, PASSWORD, refresh, refreshCookieValue, registerAndLogin, setCookies } from '../../helpers/app.js'
import { appCall, browserApp, needsChromium, refreshCookieIn } from '../../helpers/browser.js'
import { matchList } from '../../helpers/match-list.js'
import { HEADER_CROWD, rawRequest } from '../../helpers/raw-http.js'

const COOKIE = '__Secure-refresh_token'

/**
 * Holds the next rotation between the request and the store, as a paused instance would: `reached` once the request
 * has been taken (its time recorded), 5 ms on, so that later requests are made after it; `release` lets it go on.
 */
function holdNextRotation (t: Test, app: FastifyInstance): { reached: Promise<void>, release: () => void } {
  const store = app.familyStore
  const rotate = store.rotate.bind(store)
  let release = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  let reached = () => {}
  const reachedStore = new Promise<void>((resolve) => { reached = resolve })
  store.rotate = async (input) => {
    store.rotate = rotate
    reached()
    await held
    return await rotate(input)
  }
  t.teardown(() => { store.rotate = rotate })
  return { reached: reachedStore.then(async () => { await sleep(5) }), release }
}

for (const store of ['redis', 'memory'] as const) {
  t.test(`POST /auth/refresh (${store} store)`, async (t) => {
    const app = await buildApp(t, { store })

    t.test('rotates: 200 with a new access token and a new refresh cookie, no body or content type needed', async (t) => {
      const session = await registerAndLogin(app)
      const res = await refresh(app, session.cookie)
      t.equal(res.statusCode, 200)
      t.equal(res.headers['cache-control'], 'no-store')
      t.match(res.json(), { accessToken: String, tokenType: 'Bearer', expiresIn: 600 })
      t.not(res.json().accessToken, session.accessToken)
      const next = refreshCookieValue(app, res.headers['set-cookie'])
      t.ok(next !== undefined && next !== '' && next !== session.refreshToken, 'a different refresh token')
      t.match(setCookies(res)[0], /; Path=\/auth; HttpOnly; Secure; SameSite=Strict$/)
      const me = await app.inject({ url: '/me', headers: { authorization: `Bearer ${res.json().accessToken}` } })
      t.equal(me.statusCode, 200, 'the new access token works')
      const again = await refresh(app, `${COOKIE}=${next}`)
      t.equal(again.statusCode, 200, 'and the rotated token refreshes in turn')
    })

    t.test('accepts an empty JSON body too (fetch with a JSON content type)', async (t) => {
      const session = await registerAndLogin(app)
      const res = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: session.cookie, 'content-type': 'application/json' } })
      t.equal(res.statusCode, 200)
    })

    t.test('20 concurrent refreshes with one token: all 200 with one identical successor', async (t) => {
      const session = await registerAndLogin(app)
      const results = await Promise.all(Array.from({ length: 20 }, () => refresh(app, session.cookie)))
      t.same(results.map((r) => r.statusCode), Array(20).fill(200))
      const successors = new Set(results.map((r) => refreshCookieValue(app, r.headers['set-cookie'])))
      t.equal(successors.size, 1, 'one live token: cookies never diverge')
      const [successor] = successors
      t.equal((await refresh(app, `${COOKIE}=${successor}`)).statusCode, 200, 'and it works')
    })

    t.test('the parent within the grace window gets the very same successor', async (t) => {
      const session = await registerAndLogin(app)
      const first = await refresh(app, session.cookie)
      const retry = await refresh(app, session.cookie)
      t.equal(retry.statusCode, 200)
      t.equal(refreshCookieValue(app, retry.headers['set-cookie']), refreshCookieValue(app, first.headers['set-cookie']))
    })

    // A browser's tabs refreshing at once through several instances: one tab's request reaches its instance after
    // another tab, already holding the successor, has rotated that too.
    t.test('the grandparent within the grace window: 409 AUTH_REFRESH_SUPERSEDED, the cookie kept, the family lives on', async (t) => {
      const session = await registerAndLogin(app)
      const child = refreshCookieValue(app, (await refresh(app, session.cookie)).headers['set-cookie'])
      const grandchild = refreshCookieValue(app, (await refresh(app, `${COOKIE}=${child}`)).headers['set-cookie'])
      const late = await refresh(app, session.cookie)
      t.same([late.statusCode, late.json().code], [409, 'AUTH_REFRESH_SUPERSEDED'])
      t.equal(late.headers['set-cookie'], undefined, 'no cookie set or cleared: the browser keeps the current token')
      t.equal((await refresh(app, `${COOKIE}=${grandchild}`)).statusCode, 200, 'the current token refreshes')
    })

    // Two tabs refresh at once on instances behind a load balancer, and one instance is held up (a pause, a slow hop to
    // the store) until the other tab has refreshed twice: its request finds the token it carries two generations old.
    // The request was made before those rotations, so it is no replay (family-rotate.lua); its answer must not clear
    // the cookie either, which a browser shares between tabs and which holds the session's current token by then.
    t.test('a refresh held up until its session has rotated on: 409 AUTH_REFRESH_SUPERSEDED, the cookie kept, the session refreshes on', async (t) => {
      const session = await registerAndLogin(app)
      const superseded = async () => Number(/^auth_refresh_total\{outcome="superseded"\} (\d+)$/m.exec((await app.inject({ url: '/metrics' })).body)?.[1] ?? 0)
      const before = await superseded()
      const hold = holdNextRotation(t, app)
      const late = refresh(app, session.cookie)
      await hold.reached
      const child = refreshCookieValue(app, (await refresh(app, session.cookie)).headers['set-cookie'])
      const current = refreshCookieValue(app, (await refresh(app, `${COOKIE}=${child}`)).headers['set-cookie'])
      hold.release()
      const res = await late
      t.equal(res.statusCode, 409)
      t.same(res.json(), { statusCode: 409, code: 'AUTH_REFRESH_SUPERSEDED', error: 'Conflict', message: 'Refresh token was superseded by a newer refresh of this session, or by a new sign-in in this browser; retry with the current cookie' })
      t.equal(res.headers['set-cookie'], undefined, 'no cookie set or cleared: the browser keeps the current token')
      t.equal(await superseded(), before + 1, 'counted as superseded')
      t.equal((await refresh(app, `${COOKIE}=${current}`)).statusCode, 200, 'which refreshes')
    })

    t.test('401 with the cookie cleared for a missing, malformed, forged or unknown token', async (t) => {
      const session = await registerAndLogin(app)
      const [userId, familyId, generation, secret, tag] = session.refreshToken.split('.') as [string, string, string, string, string]
      const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1)
      const cases: Record<string, string | undefined> = {
        missing: undefined,
        empty: `${COOKIE}=`,
        garbage: `${COOKIE}=not-a-token`,
        'tampered secret': `${COOKIE}=${userId}.${familyId}.${generation}.${flip(secret)}.${tag}`,
        'tampered tag': `${COOKIE}=${userId}.${familyId}.${generation}.${secret}.${flip(tag)}`,
        'claimed later generation': `${COOKIE}=${userId}.${familyId}.5.${secret}.${tag}`,
        'another user id': `${COOKIE}=AAAAAAAAAAAAAAAAAAAAAA.${familyId}.${generation}.${secret}.${tag}`,
        'a JWT instead': `${COOKIE}=${session.accessToken}`,
        huge: `${COOKIE}=${'a'.repeat(4000)}`
      }
      for (const [name, cookie] of Object.entries(cases)) {
        const res = await refresh(app, cookie ?? '')
        t.equal(res.statusCode, 401, name)
        t.equal(res.json().code, 'AUTH_REFRESH_INVALID', name)
        t.equal(refreshCookieValue(app, res.headers['set-cookie']), '', `${name}: cookie cleared`)
      }
      t.equal((await refresh(app, session.cookie)).statusCode, 200, 'none of it harmed the genuine session')
    })

    t.test('a forged token naming a victim family cannot revoke it', async (t) => {
      const victim = await registerAndLogin(app)
      const attacker = await registerAndLogin(app)
      const [victimUser, victimFamily] = victim.refreshToken.split('.') as [string, string]
      const [, , , secret, tag] = attacker.refreshToken.split('.') as [string, string, string, string, string]
      // Generation 0 of the victim's family after it has rotated would be "reuse" — if it were genuine.
      const next = refreshCookieValue(app, (await refresh(app, victim.cookie)).headers['set-cookie'])
      await refresh(app, `${COOKIE}=${next}`)
      const res = await refresh(app, `${COOKIE}=${victimUser}.${victimFamily}.0.${secret}.${tag}`)
      t.equal(res.json().code, 'AUTH_REFRESH_INVALID', 'rejected as invalid, not as reuse')
      const latest = refreshCookieValue(app, (await refresh(app, `${COOKIE}=${next}`)).headers['set-cookie'])
      t.ok(latest, 'the victim family still refreshes (grace answer for its parent)')
    })

    t.test('two cookies of the refresh name: 401 and both cleared', async (t) => {
      const a = await registerAndLogin(app)
      const b = await registerAndLogin(app)
      const res = await refresh(app, `${a.cookie}; ${b.cookie}`)
      t.equal(res.statusCode, 401)
      t.equal(res.json().code, 'AUTH_REFRESH_INVALID')
      const cleared = setCookies(res).filter((c) => c.startsWith(`${COOKIE}=;`))
      t.same(cleared.map(cookiePath).sort(), ['/', '/auth', '/auth/', '/auth/login', '/auth/logout', '/auth/refresh'],
        'cleared on /auth and on every other path a planted copy would be sent to the auth routes from')
      t.equal((await refresh(app, a.cookie)).statusCode, 200, 'nothing was rotated or revoked')
    })

    t.test('200 unrelated cookies around the refresh cookie are fine', async (t) => {
      const session = await registerAndLogin(app)
      const noise = Array.from({ length: 200 }, (_, i) => `c${i}=v${i}`).join('; ')
      t.equal((await refresh(app, `${noise}; ${session.cookie}; x=y`)).statusCode, 200)
    })

    t.test('whitespace around a cookie pair, as some clients space the separators, is not part of its value', async (t) => {
      const session = await registerAndLogin(app)
      t.equal((await refresh(app, `a=1 ;  ${session.cookie} \t; x=y`)).statusCode, 200)
    })

    t.test('after logout the token no longer refreshes', async (t) => {
      const session = await registerAndLogin(app)
      t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: session.cookie } })).statusCode, 204)
      const res = await refresh(app, session.cookie)
      t.equal(res.statusCode, 401)
      t.equal(res.json().code, 'AUTH_REFRESH_INVALID')
    })
  })
}

t.test('two Cookie headers with a refresh cookie each, 1,100 headers apart, are two cookies: Node kept the first thousand or so headers of a request', async (t) => {
  const app = await buildApp(t)
  const port = await listenOnLoopback(app)
  const [a, b] = [await registerAndLogin(app), await registerAndLogin(app)]
  const res = await rawRequest(port, `POST /auth/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${a.cookie}\r\n${HEADER_CROWD}Cookie: ${b.cookie}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
  t.same([res.statusCode, JSON.parse(res.body).code], [401, 'AUTH_REFRESH_INVALID'], 'refused as two cookies of the name (it rotated the first before)')
  t.equal((await refresh(app, a.cookie)).statusCode, 200, 'nothing was rotated or revoked')
})

t.test('PUBLIC_PATH_PREFIX=/api: every refresh cookie the service sets or clears is on the path browsers reach the auth routes by', async (t) => {
  const app = await buildApp(t, { env: { PUBLIC_PATH_PREFIX: '/api' } })
  const session = await registerAndLogin(app)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } })
  matchList(t, setCookies(login), [/^__Secure-refresh_token=[^;]+; Max-Age=604800; Path=\/api\/auth; HttpOnly; Secure; SameSite=Strict$/, /^__Secure-refresh_token_device=[^;]+; Max-Age=\d+; Path=\/api\/auth\/login;/],
    'set by a sign-in on /api/auth (and its device cookie on /api/auth/login)')
  const refreshed = await refresh(app, session.cookie)
  t.equal(refreshed.statusCode, 200, 'the session refreshes')
  matchList(t, setCookies(refreshed), [/; Path=\/api\/auth; HttpOnly/], 'and its refresh sets the cookie there too')
  const planted = await refresh(app, `${session.cookie}; ${COOKIE}=planted`)
  t.equal(planted.statusCode, 401, 'two cookies of the name: refused')
  t.same(setCookies(planted).map(cookiePath).sort(), ['/', '/api', '/api/', '/api/auth', '/api/auth/', '/api/auth/login', '/api/auth/logout', '/api/auth/refresh'],
    'cleared on its path and on every other path a planted copy would be sent to the auth routes from, the prefix\'s included')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `${COOKIE}=${refreshCookieValue(app, login.headers['set-cookie']) ?? ''}` } })
  t.equal(logout.statusCode, 204, 'a logout')
  matchList(t, setCookies(logout), [/^__Secure-refresh_token=; Max-Age=0; Path=\/api\/auth; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly/], 'cleared by a logout on /api/auth')
})

t.test('timeouts, enforced by the store', async (t) => {
  for (const store of ['redis', 'memory'] as const) {
    t.test(`parent after the grace window revokes the family (${store})`, async (t) => {
      const app = await buildApp(t, { store, env: { REFRESH_REUSE_GRACE: '1' } })
      const session = await registerAndLogin(app)
      const child = refreshCookieValue(app, (await refresh(app, session.cookie)).headers['set-cookie'])
      await sleep(1100)
      const reuse = await refresh(app, session.cookie)
      t.equal(reuse.json().code, 'AUTH_REFRESH_REUSED')
      t.equal((await refresh(app, `${COOKIE}=${child}`)).statusCode, 401, 'the current token died with the family')
    })

    t.test(`grandparent reuse after the grace window revokes the whole family (${store})`, async (t) => {
      const app = await buildApp(t, { store, env: { REFRESH_REUSE_GRACE: '1' } })
      const session = await registerAndLogin(app)
      const child = refreshCookieValue(app, (await refresh(app, session.cookie)).headers['set-cookie'])
      const grandchild = refreshCookieValue(app, (await refresh(app, `${COOKIE}=${child}`)).headers['set-cookie'])
      await sleep(1100)
      const reuse = await refresh(app, session.cookie)
      t.same([reuse.statusCode, reuse.json().code], [401, 'AUTH_REFRESH_REUSED'])
      t.equal(refreshCookieValue(app, reuse.headers['set-cookie']), '', 'cookie cleared')
      const current = await refresh(app, `${COOKIE}=${grandchild}`)
      t.same([current.statusCode, current.json().code], [401, 'AUTH_REFRESH_INVALID'], 'the current token is revoked with its family')
    })

    t.test(`with REFRESH_REUSE_GRACE=0 any second use is reuse (${store})`, async (t) => {
      const app = await buildApp(t, { store, env: { REFRESH_REUSE_GRACE: '0' } })
      const session = await registerAndLogin(app)
      t.equal((await refresh(app, session.cookie)).statusCode, 200)
      t.equal((await refresh(app, session.cookie)).json().code, 'AUTH_REFRESH_REUSED')
    })

    t.test(`idle expiry: a session unused for REFRESH_IDLE_TTL is gone (${store})`, async (t) => {
      const app = await buildApp(t, { store, env: { REFRESH_IDLE_TTL: '1', REFRESH_REUSE_GRACE: '0' } })
      const session = await registerAndLogin(app)
      await sleep(1200)
      const res = await refresh(app, session.cookie)
      t.equal(res.statusCode, 401)
      t.equal(res.json().code, 'AUTH_REFRESH_INVALID')
    })

    t.test(`the cookie Max-Age is min(idle, remaining absolute lifetime) (${store})`, async (t) => {
      const app = await buildApp(t, { store, env: { REFRESH_IDLE_TTL: '100', REFRESH_ABSOLUTE_TTL: '3', REFRESH_REUSE_GRACE: '0' } })
      const session = await registerAndLogin(app)
      const maxAge = (res: { headers: { 'set-cookie'?: string | string[] } }) => Number(/Max-Age=(\d+)/.exec(setCookies(res)[0] ?? '')?.[1])
      await sleep(1100)
      const res = await refresh(app, session.cookie)
      t.equal(res.statusCode, 200)
      t.ok(maxAge(res) <= 2, `Max-Age ${maxAge(res)} ≤ 2 s left of the 3 s absolute lifetime`)
      await sleep(2000)
      t.equal((await refresh(app, `${COOKIE}=${refreshCookieValue(app, res.headers['set-cookie'])}`)).statusCode, 401, 'and the absolute lifetime ends it')
    })
  }
})

t.test('two tabs of a real browser: a refresh held up while the other tab refreshes twice is answered 409, and the browser stays signed in', needsChromium(), async (t) => {
  const { auth, api, email, context, openApp } = await browserApp(t)
  const [first, second] = [await openApp(), await openApp()]
  t.equal((await appCall(first, api, '/auth/login', { email, password: PASSWORD })).status, 200, 'the app logs in')

  const hold = holdNextRotation(t, auth)
  const late = appCall(first, api, '/auth/refresh')
  await hold.reached
  t.equal((await appCall(second, api, '/auth/refresh')).status, 200, 'the other tab refreshes')
  t.equal((await appCall(second, api, '/auth/refresh')).status, 200, 'and again')
  const current = await refreshCookieIn(context)
  hold.release()
  t.match(await late, { status: 409, body: { code: 'AUTH_REFRESH_SUPERSEDED' } }, 'the held-up refresh: 409')
  t.equal((await refreshCookieIn(context))?.value, current?.value, 'the browser still holds the current token')
  t.equal((await appCall(first, api, '/auth/refresh')).status, 200, 'and the first tab\'s retry refreshes')
})
