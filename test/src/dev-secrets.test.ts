import { chmodSync, chownSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { createDevSecrets, devSecretDigest, generateDevSecret, readOrCreateDevSecrets } from '../../src/dev-secrets.js'
import { matchList } from '../helpers/match-list.js'

t.test('instances reading a missing file at once create one, and all read the same secrets from it', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'dev-secrets.json')
  const read = await Promise.all(Array.from({ length: 16 }, async () => await readOrCreateDevSecrets(file)))
  t.same(new Set(read.map((secrets) => JSON.stringify(secrets))).size, 1, 'one set of secrets among the sixteen')
  t.same(JSON.parse(readFileSync(file, 'utf8')), read[0], 'the file\'s')
  t.same(readdirSync(dir), ['dev-secrets.json'], 'no draft left beside it')
  t.equal(statSync(file).mode & 0o777, 0o600)
})

t.test('an instance that found no file, creating one after another instance did, leaves the first one in place', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'dev-secrets.json')
  await createDevSecrets(file)
  const first = readFileSync(file, 'utf8')
  await createDevSecrets(file)
  t.equal(readFileSync(file, 'utf8'), first, 'the second creation changed nothing')
  t.same(readdirSync(dir), ['dev-secrets.json'], 'and left no draft')
})

t.test('an existing file is read as it is, never written again', async (t) => {
  const file = join(t.testdir(), 'dev-secrets.json')
  const kept = { 'JWT_KEYS:ES256': generateDevSecret('JWT_KEYS:ES256'), 'JWT_KEYS:EdDSA': generateDevSecret('JWT_KEYS:EdDSA'), REFRESH_TOKEN_SECRET: generateDevSecret('REFRESH_TOKEN_SECRET') }
  writeFileSync(file, JSON.stringify(kept), { mode: 0o600 })
  const before = statSync(file)
  t.same(await readOrCreateDevSecrets(file), kept)
  t.equal(statSync(file).mtimeMs, before.mtimeMs)
  t.equal(statSync(file).ino, before.ino)
})

t.test('a file someone else could read or write is refused, as ssh refuses such a private key', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'dev-secrets.json')
  await createDevSecrets(file)
  const created = JSON.parse(readFileSync(file, 'utf8'))
  for (const mode of [0o640, 0o604, 0o620, 0o602]) {
    chmodSync(file, mode)
    await t.rejects(readOrCreateDevSecrets(file), { message: `${file} is open to other users (mode ${mode.toString(8)}); chmod 600 it, or remove it to have the development secrets generated again` })
  }
  chmodSync(file, 0o600)
  t.same(await readOrCreateDevSecrets(file), created, 'read again once it is 600')
  chmodSync(file, 0o400)
  t.same(await readOrCreateDevSecrets(file), created, 'and when it is read-only for its owner')
})

t.test('a directory, or a device, is refused as what it is, not with advice to chmod or remove it', async (t) => {
  const dir = t.testdir()
  chmodSync(dir, 0o755)
  await t.rejects(readOrCreateDevSecrets(dir), { message: `${dir} is a directory: DEV_SECRETS_FILE names the file the development secrets are kept in, such as ${join(dir, '.dev-secrets.json')}` })
  await t.rejects(readOrCreateDevSecrets('/dev/null'), { message: '/dev/null is not a regular file: DEV_SECRETS_FILE names the file the development secrets are kept in' })
  t.same(readdirSync(dir), [], 'nothing written into the directory')
})

// CI runs as root, which can give a file to nobody: it stands for another user's, planted in a shared directory.
t.test('a file of another user\'s is refused, whatever its mode', { skip: process.getuid?.() === 0 ? false : 'only root can give a file away' }, async (t) => {
  const file = join(t.testdir(), 'dev-secrets.json')
  await createDevSecrets(file)
  chownSync(file, 65534, 65534)
  await t.rejects(readOrCreateDevSecrets(file), { message: `${file} belongs to another user (uid 65534); remove it to have the development secrets generated again` })
})

t.test('each generated secret is fresh: a key set of its algorithm, or 48 random bytes', async (t) => {
  matchList(t, JSON.parse(generateDevSecret('JWT_KEYS:ES256')).keys, [{ kty: 'EC', crv: 'P-256', alg: 'ES256', d: String, kid: String }], 'one ES256 key')
  matchList(t, JSON.parse(generateDevSecret('JWT_KEYS:EdDSA')).keys, [{ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', d: String, kid: String }], 'one EdDSA key')
  t.match(generateDevSecret('REFRESH_TOKEN_SECRET'), /^[A-Za-z0-9_-]{64}$/)
  t.not(generateDevSecret('REFRESH_TOKEN_SECRET'), generateDevSecret('REFRESH_TOKEN_SECRET'))
})

t.test('a digest tells secrets apart and holds nothing of them', async (t) => {
  const secret = generateDevSecret('REFRESH_TOKEN_SECRET')
  t.equal(devSecretDigest(secret), devSecretDigest(secret))
  t.not(devSecretDigest(secret), devSecretDigest(`${secret}x`))
  t.notOk(devSecretDigest(secret).includes(secret.slice(0, 8)))
  t.match(devSecretDigest(secret), /^[A-Za-z0-9_-]{43}$/, 'SHA-256, base64url')
})
