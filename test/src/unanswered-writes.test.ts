import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { UnansweredWrites } from '../../src/unanswered-writes.js'
import { LocalAccessRevocations } from '../../src/access-revocations.js'
import { StoreUnavailableError } from '../../src/errors.js'
import type { CreateFamilyInput } from '../../src/family-store.js'
import { MemoryFamilyStore } from '../../src/memory-family-store.js'
import { RevocationList } from '../../src/revocation-list.js'
import { newUserId } from '../../src/user-directory.js'
import { wallClockOff } from '../helpers/wall-clock.js'
import { matchList } from '../helpers/match-list.js'

const policy = { idleTtlSeconds: 600, absoluteTtlSeconds: 3600, reuseGraceSeconds: 10, maxFamiliesPerUser: 10, refreshLimit: { max: 60, windowSeconds: 60 }, rememberEndedMs: 605_000 }
const RETRY_MS = 25

/** The memory store, able to be out (every call fails as an unanswered Redis command does) and to apply writes late. */
class UnreliableStore extends MemoryFamilyStore {
  out = false
  revokes = 0
  constructor (override readonly lateWritesMs: number = 0) { super(policy) }

  override async revoke (userId: string, familyId: string): Promise<boolean> {
    this.revokes++
    if (this.out) throw new StoreUnavailableError()
    return await super.revoke(userId, familyId)
  }

  /** Reads of what ended begun, and how long each takes to answer after it has read. */
  reads = 0
  readAnsweredAfterMs = 0

  override async recentlyEnded (userId: string): Promise<string[]> {
    this.reads++
    if (this.out) throw new StoreUnavailableError()
    const ended = await super.recentlyEnded(userId)
    await sleep(this.readAnsweredAfterMs)
    return ended
  }

  /** A create the caller was not answered, which the store runs `afterMs` later. */
  createLate (input: CreateFamilyInput, afterMs: number): Promise<void> {
    return sleep(afterMs).then(async () => { await super.create(input) })
  }
}

function family (userId = newUserId()): CreateFamilyInput {
  return { userId, email: 'someone@example.com', familyId: randomUUID(), tokenHash: 'h', userAgent: 'test-agent', ip: '192.0.2.1' }
}

/** Follow-ups on a store whose late writes settle after `lateWritesMs`, holding two families of one user. */
async function twoFamiliesOfOneUser (t: Test, lateWritesMs: number) {
  const store = new UnreliableStore(lateWritesMs)
  const followUps = followUpsOn(t, store)
  const first = family()
  const families = [first, family(first.userId)] as const
  for (const f of families) await store.create(f)
  return { store, ...followUps, families }
}

function logs () {
  const lines: Array<{ level: 'info' | 'warn', obj: object, msg: string }> = []
  return {
    lines,
    info: (obj: object, msg: string) => { lines.push({ level: 'info', obj, msg }) },
    warn: (obj: object, msg: string) => { lines.push({ level: 'warn', obj, msg }) }
  }
}

function followUpsOn (t: Test, store: UnreliableStore, options: { max?: number } = {}) {
  const log = logs()
  const revocations = new LocalAccessRevocations(new RevocationList(), 60_000)
  const writes = new UnansweredWrites(store, revocations, { log, retryMs: RETRY_MS, ...options })
  t.teardown(async () => {
    store.out = false
    await writes.close()
    await store.close()
    await revocations.close()
  })
  return { writes, log, revocations }
}

/** Waits a few retry intervals: the store is asked nothing in them. */
async function askedNothingMore (t: Test, store: UnreliableStore, what: string): Promise<void> {
  const revokes = store.revokes
  await sleep(RETRY_MS * 4)
  t.equal(store.revokes, revokes, what)
}

async function until (condition: () => boolean | Promise<boolean>, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await condition()) return true
    await sleep(5)
  }
  return false
}

