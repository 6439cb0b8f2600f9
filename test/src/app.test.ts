import type { RouteOptions } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp } from '../helpers/app.js'

// The routes anyone may call. Every other route acts for a signed-in user.
const PUBLIC_ROUTES = new Set([
  'POST /auth/register',
  'POST /auth/login',
  'POST /auth/refresh',
  'POST /auth/logout',
  'GET /health/live',
  'GET /health/ready',
  'GET /metrics',
  'GET /.well-known/jwks.json',
  'GET /openapi.json'
])

/** The real app on the embedded store, with an `onRoute` and an `onRequest` hook of the test's own at its root. */
async function inspectedApp (t: Test) {
  const routes: RouteOptions[] = []
  const requestClasses = new Map<string, object>()
  const replyClasses = new Map<string, object>()
  const fastify = await buildApp(t, {
    store: 'memory',
    beforeApp: (root) => {
      root.addHook('onRoute', (route) => { routes.push(route) })
      root.addHook('onRequest', (request, reply, done) => {
        requestClasses.set(request.url, Object.getPrototypeOf(request) as object)
        replyClasses.set(request.url, Object.getPrototypeOf(reply) as object)
        done()
      })
    }
  })
  return { fastify, routes: routes.filter((r) => r.method !== 'HEAD'), requestClasses, replyClasses }
}

t.test('the composed app', async (t) => {
  const { fastify, routes, requestClasses, replyClasses } = await inspectedApp(t)
  const key = (r: RouteOptions) => `${String(r.method)} ${r.url}`

  t.test('serves every public route it is meant to, under its full path', async (t) => {
    const served = new Set(routes.map(key))
    for (const route of PUBLIC_ROUTES) t.ok(served.has(route), route)
  })

  t.test('every other route refuses a request without an access token (authentication is per route, so this guards each one)', async (t) => {
    const protectedRoutes = routes.filter((r) => !PUBLIC_ROUTES.has(key(r)))
    t.ok(protectedRoutes.length >= 5, `${protectedRoutes.length} protected routes`)
    for (const route of protectedRoutes) {
      const res = await fastify.inject({
        method: route.method as 'GET',
        url: route.url.replace(':id', 'AAAAAAAAAAAAAAAAAAAAAA'),
        ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} })
      })
      t.equal(res.statusCode, 401, `${key(route)}: 401`)
      t.equal(res.json().code, 'AUTH_TOKEN_INVALID', `${key(route)}: AUTH_TOKEN_INVALID`)
    }
  })

  t.test('one request class and one reply class serve every route but /auth/refresh, and unknown URLs', async (t) => {
    // Fastify builds both classes anew for each encapsulated context; per-request code shared by all
    // routes then meets one object shape per context (src/app.ts, bench/README.md).
    const urls = ['/health/live', '/me', '/auth/sessions', '/.well-known/jwks.json', '/metrics', '/auth/login', '/no-such-route']
    for (const url of urls) await fastify.inject({ method: url === '/auth/login' ? 'POST' : 'GET', url, ...(url === '/auth/login' ? { payload: {} } : {}) })
    await fastify.inject({ method: 'POST', url: '/auth/refresh' })
    t.same(urls.filter((url) => !requestClasses.has(url)), [], 'the hook saw every request')
    t.equal(new Set(urls.map((url) => requestClasses.get(url))).size, 1, 'one request class')
    t.equal(new Set(urls.map((url) => replyClasses.get(url))).size, 1, 'one reply class')
    // The refresh route's limiter counts per instance and needs a scope of its own.
    t.not(requestClasses.get('/auth/refresh'), requestClasses.get('/me'), '/auth/refresh has its own')
  })
})
