import { STATUS_CODES } from 'node:http'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { buildApp, listenOnLoopback, PASSWORD, registerAndLogin, SHORT_REQUEST_TIMEOUT, uniqueEmail } from '../helpers/app.js'
import { rawRequest, REFUSED_LOGIN_BODIES } from '../helpers/raw-http.js'

t.test('hostile input gets a clear 4xx JSON error with a stable code, never a 500', async (t) => {
  const app = await buildApp(t)
  const post = (url: string, payload: string | Buffer, contentType = 'application/json') =>
    app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } })
  const encoded = (encoding: string, payload: string | Buffer) =>
    app.inject({ method: 'POST', url: '/auth/login', payload, headers: { 'content-type': 'application/json', 'content-encoding': encoding } })

  const cases: Array<[string, () => ReturnType<typeof post>, number, string]> = [
    ['malformed JSON', () => post('/auth/login', '{"email": "a@b.c", "password": '), 400, 'REQUEST_MALFORMED_BODY'],
    ['__proto__ key', () => post('/auth/register', `{"email":"${uniqueEmail()}","password":"${PASSWORD}","__proto__":{"admin":true}}`), 400, 'REQUEST_MALFORMED_BODY'],
    ['constructor.prototype', () => post('/auth/register', `{"email":"${uniqueEmail()}","password":"${PASSWORD}","constructor":{"prototype":{"admin":true}}}`), 400, 'REQUEST_MALFORMED_BODY'],
    ['unknown field', () => post('/auth/register', JSON.stringify({ email: uniqueEmail(), password: PASSWORD, role: 'admin' })), 400, 'REQUEST_VALIDATION'],
    ['wrong type: number password', () => post('/auth/login', JSON.stringify({ email: 'a@example.com', password: 123456789012345 })), 400, 'REQUEST_VALIDATION'],
    ['wrong type: object email', () => post('/auth/login', JSON.stringify({ email: { $ne: null }, password: PASSWORD })), 400, 'REQUEST_VALIDATION'],
    // As deep as 16 kB allows: parsing and the prototype-poisoning scan must not recurse into a stack overflow (a 500).
    ['arrays nested 8,000 deep', () => post('/auth/login', `{"email":${'['.repeat(8000)}${']'.repeat(8000)},"password":"x"}`), 400, 'REQUEST_VALIDATION'],
    ['__proto__ 2,500 objects down', () => post('/auth/register', `${'{"a":'.repeat(2500)}{"__proto__":{"admin":true}}${'}'.repeat(2500)}`), 400, 'REQUEST_MALFORMED_BODY'],
    ['array body', () => post('/auth/login', JSON.stringify([{ email: 'a@example.com', password: PASSWORD }])), 400, 'REQUEST_VALIDATION'],
    ['null body', () => post('/auth/login', 'null'), 400, 'REQUEST_VALIDATION'],
    ['empty JSON body on login', () => post('/auth/login', ''), 400, 'REQUEST_VALIDATION'],
    ['body over 16 kB', () => post('/auth/login', JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(17_000) })), 413, 'REQUEST_BODY_TOO_LARGE'],
    ['text/plain', () => post('/auth/login', 'email=a&password=b', 'text/plain'), 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE'],
    ['form post', () => post('/auth/register', 'email=a@b.c&password=x', 'application/x-www-form-urlencoded'), 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE'],
    ['multipart', () => post('/auth/login', '--x\r\n\r\n--x--', 'multipart/form-data; boundary=x'), 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE'],
    ['invalid UTF-8', () => post('/auth/login', Buffer.concat([Buffer.from('{"email":"a@example.com","password":"'), Buffer.from([0xff, 0xfe]), Buffer.from('correct horse"}')])), 400, 'REQUEST_MALFORMED_BODY'],
    ['gzip-compressed JSON', () => encoded('gzip', gzipSync(JSON.stringify({ email: 'a@example.com', password: PASSWORD }))), 415, 'REQUEST_UNSUPPORTED_ENCODING'],
    ['plain JSON labelled as compressed', () => encoded('br', JSON.stringify({ email: 'a@example.com', password: PASSWORD })), 415, 'REQUEST_UNSUPPORTED_ENCODING'],
    ['identity encoding: read as any body', () => encoded('identity', JSON.stringify({ email: 'a@example.com', password: PASSWORD })), 401, 'AUTH_INVALID_CREDENTIALS'],
    // Content codings are case-insensitive (RFC 9110 §8.4.1).
    ['identity encoding in capitals: read too', () => encoded('IDENTITY', JSON.stringify({ email: 'a@example.com', password: PASSWORD })), 401, 'AUTH_INVALID_CREDENTIALS'],
    ['a body longer than its Content-Length', () => app.inject({ method: 'POST', url: '/auth/login', payload: JSON.stringify({ email: 'a@example.com', password: PASSWORD }), headers: { 'content-type': 'application/json', 'content-length': '10' } }), 400, 'REQUEST_MALFORMED_BODY']
  ]
  for (const [name, request, status, code] of cases) {
    const res = await request()
    t.equal(res.statusCode, status, `${name}: ${status}`)
    t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
    t.match(res.json(), { statusCode: status, code, error: String, message: String }, `${name}: ${code}`)
  }
})