t.test('a family whose create was answered is ended at once, and nothing is left to retry', async (t) => {
  const store = new UnreliableStore()
  const { writes } = followUpsOn(t, store)
  const f = family()
  await store.create(f)
  await writes.endFamily(f.userId, f.familyId, true)
  t.notOk(await store.isLive(f.userId, f.familyId), 'ended')
  t.equal(writes.size, 0, 'nothing pending')
  t.equal(store.revokes, 1, 'one revoke')
})

t.test('a family whose create went unanswered is ended again once a late create can no longer run: the late create does not outlive it', async (t) => {
  const LATE_WRITES_MS = 1000
  const store = new UnreliableStore(LATE_WRITES_MS)
  const { writes } = followUpsOn(t, store)
  const f = family()
  // The store runs the create after the first end (a cluster client resending it after a redirection, say).
  const ranLate = store.createLate(f, 100)
  await writes.endFamily(f.userId, f.familyId, false)
  t.equal(store.revokes, 1, 'ended once at once')
  await ranLate
  t.ok(await store.isLive(f.userId, f.familyId), 'the late create made the family after that first end')
  t.equal(writes.size, 1, 'so it is still pending')
  t.ok(await until(() => writes.size === 0), 'until the late writes are settled and it is ended again')
  t.notOk(await store.isLive(f.userId, f.familyId), 'the family the late create made is gone')
})

t.test('a step of the wall clock does not settle late writes early: the late create still does not outlive its end', async (t) => {
  const LATE_WRITES_MS = 1000
  const store = new UnreliableStore(LATE_WRITES_MS)
  const { writes } = followUpsOn(t, store)
  const wall = wallClockOff(t, 0)
  const f = family()
  const ranLate = store.createLate(f, 100)
  await writes.endFamily(f.userId, f.familyId, false)
  wall.set(30_000) // NTP steps this host's clock 30 s forward
  await ranLate
  t.ok(await store.isLive(f.userId, f.familyId), 'the late create made the family after the first end')
  t.equal(writes.size, 1, 'still pending: its late writes are not settled, whatever the wall clock says')
  t.ok(await until(() => writes.size === 0), 'until they are, and it is ended again')
  t.notOk(await store.isLive(f.userId, f.familyId), 'the family the late create made is gone')
})

t.test('a store that cannot take the revoke now is asked again until it does', async (t) => {
  const store = new UnreliableStore()
  const { writes, log } = followUpsOn(t, store)
  const f = family()
  await store.create(f)
  store.out = true
  await writes.endFamily(f.userId, f.familyId, true)
  t.ok(await store.isLive(f.userId, f.familyId), 'the store was out: the family is still there')
  t.ok(await until(() => store.revokes >= 3), 'asked again every retry interval while out')
  t.equal(writes.size, 1, 'and still pending')
  store.out = false
  t.ok(await until(() => writes.size === 0), 'back: taken')
  t.notOk(await store.isLive(f.userId, f.familyId), 'the family is gone')
  matchList(t, log.lines.filter((l) => l.level === 'info'), [{ obj: { count: 1 }, msg: 'settled store writes that were not answered' }], 'and the logs say so')
  await askedNothingMore(t, store, 'nothing is asked once nothing is pending')
})

t.test('past its bound the oldest follow-up is dropped, with one warning', async (t) => {
  const store = new UnreliableStore()
  const { writes, log } = followUpsOn(t, store, { max: 2 })
  store.out = true
  const families = [family(), family(), family(), family()]
  for (const f of families) await writes.endFamily(f.userId, f.familyId, true)
  t.equal(writes.size, 2, 'two remembered')
  const warnings = log.lines.filter((l) => l.level === 'warn')
  t.equal(warnings.length, 1, 'the third made room by letting the first go, the fourth the second: one warning')
  matchList(t, warnings, [{ obj: { max: 2 } }], 'naming the bound')
  for (const f of families) await store.create(f)
  store.out = false
  t.ok(await until(() => writes.size === 0), 'back: the two remembered are ended')
  t.same(await Promise.all(families.map(async (f) => await store.isLive(f.userId, f.familyId))), [true, true, false, false], 'the first two are left to their idle timeout')
})

