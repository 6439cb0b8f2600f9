import { request, Agent } from 'node:http'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { connectedRedis, deleteKeys, PASSWORD, SHARED_REDIS_URL, testEnv, uniqueEmail, uniquePrefix } from '../helpers/app.js'
import { freePort } from '../helpers/redis-server.js'
import { startServer, waitForListening } from '../helpers/server-process.js'
import { within } from '../helpers/poll.js'
import { answersOn, rawRequest } from '../helpers/raw-http.js'
import { matchList } from '../helpers/match-list.js'

function post (port: number, path: string, body: object, agent?: Agent): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body)
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let data = ''
      res.on('data', (c) => { data += String(c) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }))
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/**
 * src/server.ts as a process on a free port with one registered account, and argon2 parameters slow enough that a
 * login is still in flight when a signal sent 30 ms after it lands (or as slow as `argon2` makes it).
 */
async function slowLoginServer (t: Test, argon2 = { ARGON2_MEMORY_COST: '65536', ARGON2_TIME_COST: '8' }) {
  const port = await freePort()
  const server = startServer(testEnv({ PORT: String(port), LOG_LEVEL: 'info', ...argon2 }))
  t.teardown(() => { server.child.kill('SIGKILL') })
  await waitForListening(server)
  const email = uniqueEmail()
  t.equal((await post(port, '/auth/register', { email, password: PASSWORD })).status, 201)
  return { port, server, email }
}

t.test('SIGTERM: in-flight requests finish, new connections are refused, idle keep-alive does not hold the process, exit well within 10 s', async (t) => {
  const { port, server, email } = await slowLoginServer(t)
  // An idle keep-alive connection, open when the signal arrives.
  const keepAlive = new Agent({ keepAlive: true })
  t.teardown(() => keepAlive.destroy())
  await post(port, '/auth/login', { email: 'nobody@example.com', password: PASSWORD }, keepAlive)

  const inFlight = post(port, '/auth/login', { email, password: PASSWORD })
  await sleep(30)
  const signalledAt = Date.now()
  server.child.kill('SIGTERM')
  // Once the process says so it has stopped listening (a fixed pause lost that race on a loaded machine).
  await within(5000, async () => /shutting down/.test(server.output()), 'the shutdown has begun')
  const late = await post(port, '/auth/login', { email, password: PASSWORD }).then((r) => r.status, (err: NodeJS.ErrnoException) => err.code)

  t.equal((await inFlight).status, 200, 'the in-flight login completed')
  t.ok(late === 'ECONNREFUSED' || late === 'ECONNRESET', `a new connection after SIGTERM is refused (${late})`)
  const code = await server.exited
  const ms = Date.now() - signalledAt
  t.equal(code, 0, 'clean exit')
  t.ok(ms < 10_000, `exited ${ms} ms after SIGTERM`)
  t.match(server.output(), /shutting down/)
  t.match(server.output(), /"req":\{"method":"POST","url":"\/auth\/register","remoteAddress":"127\.0\.0\.1"\},"res":\{"statusCode":201\},"responseTime":[0-9.]+,"msg":"request completed"/,
    'one access-log line per request, with method, URL, client, status and time')
  t.equal(server.output().match(/"msg":"request completed"/g)?.length, 3, 'all 3 answered requests logged, none lost at exit')
})

t.test('SIGTERM: a request that comes on a connection still busy while the instance drains is served, and that connection then closed', async (t) => {
  // A login in flight keeps its connection busy (not idle) when the signal lands.
  const { port, server, email } = await slowLoginServer(t)
  const login = JSON.stringify({ email, password: PASSWORD })
  const busy = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')]
  const answers = busy.map(answersOn)
  for (const socket of busy) socket.write(`POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${login.length}\r\n\r\n${login}`)
  await sleep(30)
  server.child.kill('SIGTERM')
  await within(5000, async () => /shutting down/.test(server.output()), 'the shutdown has begun')
  // The next request of each connection, sent while its login is still being answered.
  busy[0]?.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n')
  busy[1]?.write('GET /health/ready HTTP/1.1\r\nHost: x\r\n\r\n')
  const [[login0, live], [login1, ready]] = await Promise.all(answers) as [any[], any[]]

  t.equal(login0.status, 200, 'the login in flight completed')
  t.equal(login1.status, 200, 'on both connections')
  t.match(live, { status: 200, headers: { connection: 'close' }, body: { status: 'ok' } }, 'the request after it is served, not refused, and told the connection closes')
  t.match(ready, { status: 503, headers: { connection: 'close' }, body: { code: 'SERVICE_NOT_READY' } }, 'readiness says the instance is leaving, in the service\'s shape')
  t.equal(await server.exited, 0, 'clean exit')
})

