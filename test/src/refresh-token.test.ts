import t from 'tap'
import { RefreshTokenCodec } from '../../src/refresh-token.js'
import { newUserId } from '../../src/user-directory.js'

const codec = new RefreshTokenCodec('refresh-token-test-secret-0123456789abcd')

t.test('a minted token round-trips and carries 256 bits of CSPRNG secret', async (t) => {
  const token = codec.mint(newUserId())
  t.equal(Buffer.from(token.secret, 'base64url').length, 32)
  t.same((codec.open(codec.seal(token).value)?.token ?? null), token)
  t.not(codec.mint(token.userId).secret, token.secret, 'every mint is fresh')
})

t.test('the successor is deterministic: every instance with the same key derives the same one', async (t) => {
  const token = codec.mint(newUserId())
  const other = new RefreshTokenCodec('refresh-token-test-secret-0123456789abcd')
  t.same(codec.successor(token), other.successor(token))
  t.equal(codec.successor(token).generation, 1)
  t.not(codec.successor(token).secret, token.secret)
  t.notSame(new RefreshTokenCodec('another-secret-entirely-0123456789abcdef').successor(token), codec.successor(token), 'another key, another chain')
})

t.test('parse rejects anything not minted with this key', async (t) => {
  const token = codec.seal(codec.mint(newUserId())).value
  const parts = token.split('.')
  const swap = (i: number, value: string) => parts.map((p, j) => j === i ? value : p).join('.')
  const flipLast = (s: string) => s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A')
  const hostile = [
    undefined, '', 'garbage', token + '.', token.slice(0, -1), token + 'A', `${'a'.repeat(200)}`,
    swap(2, '1'), swap(2, '01'), swap(2, '-1'), swap(3, flipLast(parts[3] as string)), swap(4, flipLast(parts[4] as string)),
    swap(0, newUserId()), swap(1, 'AAAAAAAAAAAAAAAAAAAAAA'),
    new RefreshTokenCodec('another-secret-entirely-0123456789abcdef').seal(codec.open(token)!.token).value
  ]
  for (const value of hostile) t.equal((codec.open(value)?.token ?? null), null, String(value).slice(0, 40))
})

t.test('the digest kept by the store is not in the cookie, and depends on the key', async (t) => {
  const token = codec.mint(newUserId())
  const { digest, value } = codec.seal(token)
  t.match(digest, /^[A-Za-z0-9_-]{16}$/, '96 bits, base64url')
  const bytes = Buffer.from(digest, 'base64url')
  t.equal(bytes.length, 12)
  for (const encoding of ['base64url', 'base64', 'hex', 'latin1'] as const) {
    t.notOk(value.includes(bytes.toString(encoding)), `not in the cookie (${encoding})`)
  }
  t.same(codec.seal(token).digest, digest, 'stable')
  t.notSame(new RefreshTokenCodec('another-secret-entirely-0123456789abcdef').seal(token).digest, digest, 'keyed')
})
