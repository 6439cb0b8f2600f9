import t from 'tap'
import { clientAddress, countedAddress, MAX_ADDRESS_LENGTH } from '../../src/client-address.js'

t.test('an IPv4 client seen by a dual-stack listener reads as the IPv4 address it is', async (t) => {
  t.equal(clientAddress('::ffff:203.0.113.7'), '203.0.113.7')
  t.equal(clientAddress('::FFFF:127.0.0.1'), '127.0.0.1', 'in capitals too (an X-Forwarded-For entry may be written so)')
})

t.test('every other address is kept as it is', async (t) => {
  for (const ip of ['203.0.113.7', '2001:db8::1', '::1', '::ffff:cb00:7107', '::ffff:1.2.3', '64:ff9b::203.0.113.7',
    // Ends as a mapped address does, and is another host: only ::ffff:0:0/96 is IPv4.
    '2001:db8::ffff:203.0.113.7', '']) {
    t.equal(clientAddress(ip), ip, JSON.stringify(ip))
  }
})

t.test('what a trusted proxy names a client by and is no address is kept as a user agent is: printable ASCII, bounded', async (t) => {
  t.equal(clientAddress('unknown'), 'unknown', 'Squid\'s')
  t.equal(clientAddress('_gazonk'), '_gazonk', 'an obfuscated identifier (RFC 7239 §6.3)')
  t.equal(clientAddress('x'.repeat(MAX_ADDRESS_LENGTH)), 'x'.repeat(MAX_ADDRESS_LENGTH), `${MAX_ADDRESS_LENGTH} characters as they are`)
  t.equal(clientAddress('x'.repeat(16_000)), 'x'.repeat(MAX_ADDRESS_LENGTH), 'a client\'s own 16 kB cut')
  t.equal(clientAddress('caf\u00e9\tbar'), 'caf??bar', 'a header\'s bytes outside printable ASCII (obs-text, a tab) as ?')
  t.equal(clientAddress(undefined), '', 'and no address at all, as Fastify reads one from the socket of a client that has hung up')
})

t.test('a client is counted by its address, an IPv6 one by its /64, a name as it is kept', async (t) => {
  t.equal(countedAddress('::ffff:203.0.113.7'), '203.0.113.7')
  t.equal(countedAddress('2001:db8:1:2:3:4:5:6'), countedAddress('2001:db8:1:2:ffff::1'), 'one /64 is one client')
  t.not(countedAddress('2001:db8:1:2::1'), countedAddress('2001:db8:1:3::1'), 'another /64 another')
  t.equal(countedAddress('UNKNOWN'), 'unknown')
  t.equal(countedAddress('Y'.repeat(16_000)), 'y'.repeat(MAX_ADDRESS_LENGTH))
})

t.test('a port a proxy wrote beside the address is not part of it: each connection of a client is that one client', async (t) => {
  t.equal(clientAddress('203.0.113.7:51234'), '203.0.113.7', 'Azure Application Gateway\'s IP:port')
  t.equal(clientAddress('[2001:db8::1]:51234'), '2001:db8::1', 'an IPv6 address in brackets, with a port')
  t.equal(clientAddress('[2001:db8::1]'), '2001:db8::1', 'and without one')
  t.equal(clientAddress('[::ffff:203.0.113.7]:443'), '203.0.113.7', 'a mapped one as IPv4')
  t.equal(clientAddress('2001:db8::1:443'), '2001:db8::1:443', 'an IPv6 address without brackets has no port to take: its last group stays')
  t.equal(countedAddress('203.0.113.7:51234'), countedAddress('203.0.113.7:51235'), 'two connections, one client to count')
  t.equal(countedAddress('[2001:db8:1:2::1]:1'), countedAddress('2001:db8:1:2::2'), 'and an IPv6 one by its /64')
})
