import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { buildApp, login, PASSWORD, uniqueEmail } from '../helpers/app.js'
import { forward, launchBrowser, needsChromium, refreshCookieIn, servePage, site } from '../helpers/browser.js'
import { APP_PAGES, call, type InPage, listen, openAppTab, restore, sessions, signIn, signOut, state, token, toldSignedIn, withoutWebLocks } from '../helpers/browser-client.js'
import { within } from '../helpers/poll.js'
import { PrivateRedis } from '../helpers/redis-server.js'

// Nineteen cases in Chromium: 103 s in a CI run here, too near the suite's 120 s a file for a busy machine; this file
// gets twice that.
t.setTimeout(240_000)

interface Held { arrived: Promise<void>, release: () => void }

/** Where the app is, seen from the service (on 127.0.0.1). */
type AppPlace = 'own origin' | 'same site' | 'another site'

/**
 * The service behind a proxy that can hold a request to a path, or its answer, until released (a slow network, for
 * one request), passing everything else on as it comes. On the service's own origin, the proxy is also the app's site: it serves
 * the app's pages and the service under /api (PUBLIC_PATH_PREFIX=/api). Otherwise the app is on another origin,
 * listed in ALLOWED_ORIGINS: of the same site (another port), or of another site (localhost), whose app needs
 * COOKIE_SAMESITE=none.
 */
async function appAndService (t: Test, { place = 'same site', env = {}, webLocks = true }: { place?: AppPlace, env?: Record<string, string>, webLocks?: boolean } = {}) {
  const mounted = place === 'own origin'
  const appOrigin = mounted ? null : await site(t, place === 'same site' ? '127.0.0.1' : 'localhost', APP_PAGES)
  const placed = mounted ? { PUBLIC_PATH_PREFIX: '/api' } : { ALLOWED_ORIGINS: appOrigin as string, ...(place === 'another site' ? { COOKIE_SAMESITE: 'none' } : {}) }
  const auth = await buildApp(t, { env: { ...placed, ...env } })
  const service = new URL(await auth.listen({ port: 0, host: '127.0.0.1' }))
  const holds = new Map<string, () => Promise<void>>()
  const take = (what: string) => {
    const held = holds.get(what)?.() ?? Promise.resolve()
    holds.delete(what)
    return held
  }
  const proxy = createServer((req, res) => {
    if (mounted && servePage(APP_PAGES, req, res)) return
    const path = mounted ? (req.url ?? '').replace(/^\/api(?=\/)/, '') : req.url ?? ''
    take(`request ${path}`).then(() => {
      forward(req, res, service, path, { answered: async () => await take(`answer ${path}`) })
    }).catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => proxy.close())
  const proxyOrigin = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
  const app = mounted ? `${proxyOrigin}/app.html?api=/api` : `${appOrigin as string}/app.html?api=${proxyOrigin}`

  const email = uniqueEmail()
  await auth.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const context = await (await launchBrowser(t)).newContext()
  if (!webLocks) await withoutWebLocks(context)
  // What the browser was answered by the service, in order: "POST /auth/refresh 200".
  const answers: string[] = []
  context.on('response', (response) => {
    const path = new URL(response.url()).pathname
    if (!(path in APP_PAGES)) answers.push(`${response.request().method()} ${path.replace(/^\/api(?=\/)/, '')} ${response.status()}`)
  })

  /** A new tab of the app, once its client is made. */
  const openTab = async (): Promise<Page> => await openAppTab(context, app)
  /** Holds the next request to `path` at the proxy until released, or the service's answer to it (`answer`). */
  const holdNext = (path: string, what: 'request' | 'answer' = 'request'): Held => {
    let arrive = (): void => {}
    let release = (): void => {}
    const arrived = new Promise<void>((resolve) => { arrive = resolve })
    const released = new Promise<void>((resolve) => { release = resolve })
    holds.set(`${what} ${path}`, async () => { arrive(); await released })
    return { arrived, release }
  }
  return { auth, email, context, answers, openTab, holdNext }
}

const count = (answers: string[], answer: RegExp) => answers.filter((a) => answer.test(a)).length

/**
 * A sign-in in the tab's browser not through its client: another app of the API, on another origin (no BroadcastChannel
 * reaches it), or code of the app's own. The browser's cookie is replaced, and the session the app's token is of ends.
 */
const signInAround = async (page: Page, email: string) => await page.evaluate(async ([email, password]) => {
  return (await fetch(`${(globalThis as unknown as InPage).api}/auth/login`, {
    method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password })
  })).status
}, [email, PASSWORD] as const)

