import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { pathsSentTo } from '../../plugins/refresh-cookie.js'
import { buildApp, type LoggedIn, nextRefreshCookie, PASSWORD, refresh, refreshCookieValue, registerAndLogin, setCookies } from '../helpers/app.js'

const APP = 'https://app.example.com'
const EVIL = 'https://evil.example'

/** The routes the refresh cookie authenticates (a sign-in ends its session), each behind the cross-site checks. */
const COOKIE_ROUTES = ['/auth/refresh', '/auth/logout', '/auth/login']

/** A POST to one of COOKIE_ROUTES as the browser holding `s` sends it: its cookie, and a sign-in's credentials. */
function post (app: FastifyInstance, url: string, s: LoggedIn, headers: Record<string, string>, remoteAddress?: string) {
  return app.inject({ method: 'POST', url, remoteAddress, headers: { cookie: s.cookie, ...headers }, payload: url === '/auth/login' ? { email: s.email, password: PASSWORD } : undefined })
}

t.test('routes that read the refresh cookie refuse cross-site requests and leave the token valid', async (t) => {
  const app = await buildApp(t, { env: { ALLOWED_ORIGINS: `${APP}, https://admin.example.com` } })
  const s = await registerAndLogin(app)

  const refused: Record<string, Record<string, string>> = {
    'foreign Origin': { origin: EVIL },
    'Sec-Fetch-Site: cross-site': { 'sec-fetch-site': 'cross-site' },
    'Sec-Fetch-Site: cross-site from an unlisted Origin': { origin: EVIL, 'sec-fetch-site': 'cross-site' },
    'Origin: null (sandboxed frame)': { origin: 'null' },
    'look-alike origin': { origin: 'https://app.example.com.evil.example' },
    'allowed host, other scheme': { origin: 'http://app.example.com' }
  }
  for (const [name, headers] of Object.entries(refused)) {
    for (const url of COOKIE_ROUTES) {
      const res = await post(app, url, s, headers)
      t.equal(res.statusCode, 403, `${url}, ${name}: 403`)
      t.equal(res.json().code, 'AUTH_CSRF')
      t.notOk(res.headers['set-cookie'], 'nothing set or cleared')
    }
  }
  const res = await refresh(app, s.cookie)
  t.equal(res.statusCode, 200, 'afterwards the token is still valid: nothing was rotated or revoked')
  t.not(refreshCookieValue(app, res.headers['set-cookie']), '')
})

t.test('simple requests that skip preflight (form posts, text/plain) cannot refresh, log out or sign in', async (t) => {
  const app = await buildApp(t, { env: { ALLOWED_ORIGINS: APP } })
  const s = await registerAndLogin(app)
  for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'text/plain;charset=UTF-8']) {
    for (const url of COOKIE_ROUTES) {
      // Even from an allowed origin: a form never carries a JSON content type.
      const res = await app.inject({ method: 'POST', url, payload: '', headers: { cookie: s.cookie, 'content-type': type, origin: APP } })
      t.equal(res.statusCode, 415, `${url} with ${type}: 415`)
    }
  }
  t.equal((await refresh(app, s.cookie)).statusCode, 200, 'the token survived')
})

t.test('allowed origins, same-origin browsers and non-browser clients pass', async (t) => {
  const app = await buildApp(t, { env: { ALLOWED_ORIGINS: APP } })
  let s = await registerAndLogin(app)
  const next = async (headers: Record<string, string>) => {
    const res = await refresh(app, s.cookie, headers)
    s = { ...s, cookie: nextRefreshCookie(app, res) }
    return res
  }
  const fromApp = await next({ origin: APP, 'sec-fetch-site': 'same-site', 'content-type': 'application/json' })
  t.equal(fromApp.statusCode, 200, 'listed origin')
  t.equal(fromApp.headers['access-control-allow-origin'], APP)
  t.equal(fromApp.headers['access-control-allow-credentials'], 'true')
  // An app on another site than the API's (COOKIE_SAMESITE=none): its browser calls every request of it cross-site.
  t.equal((await next({ origin: APP, 'sec-fetch-site': 'cross-site' })).statusCode, 200, 'listed origin on another site')
  t.equal((await next({ origin: 'https://api.example.com', 'sec-fetch-site': 'same-origin' })).statusCode, 200, 'same-origin per the browser')
  t.equal((await next({})).statusCode, 200, 'no Origin: curl, servers, load testers')
})

