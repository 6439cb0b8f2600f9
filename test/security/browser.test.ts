import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Browser } from 'playwright-core'
import t, { type Test } from 'tap'
import { buildApp, PASSWORD, uniqueEmail } from '../helpers/app.js'
import { appCall, browserApp, forward, launchBrowser, needsChromium, REFRESH_COOKIE as COOKIE, refreshCookieIn, site } from '../helpers/browser.js'

// The app and the API share the site 127.0.0.1 (same-site, cross-origin: different ports);
// the attacker's page is on localhost, another site.
for (const sameSite of ['strict', 'lax', 'none'] as const) {
  t.test(`a real browser: the refresh cookie works for the app and no cross-site page can use it (COOKIE_SAMESITE=${sameSite})`, needsChromium(), async (t) => {
    const { api, email, context, openApp } = await browserApp(t, { env: { COOKIE_SAMESITE: sameSite } })

    const evilOrigin = await site(t, 'localhost', {
      '/fetch.html': '<!doctype html><title>evil</title>',
      // The classic CSRF: an auto-submitting form, a "simple" request that skips CORS preflight.
      '/form.html': `<!doctype html><form method="POST" action="${api}/auth/refresh" enctype="text/plain"><input name="x" value="y"></form><script>document.forms[0].submit()</script>`,
      '/logout-form.html': `<!doctype html><form method="POST" action="${api}/auth/logout"></form><script>document.forms[0].submit()</script>`
    })

    const refreshCookie = async () => await refreshCookieIn(context)

    // The app logs in and refreshes with fetch(..., { credentials: 'include' }).
    const page = await openApp()
    const call = async (path: string, body?: object) => await appCall(page, api, path, body)

    const login = await call('/auth/login', { email, password: PASSWORD })
    t.equal(login.status, 200, 'login from the app')
    const stored = await refreshCookie()
    t.ok(stored, 'the browser stored the refresh cookie')
    t.match(stored, { httpOnly: true, secure: true, path: '/auth', sameSite: { strict: 'Strict', lax: 'Lax', none: 'None' }[sameSite] }, 'with its attributes')
    t.notOk(login.cookieVisible, 'no script can read it')
    t.notOk(JSON.stringify(login.body).includes(stored?.value ?? '???'), 'it is not in the body')
    t.match(login.requestId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'the app can read which request it made, to report it')

    const refreshed = await call('/auth/refresh')
    t.equal(refreshed.status, 200, 'refresh from the app, with nothing but the cookie')
    const rotated = await refreshCookie()
    t.not(rotated?.value, stored?.value, 'the cookie was rotated')

    // The attacker tries with fetch: the preflight fails, the browser never sends the request.
    const attacker = await context.newPage()
    await attacker.goto(`${evilOrigin}/fetch.html`)
    const viaFetch = await attacker.evaluate(async (url) => {
      try {
        const res = await fetch(url, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' } })
        return `status ${res.status}`
      } catch (err) {
        return `blocked: ${(err as Error).name}`
      }
    }, `${api}/auth/refresh`)
    t.equal(viaFetch, 'blocked: TypeError', 'a cross-site fetch with credentials is blocked by CORS')

    // And with forms, which need no preflight.
    for (const form of ['/form.html', '/logout-form.html']) {
      const response = await Promise.all([
        attacker.waitForResponse((r) => r.url().startsWith(api)),
        attacker.goto(`${evilOrigin}${form}`)
      ]).then(([r]) => r)
      t.ok([403, 415].includes(response.status()), `${form}: refused with ${response.status()}`)
      const sentCookie = ((await response.request().allHeaders()).cookie ?? '').includes(COOKIE)
      // Strict and Lax (a POST is no top-level GET): the browser withholds the cookie. None: it sends it, and the
      // server's own check stops it.
      t.equal(sentCookie, sameSite === 'none', `${form}: the browser ${sameSite === 'none' ? 'sent' : 'withheld'} the cookie`)
    }
    t.equal((await refreshCookie())?.value, rotated?.value, 'nothing rotated or cleared the cookie')

    const again = await call('/auth/refresh')
    t.equal(again.status, 200, 'and the session still refreshes from the app')
  })
}

t.test('a real browser: an app on an allowed origin reads when to retry a refused request (Retry-After)', needsChromium(), async (t) => {
  const { api, openApp } = await browserApp(t, { env: { RATE_LIMIT_LOGIN_IP: '1/60' } })
  const page = await openApp()
  const attempt = async () => await appCall(page, api, '/auth/login', { email: uniqueEmail(), password: PASSWORD })
  t.equal((await attempt()).status, 401, 'the first login of the window is answered')
  const limited = await attempt()
  t.match(limited, { status: 429, body: { code: 'RATE_LIMITED' } }, 'the next is limited')
  t.match(limited.retryAfter, /^[1-9][0-9]*$/, `and the app's code reads Retry-After (${String(limited.retryAfter)} s), which CORS hides unless exposed`)
})

t.test('a real browser: an app on an allowed origin tells a refused access token from a refused password (WWW-Authenticate)', needsChromium(), async (t) => {
  const { api, email, openApp } = await browserApp(t)
  const page = await openApp()
  t.match(await appCall(page, api, '/auth/logout-all'), { status: 401, body: { code: 'AUTH_TOKEN_INVALID' }, challenge: 'Bearer' },
    'a call without its token: the app\'s code reads the Bearer challenge, which CORS hides unless exposed')
  t.match(await appCall(page, api, '/auth/login', { email, password: 'not the password' }), { status: 401, body: { code: 'AUTH_INVALID_CREDENTIALS' }, challenge: null },
    'a wrong password: no challenge')
})

t.test('a real browser: an app on an allowed origin that calls a path with a method it does not take reads the ones it does (Allow)', needsChromium(), async (t) => {
  const { api, openApp } = await browserApp(t)
  const page = await openApp()
  t.match(await appCall(page, api, '/me'), { status: 405, body: { code: 'METHOD_NOT_ALLOWED' }, allow: 'GET' },
    'POST /me: the app\'s code reads Allow, which CORS hides unless exposed')
})

// COOKIE_SAMESITE=none is for an app on another site than the API's: its browser marks each of its requests
// Sec-Fetch-Site: cross-site, so the CSRF check must let an allowed Origin through however the browser labels it.
t.test('a real browser: an app on another site, with COOKIE_SAMESITE=none, refreshes and logs out; a third site still cannot', needsChromium(), async (t) => {
  const { api, email, context, openApp } = await browserApp(t, { appHost: 'localhost', env: { COOKIE_SAMESITE: 'none' } })
  const evilOrigin = await site(t, '127.0.0.2', {
    '/form.html': `<!doctype html><form method="POST" action="${api}/auth/refresh" enctype="text/plain"><input name="x" value="y"></form><script>document.forms[0].submit()</script>`
  })

  const page = await openApp()
  t.equal((await appCall(page, api, '/auth/login', { email, password: PASSWORD })).status, 200, 'the app logs in')
  const stored = await refreshCookieIn(context)
  t.match(stored, { sameSite: 'None', secure: true, httpOnly: true }, 'the browser keeps the cookie for the API\'s site')

  const refreshed = await appCall(page, api, '/auth/refresh')
  t.equal(refreshed.status, 200, 'the app refreshes, although its browser calls the request cross-site')
  const rotated = await refreshCookieIn(context)
  t.not(rotated?.value, stored?.value, 'the cookie was rotated')

  const attacker = await context.newPage()
  const [response] = await Promise.all([attacker.waitForResponse((r) => r.url().startsWith(api)), attacker.goto(`${evilOrigin}/form.html`)])
  t.ok([403, 415].includes(response.status()), `a third site's form post is refused (${response.status()})`)
  // The server refuses it whatever it carries (test/security/cross-site.test.ts); the browser adds its own line.
  t.notOk(((await response.request().allHeaders()).cookie ?? '').includes(COOKIE), 'its browser did not even send the cookie, partitioned to the app\'s site')
  t.equal((await refreshCookieIn(context))?.value, rotated?.value, 'and nothing rotated or cleared it')

  // The device cookie too, partitioned to the app's site as the refresh cookie is: a sign-in from the app sends it.
  const appSite = `${new URL(page.url()).protocol}//${new URL(page.url()).hostname}`
  t.match((await context.cookies()).find((c) => c.name === `${COOKIE}_device`), { sameSite: 'None', secure: true, httpOnly: true, partitionKey: appSite },
    'the browser keeps the device cookie for the API, under the app\'s site')
  const [signIn, signedIn] = await Promise.all([page.waitForRequest(`${api}/auth/login`), appCall(page, api, '/auth/login', { email, password: PASSWORD })])
  t.equal(signedIn.status, 200, 'the app signs in again')
  t.match((await signIn.allHeaders()).cookie, new RegExp(`(^|; )${COOKIE}_device=`), 'its browser sends the device cookie to sign in')

  t.equal((await appCall(page, api, '/auth/logout')).status, 204, 'the app logs out')
  t.equal(await refreshCookieIn(context), undefined, 'and the cookie is gone')
})

/**
 * One origin, as a site that mounts the service under /api: its own page at /app.html, and every request under
 * /api passed to the service with the prefix stripped (what an ingress's rewrite or nginx's `proxy_pass .../;` does),
 * its `Host` kept. `withoutFetchMetadata` drops the browser's `Sec-Fetch-*` headers on the way, as if the browser
 * had sent none; `forwarded` collects the headers the service was sent.
 */
async function siteMountingTheService (t: Test, service: string, { withoutFetchMetadata = false } = {}): Promise<{ origin: string, forwarded: IncomingHttpHeaders[] }> {
  const forwarded: IncomingHttpHeaders[] = []
  const target = new URL(service)
  const server = createServer((req, res) => {
    if (req.url === '/app.html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>')
      return
    }
    if (req.url?.startsWith('/api/') !== true) {
      res.writeHead(404).end()
      return
    }
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => !(withoutFetchMetadata && name.startsWith('sec-fetch-'))))
    forwarded.push(headers)
    forward(req, res, target, req.url.slice('/api'.length), { headers })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, forwarded }
}