const PLACES: Record<AppPlace, string> = {
  'own origin': 'an app on the service\'s own origin, which serves it under /api',
  'same site': 'an app on another origin of the site',
  'another site': 'an app on another site (COOKIE_SAMESITE=none)'
}
for (const [place, where] of Object.entries(PLACES) as Array<[AppPlace, string]>) {
  t.test(`the browser client, in ${where}: signs in, calls with its token, and a reloaded page is signed in from the cookie alone`, needsChromium(), async (t) => {
    const { email, context, answers, openTab } = await appAndService(t, { place })
    const page = await openTab()
    t.equal(await restore(page), false, 'a first visit holds no session')
    t.equal(await signIn(page, email), 'signed in', 'the app signs in')
    t.same(await call(page), { status: 200, email }, 'and calls /me with the token')
    t.notOk(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie.includes('refresh')), 'no script can read the refresh token')
    t.same(await page.evaluate(() => ['localStorage', 'sessionStorage'].map((name) => (globalThis as unknown as Record<string, { length: number }>)[name]?.length)), [0, 0], 'and nothing is stored where scripts can read it')

    await page.reload()
    await page.waitForFunction(() => 'auth' in globalThis)
    t.equal(await restore(page), true, 'the reloaded page is signed in again by its cookie')
    t.same(await call(page), { status: 200, email }, 'and calls /me')
    t.equal(await sessions(page), 1, 'on the same session')
    t.ok(await refreshCookieIn(context), 'the browser holds the cookie')
    t.same(answers.filter((a) => a.includes('/auth/')), ['POST /auth/refresh 401', 'POST /auth/login 200', 'POST /auth/refresh 200', 'GET /auth/sessions 200'], 'what the browser was answered')
  })
}

t.test('the browser client: calls made at once with no token held share one refresh', needsChromium(), async (t) => {
  const { email, answers, openTab } = await appAndService(t)
  t.equal(await signIn(await openTab(), email), 'signed in', 'the app signs in in one tab')
  const page = await openTab()
  const all = await page.evaluate(async () => {
    const tab = globalThis as unknown as InPage
    return await Promise.all(Array.from({ length: 10 }, async () => (await tab.auth.fetch('/me')).status))
  })
  t.same(all, Array(10).fill(200), 'ten calls at once in a new tab are served')
  t.equal(count(answers, /^POST \/auth\/refresh/), 1, 'after one refresh: each refresh rotates the cookie, and ten would have raced')
})

t.test('the browser client: a sign-in form submitted twice makes one session', needsChromium(), async (t) => {
  const { auth, email, answers, openTab } = await appAndService(t)
  const other = uniqueEmail()
  await auth.inject({ method: 'POST', url: '/auth/register', payload: { email: other, password: PASSWORD } })
  const page = await openTab()
  t.same(await page.evaluate(async ([email, password]) => {
    const tab = globalThis as unknown as InPage
    return await Promise.all([tab.auth.signIn(email, password), tab.auth.signIn(email, password)].map(async (s) => await tab.attempt(s.then(() => 'signed in'))))
  }, [email, PASSWORD] as const), ['signed in', 'signed in'], 'both submissions are signed in')
  t.same(answers, ['POST /auth/login 200'], 'by one sign-in')
  t.equal(await sessions(page), 1, 'and the user has one session, the one the browser holds')

  t.same(await page.evaluate(async ([email, other, password]) => {
    const tab = globalThis as unknown as InPage
    return await Promise.all([tab.auth.signIn(email, password), tab.auth.signIn(other, password)].map(async (s) => await tab.attempt(s.then(() => 'signed in'))))
  }, [email, other, PASSWORD] as const), ['signed in', 'signed in'], 'two sign-ins with different credentials at once')
  t.equal(count(answers, /^POST \/auth\/login 200$/), 3, 'are each sent')
})

