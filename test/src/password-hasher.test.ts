import argon2 from 'argon2'
import t from 'tap'
import { HashingBusyError } from '../../src/errors.js'
import { PasswordHasher, type Argon2Params } from '../../src/password-hasher.js'

const params = { memoryCost: 8192, timeCost: 1, parallelism: 1, maxConcurrency: 2, maxQueue: 100 }

t.test('hashes with argon2id at the configured parameters and verifies', async (t) => {
  const hasher = new PasswordHasher(params)
  const hash = await hasher.hash('correct horse battery staple')
  t.match(hash, /^\$argon2id\$v=19\$m=8192,p=1,t=1\$/)
  t.equal(await hasher.verify(hash, 'correct horse battery staple'), true)
  t.equal(await hasher.verify(hash, 'wrong'), false)
})

t.test('hashes and verifies the NFKC form of a password, so every form of it verifies', async (t) => {
  const hasher = new PasswordHasher(params)
  const hash = await hasher.hash('Ångström ﬁle 12345'.normalize('NFD'))
  t.equal(await hasher.verify(hash, 'Ångström ﬁle 12345'.normalize('NFC')), true, 'composed')
  t.equal(await hasher.verify(hash, 'Ångström file 12345'), true, 'the ligature folded')
  t.equal(await hasher.verify(hash, 'Angstrom file 12345'), false, 'not with the accents dropped')
})

t.test('without a stored hash it still does the work, and says no', async (t) => {
  const hasher = new PasswordHasher(params)
  await hasher.warmUp()
  t.equal(await hasher.verify(null, 'anything at all'), false)
})

t.test('a corrupt stored hash is a failed verification, not an exception', async (t) => {
  t.equal(await new PasswordHasher(params).verify('not-a-hash', 'x'), false)
})

t.test('needsRehash spots hashes weaker than the configured parameters would make, never stronger ones', async (t) => {
  const hasher = new PasswordHasher({ ...params, memoryCost: 8192, timeCost: 2 })
  const made = (changes: Partial<Argon2Params>) => new PasswordHasher({ ...params, memoryCost: 8192, timeCost: 2, ...changes }).hash('pw')
  t.equal(hasher.needsRehash(await hasher.hash('pw')), false, 'its own')
  t.equal(hasher.needsRehash(await made({ timeCost: 1 })), true, 'fewer passes')
  t.equal(hasher.needsRehash(await made({ memoryCost: 4096 })), true, 'less memory')
  t.equal(hasher.needsRehash(await made({ memoryCost: 16384, timeCost: 1 })), true, 'less of either, more of the other')
  t.equal(hasher.needsRehash(await made({ timeCost: 3 })), false, 'more passes: kept, as an instance still on older parameters must')
  t.equal(hasher.needsRehash(await made({ memoryCost: 16384 })), false, 'more memory: kept')
  t.equal(hasher.needsRehash(await made({ parallelism: 2 })), false, 'other parallelism: no weaker')
  t.equal(hasher.needsRehash(await argon2.hash('pw', { type: argon2.argon2i, memoryCost: 8192, timeCost: 2 })), true, 'another variant')
  t.equal(hasher.needsRehash(await argon2.hash('pw', { type: argon2.argon2id, memoryCost: 8192, timeCost: 2, version: 0x10 })), true, 'an older version of argon2 (1.0, v=16)')
  t.equal(hasher.needsRehash('not-a-hash'), false, 'nothing verifies against a corrupt hash: never rehashed from')
})

t.test('no more hashes run at once than maxConcurrency; the rest wait', async (t) => {
  const hasher = new PasswordHasher({ ...params, maxConcurrency: 2 })
  const all = Array.from({ length: 6 }, () => hasher.hash('pw'))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(hasher.pending, 4, 'four queued behind the two running')
  t.equal(hasher.running, 2, 'two running')
  await Promise.all(all)
  t.same([hasher.pending, hasher.running], [0, 0])
})

t.test('at most maxQueue hashes wait for a slot: one more, even in one burst, is refused at once', async (t) => {
  const hasher = new PasswordHasher({ ...params, maxConcurrency: 2, maxQueue: 3 })
  const burst = Array.from({ length: 7 }, () => hasher.hash('pw').then(() => 'hashed', (err: unknown) => err))
  const outcomes = await Promise.all(burst)
  t.equal(outcomes.filter((o) => o === 'hashed').length, 5, 'two slots and three waiting')
  t.ok(outcomes.slice(5).every((o) => o instanceof HashingBusyError), 'the last two: SERVICE_BUSY')
  t.equal(await hasher.verify(await hasher.hash('pw'), 'pw'), true, 'and hashing goes on once the queue has room')
})

t.test('a hash whose caller has gone is dropped before it starts, with the signal\'s reason', async (t) => {
  const hasher = new PasswordHasher({ ...params, maxConcurrency: 1 })
  const stored = await hasher.hash('pw')
  const running = hasher.hash('pw')
  const gone = new AbortController()
  const waiting = hasher.verify(stored, 'pw', gone.signal)
  const stays = hasher.verify(stored, 'pw', new AbortController().signal)
  await new Promise((resolve) => setImmediate(resolve))
  t.same([hasher.running, hasher.pending], [1, 2], 'both wait behind the running hash')
  const reason = new Error('client gone')
  gone.abort(reason)
  await t.rejects(waiting, reason, 'the one whose caller left is not computed')
  await running
  t.equal(await stays, true, 'the one whose caller stayed is')
  t.equal(hasher.dropped, 1)
})