t.test('SIGTERM: a client keeping its connection alive gets the answer to its request in flight with Connection: close, and does not hold the exit', async (t) => {
  const { port, server, email } = await slowLoginServer(t)
  // As nginx's upstream keepalive and undici do: an idle connection is kept until the server closes it.
  const keepAlive = new Agent({ keepAlive: true })
  t.teardown(() => keepAlive.destroy())
  const inFlight = new Promise<Record<string, unknown>>((resolve, reject) => {
    const payload = JSON.stringify({ email, password: PASSWORD })
    const req = request({ host: '127.0.0.1', port, path: '/auth/login', method: 'POST', agent: keepAlive, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection }))
    })
    req.on('error', reject)
    req.end(payload)
  })
  await sleep(30)
  server.child.kill('SIGTERM')
  t.same(await inFlight, { status: 200, connection: 'close' }, 'the login in flight is answered, and told the connection closes')
  t.equal(await server.exited, 0, 'clean exit: the connection was closed after the answer (kept, it held the exit until SHUTDOWN_TIMEOUT killed it, exit 1)')
  t.notMatch(server.output(), /killed by timeout/)
})

t.test('SIGTERM: a request still arriving when the drain begins has a second to arrive, then is refused 503 (its headers in) or closed (not), and does not hold the exit', async (t) => {
  // A login that takes longer than that second: received requests are served however long they take.
  const { port, server, email } = await slowLoginServer(t, { ARGON2_MEMORY_COST: '262144', ARGON2_TIME_COST: '10' })
  const login = JSON.stringify({ email, password: PASSWORD })
  const [received, stalledHead, stalledBody] = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1'), connect(port, '127.0.0.1')]
  const answers = [received, stalledHead, stalledBody].map(answersOn)
  received.write(`POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${login.length}\r\n\r\n${login}`)
  stalledHead.write('POST /auth/login HTTP/1.1\r\nHost: x\r\n')
  stalledBody.write(`POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${login.length}\r\n\r\n${login.slice(0, 10)}`)
  await sleep(100)
  const signalledAt = Date.now()
  server.child.kill('SIGTERM')
  const [[loginAnswer], headAnswers, [bodyAnswer]] = await Promise.all(answers) as [any[], any[], any[]]

  t.match(loginAnswer, { status: 200, headers: { connection: 'close' } }, 'the login received is served')
  t.ok(Date.now() - signalledAt > 1000, 'though it took longer than the second given to requests still arriving')
  t.same(headAnswers, [], 'a request whose headers had not all come is closed unanswered: there is no request to answer yet')
  t.match(bodyAnswer, { status: 503, headers: { connection: 'close' }, body: { code: 'SERVICE_NOT_READY' } }, 'one whose body had not all come is refused in the service\'s shape: its client may send it to another instance')
  t.equal(await server.exited, 0, 'clean exit (they held it until SHUTDOWN_TIMEOUT killed it, exit 1)')
  t.notMatch(server.output(), /killed by timeout/)
  t.equal(server.output().match(/"url":"\/auth\/login".*"res":\{"statusCode":503\}.*"msg":"request completed"/g)?.length, 1, 'the refused login is in the access log, with the status it was answered')
})

t.test('SIGTERM with SHUTDOWN_TIMEOUT=1: a request still arriving is refused within it, so it ends well', async (t) => {
  const port = await freePort()
  const server = startServer(testEnv({ PORT: String(port), LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT: '1' }))
  t.teardown(() => { server.child.kill('SIGKILL') })
  await waitForListening(server)
  const stalledBody = connect(port, '127.0.0.1')
  const answer = answersOn(stalledBody)
  stalledBody.write('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{"email"')
  await sleep(100)
  server.child.kill('SIGTERM')
  t.match((await answer)[0], { status: 503, body: { code: 'SERVICE_NOT_READY' } }, 'refused in the service\'s shape')
  t.equal(await server.exited, 0, 'a clean exit: given the whole second to arrive, it would be refused as the timeout kills the process')
  t.notMatch(server.output(), /killed by timeout/)
})

