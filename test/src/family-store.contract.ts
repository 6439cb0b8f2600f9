import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { clampUserAgent, SUPERSEDED_TIMES_KEPT, type FamilyPolicy, type FamilyStore, type RotateInput } from '../../src/family-store.js'
import { newUserId } from '../../src/user-directory.js'
import { RefreshTokenCodec, type RefreshToken } from '../../src/refresh-token.js'

export type StoreFactory = (t: Test, policy: FamilyPolicy) => Promise<FamilyStore>

const codec = new RefreshTokenCodec('contract-suite-secret-0123456789abcdef')
const meta = { userAgent: 'Mozilla/5.0 (contract)', ip: '203.0.113.7' }
const basePolicy: FamilyPolicy = { idleTtlSeconds: 60, absoluteTtlSeconds: 600, reuseGraceSeconds: 10, maxFamiliesPerUser: 100, refreshLimit: { max: 1000, windowSeconds: 60 }, rememberEndedMs: 605_000 }

/** A family in the store, and helpers to present its tokens. */
async function newFamily (store: FamilyStore, userId = newUserId(), replacing?: string[]) {
  const first = codec.mint(userId)
  const created = await store.create({ userId, email: 'user@example.com', familyId: first.familyId, tokenHash: codec.seal(first).digest, ...meta, replacing })
  return { first, userId, created }
}

/** The token `n` rotations after `first`. */
function generation (first: RefreshToken, n: number): RefreshToken {
  let token = first
  for (let i = 0; i < n; i++) token = codec.successor(token)
  return token
}

/** A request presenting `token`, made now by the store's clock, as the session service makes it. */
function rotateInput (store: FamilyStore, token: RefreshToken, overrides: Partial<RotateInput> = {}): RotateInput {
  return {
    userId: token.userId,
    familyId: token.familyId,
    generation: token.generation,
    presentedHash: codec.seal(token).digest,
    successorHash: codec.seal(codec.successor(token)).digest,
    requestedAtMs: store.now(),
    ...meta,
    ...overrides
  }
}

/**
 * A store that keeps three families per user, one of its users, and helpers: `created` makes one of the user's
 * families a few ms after the one before (so the least recently used is one family, not a tie), `listed` lists them.
 */
async function cappedAtThree (t: Test, makeStore: StoreFactory) {
  const store = await makeStore(t, { ...basePolicy, maxFamiliesPerUser: 3 })
  const userId = newUserId()
  const created = async (replacing?: string[]) => {
    const family = await newFamily(store, userId, replacing)
    await sleep(5)
    return family
  }
  const listed = async () => (await store.list(userId)).map((f) => f.familyId).sort()
  return { store, userId, created, listed }
}

/**
 * The FamilyStore contract: every implementation (memory, Redis) must pass all of it.
 * Time-dependent cases use second-scale TTLs, the smallest unit the configuration has.
 */
