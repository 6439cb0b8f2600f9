import t from 'tap'
import { clientAddress } from '../../src/client-address.js'

t.test('an IPv4 client seen by a dual-stack listener reads as the IPv4 address it is', async (t) => {
  t.equal(clientAddress('::ffff:203.0.113.7'), '203.0.113.7')
  t.equal(clientAddress('::FFFF:127.0.0.1'), '127.0.0.1', 'in capitals too (an X-Forwarded-For entry may be written so)')
})

t.test('every other address is kept as it is', async (t) => {
  for (const ip of ['203.0.113.7', '2001:db8::1', '::1', '::ffff:cb00:7107', '::ffff:1.2.3', '64:ff9b::203.0.113.7', '']) {
    t.equal(clientAddress(ip), ip, JSON.stringify(ip))
  }
})
