import t from 'tap'
import { buildApp, PASSWORD, uniqueEmail } from '../helpers/app.js'

t.test('hostile input gets a clear 4xx JSON error with a stable code, never a 500', async (t) => {
  const app = await buildApp(t)
  const post = (url: string, payload: string | Buffer, contentType = 'application/json') =>
    app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } })

  const cases: Array<[string, () => ReturnType<typeof post>, number, string]> = [
    ['malformed JSON', () => post('/auth/login', '{"email": "a@b.c", "password": '), 400, 'REQUEST_MALFORMED_BODY'],
    ['__proto__ key', () => post('/auth/register', `{"email":"${uniqueEmail()}","password":"${PASSWORD}","__proto__":{"admin":true}}`), 400, 'REQUEST_MALFORMED_BODY'],
    ['constructor.prototype', () => post('/auth/register', `{"email":"${uniqueEmail()}","password":"${PASSWORD}","constructor":{"prototype":{"admin":true}}}`), 400, 'REQUEST_MALFORMED_BODY'],
    ['unknown field', () => post('/auth/register', JSON.stringify({ email: uniqueEmail(), password: PASSWORD, role: 'admin' })), 400, 'REQUEST_VALIDATION'],
    ['wrong type: number password', () => post('/auth/login', JSON.stringify({ email: 'a@example.com', password: 123456789012345 })), 400, 'REQUEST_VALIDATION'],
    ['wrong type: object email', () => post('/auth/login', JSON.stringify({ email: { $ne: null }, password: PASSWORD })), 400, 'REQUEST_VALIDATION'],
    ['array body', () => post('/auth/login', JSON.stringify([{ email: 'a@example.com', password: PASSWORD }])), 400, 'REQUEST_VALIDATION'],
    ['null body', () => post('/auth/login', 'null'), 400, 'REQUEST_VALIDATION'],
    ['empty JSON body on login', () => post('/auth/login', ''), 400, 'REQUEST_VALIDATION'],
    ['body over 16 kB', () => post('/auth/login', JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(17_000) })), 413, 'REQUEST_BODY_TOO_LARGE'],
    ['text/plain', () => post('/auth/login', 'email=a&password=b', 'text/plain'), 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE'],
    ['form post', () => post('/auth/register', 'email=a@b.c&password=x', 'application/x-www-form-urlencoded'), 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE'],
    ['multipart', () => post('/auth/login', '--x\r\n\r\n--x--', 'multipart/form-data; boundary=x'), 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE'],
    ['invalid UTF-8', () => post('/auth/login', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])), 400, 'REQUEST_MALFORMED_BODY']
  ]
  for (const [name, request, status, code] of cases) {
    const res = await request()
    t.equal(res.statusCode, status, `${name}: ${status}`)
    t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
    t.match(res.json(), { statusCode: status, code, error: String, message: String }, `${name}: ${code}`)
  }
})

t.test('unknown routes are a JSON 404', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  for (const [method, url] of [['GET', '/nope'], ['DELETE', '/auth/login'], ['GET', '/auth/refresh'], ['GET', `/${'a'.repeat(5000)}`]] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url.slice(0, 20)}`)
    t.same(res.json(), { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'Route not found' })
  }
})

t.test('no route answers a 500 for any of a batch of hostile requests', async (t) => {
  const app = await buildApp(t)
  const bodies = ['{', '[]', '""', '0', 'true', '{"email":null,"password":null}', '{"email":"' + 'a'.repeat(400) + '@x.io","password":"' + PASSWORD + '"}',
    JSON.stringify({ email: 'a@example.com\u0000', password: PASSWORD }), JSON.stringify({ email: 'a@example.com', password: '\u0000'.repeat(20) })]
  const statuses = new Set<number>()
  for (const url of ['/auth/register', '/auth/login', '/auth/refresh', '/auth/logout']) {
    for (const payload of bodies) {
      const res = await app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json', cookie: '__Secure-refresh_token=%ZZ%; x=%' } })
      statuses.add(res.statusCode)
      t.ok(res.statusCode < 500, `${url} ${payload.slice(0, 20)} → ${res.statusCode}`)
    }
  }
  t.ok([...statuses].every((s) => [200, 201, 204, 400, 401, 409].includes(s)), `statuses seen: ${[...statuses].join(', ')}`)
})
