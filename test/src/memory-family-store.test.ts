import t from 'tap'
import { MemoryFamilyStore } from '../../src/memory-family-store.js'
import { RefreshTokenCodec } from '../../src/refresh-token.js'
import { newUserId } from '../../src/user-directory.js'
import { familyStoreContract } from './family-store.contract.js'

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