// Safari before 16.4 (iOS 15, which some iPhones cannot leave) sends no Sec-Fetch-Site, and sends its page's Origin
// on every POST, same-origin ones included: with no ALLOWED_ORIGINS (an app served from the API's own origin) its
// every refresh was a 403. Its own origin is what it addresses; no other site's page can make it send that Origin.
t.test('a browser without Fetch Metadata passes from the API\'s own origin, and from nowhere else', async (t) => {
  const API = 'https://api.example.com'
  // Behind the proxy that terminates TLS, trusted to say so; inject's peer is 127.0.0.1.
  const app = await buildApp(t, { store: 'memory', env: { TRUST_PROXY: '127.0.0.1' } })
  const behindProxy = { host: 'api.example.com', 'x-forwarded-proto': 'https' }
  // Not a header: the address a case is sent from, when not the trusted proxy's.
  const PEER = 'peer address'
  let s = await registerAndLogin(app)
  for (const url of COOKIE_ROUTES) {
    const res = await post(app, url, s, { origin: API, ...behindProxy })
    t.equal(res.statusCode, url === '/auth/logout' ? 204 : 200, `${url} from the API's own origin`)
    if (url === '/auth/refresh') s = { ...s, cookie: nextRefreshCookie(app, res) }
  }
  // As a browser writes an origin: no default port, the host in lower case, whatever the proxy passes on.
  s = await registerAndLogin(app)
  const addressedAs = {
    'a proxy adding the default port': { host: 'api.example.com', 'x-forwarded-host': 'api.example.com:443', 'x-forwarded-proto': 'https' },
    'a Host in capitals': { host: 'API.Example.com', 'x-forwarded-proto': 'https' }
  }
  for (const [name, headers] of Object.entries(addressedAs)) {
    const res = await post(app, '/auth/refresh', s, { origin: API, ...headers })
    t.equal(res.statusCode, 200, `its own origin, addressed through ${name}`)
    s = { ...s, cookie: nextRefreshCookie(app, res) }
  }
  s = await registerAndLogin(app)
  const refused: Record<string, Record<string, string>> = {
    'its own origin, addressed to another port': { origin: API, host: 'api.example.com:8443', 'x-forwarded-proto': 'https' },
    'its own origin on another port': { origin: `${API}:8443`, ...behindProxy },
    'its own origin, addressed by plain HTTP on the port of HTTPS': { origin: 'http://api.example.com', host: 'api.example.com:443', 'x-forwarded-proto': 'http' },
    'another origin of the same site': { origin: 'https://app.example.com', ...behindProxy },
    'a foreign origin': { origin: EVIL, ...behindProxy },
    'its own origin by another scheme': { origin: 'http://api.example.com', ...behindProxy },
    'its own origin, addressed to another host': { origin: API, host: 'auth.internal', 'x-forwarded-proto': 'https' },
    'its own origin with Fetch Metadata saying same-site': { origin: API, 'sec-fetch-site': 'same-site', ...behindProxy },
    'its own origin with Fetch Metadata saying cross-site': { origin: API, 'sec-fetch-site': 'cross-site', ...behindProxy },
    // Sent straight to the instance (not from the trusted proxy at 127.0.0.1), whose X-Forwarded-* count for nothing.
    'a foreign origin with X-Forwarded-Host naming it, from an untrusted peer': { origin: EVIL, host: 'api.example.com', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', [PEER]: '192.0.2.7' }
  }
  for (const [name, headers] of Object.entries(refused)) {
    for (const url of COOKIE_ROUTES) {
      const { [PEER]: remoteAddress, ...sent } = headers
      const res = await post(app, url, s, sent, remoteAddress)
      t.same([res.statusCode, res.json().code], [403, 'AUTH_CSRF'], `${url}, ${name}: 403`)
    }
  }
  t.equal((await refresh(app, s.cookie)).statusCode, 200, 'the token survived every refusal')

  // Not behind a trusted proxy: the scheme is the socket's, and a TLS-terminating proxy's https origin matches nothing.
  const direct = await buildApp(t, { store: 'memory', env: { COOKIE_SECURE: 'false', NODE_ENV: 'development' } })
  const d = await registerAndLogin(direct)
  t.equal((await refresh(direct, d.cookie, { origin: 'http://localhost:3000', host: 'localhost:3000' })).statusCode, 200, 'plain HTTP, its own origin')
  t.equal((await refresh(direct, d.cookie, { origin: API, host: 'api.example.com', 'x-forwarded-proto': 'https' })).statusCode, 403, 'an untrusted X-Forwarded-Proto is not believed')
})

t.test('CORS preflight answers only the listed origins, with credentials', async (t) => {
  const app = await buildApp(t, { env: { ALLOWED_ORIGINS: APP } })
  const preflight = (origin: string) => app.inject({
    method: 'OPTIONS',
    url: '/auth/refresh',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
  })
  const ok = await preflight(APP)
  t.equal(ok.statusCode, 204)
  t.equal(ok.headers['access-control-allow-origin'], APP)
  t.equal(ok.headers['access-control-allow-credentials'], 'true')
  t.same(['access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age'].map((name) => ok.headers[name]),
    ['GET, POST, DELETE', 'Content-Type, Authorization', '600'], 'the methods and headers the routes take, no other; the grant kept 10 minutes')
  t.match(String(ok.headers.vary), /Origin/)
  const evil = await preflight(EVIL)
  t.notOk(evil.headers['access-control-allow-origin'], 'no CORS grant for an unlisted origin')
  t.notOk(evil.headers['access-control-allow-credentials'])
  const get = await app.inject({ url: '/health/live', headers: { origin: EVIL } })
  t.notOk(get.headers['access-control-allow-origin'], 'nor on plain responses')
  t.match(ok.headers, { 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' }, 'a granted preflight carries the security headers')
  // @fastify/cors serves OPTIONS on every path with a route of its own, which parses the body of a preflight it
  // does not grant like any other.
  for (const [payload, contentType, status, code] of [['{', 'application/json', 400, 'REQUEST_MALFORMED_BODY'], ['x', 'text/plain', 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE'], ['', '', 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE']] as const) {
    const res = await app.inject({ method: 'OPTIONS', url: '/auth/refresh', payload, headers: { origin: EVIL, 'access-control-request-method': 'POST', 'content-type': contentType } })
    t.same([res.statusCode, res.json().code], [status, code], `a refused preflight with a ${contentType || 'blank'} body: the service's ${code}`)
  }
  const notPreflight = await app.inject({ method: 'OPTIONS', url: '/auth/refresh', headers: { origin: APP } })
  t.same([notPreflight.statusCode, notPreflight.headers.allow, notPreflight.json().code], [405, 'POST', 'METHOD_NOT_ALLOWED'],
    'an OPTIONS that names no method is no preflight: the 405 it gets without CORS, naming the methods served')
  t.notOk(notPreflight.headers['access-control-allow-origin'], 'and no grant')
  const noOrigin = await app.inject({ method: 'OPTIONS', url: '/auth/refresh', headers: { 'access-control-request-method': 'POST' } })
  t.same([noOrigin.statusCode, noOrigin.headers.allow, noOrigin.json().code], [405, 'POST', 'METHOD_NOT_ALLOWED'], 'nor is one that names no origin')
  t.notOk(noOrigin.headers['access-control-allow-origin'], 'and no grant')
})

t.test('with no ALLOWED_ORIGINS (same-origin deployments) no origin is granted anything', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const s = await registerAndLogin(app)
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/auth/refresh',
    headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
  })
  t.same([preflight.statusCode, preflight.headers.allow], [405, 'POST'], 'the preflight is refused as any method the path is not served with')
  t.notOk(preflight.headers['access-control-allow-origin'], 'the preflight grants nothing: the browser refuses the request')
  t.notOk(preflight.headers['access-control-allow-credentials'])
  const me = await app.inject({ url: '/me', headers: { origin: APP, authorization: `Bearer ${s.accessToken}` } })
  t.notOk(me.headers['access-control-allow-origin'], 'nor does any response')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { origin: APP, cookie: s.cookie } })
  t.equal(refreshed.statusCode, 403, 'and a cookie request from that origin is refused')
  t.equal(refreshed.json().code, 'AUTH_CSRF')
})

