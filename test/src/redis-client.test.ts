import t from 'tap'
import { tlsMismatchHint } from '../../src/redis-client.js'

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