t.test('an unpaired surrogate escaped in a body is refused, so no two passwords or emails become one', async (t) => {
  // Encoded as UTF-8 (for argon2, for Redis) every lone surrogate becomes U+FFFD: these three passwords were one,
  // and two emails that differ only there were one account in Redis and two in the in-memory store.
  for (const store of ['memory', 'redis'] as const) {
    const app = await buildApp(t, { store })
    const post = (url: string, body: string) => app.inject({ method: 'POST', url, payload: body, headers: { 'content-type': 'application/json' } })
    const email = uniqueEmail()
    const refused = [
      ['register, password', '/auth/register', `{"email":"${email}","password":"correct\\ud800horse battery"}`],
      ['register, email', '/auth/register', `{"email":"\\udbff${email}","password":"${PASSWORD}"}`],
      ['register, a low surrogate alone', '/auth/register', `{"email":"${email}","password":"correct\\uDC00horse battery"}`],
      ['login, password', '/auth/login', `{"email":"${email}","password":"correct\\udfffhorse battery"}`],
      ['register, an unknown key', '/auth/register', '{"\\ud800":1}']
    ]
    for (const [name, url, body] of refused) {
      const res = await post(url as string, body as string)
      t.equal(res.statusCode, 400, `${store}, ${name}: 400`)
      t.equal(res.json().code, 'REQUEST_VALIDATION', `${store}, ${name}: REQUEST_VALIDATION`)
    }
    const withEmoji = 'correct horse battery \\ud83d\\udc0e'
    t.equal((await post('/auth/register', `{"email":"${email}","password":"${withEmoji}"}`)).statusCode, 201, `${store}: an escaped surrogate pair is one character, and welcome`)
    t.equal((await post('/auth/login', `{"email":"${email}","password":"${withEmoji}"}`)).statusCode, 200, `${store}: that password signs in`)
    t.equal((await post('/auth/login', JSON.stringify({ email, password: 'correct horse battery \u{1F40E}' }))).statusCode, 200, `${store}: sent unescaped too`)
    t.equal((await post('/auth/login', `{"email":"${email}","password":"correct horse battery \\ufffd"}`)).statusCode, 401, `${store}: U+FFFD is another password`)
  }
})

t.test('a body that is not UTF-8 is refused, so no two passwords or emails become one', async (t) => {
  const app = await buildApp(t)
  const post = (url: string, body: Buffer) => app.inject({ method: 'POST', url, payload: body, headers: { 'content-type': 'application/json' } })
  const email = uniqueEmail()
  // "pässword" as Latin-1 writes it, "ä" one byte (0xE4): decoded as UTF-8, that byte became U+FFFD, and so did any
  // other such byte in its place ("ö", 0xF6): the service took them for one password.
  const latin1 = (password: string) => Buffer.from(`{"email":"${email}","password":"${password}"}`, 'latin1')
  for (const [name, url, body] of [
    ['register, a Latin-1 "ä"', '/auth/register', latin1('correct horse b\u00e4ttery')],
    ['login, a Latin-1 "ö"', '/auth/login', latin1('correct horse b\u00f6ttery')],
    ['register, a UTF-8 sequence cut short', '/auth/register', Buffer.concat([Buffer.from(`{"email":"${email}","password":"correct horse `), Buffer.from([0xe2, 0x82]), Buffer.from('"}')])],
    ['register, an overlong "/"', '/auth/register', Buffer.concat([Buffer.from(`{"email":"${email}","password":"correct horse `), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])]
  ] as const) {
    const res = await post(url, body)
    t.equal(res.statusCode, 400, `${name}: 400`)
    t.same(res.json(), { statusCode: 400, code: 'REQUEST_MALFORMED_BODY', error: 'Bad Request', message: 'Request body is not valid JSON: JSON text is UTF-8, and this body holds bytes that are not' }, `${name}: saying why`)
  }
  const utf8 = (password: string) => Buffer.from(`{"email":"${email}","password":"${password}"}`, 'utf8')
  t.equal((await post('/auth/login', utf8('correct horse b\u00e4ttery'))).statusCode, 401, 'nothing was registered')
  t.equal((await post('/auth/register', utf8('correct horse b\u00e4ttery'))).statusCode, 201, 'the same password in UTF-8 registers')
  t.equal((await post('/auth/login', utf8('correct horse b\u00e4ttery'))).statusCode, 200, 'and signs in')
  t.equal((await post('/auth/login', utf8('correct horse b\ufffdttery'))).statusCode, 401, 'U+FFFD in its place does not')
  t.equal((await post('/auth/login', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8('correct horse b\u00e4ttery')]))).statusCode, 200, 'a byte-order mark before it is UTF-8, and taken')
})