t.test('COOKIE_SAMESITE=none or lax relaxes the cookie, and the cross-site checks keep holding', async (t) => {
  for (const sameSite of ['none', 'lax']) {
    const app = await buildApp(t, { env: { ALLOWED_ORIGINS: APP, COOKIE_SAMESITE: sameSite } })
    const s = await registerAndLogin(app)
    const res = await refresh(app, s.cookie, { origin: APP })
    const cookie = setCookies(res)[0]
    t.match(cookie, new RegExp(`; Secure; ${sameSite === 'none' ? 'Partitioned; SameSite=None' : 'SameSite=Lax'}$`))
    t.equal((await refresh(app, s.cookie, { origin: EVIL })).statusCode, 403, `SameSite=${sameSite}: cross-site still refused`)
  }
})

// A cookie for an app on another site is a third-party cookie, which browsers that block those keep only when it is
// Partitioned (CHIPS); and a partitioned cookie is expired only by a Set-Cookie that is Partitioned too.
t.test('COOKIE_SAMESITE=none: the cookie is Partitioned, set and cleared alike; strict and lax cookies are not', async (t) => {
  const cookies = async (sameSite: string) => {
    const app = await buildApp(t, { store: 'memory', env: { ALLOWED_ORIGINS: APP, COOKIE_SAMESITE: sameSite } })
    const s = await registerAndLogin(app)
    const loggedIn = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: s.email, password: PASSWORD } })
    const rotated = await refresh(app, s.cookie, { origin: APP })
    const loggedOut = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: nextRefreshCookie(app, rotated), origin: APP } })
    const tossed = await refresh(app, `${s.cookie}; ${s.cookie}`, { origin: APP })
    return [loggedIn, rotated, loggedOut, tossed].flatMap(setCookies)
  }
  const none = await cookies('none')
  t.equal(none.length, 4 + pathsSentTo('/auth').length, 'login (the refresh and device cookies), refresh, logout, and every path cleared after two cookies')
  for (const header of none) t.match(header, /; Secure; Partitioned; SameSite=None$/, header.split(';').slice(1, 3).join(';'))
  for (const sameSite of ['strict', 'lax']) {
    t.notOk((await cookies(sameSite)).some((header) => header.includes('Partitioned')), `SameSite=${sameSite}: not partitioned`)
  }
})
