import t from 'tap'
import { RefreshTokenCodec } from '../../src/refresh-token.js'
import { newUserId } from '../../src/user-directory.js'
import { respelled } from '../helpers/respelled.js'

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

  // The tag's last character carries 4 bits no byte uses: changed, it spells the same bytes, and is refused all the same.
  const tag = parts[4] as string
  const respelledTag = respelled(tag) as string
  t.same(Buffer.from(respelledTag, 'base64url'), Buffer.from(tag, 'base64url'), 'the tag respelled decodes to the same bytes')
  t.equal(codec.open(swap(4, respelledTag)), null, 'and the token with it is refused: a token is accepted only as issued')
})

t.test('a generation is accepted only as issued: spelled with a leading zero, the same token is refused', async (t) => {
  const token = codec.successor(codec.successor(codec.mint(newUserId())))
  const value = codec.seal(token).value
  t.same(codec.open(value)?.token, token, 'as issued: opens')
  const parts = value.split('.')
  for (const spelling of ['02', '002', '+2', '2.0', ' 2']) {
    t.equal(codec.open(parts.map((p, i) => i === 2 ? spelling : p).join('.')), null, `generation spelled ${JSON.stringify(spelling)}`)
  }
})

t.test('a successor is derived with a key of its own: nothing of it is in the cookie or the store of its parent', async (t) => {
  const token = codec.mint(newUserId())
  const { value, digest } = codec.seal(token)
  const tag = Buffer.from(value.slice(value.lastIndexOf('.') + 1), 'base64url')
  const next = Buffer.from(codec.successor(token).secret, 'base64url')
  for (const [name, bytes] of [['tag', tag], ['stored digest', Buffer.from(digest, 'base64url')]] as const) {
    // Any 4 bytes in a row: among random bytes a chance match here is about one in 6.7 million.
    const shared = Array.from({ length: bytes.length - 3 }, (_, i) => i).filter((i) => next.includes(bytes.subarray(i, i + 4)))
    t.same(shared, [], `no 4 bytes of the ${name} in the successor's secret`)
  }
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

t.test('the secret rotates without signing anyone out: a family stays under the secret it began under', async (t) => {
  const a = 'refresh-secret-a-0123456789abcdefghijklmn'
  const b = 'refresh-secret-b-0123456789abcdefghijklmn'
  // The three steps of a rotation (README), and the fleet before it.
  const before = new RefreshTokenCodec(a)
  const acceptNext = new RefreshTokenCodec(a, [b])
  const switched = new RefreshTokenCodec(b, [a])
  const retired = new RefreshTokenCodec(b)

  const underA = before.seal(before.mint(newUserId()))
  const underB = switched.seal(switched.mint(newUserId()))
  t.not(acceptNext.open(underB.value), null, 'step 1 accepts the sessions step 2 begins')
  t.equal(before.open(underB.value), null, 'which an instance that does not yet know B refuses: hence step 1')
  t.not(switched.open(underA.value), null, 'step 2 accepts the sessions begun before it')

  for (const [name, sealed, codecs] of [
    ['a session begun under A', underA, [before, acceptNext, switched]],
    ['a session begun under B', underB, [acceptNext, switched, retired]]
  ] as const) {
    const successors = codecs.map((codec) => {
      const opened = codec.open(sealed.value)
      if (opened === null) throw new Error(`${name} did not open`)
      t.equal(opened.digest, sealed.digest, `${name}: every instance finds the digest the store holds`)
      return codec.seal(codec.successor(opened.token))
    })
    t.equal(new Set(successors.map((s) => s.value)).size, 1, `${name}: every instance derives the same successor, whichever secret it mints with`)
    t.equal(new Set(successors.map((s) => s.digest)).size, 1, `${name}: and the same digest, so two tabs on two instances share one successor`)
  }

  t.equal(retired.open(underA.value), null, 'retiring A ends the sessions still under it')
  t.equal(retired.open(retired.seal(retired.successor(switched.open(underB.value)!.token)).value)?.token.keyIndex, 0, 'sessions under B go on')
  t.equal(new RefreshTokenCodec(b, [a]).open(underA.value)?.token.keyIndex, 1, 'a session under an accepted secret is known as such')
})
