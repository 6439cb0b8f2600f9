import t from 'tap'
import { buildApp, capturedLogs, listenOnLoopback, PASSWORD, refresh, refreshCookieValue, registerAndLogin, setCookies } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { rawRequest } from '../helpers/raw-http.js'
import { PrivateRedis } from '../helpers/redis-server.js'

t.test('no password, token or secret ever reaches the logs, even at trace level', async (t) => {
  const logs = capturedLogs()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'trace', REFRESH_TOKEN_ACCEPTED_SECRETS: 'the-previous-refresh-secret-0123456789abcdef' }, logStream: logs.stream })

  const session = await registerAndLogin(app)
  const rotated = await refresh(app, session.cookie)
  const next = refreshCookieValue(app, rotated.headers['set-cookie']) as string
  await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })
  await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}x` } })
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: `${PASSWORD}-wrong` } })
  const signedIn = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: PASSWORD } })
  const device = setCookies(signedIn).find((c) => c.startsWith('__Secure-refresh_token_device='))?.split(';')[0] ?? 'no device cookie'
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: `${PASSWORD}-wrong` }, headers: { cookie: device } })
  t.match(device, /^__Secure-refresh_token_device=[\w-]{22}\.[\w-]{22}\.[\w-]{22}$/, 'a device cookie was set, and presented')
  await refresh(app, session.cookie + 'tampered')
  await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${session.accessToken}` } })
  const newPassword = 'a brand new passphrase 9'
  await app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${session.accessToken}` }, payload: { currentPassword: PASSWORD, newPassword } })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `__Secure-refresh_token=${next}` } })
  // Clients that put credentials in a URL, which no route reads.
  await app.inject({ url: `/me?access_token=${session.accessToken}` })
  await app.inject({ method: 'POST', url: `/auth/refresh?refresh_token=${next}` })
  const queryPassword = 'QueryStringPassword-42'
  await app.inject({ method: 'POST', url: `/auth/login?password=${queryPassword}`, payload: { email: session.email, password: 'x' } })
  // The same in a URL the router cannot decode, answered outside every hook (src/client-errors.ts).
  await app.inject({ url: `/%?access_token=${next}` })

  t.ok(logs.text().length > 1000, 'something was logged')
  t.match(logs.text(), /"url":"\/auth\/password"/, 'the requests themselves were logged')
  t.notMatch(logs.text(), /"headers"/, 'no request or response headers are logged at all')
  t.match(logs.text(), /"url":"\/me\?"/, 'a query string shows as a bare "?"')
  t.match(logs.text(), /"url":"\/%\?"/, 'in an undecodable URL as well')
  const secrets = {
    password: PASSWORD,
    'new password': newPassword,
    'password sent in a query string': queryPassword,
    'access token': session.accessToken,
    'access token signature': session.accessToken.split('.')[2] as string,
    'refresh token secret part': session.refreshToken.split('.')[3] as string,
    'rotated refresh token secret part': next.split('.')[3] as string,
    'device cookie tag': device.split('.')[2] as string,
    JWT_SECRET: app.config.jwt.secret as string,
    REFRESH_TOKEN_SECRET: app.config.refresh.secret as string,
    REFRESH_TOKEN_ACCEPTED_SECRETS: app.config.refresh.acceptedSecrets[0] as string
  }
  for (const [name, value] of Object.entries(secrets)) {
    t.notOk(logs.text().includes(value), `no ${name} in the logs`)
  }
})

t.test('a request the HTTP parser refuses is logged by its error code alone, never by the bytes it carried', async (t) => {
  const logs = capturedLogs()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'trace' }, logStream: logs.stream })
  const session = await registerAndLogin(app)
  const port = await listenOnLoopback(app)
  const body = JSON.stringify({ email: session.email, password: PASSWORD })
  // Node hands the handler of a malformed request the raw bytes it received (err.rawPacket): here a refresh
  // cookie, an access token and a login's password, each in a request the parser refuses.
  const malformed = [
    `POST /auth/refresh HTTP/1.1\r\nHost: x\r\nCookie: ${session.cookie}\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n`,
    `GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${session.accessToken}\r\nNo colon here\r\n\r\n`,
    `POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length + 1}\r\n\r\n${body}`
  ]
  for (const bytes of malformed) t.equal((await rawRequest(port, bytes)).statusCode, 400, 'refused')

  t.equal(logs.text().match(/"msg":"client error"/g)?.length, 3, 'each refusal was logged')
  t.match(logs.text(), /"code":"HPE_UNEXPECTED_CONTENT_LENGTH"/, 'by the parser\'s code')
  t.notMatch(logs.text(), /rawPacket/, 'without the raw request')
  const asBytes = (value: string) => [...Buffer.from(value)].join(',')
  const secrets = {
    password: PASSWORD,
    'access token signature': session.accessToken.split('.')[2] as string,
    'refresh token secret part': session.refreshToken.split('.')[3] as string
  }
  for (const [name, value] of Object.entries(secrets)) {
    t.notOk(logs.text().includes(value), `no ${name} in the logs`)
    t.notOk(logs.text().includes(asBytes(value)), `no ${name} in the logs as bytes`)
  }
})

t.test('an error from a URL that failed to parse is logged without the URL, which may carry a password', async (t) => {
  const logs = capturedLogs()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'trace' }, logStream: logs.stream })
  const password = 'a-redis-password-in-a-url-0123456789'
  // Node's URL parser keeps what it was given on the error (err.input). The configuration refuses such a REDIS_URL
  // before any client parses it (test/src/config.test.ts); this holds for any other URL a dependency parses.
  const failure = (() => { try { return new URL(`redis://:${password}#x@redis.internal:6379`) } catch (err) { return err } })() as Error
  t.match(failure, { code: 'ERR_INVALID_URL', input: new RegExp(password) }, 'the error carries the URL')
  app.log.fatal({ err: failure }, `refusing to start: ${failure.message}`)
  t.match(logs.text(), /"code":"ERR_INVALID_URL"/, 'it is logged, by its code')
  t.notOk(logs.text().includes(password), 'without the password')
})