t.test('production refuses unsafe config at start with a one-line message naming the variable', async (t) => {
  // Secrets production takes: each made of many characters, no text repeated.
  const j = 'j-a-test-secret-of-forty-bytes-or-more'
  const r = 'r-a-test-secret-of-forty-bytes-or-more'
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ REDIS_URL: 'redis://127.0.0.1:6379', REFRESH_TOKEN_SECRET: r }, /refusing to start: production needs signing keys/],
    [{ JWT_SECRET: j, REFRESH_TOKEN_SECRET: r }, /refusing to start: REDIS_URL is required in production/],
    [{ REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: j, REFRESH_TOKEN_SECRET: 'short' }, /refusing to start: REFRESH_TOKEN_SECRET must be at least 32 bytes/],
    // A secret set under a misspelt name: the refusal says which name it took for the one it needs, never its value.
    [{ REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: j, REFRESH_TOKEN_SECERT: r },
      /refusing to start: REFRESH_TOKEN_SECRET is required in production \([^\n]*\)\. Also: REFRESH_TOKEN_SECERT is set but not read: did you mean REFRESH_TOKEN_SECRET\?$/m],
    // A password with a character URLs reserve, unencoded: the Redis client would throw an error carrying the URL.
    [{ REDIS_URL: `redis://:${r}#1@127.0.0.1:6379`, JWT_SECRET: j, REFRESH_TOKEN_SECRET: `s${r}` },
      /^auth-service: refusing to start: REDIS_URL is not a URL: in a password, a character URLs reserve must be percent-encoded \(# as %23/m],
    // Long enough, and guessable: the refusal says what is wrong with it, never what it is.
    [{ REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: j, REFRESH_TOKEN_SECRET: 'r'.repeat(40) }, /refusing to start: REFRESH_TOKEN_SECRET is made of one character/],
    [{ REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: 'jwt-secret-'.repeat(4), REFRESH_TOKEN_SECRET: r }, /refusing to start: JWT_SECRET is one text of 11 characters repeated/],
    // Nothing set: every missing piece on the one line, not one per attempt to start.
    [{}, /refusing to start: 3 problems: \(1\) production needs signing keys[^\n]*; \(2\) REFRESH_TOKEN_SECRET is required[^\n]*; \(3\) REDIS_URL is required in production/]
  ]
  for (const [env, message] of cases) {
    const server = startServer({ NODE_ENV: 'production', PORT: String(await freePort()), ...env })
    t.teardown(() => { server.child.kill('SIGKILL') })
    t.equal(await server.exited, 1, 'exit code 1')
    t.match(server.output(), message)
    t.notMatch(server.output(), /\n\s+at /, 'no stack trace')
    for (const value of [j, r, 'r'.repeat(40), 'jwt-secret-']) t.notOk(server.output().includes(value), 'no secret\'s value')
  }
})

t.test('a start a plugin refuses (development key material other than the instances on its Redis use) exits 1, saying why in one log line', async (t) => {
  const prefix = uniquePrefix()
  const redis = await connectedRedis(t)
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  await redis.set(`${prefix}dev-secret-digest:JWT_KEYS:ES256`, 'the digest of another instance\'s key pair')
  const server = startServer(testEnv({
    PORT: String(await freePort()),
    LOG_LEVEL: 'info',
    REDIS_URL: SHARED_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    JWT_SECRET: undefined,
    REFRESH_TOKEN_SECRET: undefined,
    DEV_SECRETS_FILE: join(t.testdir(), 'dev-secrets.json')
  }))
  t.teardown(() => { server.child.kill('SIGKILL') })
  t.equal(await server.exited, 1, 'exit code 1')
  const lines = server.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: number, msg: string })
  const fatal = lines.filter((line) => line.level === 60)
  t.equal(fatal.length, 1, 'one log line')
  matchList(t, fatal, [{ msg: /^refusing to start: JWT_KEYS is not set, and the one generated in .* is not the one the other instances on this Redis/ }], 'saying why')
  t.notMatch(server.output(), /^\s+at /m, 'no uncaught exception\'s stack outside the log line')
  t.notMatch(server.output(), /Server listening/)
})

