import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { AbandonedFamilies } from '../../src/abandoned-families.js'
import { StoreUnavailableError } from '../../src/errors.js'
import type { CreateFamilyInput } from '../../src/family-store.js'
import { MemoryFamilyStore } from '../../src/memory-family-store.js'
import { newUserId } from '../../src/user-directory.js'

const policy = { idleTtlSeconds: 600, absoluteTtlSeconds: 3600, reuseGraceSeconds: 10, maxFamiliesPerUser: 10, refreshLimit: { max: 60, windowSeconds: 60 } }
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

  /** A create the caller was not answered, which the store runs `afterMs` later. */
  createLate (input: CreateFamilyInput, afterMs: number): Promise<void> {
    return sleep(afterMs).then(async () => { await super.create(input) })
  }
}

function family (userId = newUserId()): CreateFamilyInput {
  return { userId, email: 'someone@example.com', familyId: randomUUID(), tokenHash: 'h', userAgent: 'test-agent', ip: '192.0.2.1' }
}

function logs () {
  const lines: Array<{ level: 'info' | 'warn', obj: object, msg: string }> = []
  return {
    lines,
    info: (obj: object, msg: string) => { lines.push({ level: 'info', obj, msg }) },
    warn: (obj: object, msg: string) => { lines.push({ level: 'warn', obj, msg }) }
  }
}

function abandonedOn (t: Test, store: UnreliableStore, options: { max?: number } = {}) {
  const log = logs()
  const abandoned = new AbandonedFamilies(store, { log, retryMs: RETRY_MS, ...options })
  t.teardown(async () => {
    store.out = false
    await abandoned.close()
    await store.close()
  })
  return { abandoned, log }
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
  const { abandoned } = abandonedOn(t, store)
  const f = family()
  await store.create(f)
  await abandoned.end(f.userId, f.familyId, true)
  t.notOk(await store.isLive(f.userId, f.familyId), 'ended')
  t.equal(abandoned.size, 0, 'nothing pending')
  t.equal(store.revokes, 1, 'one revoke')
})

t.test('a family whose create went unanswered is ended again once a late create can no longer run: the late create does not outlive it', async (t) => {
  const LATE_WRITES_MS = 300
  const store = new UnreliableStore(LATE_WRITES_MS)
  const { abandoned } = abandonedOn(t, store)
  const f = family()
  // The store runs the create after the first end (a cluster client resending it after a redirection, say).
  const ranLate = store.createLate(f, LATE_WRITES_MS / 2)
  await abandoned.end(f.userId, f.familyId, false)
  t.equal(store.revokes, 1, 'ended once at once')
  await ranLate
  t.ok(await store.isLive(f.userId, f.familyId), 'the late create made the family after that first end')
  t.equal(abandoned.size, 1, 'so it is still pending')
  t.ok(await until(() => abandoned.size === 0), 'until the late writes are settled and it is ended again')
  t.notOk(await store.isLive(f.userId, f.familyId), 'the family the late create made is gone')
})

t.test('a store that cannot take the revoke now is asked again until it does', async (t) => {
  const store = new UnreliableStore()
  const { abandoned, log } = abandonedOn(t, store)
  const f = family()
  await store.create(f)
  store.out = true
  await abandoned.end(f.userId, f.familyId, true)
  t.ok(await store.isLive(f.userId, f.familyId), 'the store was out: the family is still there')
  t.ok(await until(() => store.revokes >= 3), 'asked again every retry interval while out')
  t.equal(abandoned.size, 1, 'and still pending')
  store.out = false
  t.ok(await until(() => abandoned.size === 0), 'back: taken')
  t.notOk(await store.isLive(f.userId, f.familyId), 'the family is gone')
  t.match(log.lines.filter((l) => l.level === 'info'), [{ obj: { count: 1 }, msg: 'ended the sessions of logins that were not answered' }], 'and the logs say so')
  const revokes = store.revokes
  await sleep(RETRY_MS * 4)
  t.equal(store.revokes, revokes, 'nothing is asked once nothing is pending')
})

t.test('past its bound the oldest pending family is let go, with a warning', async (t) => {
  const store = new UnreliableStore()
  const { abandoned, log } = abandonedOn(t, store, { max: 2 })
  store.out = true
  const families = [family(), family(), family()]
  for (const f of families) await abandoned.end(f.userId, f.familyId, true)
  t.equal(abandoned.size, 2, 'two remembered')
  t.match(log.lines.filter((l) => l.level === 'warn'), [{ obj: { max: 2 } }], 'the third made room by letting the first go')
  for (const f of families) await store.create(f)
  store.out = false
  t.ok(await until(() => abandoned.size === 0), 'back: the two remembered are ended')
  t.same(await Promise.all(families.map(async (f) => await store.isLive(f.userId, f.familyId))), [true, false, false], 'the first is left to its idle timeout')
})

t.test('on close, a last try at every pending family, its late writes settled or not', async (t) => {
  const store = new UnreliableStore(60_000)
  const log = logs()
  const abandoned = new AbandonedFamilies(store, { log, retryMs: RETRY_MS })
  t.teardown(() => store.close())
  const [settled, unsettled, unreachable] = [family(), family(), family()]
  await abandoned.end(settled.userId, settled.familyId, true)
  await abandoned.end(unsettled.userId, unsettled.familyId, false)
  t.equal(abandoned.size, 1, 'the unsettled one waits for its late writes')
  store.out = true
  await abandoned.end(unreachable.userId, unreachable.familyId, true)
  for (const f of [unsettled, unreachable]) await store.create(f)
  store.out = false
  await abandoned.close()
  t.notOk(await store.isLive(unsettled.userId, unsettled.familyId), 'the unsettled family is ended on close')
  t.notOk(await store.isLive(unreachable.userId, unreachable.familyId), 'and the one the store could not take before')
  t.equal(abandoned.size, 0, 'nothing left')
  t.same(log.lines.filter((l) => l.level === 'warn'), [], 'no warning: nothing was left behind')
})

t.test('on close with the store out, what is left is logged', async (t) => {
  const store = new UnreliableStore()
  const log = logs()
  const abandoned = new AbandonedFamilies(store, { log, retryMs: RETRY_MS })
  t.teardown(() => store.close())
  store.out = true
  const f = family()
  await abandoned.end(f.userId, f.familyId, true)
  await abandoned.close()
  t.match(log.lines.filter((l) => l.level === 'warn'), [{ obj: { count: 1 }, msg: 'sessions of unanswered logins left to their idle timeout' }], 'what is left is logged')
  const revokes = store.revokes
  await sleep(RETRY_MS * 4)
  t.equal(store.revokes, revokes, 'and nothing is retried after close')
})

t.test('after close, a family is tried once and not remembered', async (t) => {
  const store = new UnreliableStore()
  const { abandoned } = abandonedOn(t, store)
  await abandoned.close()
  const [taken, refused] = [family(), family()]
  await store.create(taken)
  await abandoned.end(taken.userId, taken.familyId, false)
  t.notOk(await store.isLive(taken.userId, taken.familyId), 'a store still answering takes it')
  store.out = true
  await abandoned.end(refused.userId, refused.familyId, true)
  t.equal(abandoned.size, 0, 'nothing remembered')
  const revokes = store.revokes
  await sleep(RETRY_MS * 4)
  t.equal(store.revokes, revokes, 'nor retried')
})
