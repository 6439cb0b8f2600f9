import t from 'tap'
import { clientKey } from '../../src/client-address.js'

t.test('an IPv4 address is its own key', async (t) => {
  t.equal(clientKey('203.0.113.7'), '203.0.113.7')
})

t.test('an IPv6 address is counted by its /64, however it is written', async (t) => {
  const key = clientKey('2001:db8:0:1::1')
  for (const ip of ['2001:db8:0:1:ffff:ffff:ffff:ffff', '2001:0DB8:0000:0001:0000:0000:0000:0002', '2001:db8::1:1:2:3:4', '2001:db8:0:1:1:2:1.2.3.4']) {
    t.equal(clientKey(ip), key, ip)
  }
  t.not(clientKey('2001:db8:0:2::1'), key, 'the next /64 is another client')
})

t.test('an IPv4-mapped IPv6 address is its IPv4 address', async (t) => {
  t.equal(clientKey('::ffff:203.0.113.7'), '203.0.113.7')
  t.equal(clientKey('::FFFF:203.0.113.7'), '203.0.113.7')
})

t.test('anything that is not an IP address is left as it is, lower-cased', async (t) => {
  t.equal(clientKey('Unknown'), 'unknown')
})