t.test('an error whose text carries a URL\'s password or a configured secret is logged with each redacted', async (t) => {
  const logs = capturedLogs()
  const redis = await PrivateRedis.start(t)
  const redisPassword = new URL(redis.url).password
  const refreshSecret = 'a-refresh-secret-that-a-bug-put-in-a-message-0123'
  // What a library or a bug may throw: its own words, with the connection URL and a key in them, and a cause.
  const thrown = () => new Error(`lost ${redis.url} while signing with ${refreshSecret}`, { cause: new Error(`at ${redis.url}`) })
  const app = await buildApp(t, {
    env: { LOG_LEVEL: 'trace', REDIS_URL: redis.url, REFRESH_TOKEN_SECRET: refreshSecret },
    logStream: logs.stream,
    beforeApp: (root) => {
      root.addHook('onRequest', async (request) => { if (request.headers['x-test-throw'] !== undefined) throw thrown() })
    }
  })
  t.ok(redisPassword.length >= 32, 'the URL carries a password')
  t.equal((await registerAndLogin(app)).accessToken.length > 0, true, 'the service works with both')

  const res = await app.inject({ url: '/health/live', headers: { 'x-test-throw': '1' } })
  t.equal(res.statusCode, 500, 'the error is a 500, logged')
  // As src/server.ts logs what stops a start: the message said in the line's own words as well.
  const atStart = thrown()
  app.log.fatal({ err: atStart }, `refusing to start: ${atStart.message}`)

  const lines = logs.text().split('\n').filter((l) => l.includes('while signing with'))
  t.equal(lines.length, 2, 'the request\'s failure and the start\'s')
  const at = `redis://:[redacted]@127.0.0.1:${new URL(redis.url).port}`
  // pino's error serializer says the cause's message after the error's own.
  const redacted = `lost ${at} while signing with [redacted]: at ${at}`
  const [failed, refused] = lines.map((l) => JSON.parse(l) as { err: { message: string, stack: string }, msg: string })
  for (const line of [failed, refused]) {
    t.equal(line?.err.message, redacted, 'the message says what failed, where, without either secret')
    t.ok(line?.err.stack.startsWith(`Error: lost ${at} while signing with [redacted]\n`), 'and so does the stack')
  }
  t.equal(failed?.msg, 'request failed')
  t.equal(refused?.msg, `refusing to start: lost ${at} while signing with [redacted]`, 'the line\'s own words are redacted too')
  t.notOk(logs.text().includes(redisPassword), 'no Redis password anywhere in the logs')
  t.notOk(logs.text().includes(refreshSecret), 'no refresh secret anywhere in the logs')
})