/** The service behind siteMountingTheService, a user of it, and a new browser context at the site's app page. */
async function appOfTheMountingSite (t: Test, browser: Browser, env: Record<string, string>, proxy: { withoutFetchMetadata?: boolean } = {}) {
  const auth = await buildApp(t, { env })
  const { origin, forwarded } = await siteMountingTheService(t, await auth.listen({ port: 0, host: '127.0.0.1' }), proxy)
  const email = uniqueEmail()
  await auth.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(`${origin}/app.html`)
  return { origin, api: `${origin}/api`, email, context, page, forwarded }
}

t.test('a real browser: behind a proxy that serves the service under /api, the refresh and device cookies come back only with PUBLIC_PATH_PREFIX=/api', needsChromium(), async (t) => {
  const browser = await launchBrowser(t)
  for (const prefix of ['/api', '']) {
    const { api, email, context, page, forwarded } = await appOfTheMountingSite(t, browser, { PUBLIC_PATH_PREFIX: prefix })

    t.equal((await appCall(page, api, '/auth/login', { email, password: PASSWORD })).status, 200, `PUBLIC_PATH_PREFIX=${prefix === '' ? '(unset)' : prefix}: the app signs in through the proxy`)
    const stored = await refreshCookieIn(context)
    t.equal(stored?.path, `${prefix}/auth`, `the browser keeps the cookie on ${prefix}/auth`)
    const refreshed = await appCall(page, api, '/auth/refresh')
    if (prefix === '') {
      // The service's own path, which the browser never requests here.
      t.match(refreshed, { status: 401, body: { code: 'AUTH_REFRESH_INVALID' } }, 'without the prefix the browser never sends the cookie back: the session is lost at the first refresh')
      continue
    }
    t.equal(refreshed.status, 200, 'the app refreshes through the proxy: the browser sent the cookie')
    const rotated = await refreshCookieIn(context)
    t.not(rotated?.value, stored?.value, 'and holds the rotated one')
    t.equal((await context.cookies()).find((c) => c.name === `${COOKIE}_device`)?.path, `${prefix}/auth/login`, 'the device cookie on the sign-in path under the prefix')
    t.equal((await appCall(page, api, '/auth/login', { email, password: PASSWORD })).status, 200, 'the app signs in again')
    t.match(forwarded.at(-1)?.cookie, new RegExp(`(^|; )${COOKIE}_device=`), 'which the browser sends to sign in again through the proxy')
    t.equal((await appCall(page, api, '/auth/logout')).status, 204, 'the app logs out')
    t.equal(await refreshCookieIn(context), undefined, 'and the cookie is gone')
  }
})

