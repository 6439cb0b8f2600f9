import t from 'tap'
import { DeviceCookieCodec } from '../../src/device-cookie.js'
import { newUserId } from '../../src/user-directory.js'
import { respelled } from '../helpers/respelled.js'

const SECRET = 'refresh-token-test-secret-0123456789abcd'
const codec = new DeviceCookieCodec(SECRET)

t.test('a minted cookie opens to the account it was minted for, under a new device id each time', async (t) => {
  const userId = newUserId()
  const value = codec.mint(userId)
  t.match(value, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$/, 'user id, device id, tag: 128 bits each')
  const device = codec.open(value)
  t.equal(device?.userId, userId)
  t.equal(Buffer.from(device?.deviceId ?? '', 'base64url').length, 16)
  t.not(codec.open(codec.mint(userId))?.deviceId, device?.deviceId, 'every sign-in mints another device id')
  t.same(new DeviceCookieCodec(SECRET).open(value), device, 'every instance holding the secret knows it')
})

t.test('anything this service did not mint is no device', async (t) => {
  const value = codec.mint(newUserId())
  const [userId, deviceId, tag] = value.split('.') as [string, string, string]
  const flipLast = (s: string) => s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A')
  const hostile = {
    empty: '',
    garbage: 'garbage',
    'a longer value': `${value}A`,
    'a shorter value': value.slice(0, -1),
    'a trailing dot': `${value}.`,
    'another account named, the tag kept': `${newUserId()}.${deviceId}.${tag}`,
    'another device id, the tag kept': `${userId}.${flipLast(deviceId)}.${tag}`,
    'the tag altered': `${userId}.${deviceId}.${flipLast(tag)}`,
    // The tag's last character carries 4 bits no byte uses: another spelling of the same bytes, still not the cookie.
    'the tag respelled': `${userId}.${deviceId}.${respelled(tag) ?? ''}`,
    'minted under another secret': new DeviceCookieCodec('another-secret-entirely-0123456789abcdef').mint(userId)
  }
  for (const [what, forged] of Object.entries(hostile)) t.equal(codec.open(forged), null, what)
})

t.test('the refresh-token secret rotates without forgetting the browsers known under the one it replaces', async (t) => {
  const a = 'refresh-secret-a-0123456789abcdefghijklmn'
  const b = 'refresh-secret-b-0123456789abcdefghijklmn'
  const underA = new DeviceCookieCodec(a).mint(newUserId())
  t.not(new DeviceCookieCodec(b, [a]).open(underA), null, 'known while A is among the accepted secrets')
  t.equal(new DeviceCookieCodec(b).open(underA), null, 'unknown once A is retired: that browser signs in as a new one, and is given a cookie under B')
  const underB = new DeviceCookieCodec(b, [a]).mint(newUserId())
  t.not(new DeviceCookieCodec(b).open(underB), null, 'new cookies are minted under the current secret')
})