t.test('a follow-up asked for again goes last: past the bound, the oldest other one is dropped', async (t) => {
  const store = new UnreliableStore()
  const { writes } = followUpsOn(t, store, { max: 3 })
  store.out = true
  const families = [family(), family(), family(), family()]
  // The first, the second, the first again, the third, the fourth.
  for (const f of [0, 1, 0, 2, 3].map((i) => families[i] as CreateFamilyInput)) await writes.endFamily(f.userId, f.familyId, true)
  for (const f of families) await store.create(f)
  store.out = false
  t.ok(await until(() => writes.size === 0), 'back: the three remembered are ended')
  t.same(await Promise.all(families.map(async (f) => await store.isLive(f.userId, f.familyId))), [false, true, false, false],
    'the first, asked for again after the second, is kept; the second is dropped')
})

t.test('the bound hit again, once every follow-up has been done, is said again', async (t) => {
  const store = new UnreliableStore()
  const { writes, log } = followUpsOn(t, store, { max: 1 })
  const overflow = async () => {
    store.out = true
    for (const f of [family(), family()]) await writes.endFamily(f.userId, f.familyId, true)
    store.out = false
    t.ok(await until(() => writes.size === 0), 'back: the one remembered is done')
  }
  await overflow()
  await overflow()
  t.equal(log.lines.filter((l) => l.level === 'warn').length, 2, 'one warning each time')
})

t.test('on close, a last try at every pending family, its late writes settled or not', async (t) => {
  const store = new UnreliableStore(60_000)
  const log = logs()
  const writes = new UnansweredWrites(store, new LocalAccessRevocations(new RevocationList(), 60_000), { log, retryMs: RETRY_MS })
  t.teardown(() => store.close())
  const [settled, unsettled, unreachable] = [family(), family(), family()]
  await writes.endFamily(settled.userId, settled.familyId, true)
  await writes.endFamily(unsettled.userId, unsettled.familyId, false)
  t.equal(writes.size, 1, 'the unsettled one waits for its late writes')
  store.out = true
  await writes.endFamily(unreachable.userId, unreachable.familyId, true)
  for (const f of [unsettled, unreachable]) await store.create(f)
  store.out = false
  await writes.close()
  t.notOk(await store.isLive(unsettled.userId, unsettled.familyId), 'the unsettled family is ended on close')
  t.notOk(await store.isLive(unreachable.userId, unreachable.familyId), 'and the one the store could not take before')
  t.equal(writes.size, 0, 'nothing left')
  t.same(log.lines.filter((l) => l.level === 'warn'), [], 'no warning: nothing was left behind')
})

t.test('on close with the store out, what is left is logged', async (t) => {
  const store = new UnreliableStore()
  const log = logs()
  const writes = new UnansweredWrites(store, new LocalAccessRevocations(new RevocationList(), 60_000), { log, retryMs: RETRY_MS })
  t.teardown(() => store.close())
  store.out = true
  const f = family()
  await writes.endFamily(f.userId, f.familyId, true)
  await writes.close()
  matchList(t, log.lines.filter((l) => l.level === 'warn'), [{ obj: { count: 1 }, msg: 'store writes that were not answered left unsettled at shutdown' }], 'what is left is logged')
  await askedNothingMore(t, store, 'and nothing is retried after close')
})

t.test('after close, a family is tried once and not remembered', async (t) => {
  const store = new UnreliableStore()
  const { writes } = followUpsOn(t, store)
  await writes.close()
  const [taken, refused] = [family(), family()]
  await store.create(taken)
  await writes.endFamily(taken.userId, taken.familyId, false)
  t.notOk(await store.isLive(taken.userId, taken.familyId), 'a store still answering takes it')
  store.out = true
  await writes.endFamily(refused.userId, refused.familyId, true)
  t.equal(writes.size, 0, 'nothing remembered')
  await askedNothingMore(t, store, 'nor retried')
})