// Safari before 16.4 (iOS 15, which some iPhones cannot leave) sends no Fetch Metadata, and sends its page's Origin
// on every POST, same-origin ones too: Chromium, its Sec-Fetch-* headers dropped by the proxy, sends what it sends.
t.test('a real browser that sends no Fetch Metadata, as Safari before 16.4: an app on the API\'s own origin signs in, refreshes and logs out', needsChromium(), async (t) => {
  const browser = await launchBrowser(t)
  const { origin, api, email, context, page, forwarded } = await appOfTheMountingSite(t, browser, { PUBLIC_PATH_PREFIX: '/api' }, { withoutFetchMetadata: true })

  t.equal((await appCall(page, api, '/auth/login', { email, password: PASSWORD })).status, 200, 'the app signs in')
  const stored = await refreshCookieIn(context)
  t.equal((await appCall(page, api, '/auth/refresh')).status, 200, 'refreshes')
  t.not((await refreshCookieIn(context))?.value, stored?.value, 'holds the rotated cookie')
  t.equal((await appCall(page, api, '/auth/logout')).status, 204, 'and logs out')
  t.equal(await refreshCookieIn(context), undefined, 'the cookie is gone')
  const posts = forwarded.filter((h) => h.origin !== undefined)
  t.equal(posts.length, 3, 'each of the three carried the page\'s Origin')
  t.ok(posts.every((h) => h.origin === origin && !Object.keys(h).some((name) => name.startsWith('sec-fetch-'))), `${origin}, and no Sec-Fetch-* header`)
})