t.test('METRICS_PORT: /metrics is served on its own port, counts the API\'s requests, and leaves the API\'s port; SIGTERM closes both', async (t) => {
  const [port, metricsPort] = [await freePort(), await freePort()]
  const server = startServer(testEnv({ PORT: String(port), METRICS_PORT: String(metricsPort), LOG_LEVEL: 'info' }))
  t.teardown(() => { server.child.kill('SIGKILL') })
  await waitForListening(server)
  await within(5000, async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.status, () => 0)) === 200, 'the metrics port answers')

  t.equal((await post(port, '/auth/login', { email: uniqueEmail(), password: PASSWORD })).status, 401)
  const api = await fetch(`http://127.0.0.1:${port}/metrics`)
  t.equal(api.status, 404, 'not on the API\'s port')
  t.equal((await api.json() as { code: string }).code, 'NOT_FOUND', 'the API\'s own 404')
  const scraped = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.match(scraped.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const body = await scraped.text()
  t.match(body, /auth_login_total\{outcome="[a-z_]+"\} 1/, 'the login on the API\'s port is counted')
  t.match(body, /http_requests_total\{method="POST",route="\/auth\/login",status_code="401"\} 1/)
  t.notMatch(body, /route="\/metrics"/, 'scrapes are not API traffic')
  const other = await fetch(`http://127.0.0.1:${metricsPort}/auth/login`, { method: 'POST' })
  t.same([other.status, (await other.json() as { code: string }).code], [404, 'NOT_FOUND'], 'and the metrics port serves nothing else')
  for (const method of ['POST', 'OPTIONS']) {
    const posted = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method })
    t.same([posted.status, posted.headers.get('allow'), (await posted.json() as { code: string }).code], [405, 'GET, HEAD', 'METHOD_NOT_ALLOWED'], `and /metrics with another method (${method}) is a 405, as on the API's port`)
  }
  const malformed = await rawRequest(metricsPort, 'GARBAGE\r\n\r\n')
  t.same([malformed.statusCode, (JSON.parse(malformed.body) as { code: string }).code], [400, 'REQUEST_MALFORMED'], 'and refuses what is not HTTP as the API\'s port does')
  const undecodable = await fetch(`http://127.0.0.1:${metricsPort}/%`)
  t.same([undecodable.status, (await undecodable.json() as { code: string }).code], [400, 'REQUEST_MALFORMED_URL'], 'and a URL it cannot decode')
  const noHost = await rawRequest(metricsPort, 'GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n')
  t.same([noHost.statusCode, (JSON.parse(noHost.body) as { code: string }).code], [400, 'REQUEST_MALFORMED'], 'and an HTTP/1.1 request without Host')
  const expectation = await rawRequest(metricsPort, 'GET /metrics HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n')
  t.same([expectation.statusCode, (JSON.parse(expectation.body) as { code: string }).code], [417, 'REQUEST_EXPECTATION_FAILED'], 'and an expectation it cannot meet')
  const tunnel = await rawRequest(metricsPort, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  t.same([tunnel.statusCode, (JSON.parse(tunnel.body) as { code: string }).code], [404, 'NOT_FOUND'], 'and a tunnel it does not open')

  // A scrape whose request is still arriving when the drain begins is closed, as on the API's port.
  const stalled = connect(metricsPort, '127.0.0.1')
  const stalledAnswers = answersOn(stalled)
  stalled.write('GET /metrics HTTP/1.1\r\nHost: x\r\n')
  await sleep(100)
  server.child.kill('SIGTERM')
  t.same(await stalledAnswers, [], 'a scrape still arriving is closed unanswered')
  t.equal(await server.exited, 0, 'clean exit')
  t.notMatch(server.output(), /killed by timeout/, 'the scrape did not hold it')
  t.equal(await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.status, (err: Error & { cause?: { code?: string } }) => err.cause?.code), 'ECONNREFUSED', 'the metrics port is closed too')
})
