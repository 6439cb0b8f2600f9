import t from 'tap'
import { buildApp, refresh, registerAndLogin } from '../helpers/app.js'

t.test('security headers suited to a JSON API on every response (OWASP REST Security Cheat Sheet)', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const s = await registerAndLogin(app)
  const responses = [
    await app.inject({ url: '/health/live' }),
    await app.inject({ url: '/nope' }),
    await app.inject({ url: '/me', headers: { authorization: `Bearer ${s.accessToken}` } }),
    await app.inject({ url: '/me' })
  ]
  for (const res of responses) {
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'")
    t.equal(res.headers['x-frame-options'], 'DENY')
    t.equal(res.headers['cross-origin-resource-policy'], 'same-site')
    t.equal(res.headers['cache-control'], 'no-store', 'account data and errors are never cached')
    for (const name of ['x-powered-by', 'x-dns-prefetch-control', 'x-download-options', 'x-permitted-cross-domain-policies', 'x-xss-protection',
      'origin-agent-cluster', 'cross-origin-opener-policy', 'referrer-policy']) {
      t.notOk(res.headers[name], `no ${name}: nothing here is a document`)
    }
  }
  t.match((await app.inject({ url: '/.well-known/jwks.json' })).headers['cache-control'], /^public, max-age=/, 'the public key set alone is cacheable')
})

t.test('the headers are the ones helmet sets, computed once at start', async (t) => {
  const { helmetHeaders } = await import('../../plugins/security-headers.js')
  const headers = helmetHeaders({ contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"] } } })
  t.equal(headers['content-security-policy'], "default-src 'none'")
  t.equal(headers['x-content-type-options'], 'nosniff')
  t.match(headers['strict-transport-security'], /max-age=/, 'helmet defaults apply unless turned off')
  t.throws(() => helmetHeaders({ contentSecurityPolicy: { directives: { defaultSrc: ["'none';injected"] } } }), 'helmet refusing its options stops the start')
})

t.test('HSTS in production only', async (t) => {
  const dev = await buildApp(t, { store: 'memory' })
  t.notOk((await dev.inject({ url: '/health/live' })).headers['strict-transport-security'])
  // The test settings' argon2 (8192 KiB, 1 pass) is below what production takes: OWASP's line at 1 pass.
  const prod = await buildApp(t, { env: { NODE_ENV: 'production', ARGON2_MEMORY_COST: '47104' } })
  t.equal((await prod.inject({ url: '/health/live' })).headers['strict-transport-security'], 'max-age=31536000; includeSubDomains',
    'a year, and the subdomains too: a sibling served over HTTP could otherwise set cookies for the parent domain')
})

t.test('Cache-Control: no-store on every response that carries a token', async (t) => {
  const app = await buildApp(t)
  const s = await registerAndLogin(app)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: s.email, password: 'correct horse battery staple' } })
  t.equal(login.headers['cache-control'], 'no-store')
  const refreshed = await refresh(app, s.cookie)
  t.equal(refreshed.headers['cache-control'], 'no-store')
  t.notOk(refreshed.headers['x-ratelimit-remaining'], 'limit headers only come with a 429 (rate-limits.test.ts)')
  t.equal((await refresh(app, 'x=y')).headers['cache-control'], 'no-store', 'also the refusals that clear the cookie')
})

t.test('oversized Cookie and Authorization headers are a 4xx, never a 500', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const big = 'a'.repeat(8 * 1024 + 1)
  const bearer = await app.inject({ url: '/me', headers: { authorization: `Bearer ${big}` } })
  t.equal(bearer.statusCode, 401, 'a bearer token over 8 kB is an invalid token like any other')
  t.equal(bearer.json().code, 'AUTH_TOKEN_INVALID')
  for (const [url, headers] of [
    ['/auth/refresh', { cookie: `__Secure-refresh_token=${big}` }],
    ['/auth/logout', { cookie: `junk=${big}` }]
  ] as const) {
    const res = await app.inject({ method: 'POST', url, headers })
    t.equal(res.statusCode, 431, url)
    t.equal(res.json().code, 'REQUEST_HEADER_TOO_LARGE')
  }
  const atTheLimit = `junk=${'a'.repeat(8 * 1024 - 'junk='.length)}`
  t.equal(atTheLimit.length, 8 * 1024)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: atTheLimit } })).statusCode, 204,
    'a Cookie header of exactly 8 KiB is read')
  const overTheLimit = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `${atTheLimit}a` } })
  t.same([overTheLimit.statusCode, overTheLimit.json().code], [431, 'REQUEST_HEADER_TOO_LARGE'], 'one byte more is not')
})