t.test('a real browser: a copy of the refresh cookie planted on any path the browser sends to the auth routes from is refused, and cleared', needsChromium(), async (t) => {
  const { api, email, context, openApp } = await browserApp(t)
  const page = await openApp()
  t.equal((await appCall(page, api, '/auth/login', { email, password: PASSWORD })).status, 200, 'the app signs in')
  t.ok(await refreshCookieIn(context), 'and holds its cookie')
  // As a page of a sibling host, or a response header injection, would plant them; '/auth/' and '/' are sent to
  // /auth/refresh as '/auth' is (RFC 6265 §5.1.4). '/auth/refresh' is sent first, ahead of the genuine one.
  const { hostname } = new URL(api)
  for (const path of ['/', '/auth/', '/auth/refresh']) {
    await context.addCookies([{ name: COOKIE, value: `planted-on-${path}`, domain: hostname, path, secure: true, httpOnly: true, sameSite: 'Strict' }])
  }
  const [response] = await Promise.all([page.waitForResponse((r) => r.url() === `${api}/auth/refresh`), appCall(page, api, '/auth/refresh')])
  const sent = ((await response.request().allHeaders()).cookie ?? '').split('; ').filter((c) => c.startsWith(`${COOKIE}=`))
  t.equal(sent.length, 4, 'the browser sent all four copies')
  t.equal(response.status(), 401, 'the refresh is refused: which copy is genuine, the service cannot tell')
  t.same((await context.cookies()).filter((c) => c.name === COOKIE), [], 'and the browser holds no copy on any path')
})

t.test('a real browser: signing in with a copy of the refresh cookie planted beside its own leaves the browser only the new one', needsChromium(), async (t) => {
  const { api, email, context, openApp } = await browserApp(t)
  const page = await openApp()
  t.equal((await appCall(page, api, '/auth/login', { email, password: PASSWORD })).status, 200, 'the app signs in')
  await context.addCookies([{ name: COOKIE, value: 'planted', domain: new URL(api).hostname, path: '/auth/', secure: true, httpOnly: true, sameSite: 'Strict' }])
  t.equal((await appCall(page, api, '/auth/login', { email, password: PASSWORD })).status, 200, 'and signs in again, with both copies sent')
  t.same((await context.cookies()).filter((c) => c.name === COOKIE).map((c) => c.path), ['/auth'], 'the browser holds one copy: the new session\'s')
  t.equal((await appCall(page, api, '/auth/refresh')).status, 200, 'so the next refresh is not refused for a planted copy')
})

t.test('a real browser the owner signed in from keeps signing in while guesses from elsewhere lock the account; its device cookie goes to sign-in alone', needsChromium(), async (t) => {
  const { auth, api, email, context, openApp } = await browserApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT: '3/900' } })
  const page = await openApp()
  const sentWith = async (path: string, body?: object) => {
    const [request, answer] = await Promise.all([page.waitForRequest(`${api}${path}`), appCall(page, api, path, body)])
    return { status: answer.status, cookie: (await request.allHeaders()).cookie ?? '' }
  }
  const DEVICE = `${COOKIE}_device`
  t.equal((await sentWith('/auth/login', { email, password: PASSWORD })).status, 200, 'the owner signs in in this browser')
  t.match((await context.cookies()).find((c) => c.name === DEVICE), { httpOnly: true, secure: true, path: '/auth/login', sameSite: 'Strict' },
    'which keeps a device cookie')
  const refreshed = await sentWith('/auth/refresh')
  t.same([refreshed.status, refreshed.cookie.includes(`${COOKIE}=`), refreshed.cookie.includes(`${DEVICE}=`)], [200, true, false],
    'a refresh carries the refresh cookie, not the device cookie')

  for (let i = 0; i < 3; i++) {
    await auth.inject({ method: 'POST', url: '/auth/login', payload: { email, password: `guess number ${i}` }, remoteAddress: `203.0.113.${i}` })
  }
  const elsewhere = await auth.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD }, remoteAddress: '198.51.100.7' })
  t.equal(elsewhere.statusCode, 429, 'guesses from three addresses lock the account for a client without it, right password or not')
  const again = await sentWith('/auth/login', { email, password: PASSWORD })
  t.same([again.status, again.cookie.includes(`${DEVICE}=`)], [200, true], 'the owner\'s browser sends it to sign in, and signs in')
})
