import t from 'tap'
import { buildApp, capturedLogs, PASSWORD, uniqueEmail } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { freePort, PrivateCluster, PrivateRedis } from '../helpers/redis-server.js'
import { startServiceOverHttp } from '../helpers/server-process.js'
import { tcpLink } from '../helpers/tcp-link.js'
import { makeCertificates } from '../helpers/tls.js'
import { matchList } from '../helpers/match-list.js'

// REDIS_URL=rediss://… as managed Redis offerings require it: TLS with the server's certificate verified against
// the trusted CAs, which for a private CA is Node's own NODE_EXTRA_CA_CERTS. Each service is its own process,
// since Node reads NODE_EXTRA_CA_CERTS once at start.

t.test('Redis over TLS (rediss://)', async (t) => {
  const certs = await makeCertificates(t)
  const tlsPort = await freePort()
  // The plain port stays open for the test's own checks; the services are given only the TLS one.
  const redis = await PrivateRedis.start(t, { args: ['--tls-port', String(tlsPort), '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no'] })
  const rediss = (host: string) => `rediss://:${redis.password}@${host}:${tlsPort}`

  t.test('with the CA trusted, the service keeps its sessions in Redis over TLS', async (t) => {
    const { call } = await startServiceOverHttp(t, { REDIS_URL: rediss('localhost'), NODE_EXTRA_CA_CERTS: certs.ca })
    t.equal((await call('/health/ready')).status, 200, 'ready')
    const email = uniqueEmail()
    t.equal((await call('/auth/register', { email, password: PASSWORD })).status, 201)
    const login = await call('/auth/login', { email, password: PASSWORD })
    t.equal(login.status, 200)
    const refreshed = await call('/auth/refresh', undefined, login.cookie)
    t.equal(refreshed.status, 200, 'refresh rotates through the TLS connection')
    t.ok(Number(await redis.command('DBSIZE')) > 0, 'the session is in this Redis')
  })

  t.test('a certificate from an untrusted CA is refused: 503, never a fall-back to plaintext', async (t) => {
    const { call, output } = await startServiceOverHttp(t, { REDIS_URL: rediss('localhost') })
    t.equal((await call('/health/ready')).status, 503, 'not ready')
    t.equal((await call('/auth/register', { email: uniqueEmail(), password: PASSWORD })).status, 503, 'store routes fail closed')
    t.match(output(), /certificate/i, 'the certificate error is logged')
    t.notOk(output().includes(redis.password), 'without the Redis password')
  })

  t.test('a certificate for another name is refused', async (t) => {
    const { call, output } = await startServiceOverHttp(t, { REDIS_URL: rediss('127.0.0.1'), NODE_EXTRA_CA_CERTS: certs.ca })
    t.equal((await call('/health/ready')).status, 503, 'the certificate names localhost, not 127.0.0.1')
    t.match(output(), /altnames|does not match|ERR_TLS_CERT_ALTNAME_INVALID/i)
  })

  // The two errors say nothing of TLS themselves (ECONNRESET, ETIMEDOUT): the log line says what they suggest.
  t.test('the scheme and the port disagree about TLS: 503, and the log says which scheme the port may want', async (t) => {
    for (const [url, code, hint] of [
      [`redis://:${redis.password}@127.0.0.1:${tlsPort}`, 'ECONNRESET', /^a port that takes only TLS resets a plaintext connection: if the server requires TLS, write rediss:\/\/ in REDIS_URL$/],
      [`rediss://:${redis.password}@localhost:${redis.port}`, 'ETIMEDOUT', /^a port without TLS never answers the TLS handshake: if the server takes plaintext there, write redis:\/\/ in REDIS_URL$/]
    ] as const) {
      const logs = capturedLogs()
      const app = await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: url }, logStream: logs.stream })
      t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, `${code}: not ready`)
      const errors = () => logs.lines().filter((l) => l.msg === 'redis connection error')
      await within(3000, async () => errors().length > 0, 'the connection error logged')
      matchList(t, errors(), [{ err: { code }, hint }], `${code}: with the hint`)
      t.notOk(logs.text().includes(redis.password), 'without the password')
    }

    // A reset under rediss:// is not the port refusing plaintext: no hint to write what is written.
    const link = await tcpLink(t, tlsPort)
    const reset = link.cutAt(() => true, { reset: true })
    const logs = capturedLogs()
    await buildApp(t, { env: { LOG_LEVEL: 'info', REDIS_URL: `rediss://:${redis.password}@localhost:${link.port}` }, logStream: logs.stream })
    const resets = () => logs.lines().filter((l) => l.msg === 'redis connection error' && (l.err as { code?: string }).code === 'ECONNRESET')
    await within(3000, async () => resets().length > 0, 'the reset logged')
    t.ok(reset(), 'the TLS handshake was reset')
    t.equal(resets().filter((l) => 'hint' in l).length, 0, 'ECONNRESET under rediss://: no hint')
  })
})

t.test('a Redis Cluster over TLS: every node reached by the name it announces, its certificate checked', async (t) => {
  const certs = await makeCertificates(t)
  const cluster = await PrivateCluster.start(t, { tls: certs })
  const env = { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList }

  const trusted = await startServiceOverHttp(t, { ...env, NODE_EXTRA_CA_CERTS: certs.ca })
  t.equal((await trusted.call('/health/ready')).status, 200, 'ready')
  const sessions = []
  for (let i = 0; i < 6; i++) {
    const email = uniqueEmail()
    t.equal((await trusted.call('/auth/register', { email, password: PASSWORD })).status, 201)
    const login = await trusted.call('/auth/login', { email, password: PASSWORD })
    t.equal(login.status, 200)
    sessions.push(login.cookie)
  }
  for (const cookie of sessions) t.equal((await trusted.call('/auth/refresh', undefined, cookie)).status, 200, 'refresh rotates over TLS')
  const sizes = await Promise.all(cluster.nodes.map(async (n) => Number(await n.command('DBSIZE'))))
  t.ok(sizes.filter((size) => size > 0).length >= 2, `on more than one node: ${sizes.join(', ')}`)

  const untrusted = await startServiceOverHttp(t, env)
  t.equal((await untrusted.call('/health/ready')).status, 503, 'without the CA: not ready')
  t.equal((await untrusted.call('/auth/register', { email: uniqueEmail(), password: PASSWORD })).status, 503, 'and store routes fail closed')
  t.notOk(untrusted.output().includes(cluster.password), 'no password in its logs')
})