t.test('the browser client: eight tabs restored at once, as a browser reopens them, are signed in by one refresh and share its token', needsChromium(), async (t) => {
  const { email, answers, openTab } = await appAndService(t)
  t.equal(await signIn(await openTab(), email), 'signed in', 'the app signs in')
  const tabs = await Promise.all(Array.from({ length: 8 }, openTab))
  const before = answers.length
  t.same(await Promise.all(tabs.map(restore)), Array(8).fill(true), 'each tab is signed in')
  t.same(answers.slice(before), ['POST /auth/refresh 200'], 'by one refresh: the others waited for it (Web Locks)')
  t.equal(new Set(await Promise.all(tabs.map(token))).size, 1, 'and took up the token it gave, which each holds')
  t.same(await Promise.all(tabs.map(async (tab) => (await call(tab)).status)), Array(8).fill(200), 'each calls /me with it')
  t.equal(await sessions(tabs[0] as Page), 1, 'on one session')
})

t.test('the browser client, in a browser without Web Locks: eight tabs restored at once refresh each, and are all signed in on the one session', needsChromium(), async (t) => {
  const { email, answers, openTab } = await appAndService(t, { webLocks: false })
  t.equal(await signIn(await openTab(), email), 'signed in', 'the app signs in')
  const tabs = await Promise.all(Array.from({ length: 8 }, openTab))
  t.equal(await tabs[0]?.evaluate(() => 'locks' in (globalThis as unknown as { navigator: object }).navigator), false, 'the tabs have no Web Locks (Safari before 15.4)')
  t.same(await Promise.all(tabs.map(restore)), Array(8).fill(true), 'each tab, refreshing with the same cookie at once, is signed in')
  t.ok(count(answers, /^POST \/auth\/refresh 200$/) > 1, 'by refreshes of their own (those that sent a token already rotated got its successor within the grace window, or were answered 409 and sent again)')
  t.equal(count(answers, /^POST \/auth\/refresh 401$/), 0, 'none refused')
  t.same(await Promise.all(tabs.map(async (tab) => (await call(tab)).status)), Array(8).fill(200), 'each calls /me')
  t.equal(await sessions(tabs[0] as Page), 1, 'on one session')
})

t.test('the browser client: tokens due in three tabs at once are renewed by one refresh, whose token each takes up', needsChromium(), async (t) => {
  const { email, answers, openTab } = await appAndService(t, { env: { ACCESS_TOKEN_TTL: '4' } })
  const tabs = await Promise.all(Array.from({ length: 3 }, openTab))
  t.equal(await signIn(tabs[0] as Page, email), 'signed in', 'the app signs in in one tab, with 4 s tokens')
  await within(2000, async () => new Set(await Promise.all(tabs.map(token))).size === 1, 'every tab holding its token')
  t.same(answers.slice(-1), ['POST /auth/login 200'], 'which the other tabs took up without a refresh')
  await sleep(3100) // past three quarters of its life
  const before = answers.length
  t.same(await Promise.all(tabs.map(async (tab) => (await call(tab)).status)), [200, 200, 200], 'a call in each tab at once is served')
  t.same(answers.slice(before).filter((a) => a.includes('refresh')), ['POST /auth/refresh 200'], 'after one refresh')
  t.equal(new Set(await Promise.all(tabs.map(token))).size, 1, 'whose token each tab holds')
})

