import t from 'tap'
import { createRedisClient, tlsMismatchHint } from '../../src/redis-client.js'
import { PrivateRedis } from '../helpers/redis-server.js'

const failure = (code: string) => Object.assign(new Error(`connect ${code}`), { code })

t.test('a connection error names TLS only where the scheme and the error disagree the way a mismatch does', async (t) => {
  t.match(tlsMismatchHint('redis://:pw@host:6380', failure('ECONNRESET')), /^a port that takes only TLS resets a plaintext connection: if the server requires TLS, write rediss:\/\//,
    'plaintext reset: the port may want TLS')
  t.match(tlsMismatchHint('rediss://:pw@host:6379', failure('ETIMEDOUT')), /^a port without TLS never answers the TLS handshake: if the server takes plaintext there, write redis:\/\//,
    'TLS timed out: the port may be plaintext')
  t.equal(tlsMismatchHint('rediss://:pw@host:6380', failure('ECONNRESET')), undefined, 'a reset under TLS: no hint to write what is written')
  t.equal(tlsMismatchHint('redis://:pw@host:6379', failure('ETIMEDOUT')), undefined, 'a plaintext connect timeout: a firewall, a host down; TLS has nothing to do with it')
  t.equal(tlsMismatchHint('redis://:pw@host:6379', failure('ECONNREFUSED')), undefined, 'nothing listening: no hint')
})

t.test('a server silent for longer than the command timeout, and less than two seconds, keeps its connection', async (t) => {
  const server = await PrivateRedis.start(t)
  const redis = createRedisClient({ url: server.url, commandTimeoutMs: 100 })
  t.teardown(() => redis.disconnect())
  await redis.connect()
  let closed = 0
  redis.on('close', () => { closed += 1 })
  const stall = await server.stall(t, 1.2)
  await t.rejects(redis.get('k'), /timed out/i, 'the command sent meanwhile fails at its timeout')
  await stall.woken
  t.equal(await redis.ping(), 'PONG')
  // Four command timeouts would be 400 ms here: a busy server would cost every connection, and its commands in flight.
  t.equal(closed, 0, 'the connection is kept: it closes only after 2 s of silence, however short the timeout')
})
