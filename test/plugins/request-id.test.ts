import t from 'tap'
import { buildApp, capturedLogs, PASSWORD, registerAndLogin } from '../helpers/app.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('every answer names its request with an id unique across the fleet, whatever the answer', async (t) => {
  const a = await buildApp(t, { store: 'memory' })
  const b = await buildApp(t, { store: 'memory' })
  const session = await registerAndLogin(a)
  const requests = [
    { url: '/health/live' },
    { url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } },
    { url: '/me' },
    { url: '/no/such/route' },
    { method: 'POST' as const, url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"email":' },
    { method: 'POST' as const, url: '/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'x' },
    { method: 'POST' as const, url: '/auth/refresh' }
  ]
  const ids: string[] = []
  for (const app of [a, b]) {
    for (const request of requests) {
      const res = await app.inject(request)
      t.match(res.headers['x-request-id'], UUID, `${request.method ?? 'GET'} ${request.url}: ${res.statusCode}, named by a random UUID`)
      ids.push(res.headers['x-request-id'] as string)
    }
  }
  t.equal(new Set(ids).size, ids.length, 'no two alike, on one instance or across two (Fastify\'s own ids start at req-1 in each)')
})

t.test('the load balancer\'s id is adopted: the answer and the instance\'s log lines carry it', async (t) => {
  const logs = capturedLogs()
  const app = await buildApp(t, { store: 'memory', env: { LOG_LEVEL: 'info' }, logStream: logs.stream })
  const session = await registerAndLogin(app)
  for (const id of ['5f0a3c9e1b2d4e6f8a7b9c0d1e2f3a4b', '1b4e28ba-2fa1-11d2-883f-0016d3cca427', 'Root-1.67891233:abc_def']) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-request-id': id }, payload: { email: session.email, password: `${PASSWORD}!` } })
    t.equal(res.statusCode, 401)
    t.equal(res.headers['x-request-id'], id, `${id}: echoed`)
    t.ok(logs.lines().some((line) => line.reqId === id && line.msg === 'request completed'), `${id}: the request's log line carries it`)
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
