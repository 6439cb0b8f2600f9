import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import t, { type Test } from 'tap'
import { chromium, type Browser } from 'playwright-core'
import { buildApp, PASSWORD, uniqueEmail } from '../helpers/app.js'

const CHROMIUM = '/usr/bin/chromium'
const COOKIE = '__Secure-refresh_token'

/** A tiny static site on loopback: the app's pages, or an attacker's. */
async function site (t: Test, host: string, pages: Record<string, string>): Promise<string> {
  const server: Server = createServer((req, res) => {
    const page = pages[req.url ?? '']
    res.writeHead(page === undefined ? 404 : 200, { 'content-type': 'text/html' }).end(page ?? 'not found')
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  t.teardown(() => server.close())
  return `http://${host}:${(server.address() as { port: number }).port}`
}

// The app and the API share the site 127.0.0.1 (same-site, cross-origin: different ports);
// the attacker's page is on localhost, another site.
for (const sameSite of ['strict', 'none'] as const) {
  t.test(`a real browser: the refresh cookie works for the app and no cross-site page can use it (COOKIE_SAMESITE=${sameSite})`, { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }, async (t) => {
    const appOrigin = await site(t, '127.0.0.1', { '/app.html': '<!doctype html><title>app</title>' })
    const auth = await buildApp(t, { env: { ALLOWED_ORIGINS: appOrigin, COOKIE_SAMESITE: sameSite } })
    const api = await auth.listen({ port: 0, host: '127.0.0.1' })
    const email = uniqueEmail()
    await auth.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })

    const evilOrigin = await site(t, 'localhost', {
      '/fetch.html': '<!doctype html><title>evil</title>',
      // The classic CSRF: an auto-submitting form, a "simple" request that skips CORS preflight.
      '/form.html': `<!doctype html><form method="POST" action="${api}/auth/refresh" enctype="text/plain"><input name="x" value="y"></form><script>document.forms[0].submit()</script>`,
      '/logout-form.html': `<!doctype html><form method="POST" action="${api}/auth/logout"></form><script>document.forms[0].submit()</script>`
    })

    const browser: Browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    t.teardown(() => browser.close())
    const context = await browser.newContext()
    const page = await context.newPage()
    // All cookies, not cookies(api): that filters by the URL's path, and this one lives on /auth.
    const refreshCookie = async () => (await context.cookies()).find((c) => c.name === COOKIE)

    // The app logs in and refreshes with fetch(..., { credentials: 'include' }).
    await page.goto(`${appOrigin}/app.html`)
    const call = (path: string, body?: object) => page.evaluate(async ([url, payload]) => {
      const res = await fetch(url as string, {
        method: 'POST',
        credentials: 'include',
        headers: payload === undefined ? {} : { 'content-type': 'application/json' },
        body: payload === undefined ? undefined : JSON.stringify(payload)
      })
      return {
        status: res.status,
        body: await res.json().catch(() => null),
        requestId: res.headers.get('x-request-id'),
        cookieVisible: (globalThis as unknown as { document: { cookie: string } }).document.cookie.includes('refresh')
      }
    }, [`${api}${path}`, body] as const)

    const login = await call('/auth/login', { email, password: PASSWORD })
    t.equal(login.status, 200, 'login from the app')
    const stored = await refreshCookie()
    t.ok(stored, 'the browser stored the refresh cookie')
    t.match(stored, { httpOnly: true, secure: true, path: '/auth', sameSite: sameSite === 'strict' ? 'Strict' : 'None' })
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
      // Strict: the browser withholds the cookie. None: it sends it, and the server's own check stops it.
      t.equal(sentCookie, sameSite === 'none', `${form}: the browser ${sameSite === 'none' ? 'sent' : 'withheld'} the cookie`)
    }
    t.equal((await refreshCookie())?.value, rotated?.value, 'nothing rotated or cleared the cookie')

    const again = await call('/auth/refresh')
    t.equal(again.status, 200, 'and the session still refreshes from the app')
  })
}