t.test('the Redis password stays out of the logs, also when Redis fails and errors are logged', async (t) => {
  const logs = capturedLogs()
  const redis = await PrivateRedis.start(t)
  const redisPassword = new URL(redis.url).password
  const app = await buildApp(t, { env: { LOG_LEVEL: 'trace', REDIS_URL: redis.url }, logStream: logs.stream })

  const session = await registerAndLogin(app)
  t.equal((await refresh(app, session.cookie)).statusCode, 200, 'the service works on a password-protected Redis')
  await redis.kill()
  t.equal((await refresh(app, session.cookie)).statusCode, 503, 'Redis down: 503, and the cause is logged')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503)

  t.match(logs.text(), /AUTH_STORE_UNAVAILABLE|store/i, 'the store failure was logged')
  t.ok(redisPassword.length >= 32, 'the URL carried a password')
  t.notOk(logs.text().includes(redisPassword), 'no Redis password in the logs')
})

t.test('a command Redis refuses is logged by its name, never by its arguments', async (t) => {
  const logs = capturedLogs()
  const redis = await PrivateRedis.start(t)
  const app = await buildApp(t, { env: { LOG_LEVEL: 'trace', REDIS_URL: redis.url }, logStream: logs.stream })
  const session = await registerAndLogin(app)
  const userAgent = 'a-distinct-agent/1.0'
  const [familyKey] = await redis.command('KEYS', '*:f:*') as string[]
  const storedDigest = await redis.command('HGET', familyKey as string, 'c') as string
  t.ok(storedDigest.length >= 16, 'the family\'s stored digest, as the rotation script receives it')

  // Redis out of memory refuses every write, with the command and its arguments attached to the error by ioredis.
  await redis.fill()
  const auth = { authorization: `Bearer ${session.accessToken}` }
  const newPassword = 'a brand new passphrase 9'
  const refused = [
    await app.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': userAgent }, payload: { email: session.email, password: PASSWORD } }),
    await refresh(app, session.cookie),
    await app.inject({ method: 'POST', url: '/auth/password', headers: auth, payload: { currentPassword: PASSWORD, newPassword } }),
    await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `other-${session.email}`, password: PASSWORD } })
  ]
  t.same(refused.map((res) => res.json().code), Array(4).fill('AUTH_STORE_UNAVAILABLE'), 'each write refused: 503')
  // Deletions are taken: the sessions end, and it is their broadcast, a transaction of writes, that is refused.
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: auth })).statusCode, 204, 'signed out everywhere')
  await within(5000, async () => logs.text().includes('could not broadcast access-token revocation'), 'its broadcast refused, and logged')

  t.match(logs.text(), /"command":\{"name":"(evalsha|eval|set)"\}/, 'the failed command is named')
  t.match(logs.text(), /"previousErrors":\[\{"type":"\w+","message":"OOM [^"]*","stack":"[^"]*","command":\{"name":"zadd"\}\}/,
    'as is each command a transaction had refused')
  t.notMatch(logs.text(), /"args"/, 'without its arguments')
  const traffic = {
    email: session.email,
    'user agent': userAgent,
    'stored digest': storedDigest,
    'password hash': '$argon2id$',
    'script source': 'redis.call'
  }
  for (const [name, value] of Object.entries(traffic)) t.notOk(logs.text().includes(value), `no ${name} in the logs`)
})

t.test('an error that an array among its fields holds again is logged once there, not followed around for ever', async (t) => {
  const logs = capturedLogs()
  const app = await buildApp(t, { store: 'memory', env: { LOG_LEVEL: 'info' }, logStream: logs.stream })
  const refused = Object.assign(new Error('ERR refused'), { command: { name: 'zadd', args: ['a-key', 'an-argument-of-the-traffic'] } })
  const aborted = Object.assign(new Error('EXECABORT Transaction discarded'), { previousErrors: [refused] as Error[] })
  aborted.previousErrors.push(aborted)
  Object.assign(refused, { during: [aborted] })
  app.log.error({ err: aborted }, 'a transaction aborted')
  const [line] = logs.lines().filter((l) => l.msg === 'a transaction aborted')
  t.match(line, { err: { message: 'EXECABORT Transaction discarded', previousErrors: [{ message: 'ERR refused', command: { name: 'zadd' }, during: ['[Circular]'] }, '[Circular]'] } },
    'logged, each error where an array holds it again as [Circular]')
  t.notOk(logs.text().includes('an-argument-of-the-traffic'), 'and the refused command without its arguments')
  app.log.error({ err: Object.assign(new Error('EXECABORT again'), { previousErrors: [refused] }) }, 'another transaction aborted')
  const [again] = logs.lines().filter((l) => l.msg === 'another transaction aborted')
  t.match(again, { err: { previousErrors: [{ message: 'ERR refused', command: { name: 'zadd' } }] } }, 'an error logged before is logged whole again in another line')
})
