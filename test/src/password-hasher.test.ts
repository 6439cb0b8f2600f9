import t from 'tap'
import { PasswordHasher } from '../../src/password-hasher.js'

const params = { memoryCost: 8192, timeCost: 1, parallelism: 1, maxConcurrency: 2 }

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

t.test('needsRehash spots hashes made with other parameters', async (t) => {
  const old = await new PasswordHasher({ ...params, timeCost: 2 }).hash('pw')
  const hasher = new PasswordHasher(params)
  t.equal(hasher.needsRehash(old), true)
  t.equal(hasher.needsRehash(await hasher.hash('pw')), false)
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