t.test('the browser client: a tab whose refresh hangs on the network holds up the others\' for 10 s, not for good', needsChromium(), async (t) => {
  const { email, answers, openTab, holdNext } = await appAndService(t, { env: { ACCESS_TOKEN_TTL: '4', REFRESH_REUSE_GRACE: '30' } })
  const [first, second] = await Promise.all([openTab(), openTab()]) as [Page, Page]
  t.equal(await signIn(first, email), 'signed in', 'the app signs in in one tab, with 4 s tokens')
  await within(2000, async () => await token(second) === await token(first), 'the other tab holding its token')
  await sleep(3100) // past three quarters of its life

  const held = holdNext('/auth/refresh')
  const hanging = call(first)
  await held.arrived
  const started = Date.now()
  const waited = await Promise.race([call(second), sleep(15_000).then(() => 'still waiting')])
  const seconds = (Date.now() - started) / 1000
  held.release()
  t.same(waited, { status: 200, email }, 'the second tab\'s call, while the first tab\'s refresh hangs, is served')
  t.ok(seconds >= 9.5 && seconds < 15, `after ${seconds.toFixed(1)} s: the second tab waited for the first tab's refresh, then refreshed by itself`)
  t.same(await hanging, { status: 200, email }, 'and the first tab\'s call, once its refresh arrives, is served too')
  t.equal(count(answers, /^POST \/auth\/refresh 200$/), 2, 'each after a refresh answered 200 (the later-arriving one from the grace window)')
  t.equal(await token(first), await token(second), 'and both tabs hold the token of the later request')
})

t.test('the browser client: a token near its end is renewed before a call, which is then never refused', needsChromium(), async (t) => {
  const { email, answers, openTab } = await appAndService(t, { env: { ACCESS_TOKEN_TTL: '4' } })
  const page = await openTab()
  t.equal(await signIn(page, email), 'signed in', 'the app signs in, with 4 s tokens')
  t.equal((await call(page) as { status: number }).status, 200, 'a call at once uses the token')
  t.equal(count(answers, /refresh/), 0, 'without a refresh')
  await sleep(3100) // past three quarters of its life
  t.equal((await call(page) as { status: number }).status, 200, 'a call near its end is served')
  t.same(answers.slice(-2), ['POST /auth/refresh 200', 'GET /me 200'], 'after a refresh made first')
  t.equal(count(answers, /401$/), 0, 'and nothing was refused')
})

t.test('the browser client: a refresh superseded by a sign-in in another tab (409) takes up the token that sign-in gave', needsChromium(), async (t) => {
  const { email, answers, openTab, holdNext } = await appAndService(t)
  const first = await openTab()
  const second = await openTab()
  t.equal(await signIn(first, email), 'signed in', 'the first tab signs in')

  // The second tab's refresh is slow on the network; meanwhile the first tab signs in again, which ends the session
  // that refresh's cookie is of and gives the browser another.
  const held = holdNext('/auth/refresh')
  const restoring = restore(second)
  await held.arrived
  t.equal(await signIn(first, email), 'signed in', 'the first tab signs in again while the second tab\'s refresh is on its way')
  held.release()
  t.equal(await restoring, true, 'the second tab is signed in')
  t.same(answers.filter((a) => a.includes('/auth/')).slice(-2), ['POST /auth/login 200', 'POST /auth/refresh 409'], 'its refresh answered 409 AUTH_REFRESH_SUPERSEDED and not sent again')
  t.equal(await token(second), await token(first), 'as it holds the token the first tab was given')
  t.same(await state(second), { signedIn: true, signedOut: 0 }, 'the app was never told it was signed out')
  t.equal(await sessions(second), 1, 'and both tabs are on the new session, the one the browser holds')
})

