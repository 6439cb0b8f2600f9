import t from 'tap'
import { buildApp, capturedLogs, PASSWORD, registerAndLogin } from '../helpers/app.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('every answer that leaves a line in the log names its request, with an id unique across the fleet', async (t) => {
  const a = await buildApp(t, { store: 'memory' })
  const b = await buildApp(t, { store: 'memory' })
  const session = await registerAndLogin(a)
  const named = [
    { url: '/me' },
    { url: '/no/such/route' },
    { method: 'POST' as const, url: '/auth/login', payload: { email: session.email, password: PASSWORD } },
    { method: 'POST' as const, url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"email":' },
    { method: 'POST' as const, url: '/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'x' },
    { method: 'POST' as const, url: '/auth/refresh' },
    { url: '/auth/sessions', headers: { authorization: `Bearer ${session.accessToken}` } }
  ]
  const ids: string[] = []
  for (const app of [a, b]) {
    for (const request of named) {
      const res = await app.inject(request)
      t.match(res.headers['x-request-id'], UUID, `${request.method ?? 'GET'} ${request.url}: ${res.statusCode}, named by a random UUID`)
      ids.push(res.headers['x-request-id'] as string)
    }
  }
  t.equal(new Set(ids).size, ids.length, 'no two alike, on one instance or across two (Fastify\'s own ids start at req-1 in each)')

  // The successes of the high-volume routes are logged at debug: not named, so that /me and refresh pay nothing.
  for (const request of [{ url: '/health/live' }, { url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } }]) {
    const res = await a.inject(request)
    t.same([res.statusCode, res.headers['x-request-id']], [200, undefined], `${request.url}: a success of a high-volume route is not named`)
  }
})

t.test('with ACCESS_LOG=all every answer is named, as every answer is logged', async (t) => {
  const app = await buildApp(t, { store: 'memory', env: { ACCESS_LOG: 'all' } })
  const session = await registerAndLogin(app)
  for (const request of [{ url: '/health/live' }, { url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } }]) {
    const res = await app.inject(request)
    t.equal(res.statusCode, 200)
    t.match(res.headers['x-request-id'], UUID, request.url)
  }
})

t.test('the load balancer\'s id is adopted: the answer and the instance\'s log lines carry it', async (t) => {
  const logs = capturedLogs()
  const app = await buildApp(t, { store: 'memory', env: { LOG_LEVEL: 'info' }, logStream: logs.stream })
  const session = await registerAndLogin(app)
  for (const id of ['5f0a3c9e1b2d4e6f8a7b9c0d1e2f3a4b', '1b4e28ba-2fa1-11d2-883f-0016d3cca427', 'Root-1.67891233:abc_def', 'a'.repeat(128)]) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-request-id': id }, payload: { email: session.email, password: `${PASSWORD}!` } })
    t.equal(res.statusCode, 401)
    t.equal(res.headers['x-request-id'], id, `${id.slice(0, 40)}: echoed`)
    t.ok(logs.lines().some((line) => line.reqId === id && line.msg === 'request completed'), `${id.slice(0, 40)}: the request's log line carries it`)
  }
})

t.test('an id that is not short and plain is never adopted: not echoed, not logged', async (t) => {
  const logs = capturedLogs()
  const app = await buildApp(t, { store: 'memory', env: { LOG_LEVEL: 'info' }, logStream: logs.stream })
  const hostile = [
    '', 'a'.repeat(129), 'two words', 'quote"', '{"reqId":"forged"}', 'semi;colon', 'ünïcode', '<script>', 'a,b'
  ]
  for (const id of hostile) {
    const res = await app.inject({ url: '/no/such/route', headers: { 'x-request-id': id } })
    t.match(res.headers['x-request-id'], UUID, `${JSON.stringify(id).slice(0, 20)}: replaced by a fresh id`)
  }
  const twice = await app.inject({ url: '/no/such/route', headers: { 'x-request-id': ['abc', 'def'] } })
  t.match(twice.headers['x-request-id'], UUID, 'two ids for one request: neither')
  const adopted = logs.lines().map((line) => line.reqId).filter((id) => id !== undefined && !UUID.test(id))
  t.same(adopted, [], 'no log line names a request by an id it brought')
})