t.test('unknown paths are a JSON 404', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  for (const [method, url] of [['GET', '/nope'], ['POST', '/auth'], ['GET', '/auth/sessions/abc/def'], ['OPTIONS', '/no/such/path'], ['GET', `/${'a'.repeat(5000)}`]] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url.slice(0, 24)}`)
    t.same(res.json(), { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'Route not found' })
    t.equal(res.headers.allow, undefined, 'with no Allow')
  }
})

t.test('a path served with other methods is a JSON 405 naming them, in the body and in Allow', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  for (const [method, url, allowed] of [
    ['GET', '/auth/login', 'POST'],
    ['GET', '/auth/refresh?from=bookmark', 'POST'],
    ['DELETE', '/me', 'GET, HEAD'],
    ['POST', '/health/live', 'GET, HEAD'],
    ['GET', '/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA', 'DELETE'],
    ['PATCH', '/auth/account', 'DELETE'],
    ['PUT', '/auth/sessions', 'GET, HEAD'],
    // Served on no path: without CORS, a browser's preflight gets this too, and fails.
    ['OPTIONS', '/auth/login', 'POST'],
    ['OPTIONS', '/me', 'GET, HEAD']
  ] as const) {
    const res = await app.inject({ method, url })
    t.same([res.statusCode, res.headers.allow], [405, allowed], `${method} ${url}: ${allowed}`)
    t.same(res.json(), { statusCode: 405, code: 'METHOD_NOT_ALLOWED', error: 'Method Not Allowed', message: `Method not allowed here; this path takes ${allowed}` })
  }
  const head = await app.inject({ method: 'HEAD', url: '/auth/refresh' })
  t.same([head.statusCode, head.headers.allow, head.body], [405, 'POST', ''], 'a HEAD too, without a body')

  // With CORS on, preflights are answered on every path: OPTIONS is no method a path is served with.
  const cors = await buildApp(t, { store: 'memory', env: { ALLOWED_ORIGINS: 'https://app.example.com' } })
  const wrongMethod = await cors.inject({ method: 'GET', url: '/auth/login' })
  t.same([wrongMethod.statusCode, wrongMethod.headers.allow], [405, 'POST'], 'with CORS on: Allow names POST alone')
  const options = await cors.inject({ method: 'OPTIONS', url: '/auth/login' })
  t.same([options.statusCode, options.headers.allow, options.json().code], [405, 'POST', 'METHOD_NOT_ALLOWED'], 'and an OPTIONS that is no preflight is refused as without CORS')
  const unknown = await cors.inject({ method: 'GET', url: '/no/such/path' })
  t.same([unknown.statusCode, unknown.headers.allow, unknown.json().code], [404, undefined, 'NOT_FOUND'], 'and an unknown path is a 404')
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

t.test('URLs the router cannot decode, and path segments over its limit, get the same JSON errors', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const { accessToken } = await registerAndLogin(app)
  const cases: Array<[string, 'GET' | 'DELETE', string, number, string]> = [
    ['a bare %', 'GET', '/%', 400, 'REQUEST_MALFORMED_URL'],
    ['a broken UTF-8 escape in a session id', 'DELETE', '/auth/sessions/%E0%A4%A', 400, 'REQUEST_MALFORMED_URL'],
    ['an invalid escape before a query', 'GET', '/me%zz?x=1', 400, 'REQUEST_MALFORMED_URL'],
    ['a session id longer than any path segment the router takes', 'DELETE', `/auth/sessions/${'a'.repeat(101)}`, 414, 'REQUEST_URL_TOO_LONG']
  ]
  for (const [name, method, url, status, code] of cases) {
    const res = await app.inject({ method, url, headers: { authorization: `Bearer ${accessToken}` } })
    t.equal(res.statusCode, status, `${name}: ${status}`)
    t.same(res.json(), { statusCode: status, code, error: STATUS_CODES[status], message: String(res.json().message) }, `${name}: ${code}`)
    t.notMatch(res.body, /FST_|%/, `${name}: neither Fastify's internal code nor the URL comes back`)
    t.match(res.headers, { 'content-type': /^application\/json/, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' }, `${name}: headers of an error`)
    t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/, `${name}: named by its request id, as every other failure`)
  }
  const valid = await app.inject({ method: 'DELETE', url: `/auth/sessions/${'a'.repeat(100)}`, headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(valid.json().code, 'REQUEST_VALIDATION', 'a long id the router does take is refused by the route\'s own schema')
})

t.test('requests Node\'s HTTP parser refuses get the same JSON errors, and the connection is closed', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const port = await listenOnLoopback(app)
  const cases: Array<[string, string, number, string]> = [
    ['not HTTP at all', 'GARBAGE\r\n\r\n', 400, 'REQUEST_MALFORMED'],
    ['a header line without a colon', 'GET /health/live HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n', 400, 'REQUEST_MALFORMED'],
    // Two lengths are how request smuggling between a proxy and a server begins.
    ['two Content-Length headers', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'REQUEST_MALFORMED'],
    ['Content-Length beside chunked', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'REQUEST_MALFORMED'],
    ['a chunk size that is not hex, after the route was found', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'REQUEST_MALFORMED'],
    ['headers over 16 KiB', `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'REQUEST_HEADER_TOO_LARGE']
  ]
  for (const [name, bytes, status, code] of cases) {
    const res = await rawRequest(port, bytes)
    t.equal(res.statusCode, status, `${name}: ${status}`)
    t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
    t.equal(res.headers.connection, 'close', `${name}: the connection is closed`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${name}: not sniffed`)
    t.match(JSON.parse(res.body), { statusCode: status, code, error: String, message: String }, `${name}: ${code}`)
  }
  const after = await rawRequest(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  t.equal(after.statusCode, 200, 'the service goes on serving well-formed requests')
})

t.test('what Node would refuse with an empty answer gets the same JSON errors: no Host, an unknown expectation, a tunnel', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const port = await listenOnLoopback(app)
  const login = JSON.stringify({ email: 'a@example.com', password: PASSWORD })
  const cases: Array<[string, string, number, string]> = [
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400.
    ['HTTP/1.1 without Host', 'GET /health/live HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'REQUEST_MALFORMED'],
    ['an Expect other than 100-continue', `POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${login.length}\r\nExpect: 200-ok\r\n\r\n${login}`, 417, 'REQUEST_EXPECTATION_FAILED'],
    // A proxy's method, answered as any method or path the service does not serve.
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 404, 'NOT_FOUND'],
    ['CONNECT with bytes for the tunnel already sent', 'CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\nAUTH secret\r\n', 404, 'NOT_FOUND']
  ]
  for (const [name, bytes, status, code] of cases) {
    const res = await rawRequest(port, bytes)
    t.equal(res.statusCode, status, `${name}: ${status}`)
    t.match(res.headers, { 'content-type': /^application\/json/, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' }, `${name}: JSON, not sniffed, not stored`)
    t.match(JSON.parse(res.body), { statusCode: status, code, error: String, message: String }, `${name}: ${code}`)
  }
  const http10 = await rawRequest(port, 'GET /health/live HTTP/1.0\r\n\r\n')
  t.equal(http10.statusCode, 200, 'HTTP/1.0 needs no Host')
  const continued = await rawRequest(port, `POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${login.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n${login}`)
  t.equal(continued.statusCode, 100, 'Expect: 100-continue is answered with a 100')
  t.match(continued.body, /^HTTP\/1\.1 401 /, 'and then the request itself')
})

t.test('a request not received within the request timeout gets a JSON 408', async (t) => {
  const app = await buildApp(t, { store: 'memory', server: SHORT_REQUEST_TIMEOUT })
  const port = await listenOnLoopback(app)
  const started = Date.now()
  const res = await rawRequest(port, REFUSED_LOGIN_BODIES.tooSlow)
  t.equal(res.statusCode, 408)
  t.match(JSON.parse(res.body), { statusCode: 408, code: 'REQUEST_TIMEOUT', error: 'Request Timeout', message: String })
  t.ok(Date.now() - started >= 250, 'answered once the timeout had passed, not before')
})