t.test('the browser client: a refresh superseded by a sign-in not through the client (409) is retried with the new cookie', needsChromium(), async (t) => {
  const { email, answers, openTab, holdNext } = await appAndService(t)
  const page = await openTab()
  t.equal(await signIn(page, email), 'signed in', 'the app signs in')

  const held = holdNext('/auth/refresh')
  const restoring = restore(page)
  await held.arrived
  t.equal(await signInAround(page, email), 200, 'another sign-in in this browser, not through the client, while the app\'s refresh is on its way')
  held.release()
  t.equal(await restoring, true, 'the app\'s refresh succeeds')
  t.same(answers.filter((a) => a.startsWith('POST /auth/refresh')).slice(-2), ['POST /auth/refresh 409', 'POST /auth/refresh 200'], 'once sent again after the service answered 409 AUTH_REFRESH_SUPERSEDED')
  t.same(await state(page), { signedIn: true, signedOut: 0 }, 'the app was never told it was signed out')
  t.same(await call(page), { status: 200, email }, 'and calls /me on the new session')
  t.equal(await sessions(page), 1, 'the only one')
})

t.test('the browser client: a refresh answered after a sign-out in another tab does not sign either tab in again', needsChromium(), async (t) => {
  const { email, answers, openTab, holdNext } = await appAndService(t)
  const first = await openTab()
  const second = await openTab()
  t.equal(await signIn(first, email), 'signed in', 'the first tab signs in')

  // The service answers the second tab's refresh before the first tab signs out, but the answer is slow to arrive.
  const held = holdNext('/auth/refresh', 'answer')
  const restoring = restore(second)
  await held.arrived
  t.equal(await signOut(first), 'signed out', 'the first tab signs out while the second tab\'s refresh is answered')
  await within(2000, async () => (await state(second)).signedIn === false, 'the second tab told')
  held.release()
  t.equal(await restoring, false, 'the refresh\'s token, of the session since ended, is not taken up')
  t.same(answers.filter((a) => a.includes('/auth/')).slice(-2), ['POST /auth/logout 204', 'POST /auth/refresh 200'], 'though the service gave one')
  t.same([await state(first), await state(second)], [{ signedIn: false, signedOut: 0 }, { signedIn: false, signedOut: 1 }], 'both tabs are signed out, the second told once')
  t.equal(await token(first), null, 'the first tab was not given it either')
  t.equal(await restore(second), false, 'and a restore finds no session')
})

t.test('the browser client: what a tab hears of a request older than the one behind what it holds, or in a form it does not know, changes nothing', needsChromium(), async (t) => {
  const { email, openTab } = await appAndService(t)
  const page = await openTab()
  t.equal(await signIn(page, email), 'signed in', 'the app signs in')
  const held = await token(page)
  // As another tab of the app would say it, late or from another version of the app.
  const say = async (message: unknown) => {
    await page.evaluate((message) => {
      const channel = new BroadcastChannel(`auth-client:${(globalThis as unknown as InPage).api}`)
      channel.postMessage(message)
      channel.close()
    }, message)
    await sleep(200)
  }
  await say({ kind: 'signed-out', at: Date.now() - 60_000 })
  t.same(await state(page), { signedIn: true, signedOut: 0 }, 'a sign-out sent before the sign-in leaves the tab signed in')
  await say({ kind: 'token', at: Date.now() - 60_000, token: { value: 'stale', renewAt: Date.now() + 60_000, expiresAt: Date.now() + 60_000 } })
  await say('signed-out')
  await say({ kind: 'signed-out' })
  await say({ kind: 'token', at: Date.now() })
  await say({ kind: 'token', at: Date.now(), token: { value: 42, renewAt: Date.now() + 60_000, expiresAt: Date.now() + 60_000 } })
  await say({ kind: 'signed-in', at: Date.now() })
  t.equal(await token(page), held, 'neither a token given before the sign-in, nor messages it cannot read, replace the token held')
  t.same(await call(page), { status: 200, email }, 'with which the app calls /me')
  await say({ kind: 'signed-out', at: Date.now() })
  t.same(await state(page), { signedIn: false, signedOut: 1 }, 'a sign-out sent after the sign-in signs the tab out, and the app is told')
})