export function familyStoreContract (t: Test, makeStore: StoreFactory): void {
  t.test('create answers the cookie lifetime: min(idle, absolute)', async (t) => {
    const store = await makeStore(t, { ...basePolicy, idleTtlSeconds: 60, absoluteTtlSeconds: 30 })
    const { created } = await newFamily(store)
    t.equal(created.ttlSeconds, 30)
    t.same(created.evictedFamilyIds, [])
    const idleBound = await makeStore(t, basePolicy)
    t.equal((await newFamily(idleBound)).created.ttlSeconds, 60)
  })

  t.test('the current token rotates, and its successor becomes current', async (t) => {
    const store = await makeStore(t, basePolicy)
    const { first } = await newFamily(store)
    const r1 = await store.rotate(rotateInput(store, first))
    t.match(r1, { status: 'rotated', ttlSeconds: 60, email: 'user@example.com' })
    const second = codec.successor(first)
    t.match(await store.rotate(rotateInput(store, second)), { status: 'rotated' })
    t.match(await store.rotate(rotateInput(store, codec.successor(second))), { status: 'rotated' }, 'and so on down the chain')
  })

  t.test('the parent presented again within the grace window gets grace, without changing state', async (t) => {
    const store = await makeStore(t, basePolicy)
    const { first } = await newFamily(store)
    await store.rotate(rotateInput(store, first))
    t.match(await store.rotate(rotateInput(store, first)), { status: 'grace', email: 'user@example.com' })
    t.match(await store.rotate(rotateInput(store, first)), { status: 'grace' }, 'as often as it comes within the window')
    t.match(await store.rotate(rotateInput(store, codec.successor(first))), { status: 'rotated' }, 'the successor is still current')
  })

  t.test('20 concurrent rotations of one token: one rotates, the others get grace on the same successor', async (t) => {
    const store = await makeStore(t, basePolicy)
    const { first } = await newFamily(store)
    const results = await Promise.all(Array.from({ length: 20 }, () => store.rotate(rotateInput(store, first))))
    t.equal(results.filter((r) => r.status === 'rotated').length, 1)
    t.equal(results.filter((r) => r.status === 'grace').length, 19)
    t.match(await store.rotate(rotateInput(store, codec.successor(first))), { status: 'rotated' })
  })

  t.test('with grace 0 (strict), the parent presented again is reuse and revokes the family', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 0 })
    const { first } = await newFamily(store)
    await store.rotate(rotateInput(store, first))
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' })
    t.same(await store.rotate(rotateInput(store, codec.successor(first))), { status: 'invalid' }, 'the current token died with its family')
  })

  // A browser's tabs refreshing at once through instances behind a load balancer: one request of the first token
  // reaches its instance after another tab, which already held the successor, has rotated that too.
  t.test('an older token superseded within the grace window, in a request made after the latest rotation: superseded, the family kept', async (t) => {
    const store = await makeStore(t, basePolicy)
    const { first } = await newFamily(store)
    const second = codec.successor(first)
    const third = codec.successor(second)
    await store.rotate(rotateInput(store, first))
    await store.rotate(rotateInput(store, second))
    t.same(await store.rotate(rotateInput(store, first)), { status: 'superseded' }, 'the grandparent')
    await store.rotate(rotateInput(store, third))
    t.same(await store.rotate(rotateInput(store, first)), { status: 'superseded' }, 'and its parent, rotations later, all within the window of the first')
    t.match(await store.rotate(rotateInput(store, codec.successor(third))), { status: 'rotated' }, 'the family lives on')
  })

  t.test('an older token superseded before the grace window began is reuse and revokes the family', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 1 })
    const { first, userId } = await newFamily(store)
    const second = codec.successor(first)
    await store.rotate(rotateInput(store, first))
    await sleep(1100)
    // Rotations since, each within the window of the one before: the first token's own window has closed.
    await store.rotate(rotateInput(store, second))
    await store.rotate(rotateInput(store, codec.successor(second)))
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' }, 'the great-grandparent, superseded over a second ago')
    t.same(await store.rotate(rotateInput(store, codec.successor(codec.successor(second)))), { status: 'invalid' }, 'the current token died with its family')
    t.same(await store.list(userId), [], 'gone from the listing')
  })

  t.test('the grandparent, superseded within the grace window, is reuse once the window has passed', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 1 })
    const { first } = await newFamily(store)
    const second = codec.successor(first)
    await store.rotate(rotateInput(store, first))
    await store.rotate(rotateInput(store, second))
    await sleep(1100)
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' })
    t.same(await store.rotate(rotateInput(store, codec.successor(second))), { status: 'invalid' })
  })

  t.test('with grace 0 (strict), the grandparent is reuse and revokes the family', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 0 })
    const { first } = await newFamily(store)
    const second = codec.successor(first)
    await store.rotate(rotateInput(store, first))
    await store.rotate(rotateInput(store, second))
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' })
  })

  t.test('a superseded token in a request made before the latest rotation is a late attempt, not a replay: superseded, the family kept', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 1 })
    const { first } = await newFamily(store)
    const second = codec.successor(first)
    // The request of a refresh that was answered 503 while its command waited in the store client, which sent it
    // once the store was back, after the client had refreshed twice.
    const late = rotateInput(store, first)
    await sleep(5)
    await store.rotate(rotateInput(store, first))
    await store.rotate(rotateInput(store, second))
    t.same(await store.rotate(late), { status: 'superseded' }, 'the grandparent, asked for before those rotations')
    t.match(await store.rotate(rotateInput(store, codec.successor(second))), { status: 'rotated' }, 'the family lives on')
    await sleep(1100)
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' }, 'the same token in a request made now, past the grace window, is a replay: the family is revoked')
  })

  // Told apart by when it was asked, not by the window: a command the store client retried past a failover that took
  // longer than the window is still the request its client made before refreshing on.
  t.test('a late attempt asked for before the latest rotation is superseded even once every grace window has passed', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 1 })
    const { first } = await newFamily(store)
    const second = codec.successor(first)
    const late = rotateInput(store, first)
    await sleep(5)
    await store.rotate(rotateInput(store, first))
    await sleep(1100)
    // A rotation outside the window of the one before: no run of rotations covers the first token any longer.
    await store.rotate(rotateInput(store, second))
    t.same(await store.rotate(late), { status: 'superseded' }, 'the first token, asked for before that rotation')
    t.match(await store.rotate(rotateInput(store, codec.successor(second))), { status: 'rotated' }, 'the family lives on')
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' }, 'the same token asked for now is a replay')
  })

  // Rotations each within the window of the one before (tabs refreshing on and on) do not stretch it: a token has
  // the window from when it was superseded, however recent the latest rotation.
  t.test('a run of rotations does not stretch the window: a token it superseded at its start is reuse once that has passed', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 1 })
    const { first } = await newFamily(store)
    const second = codec.successor(first)
    const third = codec.successor(second)
    await store.rotate(rotateInput(store, first))
    await sleep(600)
    await store.rotate(rotateInput(store, second))
    await sleep(600)
    await store.rotate(rotateInput(store, third))
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' }, 'superseded 1.2 s ago, the latest rotation just now')
    t.same(await store.rotate(rotateInput(store, codec.successor(third))), { status: 'invalid' }, 'the family is revoked')
  })

  // Nor does a long run shorten it: a client refreshing every few seconds for longer than the window, beside a tab
  // whose request of a token superseded a moment ago reaches its instance late.
  t.test('in a run of rotations longer than the window, a token superseded within the window is superseded, the family kept', async (t) => {
    // A window of 2 s and rotations 500 ms apart: the answers below hold with the machine stalled for up to 1 s.
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 2 })
    const { first } = await newFamily(store)
    for (let i = 0; i < 6; i++) {
      if (i > 0) await sleep(500)
      await store.rotate(rotateInput(store, generation(first, i)))
    }
    // Generation 6 is current; 5 the parent; 4 superseded 500 ms ago, by the rotation before the latest.
    t.same(await store.rotate(rotateInput(store, generation(first, 4))), { status: 'superseded' }, 'superseded one rotation before the latest, 2.5 s into the run')
    t.same(await store.rotate(rotateInput(store, generation(first, 3))), { status: 'superseded' }, 'and two before it')
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' }, 'the first, superseded 2.5 s ago, is reuse')
    t.same(await store.rotate(rotateInput(store, generation(first, 6))), { status: 'invalid' }, 'the family is revoked')
  })

  // The window of each token ends on its own, not at the next rotation.
  t.test('between rotations, a token superseded within the window is superseded while the run began longer ago', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 2 })
    const { first } = await newFamily(store)
    const second = codec.successor(first)
    const third = codec.successor(second)
    await store.rotate(rotateInput(store, first))
    await sleep(1500)
    await store.rotate(rotateInput(store, second))
    await store.rotate(rotateInput(store, third))
    await sleep(600)
    // 2.1 s after the run began; the second token was superseded 600 ms ago (up to 1.4 s of stall to spare).
    t.same(await store.rotate(rotateInput(store, second)), { status: 'superseded' }, 'the grandparent, superseded 600 ms ago')
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' }, 'the token the run began with, 2.1 s ago')
  })

  t.test(`a family keeps the time of at most ${SUPERSEDED_TIMES_KEPT} superseded tokens besides the parent: older ones in the window are reuse`, async (t) => {
    const store = await makeStore(t, basePolicy)
    const { first } = await newFamily(store)
    for (let i = 0; i < SUPERSEDED_TIMES_KEPT + 2; i++) await store.rotate(rotateInput(store, generation(first, i)))
    // Current: SUPERSEDED_TIMES_KEPT + 2; the parent, SUPERSEDED_TIMES_KEPT + 1; kept before it, 1 to SUPERSEDED_TIMES_KEPT.
    t.same(await store.rotate(rotateInput(store, generation(first, 1))), { status: 'superseded' }, 'the oldest kept')
    t.same(await store.rotate(rotateInput(store, generation(first, SUPERSEDED_TIMES_KEPT))), { status: 'superseded' }, 'the latest kept')
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' }, 'one more back: let go, so taken for reuse')
  })

  t.test('a run of rotations that ended leaves nothing to the next: tokens of a later run get its window', async (t) => {
    // A window of 2 s: the answers below hold with the machine stalled for up to 2 s between two steps.
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 2 })
    const { first } = await newFamily(store)
    const second = codec.successor(first)
    const third = codec.successor(second)
    const fourth = codec.successor(third)
    await store.rotate(rotateInput(store, first))
    await store.rotate(rotateInput(store, second))
    await sleep(2100)
    await store.rotate(rotateInput(store, third))
    await store.rotate(rotateInput(store, fourth))
    t.same(await store.rotate(rotateInput(store, third)), { status: 'superseded' }, 'superseded in the run begun just now, not in the one before')
    t.match(await store.rotate(rotateInput(store, codec.successor(fourth))), { status: 'rotated' }, 'the family lives on')
  })

  t.test('the parent after the grace window is reuse and revokes the family', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 1 })
    const { first } = await newFamily(store)
    await store.rotate(rotateInput(store, first))
    await sleep(1100)
    t.same(await store.rotate(rotateInput(store, first)), { status: 'reused' })
    t.same(await store.rotate(rotateInput(store, codec.successor(first))), { status: 'invalid' })
  })

  t.test('a hash that does not match the current generation is invalid and changes nothing', async (t) => {
    const store = await makeStore(t, basePolicy)
    const { first } = await newFamily(store)
    const impostor = { ...first, secret: codec.mint(first.userId).secret }
    t.same(await store.rotate(rotateInput(store, impostor)), { status: 'invalid' })
    t.match(await store.rotate(rotateInput(store, first)), { status: 'rotated' }, 'the genuine token still works')
  })

  t.test('a genuine token of a later generation than the store holds (writes the store lost) is taken as current', async (t) => {
    const store = await makeStore(t, basePolicy)
    const { first } = await newFamily(store)
    // What a failover to a replica that missed two rotations leaves: the client holds generation 2, the store 0.
    const ahead = codec.successor(codec.successor(first))
    t.match(await store.rotate(rotateInput(store, ahead)), { status: 'rotated', email: 'user@example.com' }, 'the session survives the loss')
    t.match(await store.rotate(rotateInput(store, codec.successor(ahead))), { status: 'rotated' }, 'and its chain goes on from it')
    t.match(await store.rotate(rotateInput(store, first)), { status: 'reused' }, 'the token the store had held is an old one now')
  })

  t.test('after a token ahead of the store, the tokens the store lost count as superseded when it had last rotated', async (t) => {
    const store = await makeStore(t, basePolicy)
    const { first } = await newFamily(store)
    await store.rotate(rotateInput(store, first))
    // The store holds generation 1; a failover lost the rotations to 2 and 3, and a client presents 3.
    t.match(await store.rotate(rotateInput(store, generation(first, 3))), { status: 'rotated' })
    t.same(await store.rotate(rotateInput(store, generation(first, 2))), { status: 'superseded' }, 'a tab still holding 2, which the store never held')
    t.same(await store.rotate(rotateInput(store, generation(first, 1))), { status: 'superseded' }, 'and 1, the token the store had held')
    t.same(await store.rotate(rotateInput(store, first)), { status: 'superseded' }, 'and 0, superseded by its rotation a moment before')
    t.match(await store.rotate(rotateInput(store, generation(first, 4))), { status: 'rotated' }, 'the family lives on')
  })

  t.test('a token of one family never affects another family', async (t) => {
    const store = await makeStore(t, basePolicy)
    const a = await newFamily(store)
    const b = await newFamily(store, a.userId)
    // A's genuine current token, aimed at B's family (same generation): no match, no effect.
    t.same(await store.rotate(rotateInput(store, a.first, { familyId: b.first.familyId })), { status: 'invalid' })
    await store.rotate(rotateInput(store, a.first))
    await store.rotate(rotateInput(store, b.first))
    // A's current generation-1 token aimed at B, now also at generation 1.
    t.same(await store.rotate(rotateInput(store, codec.successor(a.first), { familyId: b.first.familyId })), { status: 'invalid' })
    t.match(await store.rotate(rotateInput(store, codec.successor(b.first))), { status: 'rotated' }, 'B still rotates')
    t.match(await store.rotate(rotateInput(store, codec.successor(a.first))), { status: 'rotated' }, 'A still rotates')
  })

  t.test('refreshes per session are limited per window, then allowed again', async (t) => {
    const store = await makeStore(t, { ...basePolicy, refreshLimit: { max: 3, windowSeconds: 1 } })
    let { first: token } = await newFamily(store)
    for (let i = 0; i < 3; i++) {
      t.match(await store.rotate(rotateInput(store, token)), { status: 'rotated' }, `refresh ${i + 1} of 3`)
      token = codec.successor(token)
    }
    const limited = await store.rotate(rotateInput(store, token))
    t.match(limited, { status: 'limited', retryAfterSeconds: 1 })
    t.match(await store.rotate(rotateInput(store, codec.successor(token))), { status: 'limited' }, 'nothing rotated while limited')
    const other = await newFamily(store)
    t.match(await store.rotate(rotateInput(store, other.first)), { status: 'rotated' }, 'other sessions are not affected')
    await sleep(1050)
    t.match(await store.rotate(rotateInput(store, token)), { status: 'rotated' }, 'the window passes, the same token works')
  })

  t.test('a family is live from its creation until it ends: revoked, reused, or each user\'s alone', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 0 })
    const a = await newFamily(store)
    t.equal(await store.isLive(a.userId, a.first.familyId), true, 'live once created')
    t.equal(await store.isLive(newUserId(), a.first.familyId), false, 'not under another user\'s id')
    t.equal(await store.isLive(a.userId, codec.mint(a.userId).familyId), false, 'an unknown family is not live')
    t.match(await store.rotate(rotateInput(store, a.first)), { status: 'rotated' })
    t.equal(await store.isLive(a.userId, a.first.familyId), true, 'still live after a rotation')
    t.same(await store.rotate(rotateInput(store, a.first)), { status: 'reused' })
    t.equal(await store.isLive(a.userId, a.first.familyId), false, 'not once reuse revoked it')
    const b = await newFamily(store, a.userId)
    await store.revoke(a.userId, b.first.familyId)
    t.equal(await store.isLive(a.userId, b.first.familyId), false, 'not once revoked')
    const c = await newFamily(store, a.userId)
    const d = await newFamily(store, a.userId)
    await store.revokeOthers(a.userId, d.first.familyId)
    t.same([await store.isLive(a.userId, c.first.familyId), await store.isLive(a.userId, d.first.familyId)], [false, true], 'revokeOthers ends all but the one kept')
  })

  t.test('an unknown family is invalid', async (t) => {
    const store = await makeStore(t, basePolicy)
    t.same(await store.rotate(rotateInput(store, codec.mint(newUserId()))), { status: 'invalid' })
  })

  t.test('a family unused for the idle timeout expires', async (t) => {
    const store = await makeStore(t, { ...basePolicy, idleTtlSeconds: 1, reuseGraceSeconds: 0 })
    const { first, userId } = await newFamily(store)
    await sleep(1200)
    t.equal(await store.isLive(userId, first.familyId), false, 'no longer live')
    t.same(await store.rotate(rotateInput(store, first)), { status: 'invalid' })
    t.same(await store.list(userId), [])
  })

  t.test('the idle timeout slides on every refresh', async (t) => {
    // Rotations 1.6 s apart against a 3 s idle timeout: 4.8 s in all, so the family lives on only because each one
    // slides it. 1.4 s to spare for a loaded machine: with 1.1 s against 2 s, a CI run once found the Redis store's
    // family gone at the first rotation, though the whole case took 3.4 s.
    const store = await makeStore(t, { ...basePolicy, idleTtlSeconds: 3, reuseGraceSeconds: 0 })
    let { first: token } = await newFamily(store)
    for (let i = 0; i < 3; i++) {
      await sleep(1600)
      t.match(await store.rotate(rotateInput(store, token)), { status: 'rotated' }, `still alive ${((i + 1) * 1.6).toFixed(1)}s after login`)
      token = codec.successor(token)
    }
  })

  t.test('the absolute lifetime never moves, however often the family is used', async (t) => {
    const store = await makeStore(t, { ...basePolicy, idleTtlSeconds: 60, absoluteTtlSeconds: 2, reuseGraceSeconds: 0 })
    // The absolute expiry is kept to the whole second, rounded down (family-create.lua; the memory store alike): a
    // family begun late in a second ends up to a second early, never late. Begun as a second starts, this one has
    // its 2 s, and the 1 s below falls inside them whatever the clock's phase (CI once began it at the end of one).
    // A busy machine can wake the test late in the second all the same (CI once did): it then starts over at the next.
    let token: RefreshToken | undefined
    for (let attempt = 0; token === undefined || Date.now() % 1000 > 250; attempt++) {
      if (attempt === 10) throw new Error('could not begin a family early in a second in 10 tries')
      await sleep(1000 - (Date.now() % 1000))
      token = (await newFamily(store)).first
    }
    await sleep(1000)
    const r = await store.rotate(rotateInput(store, token))
    t.match(r, { status: 'rotated' })
    t.ok(r.status === 'rotated' && r.ttlSeconds <= 1, 'the cookie lifetime shrinks to what is left')
    token = codec.successor(token)
    await sleep(1100)
    t.equal(await store.isLive(token.userId, token.familyId), false, 'no longer live, though used within its idle timeout')
    t.same(await store.rotate(rotateInput(store, token)), { status: 'invalid' })
  })

  t.test('revoke ends one family; revoking again reports it was not live', async (t) => {
    const store = await makeStore(t, basePolicy)
    const a = await newFamily(store)
    const b = await newFamily(store, a.userId)
    t.equal(await store.revoke(a.userId, a.first.familyId), true)
    t.equal(await store.revoke(a.userId, a.first.familyId), false)
    t.same(await store.rotate(rotateInput(store, a.first)), { status: 'invalid' })
    t.match(await store.rotate(rotateInput(store, b.first)), { status: 'rotated' }, 'the other family is untouched')
  })

  t.test('replace ends a family; for the grace window a refresh of it is superseded (its cookie kept), then invalid', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 1 })
    const a = await newFamily(store)
    const b = await newFamily(store, a.userId)
    await store.rotate(rotateInput(store, a.first))
    const current = codec.successor(a.first)
    t.equal(await store.replace(a.userId, a.first.familyId), true, 'it was live')
    t.same(await store.rotate(rotateInput(store, current)), { status: 'superseded' }, 'a refresh sent before the new login\'s cookie arrived')
    t.same(await store.rotate(rotateInput(store, a.first)), { status: 'superseded' }, 'with any genuine token of the family: nothing is revoked as reuse')
    t.same((await store.list(a.userId)).map((s) => s.familyId), [b.first.familyId], 'no longer listed')
    t.equal(await store.isLive(a.userId, a.first.familyId), false, 'no longer live')
    t.ok((await store.recentlyEnded(a.userId)).includes(a.first.familyId), 'remembered as ended')
    t.equal(await store.replace(a.userId, a.first.familyId), false, 'replacing it again finds it ended')
    t.equal(await store.revoke(a.userId, a.first.familyId), false, 'so does revoking it')
    t.equal(await store.revokeOthers(a.userId, a.first.familyId), null, 'its holder ends no other session')
    t.same(await store.rotate(rotateInput(store, current)), { status: 'superseded' }, 'and none of that cut the window short')
    t.match(await store.rotate(rotateInput(store, b.first)), { status: 'rotated' }, 'the other family is untouched')
    await sleep(1100)
    t.same(await store.rotate(rotateInput(store, current)), { status: 'invalid' }, 'after the window, the token is just invalid')
    t.equal(await store.replace(a.userId, codec.mint(a.userId).familyId), false, 'an unknown family was not live')
    t.same(await store.rotate(rotateInput(store, codec.mint(a.userId))), { status: 'invalid' }, 'and replacing it marked nothing')
  })

  t.test('with grace 0 (strict), a replaced family is invalid at once', async (t) => {
    const store = await makeStore(t, { ...basePolicy, reuseGraceSeconds: 0 })
    const { first, userId } = await newFamily(store)
    t.equal(await store.replace(userId, first.familyId), true)
    t.same(await store.rotate(rotateInput(store, first)), { status: 'invalid' })
  })

  t.test('revokeAll ends every family of the user and only theirs', async (t) => {
    const store = await makeStore(t, basePolicy)
    const a = await newFamily(store)
    const b = await newFamily(store, a.userId)
    const other = await newFamily(store)
    t.same((await store.revokeAll(a.userId)).sort(), [a.first.familyId, b.first.familyId].sort())
    t.same(await store.rotate(rotateInput(store, a.first)), { status: 'invalid' })
    t.same(await store.rotate(rotateInput(store, b.first)), { status: 'invalid' })
    t.match(await store.rotate(rotateInput(store, other.first)), { status: 'rotated' })
    t.same(await store.revokeAll(a.userId), [])
  })

  t.test('revokeOthers ends every family of the user but one (the caller\'s own)', async (t) => {
    const store = await makeStore(t, basePolicy)
    const a = await newFamily(store)
    const b = await newFamily(store, a.userId)
    const c = await newFamily(store, a.userId)
    const other = await newFamily(store)
    t.same((await store.revokeOthers(a.userId, b.first.familyId))?.sort(), [a.first.familyId, c.first.familyId].sort())
    t.match(await store.rotate(rotateInput(store, b.first)), { status: 'rotated' }, 'the kept family still rotates')
    t.same((await store.list(a.userId)).map((s) => s.familyId), [b.first.familyId])
    t.same(await store.rotate(rotateInput(store, a.first)), { status: 'invalid' })
    t.match(await store.rotate(rotateInput(store, other.first)), { status: 'rotated' }, 'another user\'s family is untouched')
    t.same(await store.revokeOthers(a.userId, b.first.familyId), [], 'nothing left to end')
  })

  t.test('revokeOthers ends nothing once the family to keep has ended: its holder no longer speaks for the account', async (t) => {
    const store = await makeStore(t, basePolicy)
    const a = await newFamily(store)
    const b = await newFamily(store, a.userId)
    // Two holders, each ending the others' sessions at once: the first to get there wins, the other ends nothing.
    t.same(await store.revokeOthers(a.userId, a.first.familyId), [b.first.familyId])
    t.equal(await store.revokeOthers(a.userId, b.first.familyId), null, 'the ended family\'s holder ends nothing')
    t.equal(await store.isLive(a.userId, a.first.familyId), true, 'the first holder\'s family lives')
    t.equal(await store.revokeOthers(a.userId, codec.mint(a.userId).familyId), null, 'nor does an unknown family\'s')
    t.equal(await store.isLive(a.userId, a.first.familyId), true)
  })

  t.test('list shows live families, most recently used first, with their client', async (t) => {
    const store = await makeStore(t, basePolicy)
    const a = await newFamily(store)
    await sleep(5)
    const b = await newFamily(store, a.userId)
    await sleep(5)
    await store.rotate(rotateInput(store, a.first, { userAgent: 'later-agent', ip: '198.51.100.1' }))
    const sessions = await store.list(a.userId)
    t.equal(sessions.length, 2)
    t.match(sessions[0], { familyId: a.first.familyId, userAgent: 'later-agent', ip: '198.51.100.1' })
    t.match(sessions[1], { familyId: b.first.familyId, userAgent: meta.userAgent, ip: meta.ip })
    const [s] = sessions
    t.ok(s !== undefined && s.createdAtMs <= s.lastUsedAtMs && s.lastUsedAtMs < s.expiresAtMs, 'created ≤ last used < expires')
  })

  t.test('list shows each client\'s user agent as it was sent, whatever its length, after every rotation', async (t) => {
    const store = await makeStore(t, basePolicy)
    const a = await newFamily(store)
    const browser = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0'
    const unknown = clampUserAgent(`custom-load-tester/1.0 ${'k'.repeat(200)}`)
    let token = a.first
    for (const userAgent of [unknown, browser, 'curl/8.5.0', unknown, '']) {
      t.match(await store.rotate(rotateInput(store, token, { userAgent, ip: meta.ip })), { status: 'rotated' })
      token = codec.successor(token)
      t.equal((await store.list(a.userId))[0]?.userAgent, userAgent, `after a rotation by ${JSON.stringify(userAgent.slice(0, 24))}`)
    }
  })

  t.test('live families per user are capped, evicting the least recently used', async (t) => {
    const store = await makeStore(t, { ...basePolicy, maxFamiliesPerUser: 3 })
    const userId = newUserId()
    const families = []
    for (let i = 0; i < 3; i++) {
      families.push((await newFamily(store, userId)).first)
      await sleep(5)
    }
    // Using the oldest makes the second the least recently used.
    await store.rotate(rotateInput(store, families[0] as RefreshToken))
    await sleep(5)
    const fourth = await newFamily(store, userId)
    t.same(fourth.created.evictedFamilyIds, [(families[1] as RefreshToken).familyId])
    t.equal((await store.list(userId)).length, 3)
    t.same(await store.rotate(rotateInput(store, families[1] as RefreshToken)), { status: 'invalid' }, 'the evicted family no longer refreshes')
  })

  t.test('at the cap, a sign-in in the same millisecond as the one before still evicts it: no user is left over the cap', async (t) => {
    const store = await makeStore(t, { ...basePolicy, maxFamiliesPerUser: 1 })
    const users = Array.from({ length: 50 }, () => newUserId())
    // Two sign-ins of each user at once: sent together, most pairs land in one millisecond, tied as least recently used.
    const evictions = await Promise.all(users.map(async (userId) => {
      const pair = await Promise.all([newFamily(store, userId), newFamily(store, userId)])
      return pair.flatMap((family) => family.created.evictedFamilyIds).length
    }))
    t.same(evictions, users.map(() => 1), 'one of each user\'s two sign-ins evicted the other')
    t.same(await Promise.all(users.map(async (userId) => (await store.list(userId)).length)), users.map(() => 1), 'one session each')
  })

  t.test('at the cap, families a new one replaces make room for it: no other family is evicted, nor are they', async (t) => {
    const { store, userId, created, listed } = await cappedAtThree(t, makeStore)
    const [oldest, middle, newest] = [await created(), await created(), await created()]
    const ids = (families: Array<{ first: RefreshToken }>) => families.map((f) => f.first.familyId).sort()

    const replacingNewest = await created([newest.first.familyId, newest.first.familyId])
    t.same(replacingNewest.created.evictedFamilyIds, [], 'replacing one, named twice: nothing evicted')
    t.same(await listed(), ids([oldest, middle, newest, replacingNewest]), 'the replaced family is left for the caller to end')
    await store.replace(userId, newest.first.familyId)

    const replacingOldest = await created([oldest.first.familyId])
    t.same(replacingOldest.created.evictedFamilyIds, [], 'replacing the least recently used: it is not evicted, nor another for it')
    await store.replace(userId, oldest.first.familyId)
    t.same(await listed(), ids([middle, replacingNewest, replacingOldest]))

    const another = await newFamily(store)
    const notLive = await created([oldest.first.familyId, another.first.familyId, codec.mint(userId).familyId])
    t.same(notLive.created.evictedFamilyIds, [middle.first.familyId], 'ids of ended, unknown or other users\' families make no room: the least recently used is evicted')
    t.same(await listed(), ids([replacingNewest, replacingOldest, notLive]))
    t.equal((await store.list(another.userId)).length, 1, 'and the other user\'s family is untouched')
  })

  t.test('at the cap, two sign-ins at once replacing the same family leave the user at the cap, not over it', async (t) => {
    const { store, userId, created, listed } = await cappedAtThree(t, makeStore)
    const [oldest, middle, newest] = [await created(), await created(), await created()]

    // A form submitted twice by a browser holding `newest`: both sign-ins name it; the caller of each ends it after.
    const [first, second] = await Promise.all([created([newest.first.familyId]), created([newest.first.familyId])])
    t.same([...first.created.evictedFamilyIds, ...second.created.evictedFamilyIds], [oldest.first.familyId],
      'one of the two takes its place; the other evicts the least recently used, as any sign-in at the cap does')
    await store.replace(userId, newest.first.familyId)
    t.same(await listed(), [middle, first, second].map((f) => f.first.familyId).sort(), 'three live families: the cap')

    // Again, and the second sign-in is refused once its family is made: the first still replaces `first`.
    const [again, refused] = await Promise.all([created([first.first.familyId]), created([first.first.familyId])])
    await store.revoke(userId, refused.first.familyId)
    const elsewhere = await created()
    t.same([...again.created.evictedFamilyIds, ...refused.created.evictedFamilyIds], [middle.first.familyId], 'one evicts, as before')
    t.same(elsewhere.created.evictedFamilyIds, [], 'and a sign-in meanwhile on another device counts `first` as going: it evicts none')
    await store.replace(userId, first.first.familyId)
    t.same(await listed(), [second, again, elsewhere].map((f) => f.first.familyId).sort(), 'three live families: the cap')
  })

  t.test('at the cap, two sign-ins at once from two browsers, each replacing its own family, evict no third', async (t) => {
    const { store, userId, created, listed } = await cappedAtThree(t, makeStore)
    // The least recently used is the third device's, which neither browser holds.
    const [third, laptop, phone] = [await created(), await created(), await created()]

    const [onLaptop, onPhone] = await Promise.all([created([laptop.first.familyId]), created([phone.first.familyId])])
    t.same([...onLaptop.created.evictedFamilyIds, ...onPhone.created.evictedFamilyIds], [], 'each makes its own room: the family the other replaces is going too')
    await store.replace(userId, laptop.first.familyId)
    await store.replace(userId, phone.first.familyId)
    t.same(await listed(), [third, onLaptop, onPhone].map((f) => f.first.familyId).sort(), 'the third device is still signed in, and the user at the cap')

    // A sign-in that is refused once its family is made (a password change came first) ends that family, and the one
    // it named is not going after all: it counts again.
    const refused = await created([onLaptop.first.familyId])
    await store.revoke(userId, refused.first.familyId)
    const elsewhere = await created()
    t.same(elsewhere.created.evictedFamilyIds, [third.first.familyId], 'a sign-in at the cap evicts the least recently used')
    t.same(await listed(), [onLaptop, onPhone, elsewhere].map((f) => f.first.familyId).sort())
  })

  t.test('the families a store ends are remembered as ended, however they end, and only the user\'s own', async (t) => {
    const store = await makeStore(t, { ...basePolicy, maxFamiliesPerUser: 4, reuseGraceSeconds: 0 })
    const userId = newUserId()
    const [revoked, reused, evicted, kept, other] = [
      await newFamily(store, userId), await newFamily(store, userId), await newFamily(store, userId), await newFamily(store, userId), await newFamily(store)
    ]
    t.same(await store.recentlyEnded(userId), [], 'nothing has ended yet')
    await store.revoke(userId, revoked.first.familyId)
    await store.rotate(rotateInput(store, reused.first))
    t.match(await store.rotate(rotateInput(store, reused.first)), { status: 'reused' })
    await store.rotate(rotateInput(store, kept.first))
    await sleep(5)
    const newest = await newFamily(store, userId)
    await newFamily(store, userId)
    t.same((await newFamily(store, userId)).created.evictedFamilyIds, [evicted.first.familyId], 'the least recently used is evicted')
    t.same((await store.recentlyEnded(userId)).sort(), [revoked.first.familyId, reused.first.familyId, evicted.first.familyId].sort(),
      'revoked, reused and evicted')
    await store.revoke(userId, revoked.first.familyId)
    t.equal((await store.recentlyEnded(userId)).length, 3, 'a family revoked twice is one entry')
    t.same(await store.recentlyEnded(other.userId), [], 'another user\'s list is their own')

    const everyone = await store.revokeOthers(userId, newest.first.familyId)
    t.ok(everyone !== null && everyone.length > 0, 'revokeOthers ended the rest')
    t.same((await store.recentlyEnded(userId)).sort(), [revoked, reused, evicted].map((f) => f.first.familyId).concat(everyone ?? []).sort(), 'and they are remembered too')
    const last = await store.revokeAll(userId)
    t.same(last, [newest.first.familyId])
    t.ok((await store.recentlyEnded(userId)).includes(newest.first.familyId), 'as is what revokeAll ends')
  })

  t.test('ended families are forgotten once their access tokens are dead', async (t) => {
    const store = await makeStore(t, { ...basePolicy, rememberEndedMs: 1000 })
    const first = await newFamily(store)
    await store.revoke(first.userId, first.first.familyId)
    await sleep(600)
    const second = await newFamily(store, first.userId)
    await store.revoke(first.userId, second.first.familyId)
    t.equal((await store.recentlyEnded(first.userId)).length, 2, 'both remembered within the time')
    await sleep(600)
    const third = await newFamily(store, first.userId)
    await store.revoke(first.userId, third.first.familyId)
    t.same((await store.recentlyEnded(first.userId)).sort(), [second.first.familyId, third.first.familyId].sort(), 'the first, ended over a second ago, forgotten')
  })

  // Ended families are remembered for 3 s here, and each step comes 1.6 s after the one before: every answer below
  // holds with the machine stalled for up to 1.4 s.
  t.test('ended families are forgotten as revokeOthers and revokeAll end more', async (t) => {
    const store = await makeStore(t, { ...basePolicy, rememberEndedMs: 3000 })
    const userId = newUserId()
    const [early, mid, kept, other] = [await newFamily(store, userId), await newFamily(store, userId), await newFamily(store, userId), await newFamily(store, userId)]
    await store.revoke(userId, early.first.familyId)
    await sleep(1600)
    await store.revoke(userId, mid.first.familyId)
    await sleep(1600)
    t.same(await store.revokeOthers(userId, kept.first.familyId), [other.first.familyId])
    t.same((await store.recentlyEnded(userId)).sort(), [mid.first.familyId, other.first.familyId].sort(),
      'revokeOthers: the family ended over 3 s ago forgotten')
    await sleep(1600)
    t.same(await store.revokeAll(userId), [kept.first.familyId])
    t.same((await store.recentlyEnded(userId)).sort(), [other.first.familyId, kept.first.familyId].sort(),
      'revokeAll: so is the next, and what revokeOthers ended is still remembered')
  })

  t.test('ended families are forgotten as evictions at the cap end more', async (t) => {
    const store = await makeStore(t, { ...basePolicy, maxFamiliesPerUser: 1, rememberEndedMs: 3000 })
    const userId = newUserId()
    const first = await newFamily(store, userId)
    const second = await newFamily(store, userId)
    t.same(second.created.evictedFamilyIds, [first.first.familyId], 'the cap evicts the one before')
    await sleep(1600)
    const third = await newFamily(store, userId)
    await sleep(1600)
    const fourth = await newFamily(store, userId)
    t.same(fourth.created.evictedFamilyIds, [third.first.familyId])
    t.same((await store.recentlyEnded(userId)).sort(), [second.first.familyId, third.first.familyId].sort(),
      'the family evicted over 3 s ago forgotten')
  })
}