t.test('the access tokens of what an unanswered write ended are revoked once it can no longer run late', async (t) => {
  const { store, writes, revocations, families: [ended, kept] } = await twoFamiliesOfOneUser(t, 1000)
  // A revoke the caller was not answered, which the store runs later.
  writes.revokeEnded(ended.userId)
  await sleep(100)
  await store.revoke(ended.userId, ended.familyId)
  t.notOk(revocations.isRevoked(ended.familyId), 'not before its late writes have settled')
  t.ok(await until(() => revocations.isRevoked(ended.familyId)), 'then the family it ended has its access tokens revoked')
  t.notOk(revocations.isRevoked(kept.familyId), 'and only that one')
  t.equal(writes.size, 0, 'done')
})

t.test('a follow-up asked for again while its older one is under way stays, and is done in its turn', async (t) => {
  const { store, writes, revocations, families: [first, second] } = await twoFamiliesOfOneUser(t, 300)
  store.readAnsweredAfterMs = 300
  await store.revoke(first.userId, first.familyId)
  writes.revokeEnded(first.userId)
  t.ok(await until(() => store.reads === 1), 'the follow-up of the first unanswered write reads what ended')
  // A second unanswered write of the user, which lands while that read is under way.
  writes.revokeEnded(first.userId)
  await store.revoke(second.userId, second.familyId)
  t.ok(await until(() => revocations.isRevoked(first.familyId)), 'the first follow-up revokes what it read')
  t.notOk(revocations.isRevoked(second.familyId), 'which the second write had not ended yet')
  t.ok(await until(() => revocations.isRevoked(second.familyId)), 'the second follow-up, kept, revokes what that write ended')
  t.equal(writes.size, 0, 'done')
})

t.test('a store that cannot say what ended is asked again until it does', async (t) => {
  const store = new UnreliableStore()
  const { writes, revocations } = followUpsOn(t, store)
  const f = family()
  await store.create(f)
  await store.revoke(f.userId, f.familyId)
  store.out = true
  writes.revokeEnded(f.userId)
  await sleep(RETRY_MS * 4)
  t.notOk(revocations.isRevoked(f.familyId), 'not while the store is out')
  t.equal(writes.size, 1, 'still pending')
  store.out = false
  t.ok(await until(() => revocations.isRevoked(f.familyId)), 'back: revoked')
})

t.test('a shutdown with thousands pending and the store stalled takes about a second, not a command timeout per batch', async (t) => {
  /** Every revoke answered only after 400 ms: a store that stalls. */
  class StalledStore extends UnreliableStore {
    override async revoke (userId: string, familyId: string): Promise<boolean> {
      await sleep(400)
      return await super.revoke(userId, familyId)
    }
  }
  const store = new StalledStore(60_000)
  const log = logs()
  const writes = new UnansweredWrites(store, new LocalAccessRevocations(new RevocationList(), 60_000), { log, retryMs: 60_000 })
  t.teardown(() => store.close())
  const families = Array.from({ length: 2000 }, () => family())
  for (const f of families) writes.endFamily(f.userId, f.familyId, false).catch(() => {})
  const started = performance.now()
  await writes.close()
  const ms = performance.now() - started
  t.ok(ms < 4000, `closed in ${ms.toFixed(0)} ms: 20 batches of 400 ms would take 8 s`)
  t.ok(writes.size > 0 && writes.size < families.length, `the budget's batches were ended (${families.length - writes.size}), the rest (${writes.size}) left`)
  matchList(t, log.lines.filter((l) => l.level === 'warn'), [{ obj: { count: writes.size } }], 'and counted in the warning')
})