t.test('the browser client: a sign-in in one tab moves the others to the new session, with its token, none refused', needsChromium(), async (t) => {
  const { email, answers, openTab } = await appAndService(t)
  const first = await openTab()
  const second = await openTab()
  t.equal(await signIn(first, email), 'signed in', 'the first tab signs in')
  t.equal(await restore(second), true, 'the second tab is signed in from the cookie')
  const told = await listen(second)
  t.equal(await signIn(first, email), 'signed in', 'the first tab signs in again: the session the second tab\'s token is of ends, and its token with it')
  await within(2000, async () => await told() === 1, 'the second tab told')
  t.equal(await token(second), await token(first), 'the second tab holds the token the first was given')
  t.same(await call(second), { status: 200, email }, 'the second tab\'s call is served')
  t.same(answers.slice(-2), ['POST /auth/login 200', 'GET /me 200'], 'with it, without a refresh')
  t.equal(count(answers, /^GET \/me 401$/), 0, 'none refused')
  t.same(await state(second), { signedIn: true, signedOut: 0 }, 'and the app was never told it was signed out')
  t.equal(await toldSignedIn(second), 0, 'nor that it was signed in, as it was already')
})

t.test('the browser client: a call refused 401 because a sign-in by another app of the browser ended the session renews the token and is sent again', needsChromium(), async (t) => {
  const { email, answers, openTab } = await appAndService(t)
  const page = await openTab()
  t.equal(await signIn(page, email), 'signed in', 'the app signs in')
  t.equal(await signInAround(page, email), 200, 'another sign-in in this browser, not through the client')
  t.same(await call(page), { status: 200, email }, 'the app\'s call is served')
  t.same(answers.slice(-3), ['GET /me 401', 'POST /auth/refresh 200', 'GET /me 200'], 'sent again, once refused and the token renewed from the new cookie')
  t.same(await state(page), { signedIn: true, signedOut: 0 }, 'the app never saw it')
})

