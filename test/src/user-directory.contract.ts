import type { Test } from 'tap'
import type { UserDirectory } from '../../src/user-directory.js'

export type DirectoryFactory = (t: Test) => Promise<UserDirectory>

// Stand-ins for argon2id PHC strings: the directory stores whatever hash it is given.
const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA'
const NEW_HASH = '$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2g'

let counter = 0
/** A normalised email no other case uses (directories on a shared Redis keep no per-test namespace for emails). */
function freshEmail (): string {
  return `contract-${process.pid}-${Date.now()}-${counter++}@example.com`
}

/**
 * The UserDirectory contract: every implementation (memory, Redis) must pass all of it.
 * Emails reach the directory already normalised (routes/auth/register.ts), so none of this is about case or Unicode.
 */
export function userDirectoryContract (t: Test, makeDirectory: DirectoryFactory): void {
  t.test('an account is found by its email and by its id, with the hash it was created with', async (t) => {
    const users = await makeDirectory(t)
    const email = freshEmail()
    const created = await users.create(email, HASH)
    t.ok(created, 'created')
    t.match(created?.id, /^[A-Za-z0-9_-]{22}$/, 'a 128-bit base64url id')
    t.same(created, { id: created?.id, email }, 'create answers the account without its hash')
    t.same(await users.findByEmail(email), { id: created?.id, email, passwordHash: HASH })
    t.same(await users.findById(created!.id), { id: created?.id, email, passwordHash: HASH })
  })

  t.test('an unknown email or id is null', async (t) => {
    const users = await makeDirectory(t)
    t.equal(await users.findByEmail(freshEmail()), null)
    t.equal(await users.findById('AAAAAAAAAAAAAAAAAAAAAA'), null)
  })

  t.test('a taken email is refused, and the account that holds it keeps its id and hash', async (t) => {
    const users = await makeDirectory(t)
    const email = freshEmail()
    const first = await users.create(email, HASH)
    t.equal(await users.create(email, NEW_HASH), null)
    t.same(await users.findByEmail(email), { id: first?.id, email, passwordHash: HASH })
  })

  t.test('of concurrent registrations of one email, exactly one wins and it is the account stored', async (t) => {
    const users = await makeDirectory(t)
    const email = freshEmail()
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => users.create(email, `${HASH}${i}`)))
    const winners = results.filter((r) => r !== null)
    t.equal(winners.length, 1, 'one account')
    const winner = winners[0]!
    const stored = await users.findByEmail(email)
    t.equal(stored?.id, winner.id, 'the winner is the account found by email')
    t.equal(stored?.passwordHash, `${HASH}${results.indexOf(winner)}`, 'with the winner\'s hash')
    t.same(await users.findById(winner.id), stored)
  })

  t.test('ids differ between accounts', async (t) => {
    const users = await makeDirectory(t)
    const ids = new Set<string>()
    for (let i = 0; i < 50; i++) ids.add((await users.create(freshEmail(), HASH))!.id)
    t.equal(ids.size, 50)
  })

  t.test('updatePasswordHash replaces the hash seen by both look-ups, and nothing else', async (t) => {
    const users = await makeDirectory(t)
    const email = freshEmail()
    const bystanderEmail = freshEmail()
    const account = (await users.create(email, HASH))!
    await users.create(bystanderEmail, HASH)
    t.equal(await users.updatePasswordHash(account.id, HASH, NEW_HASH), true, 'replaced')
    t.same(await users.findByEmail(email), { id: account.id, email, passwordHash: NEW_HASH })
    t.same(await users.findById(account.id), { id: account.id, email, passwordHash: NEW_HASH })
    t.equal((await users.findByEmail(bystanderEmail))?.passwordHash, HASH, 'another account is untouched')
  })

  t.test('updatePasswordHash of an unknown id creates nothing', async (t) => {
    const users = await makeDirectory(t)
    const id = 'BBBBBBBBBBBBBBBBBBBBBB'
    t.equal(await users.updatePasswordHash(id, HASH, NEW_HASH), false)
    t.equal(await users.findById(id), null)
  })

  t.test('updatePasswordHash replaces only the hash the caller names: one that changed since is kept', async (t) => {
    const users = await makeDirectory(t)
    const email = freshEmail()
    const account = (await users.create(email, HASH))!
    t.equal(await users.updatePasswordHash(account.id, HASH, NEW_HASH), true, 'the first change over HASH')
    t.equal(await users.updatePasswordHash(account.id, HASH, `${HASH}-late`), false, 'a second over HASH finds it gone')
    t.equal((await users.findById(account.id))?.passwordHash, NEW_HASH, 'and the first change stays')
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => users.updatePasswordHash(account.id, NEW_HASH, `${NEW_HASH}${i}`)))
    t.equal(results.filter(Boolean).length, 1, 'of ten at once over the same hash, exactly one replaces it')
    t.equal((await users.findById(account.id))?.passwordHash, `${NEW_HASH}${results.indexOf(true)}`, 'the winner\'s')
  })

  t.test('a deleted account is found by neither look-up, and its email is free to register again, as another account', async (t) => {
    const users = await makeDirectory(t)
    const email = freshEmail()
    const account = (await users.create(email, HASH))!
    const bystander = (await users.create(freshEmail(), HASH))!
    t.equal(await users.delete(account.id), true, 'deleted')
    t.same([await users.findByEmail(email), await users.findById(account.id)], [null, null], 'gone by email and by id')
    t.equal(await users.updatePasswordHash(account.id, HASH, NEW_HASH), false, 'its hash cannot be set')
    t.equal(await users.delete(account.id), false, 'a second deletion finds nothing')
    const again = (await users.create(email, NEW_HASH))!
    t.ok(again !== null && again.id !== account.id, 'the email registers again, under a new id')
    t.equal(await users.findById(account.id), null, 'which the old id does not reach')
    t.equal(await users.delete(account.id), false, 'nor delete: the new account stays')
    t.same(await users.findByEmail(email), { id: again.id, email, passwordHash: NEW_HASH })
    t.same(await users.findById(bystander.id), { id: bystander.id, email: bystander.email, passwordHash: HASH }, 'another account is untouched')
    t.equal(await users.delete('AAAAAAAAAAAAAAAAAAAAAA'), false, 'an unknown id: false')
  })

  t.test('a record handed out is a copy: changing it changes nothing stored', async (t) => {
    const users = await makeDirectory(t)
    const email = freshEmail()
    const account = (await users.create(email, HASH))!
    const record = (await users.findById(account.id))!
    record.passwordHash = NEW_HASH
    record.email = 'attacker@example.com'
    t.same(await users.findByEmail(email), { id: account.id, email, passwordHash: HASH })
    t.equal(await users.findByEmail('attacker@example.com'), null)
  })
}
