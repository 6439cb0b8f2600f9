import t from 'tap'
import { headerFor, heapHolds } from '../helpers/heap-snapshot.js'
import { MemoryFamilyStore } from '../../src/memory-family-store.js'
import { RefreshTokenCodec } from '../../src/refresh-token.js'
import { newUserId } from '../../src/user-directory.js'
import { familyStoreContract } from './family-store.contract.js'
import { matchList } from '../helpers/match-list.js'

// The contract waits out real TTLs, a second at a time: about 20 s alone, but 84 s seen in CI beside the other files,
// close to the suite's 120 s per file. Twice that, so that a slower machine finishes it.
t.setTimeout(240_000)

t.test('MemoryFamilyStore fulfils the FamilyStore contract', async (t) => {
  familyStoreContract(t, async (t, policy) => {
    const store = new MemoryFamilyStore(policy)
    t.teardown(() => store.close())
    return store
  })
})

t.test('expired families are swept from memory without any traffic', async (t) => {
  let now = 1_000_000
  const store = new MemoryFamilyStore({ idleTtlSeconds: 10, absoluteTtlSeconds: 100, reuseGraceSeconds: 0, maxFamiliesPerUser: 100, refreshLimit: { max: 100, windowSeconds: 60 }, rememberEndedMs: 605_000 }, { now: () => now })
  t.teardown(() => store.close())
  const codec = new RefreshTokenCodec('memory-store-test-secret-0123456789abcdef')
  for (let i = 0; i < 1000; i++) {
    const token = codec.mint(newUserId())
    await store.create({ userId: token.userId, email: 'a@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: '', ip: '' })
  }
  t.equal(store.size, 1000)
  now += 9_999
  store.sweep()
  t.equal(store.size, 1000, 'nothing is dropped before its idle timeout')
  now += 2
  store.sweep()
  t.equal(store.size, 0, 'everything is dropped after it')
})

t.test('what it keeps of a request is kept without the request\'s headers: ended families, the client\'s address', async (t) => {
  const store = new MemoryFamilyStore({ idleTtlSeconds: 600, absoluteTtlSeconds: 6000, reuseGraceSeconds: 0, maxFamiliesPerUser: 100, refreshLimit: { max: 100, windowSeconds: 60 }, rememberEndedMs: 605_000 })
  t.teardown(() => store.close())
  const codec = new RefreshTokenCodec('memory-store-test-secret-0123456789abcdef')
  const ended = codec.mint(newUserId())
  const live = codec.mint(ended.userId)
  for (const token of [ended, live]) {
    await store.create({ userId: token.userId, email: 'a@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: '', ip: '' })
  }
  // As a logout does: the ids from the cookie, cut from the Cookie header.
  const cookie = `${ended.userId}.${ended.familyId}`
  let revoked: Promise<boolean> | undefined
  const cookieNeedle = headerFor(cookie, (header) => { revoked = store.revoke(header.slice(0, 22), header.slice(23, 45)) })
  t.equal(await revoked, true)
  t.same(await store.recentlyEnded(ended.userId), [ended.familyId], 'the family ended')
  t.notOk(await heapHolds(cookieNeedle), 'the Cookie header is not kept alive with the ended family')
  // As a trusted proxy's X-Forwarded-For gives the address (its last entry, cut from the header).
  const address = '203.0.113.195'
  const successor = codec.successor(live)
  let rotated: Promise<unknown> | undefined
  const forwardedNeedle = headerFor(address, (header) => {
    rotated = store.rotate({ userId: live.userId, familyId: live.familyId, generation: 0, presentedHash: codec.seal(live).digest, successorHash: codec.seal(successor).digest, requestedAtMs: Date.now(), userAgent: '', ip: header.slice(0, address.length) })
  })
  t.match(await rotated, { status: 'rotated' })
  matchList(t, await store.list(live.userId), [{ ip: address }], 'the address is recorded')
  t.notOk(await heapHolds(forwardedNeedle), 'the X-Forwarded-For header is not kept alive with the session')
})