t.test('the browser client: a session ended from another device is told to the app once, at the next call', needsChromium(), async (t) => {
  const { auth, email, answers, openTab } = await appAndService(t)
  const page = await openTab()
  t.equal(await signIn(page, email), 'signed in', 'the app signs in')
  const elsewhere = await login(auth, email)
  t.equal((await auth.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Bearer ${elsewhere.accessToken}` } })).statusCode, 204, 'another device signs out everywhere')

  t.equal((await call(page) as { status: number }).status, 401, 'the app\'s next call is refused')
  t.same(answers.slice(-2), ['GET /me 401', 'POST /auth/refresh 401'], 'once its token was refused and a refresh too')
  t.same(await state(page), { signedIn: false, signedOut: 1 }, 'and the app is told, once')
  const refreshes = count(answers, /refresh/)
  t.equal((await call(page) as { status: number }).status, 401, 'a later call is refused too')
  t.equal(count(answers, /refresh/), refreshes, 'without trying another refresh')
  t.equal((await state(page)).signedOut, 1, 'and without telling the app again')
})

t.test('the browser client: signing out in one tab signs out the others; signing out everywhere ends the other devices\' sessions', needsChromium(), async (t) => {
  const { auth, email, context, answers, openTab } = await appAndService(t)
  const first = await openTab()
  const second = await openTab()
  t.equal(await signIn(first, email), 'signed in', 'the first tab signs in')
  t.equal(await restore(second), true, 'the second tab is signed in from the cookie')

  t.equal(await signOut(first), 'signed out', 'the first tab signs out')
  t.equal(await refreshCookieIn(context), undefined, 'the cookie is gone')
  await within(2000, async () => !(await state(second)).signedIn, 'the second tab signed out')
  t.same(await state(second), { signedIn: false, signedOut: 1 }, 'the second tab is told at once, before any call of its own')
  t.same(await state(first), { signedIn: false, signedOut: 0 }, 'the first, which signed out itself, is not')
  const before = answers.length
  t.equal((await call(second) as { status: number }).status, 401, 'a call in the second tab is sent without a token and refused')
  t.same(answers.slice(before), ['GET /me 401'], 'without a refresh')

  t.equal(await signIn(second, email), 'signed in', 'the second tab signs in')
  await within(2000, async () => (await state(first)).signedIn, 'the first tab signed in')
  t.equal(await toldSignedIn(first), 1, 'the first tab, signed out, is signed in with it, and its app told once')
  t.equal(await toldSignedIn(second), 0, 'the second, which signed in itself, is not')
  t.same(await call(first), { status: 200, email }, 'the first tab calls /me')
  t.equal(await restore(first), true, 'and a restore there finds the new session')
  const device = await login(auth, email)
  t.equal(await signOut(first, true), 'signed out', 'the first tab signs out everywhere')
  t.equal(await refreshCookieIn(context), undefined, 'the browser\'s cookie is gone')
  t.equal((await auth.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: device.cookie } })).statusCode, 401, 'and the other device\'s session has ended')
  await within(2000, async () => !(await state(second)).signedIn, 'the second tab signed out')
  t.equal((await state(second)).signedOut, 2, 'the second tab is told, a second time since it signed in')
})

t.test('the browser client: while the store stalls, calls go on with the token held, not each trying a refresh; the session lives on after it, past the grace window', needsChromium(), async (t) => {
  const redis = await PrivateRedis.start(t)
  const { email, answers, openTab } = await appAndService(t, { env: { REDIS_URL: redis.url, ACCESS_TOKEN_TTL: '8', REFRESH_REUSE_GRACE: '1' } })
  const page = await openTab()
  t.equal(await signIn(page, email), 'signed in', 'the app signs in, with 8 s tokens')
  await sleep(6100) // past three quarters of the token's life: the next call renews it first

  const stall = await redis.stall(t, 3)
  t.same(await call(page), { status: 200, email }, 'a call while Redis stalls is served')
  t.same(answers.slice(-2), ['POST /auth/refresh 503', 'GET /me 200'], 'with the token held, its renewal refused 503')
  t.same(await state(page), { signedIn: true, signedOut: 0 }, 'the app is still signed in')
  t.equal(await restore(page), 'AUTH_STORE_UNAVAILABLE', 'a restore meanwhile fails with a code the app can tell from a sign-out')
  const before = answers.length
  for (let i = 0; i < 3; i++) t.same(await call(page), { status: 200, email }, `call ${i + 1} of 3 more while Redis stalls is served`)
  t.same(answers.slice(before), Array(3).fill('GET /me 200'), 'with the token held, no refresh tried: the next waits 1 s after the first failure, 2 s after the second')
  await stall.woken
  await sleep(1200) // past REFRESH_REUSE_GRACE: the cookie the browser holds must be the 503's successor, not a replay
  t.same(await call(page), { status: 200, email }, 'once Redis answers, a call is served')
  t.same(answers.slice(-2), ['POST /auth/refresh 200', 'GET /me 200'], 'after its token is renewed')
  t.same(await state(page), { signedIn: true, signedOut: 0 }, 'on the session it always had')
})

t.test('the browser client: a renewal refused 429 is not tried again before its Retry-After; the token held serves meanwhile', needsChromium(), async (t) => {
  const { email, answers, openTab } = await appAndService(t, { env: { ACCESS_TOKEN_TTL: '8', RATE_LIMIT_REFRESH_SESSION: '1/12' } })
  const page = await openTab()
  t.equal(await signIn(page, email), 'signed in', 'the app signs in, with 8 s tokens and one refresh a session per 12 s')
  t.equal(await restore(page), true, 'a refresh, the one of this window')
  await sleep(6100) // past three quarters of the token's life: the next call renews it first

  t.same(await call(page), { status: 200, email }, 'a call is served')
  t.same(answers.slice(-2), ['POST /auth/refresh 429', 'GET /me 200'], 'with the token held, its renewal refused 429')
  const retryAfter = await page.evaluate(async () => {
    const response = await fetch(`${(globalThis as unknown as InPage).api}/auth/refresh`, { method: 'POST', credentials: 'include' })
    return Number(response.headers.get('retry-after'))
  })
  t.ok(retryAfter >= 4, `whose Retry-After, readable by the app, says ${retryAfter} s`)
  await sleep(1200) // past the 1 s the client waits when the service does not say
  const before = answers.length
  t.same(await call(page), { status: 200, email }, 'a call within Retry-After is served')
  t.same(answers.slice(before), ['GET /me 200'], 'with the token held, its renewal not tried')
  t.same(await state(page), { signedIn: true, signedOut: 0 }, 'the app signed in throughout')
})

t.test('the browser client: a password change refused for its current password is sent once, with no renewal; one made keeps this browser signed in and ends the other devices\' sessions', needsChromium(), async (t) => {
  const { auth, email, answers, openTab } = await appAndService(t)
  const page = await openTab()
  t.equal(await signIn(page, email), 'signed in', 'the app signs in')
  const change = async (current: string, next: string) => await page.evaluate(async ([current, next]) => {
    const tab = globalThis as unknown as InPage
    return await tab.attempt(tab.auth.changePassword(current, next).then(() => 'changed'))
  }, [current, next] as const)
  const newPassword = `${PASSWORD} and more`

  const before = answers.length
  t.equal(await change('not the password', newPassword), 'AUTH_INVALID_CREDENTIALS', 'a wrong current password is refused')
  t.same(answers.slice(before), ['POST /auth/password 401'], 'once: not taken for a refused token, renewed and sent again (a second guess against the account\'s limit)')
  t.same(await state(page), { signedIn: true, signedOut: 0 }, 'and the app is still signed in')

  const device = await login(auth, email)
  t.equal(await change(PASSWORD, 'password1234'), 'AUTH_WEAK_PASSWORD', 'a new password on the blocklist is refused, as such')
  t.equal(await change(PASSWORD, newPassword), 'changed', 'the password is changed')
  t.same(await call(page), { status: 200, email }, 'this browser\'s session is kept')
  t.equal((await auth.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: device.cookie } })).statusCode, 401, 'the other device\'s has ended')
  t.equal((await auth.inject({ method: 'POST', url: '/auth/login', payload: { email, password: newPassword } })).statusCode, 200, 'and the new password signs in')
})

t.test('the browser client: deleting the account signs every tab out; a wrong password deletes nothing', needsChromium(), async (t) => {
  const { email, context, answers, openTab } = await appAndService(t)
  const first = await openTab()
  const second = await openTab()
  t.equal(await signIn(first, email), 'signed in', 'the first tab signs in')
  t.equal(await restore(second), true, 'the second tab is signed in from the cookie')
  const remove = async (password: string) => await first.evaluate(async (password) => {
    const tab = globalThis as unknown as InPage
    return await tab.attempt(tab.auth.deleteAccount(password).then(() => 'deleted'))
  }, password)

  const before = answers.length
  t.equal(await remove('not the password'), 'AUTH_INVALID_CREDENTIALS', 'a wrong password is refused')
  t.same(answers.slice(before), ['DELETE /auth/account 401'], 'once, with no renewal')
  t.same(await call(second), { status: 200, email }, 'and the account is there')

  t.equal(await remove(PASSWORD), 'deleted', 'the account is deleted')
  t.equal(await refreshCookieIn(context), undefined, 'the browser\'s cookie is gone')
  await within(2000, async () => !(await state(second)).signedIn, 'the second tab signed out')
  t.same(await state(second), { signedIn: false, signedOut: 1 }, 'the second tab is told')
  t.same(await state(first), { signedIn: false, signedOut: 0 }, 'the first, which deleted it, is not')
  t.equal(await signIn(first, email), 'AUTH_INVALID_CREDENTIALS', 'its password signs in to nothing')
})
