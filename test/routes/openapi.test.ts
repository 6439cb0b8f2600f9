import { readFileSync } from 'node:fs'
import { Validator } from '@seriousme/openapi-schema-validator'
import type { RouteOptions } from 'fastify'
import t, { type Test } from 'tap'
import { REFUSED_AS_SENT } from '../../plugins/openapi.js'
import { buildApp } from '../helpers/app.js'

interface Operation { summary?: string, security?: Array<Record<string, string[]>>, responses: Record<string, unknown> }
type Document = { openapi: string, paths: Record<string, Record<string, Operation>>, components: { securitySchemes: Record<string, { in?: string, name?: string }> } }

/** The app, the routes it registered (as Fastify saw them), and its OpenAPI document as a client fetches it. */
async function documented (t: Test, env: Record<string, string> = {}) {
  const routes: RouteOptions[] = []
  const app = await buildApp(t, { store: 'memory', env, beforeApp: (fastify) => { fastify.addHook('onRoute', (route) => { routes.push(route) }) } })
  const res = await app.inject({ url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  return { app, routes, doc: res.json() as Document }
}

/** A Fastify route's URL as an OpenAPI path: `/auth/sessions/:id` → `/auth/sessions/{id}`. */
const openapiPath = (url: string): string => url.replace(/:(\w+)/g, '{$1}')

/** "GET /auth/sessions/{id}" for each operation of the document. */
function operations (doc: Document): string[] {
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`)).sort()
}

t.test('GET /openapi.json is a valid OpenAPI 3.1 document of every route the service serves, and only those', async (t) => {
  const { routes, doc } = await documented(t)
  const validator = new Validator()
  const result = await validator.validate(doc as unknown as Record<string, unknown>)
  t.same(result.errors, undefined, 'no schema errors')
  t.ok(result.valid, 'valid')
  t.equal(validator.version, '3.1')

  // Every route but the document itself and the HEAD twins Fastify adds to GET routes.
  const served = routes.filter((route) => route.method !== 'HEAD' && route.url !== '/openapi.json' && route.url !== '*')
  t.same(operations(doc), served.map((route) => `${String(route.method)} ${openapiPath(route.url)}`).sort(), 'one operation per route')
  for (const route of served.filter((r) => r.schema?.response !== undefined)) {
    const operation = doc.paths[openapiPath(route.url)]?.[String(route.method).toLowerCase()]
    t.same(Object.keys(operation?.responses ?? {}).sort(), [...Object.keys(route.schema?.response as object), REFUSED_AS_SENT].sort(),
      `${String(route.method)} ${route.url}: the statuses its schema declares, and the range of requests refused as sent`)
    t.type(operation?.summary, 'string', `${String(route.method)} ${route.url}: a summary`)
  }
})

t.test('the credentials each operation documents are the ones the service demands', async (t) => {
  const { app, doc } = await documented(t)
  t.match(doc.components.securitySchemes.refreshCookie, { in: 'cookie', name: app.config.cookie.name }, 'the refresh cookie under its configured name')
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const schemes = (operation.security ?? []).flatMap((requirement) => Object.keys(requirement))
      const url = path.replace('{id}', 'AAAAAAAAAAAAAAAAAAAAAA')
      // Without any credentials, from the service's own origin.
      const res = await app.inject({ method: method.toUpperCase() as 'GET', url, headers: { origin: 'https://app.example' }, ...(method === 'get' || method === 'delete' ? {} : { payload: {} }) })
      const code = String(res.headers['content-type'] ?? '').startsWith('application/json') ? (res.json() as { code?: string }).code : undefined
      if (schemes.includes('accessToken')) {
        t.same([res.statusCode, code], [401, 'AUTH_TOKEN_INVALID'], `${method.toUpperCase()} ${path}: documented as taking the bearer token, refused without it`)
      } else {
        t.not(code, 'AUTH_TOKEN_INVALID', `${method.toUpperCase()} ${path}: no bearer token documented, none asked`)
      }
    }
  }
  const cookieRoutes = operations(doc).filter((op) => {
    const [method, path] = op.split(' ') as [string, string]
    return (doc.paths[path]?.[method.toLowerCase()]?.security ?? []).some((requirement) => 'refreshCookie' in requirement)
  })
  t.same(cookieRoutes, ['POST /auth/login', 'POST /auth/logout', 'POST /auth/refresh'], 'the refresh cookie: login, refresh and logout, the routes that read it')
  t.same(doc.paths['/auth/login']?.post?.security, [{}, { refreshCookie: [] }, { deviceCookie: [] }, { refreshCookie: [], deviceCookie: [] }],
    'login with or without it, and with or without the device cookie of an earlier sign-in')
  t.match(doc.components.securitySchemes.deviceCookie, { in: 'cookie', name: `${app.config.cookie.name}_device` }, 'named after the refresh cookie')
})

t.test('behind a proxy that serves the service under PUBLIC_PATH_PREFIX and strips it, the document names the prefix as its server, and the cookie\'s path', async (t) => {
  const { doc } = await documented(t, { PUBLIC_PATH_PREFIX: '/api' })
  t.ok((await new Validator().validate(doc as unknown as Record<string, unknown>)).valid, 'valid')
  t.same((doc as unknown as { servers: unknown }).servers, [{ url: '/api' }], 'operations are reached under /api (resolved against where the document was fetched)')
  t.same(Object.keys(doc.paths).filter((path) => !path.startsWith('/auth/') && !['/me', '/.well-known/jwks.json', '/health/live', '/health/ready', '/metrics'].includes(path)), [], 'its paths as the service serves them')
  t.match(doc.components.securitySchemes.refreshCookie, { in: 'cookie', description: /sent by the browser to \/api\/auth only/ })
  t.notOk('servers' in (await documented(t)).doc, 'without a prefix, no servers: the document\'s own origin')
})

t.test('the README\'s HTTP contract lists the operations the document describes', async (t) => {
  const { doc } = await documented(t)
  const readme = readFileSync('README.md', 'utf8')
  const contract = readme.slice(readme.indexOf('## HTTP contract'), readme.indexOf('\n## ', readme.indexOf('## HTTP contract') + 1))
  const listed = [...contract.matchAll(/^\| `(GET|POST|DELETE|PUT|PATCH) ([^`]+)`/gm)].map(([, method, path]) => `${method} ${openapiPath(path ?? '')}`)
  t.same(listed.filter((op) => op !== 'GET /openapi.json').sort(), operations(doc), 'every operation in the table, and nothing else')
  t.ok(listed.includes('GET /openapi.json'), 'and the document itself')
})

t.test('the key set documents the caching headers it is served with, and its 304 without a body', async (t) => {
  const { app, doc } = await documented(t)
  const responses = (doc.paths['/.well-known/jwks.json'] as { get: { responses: Record<string, { headers?: Record<string, object>, content?: object }> } }).get.responses
  t.match(responses['200']?.headers, { 'Cache-Control': { schema: { type: 'string' } }, ETag: { schema: { type: 'string' } } })
  t.match(responses['304'], { description: /If-None-Match/ })
  t.equal(responses['304']?.content, undefined, 'a 304 has no body')
  const served = await app.inject({ url: '/.well-known/jwks.json' })
  t.ok(typeof served.headers.etag === 'string' && typeof served.headers['cache-control'] === 'string', 'the service sends both')
  t.match((responses['200']?.headers?.['Cache-Control'] as { description: string }).description, served.headers['cache-control'] as string, 'the one documented')
})

t.test('the documented answers carry X-Request-Id where the service names them, every 429 Retry-After', async (t) => {
  const { doc, routes } = await documented(t)
  // Named: every failure, and the successes of every route but the high-volume ones (plugins/request-id.ts).
  const quiet = new Set(routes.filter((route) => route.config?.accessLog === 'failures').flatMap((route) =>
    [route.method].flat().map((method) => `${method} ${openapiPath(route.url)}`)))
  t.ok(quiet.has('GET /me') && quiet.has('POST /auth/refresh'), 'refresh and /me are among the quiet ones')
  type Headers = Record<string, { $ref: string }>
  const answers = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).flatMap(([method, operation]) =>
    Object.entries(operation.responses as Record<string, { headers?: Headers }>).map(([status, response]) =>
      ({ operation: `${method.toUpperCase()} ${path}`, status, headers: response.headers ?? {} }))))
  t.ok(answers.length > 50, `${answers.length} documented answers`)
  for (const answer of answers) {
    if (answer.status === REFUSED_AS_SENT) {
      t.same(answer.headers['X-Request-Id'], { $ref: '#/components/headers/RequestIdOnceRead' }, `${answer.operation} ${answer.status}: X-Request-Id once the request was read`)
      continue
    }
    const named = Number(answer.status) >= 400 || !quiet.has(answer.operation)
    t.same(answer.headers['X-Request-Id'], named ? { $ref: '#/components/headers/RequestId' } : undefined, `${answer.operation} ${answer.status}: ${named ? 'X-Request-Id' : 'no X-Request-Id'}`)
    if (answer.status === '429') t.same(answer.headers['Retry-After'], { $ref: '#/components/headers/RetryAfter' }, `${answer.operation} 429: Retry-After`)
    // SERVICE_BUSY (a sign-in shed by the hasher) carries one; a store that does not answer, none.
    if (answer.status === '503') t.same(answer.headers['Retry-After'], { $ref: '#/components/headers/RetryAfterWhenBusy' }, `${answer.operation} 503: Retry-After when busy`)
  }
  t.ok(answers.some((answer) => answer.operation === 'POST /auth/login' && answer.status === '503'), 'login documents its 503')
  const { RequestId, RetryAfter } = (doc.components as unknown as { headers: Record<string, { required?: boolean, schema: { pattern?: string } }> }).headers
  t.match(RequestId, { required: true })
  t.match(RetryAfter, { required: true })

  // And the service: a 429 of a route limited per address.
  const strict = await buildApp(t, { store: 'memory', env: { RATE_LIMIT_NOT_FOUND_IP: '1/60' } })
  await strict.inject({ url: '/no/such/route' })
  const limited = await strict.inject({ url: '/no/such/route' })
  t.equal(limited.statusCode, 429, 'the unknown-route limit reached')
  t.match(limited.headers['x-request-id'], new RegExp(RequestId?.schema.pattern ?? '^$'), 'with an X-Request-Id of the documented form')
  t.match(limited.headers['retry-after'], /^[0-9]+$/, 'and a Retry-After')
})
