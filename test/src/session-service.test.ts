import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { LocalAccessRevocations, noRevocations } from '../../src/access-revocations.js'
import { StoreUnavailableError } from '../../src/errors.js'
import type { CreateFamilyInput, CreateResult, RotateInput, RotateResult } from '../../src/family-store.js'
import { MemoryFamilyStore } from '../../src/memory-family-store.js'
import { StoreNotReachedError } from '../../src/redis-client.js'
import { RefreshTokenCodec } from '../../src/refresh-token.js'
import { RevocationList } from '../../src/revocation-list.js'
import { SessionService } from '../../src/session-service.js'
import type { UnansweredWritesOptions } from '../../src/unanswered-writes.js'
import { newUserId } from '../../src/user-directory.js'
import { within } from '../helpers/poll.js'
import { matchList } from '../helpers/match-list.js'

const codec = new RefreshTokenCodec('session-service-test-secret-0123456789ab')
const policy = { idleTtlSeconds: 600, absoluteTtlSeconds: 3600, reuseGraceSeconds: 10, maxFamiliesPerUser: 10, refreshLimit: { max: 60, windowSeconds: 60 }, rememberEndedMs: 605_000 }
const meta = { userAgent: 'test-agent', ip: '192.0.2.1' }
const quiet = { log: { info () {}, warn () {} } }

/**
 * The memory store, with its rotation failing as `failure` says (the rest of it as it is): after running, with `ran`,
 * as a stalled Redis runs a rotation after the caller gave up. No grace window: a token presented twice is a reuse.
 */
class FailingRotations extends MemoryFamilyStore {
  rotations = 0
  constructor (readonly failure: () => Error, readonly ran = false) { super({ ...policy, reuseGraceSeconds: 0 }) }
  override async rotate (input: RotateInput): Promise<RotateResult> {
    this.rotations++
    if (this.ran) await super.rotate(input)
    throw this.failure()
  }
}

async function sessionOn (t: Test, store: MemoryFamilyStore) {
  const sessions = new SessionService(codec, store, noRevocations, quiet)
  t.teardown(async () => {
    await sessions.close()
    await store.close()
  })
  return { sessions, started: await sessions.start({ id: newUserId(), email: 'someone@example.com' }, meta) }
}

t.test('a refresh the store did not answer hands out the presented token\'s successor, with the store\'s error', async (t) => {
  const unavailable = new StoreUnavailableError()
  const { sessions, started } = await sessionOn(t, new FailingRotations(() => unavailable))
  const outcome = await sessions.refresh(started.refreshToken, meta)
  const successor = codec.seal(codec.successor(codec.open(started.refreshToken)!.token)).value
  t.same(outcome, { status: 'unavailable', refreshToken: successor, error: unavailable })
})

t.test('any other failure of the store is not an outage: it propagates, and no successor is handed out', async (t) => {
  const { sessions, started } = await sessionOn(t, new FailingRotations(() => new TypeError('a bug')))
  await t.rejects(sessions.refresh(started.refreshToken, meta), TypeError)
})

t.test('a forged or tampered token gets no successor while the store is out: it never reaches the store', async (t) => {
  const store = new FailingRotations(() => new StoreUnavailableError())
  const { sessions, started } = await sessionOn(t, store)
  const tampered = started.refreshToken.slice(0, -2) + (started.refreshToken.endsWith('AA') ? 'BB' : 'AA')
  const forged = new RefreshTokenCodec('another-secret-entirely-0123456789abcdef')
  for (const token of [tampered, forged.seal(forged.mint(started.userId)).value, 'not a token', undefined]) {
    t.same(await sessions.refresh(token, meta), { status: 'invalid' })
  }
  t.equal(store.rotations, 0, 'the store was never asked')
})

/** The memory store, its creates failing with `failure` after they ran (or before, as `ran` says). */
class FailingCreates extends MemoryFamilyStore {
  readonly revoked: string[] = []
  constructor (readonly failure: () => Error, readonly ran: boolean) { super(policy) }
  override async create (input: CreateFamilyInput): Promise<CreateResult> {
    if (this.ran) await super.create(input)
    throw this.failure()
  }

  override async revoke (userId: string, familyId: string): Promise<boolean> {
    this.revoked.push(familyId)
    return await super.revoke(userId, familyId)
  }
}

t.test('a login whose session the store did not answer leaves no session behind: the store may have made it', async (t) => {
  const store = new FailingCreates(() => new StoreUnavailableError(), true)
  const sessions = new SessionService(codec, store, noRevocations, quiet)
  t.teardown(() => store.close())
  const user = { id: newUserId(), email: 'someone@example.com' }
  await t.rejects(sessions.start(user, meta), { code: 'AUTH_STORE_UNAVAILABLE' }, 'the store\'s error')
  t.equal(store.revoked.length, 1, 'the family it may have made is ended')
  await sessions.close()
  t.same(await store.list(user.id), [], 'no session is listed')
})

t.test('a login the store was never sent leaves nothing to end', async (t) => {
  const store = new FailingCreates(() => new StoreUnavailableError({ cause: new StoreNotReachedError('not connected') }), false)
  const sessions = new SessionService(codec, store, noRevocations, quiet)
  t.teardown(() => store.close())
  await t.rejects(sessions.start({ id: newUserId(), email: 'someone@example.com' }, meta), { code: 'AUTH_STORE_UNAVAILABLE' })
  await sessions.close()
  t.same(store.revoked, [], 'no revoke is sent')
})

/** Sessions on `store` whose ended families' access tokens are revoked, with follow-ups retried every 10 ms. */
function revokingOn (t: Test, store: MemoryFamilyStore, log: UnansweredWritesOptions['log'] = quiet.log) {
  const revocations = new LocalAccessRevocations(new RevocationList(), 60_000)
  const sessions = new SessionService(codec, store, revocations, { log, retryMs: 10 })
  t.teardown(async () => {
    await sessions.close()
    await store.close()
    await revocations.close()
  })
  return { sessions, revocations }
}

t.test('a reuse found by a rotation the store did not answer still revokes the family\'s access tokens', async (t) => {
  const store = new FailingRotations(() => new StoreUnavailableError(), true)
  const { sessions, revocations } = revokingOn(t, store)
  const started = await sessions.start({ id: newUserId(), email: 'someone@example.com' }, meta)
  t.match(await sessions.refresh(started.refreshToken, meta), { status: 'unavailable' }, 'rotated, unanswered')
  t.match(await sessions.refresh(started.refreshToken, meta), { status: 'unavailable' }, 'the old token again: a reuse the store found, unanswered')
  t.notOk(await store.isLive(started.userId, started.familyId), 'the store ended the family')
  await within(1000, async () => revocations.isRevoked(started.familyId), 'the family\'s access tokens revoked')
  t.pass('and its access tokens are revoked')
})

/** The memory store, its endings of many families failing with `failure` while `out`. */
class FailingEndings extends MemoryFamilyStore {
  out = false
  endingsOfAll = 0
  /** What the next endings do instead of answering, in turn: never reach the store, or run there unanswered. */
  failNext: Array<'unsent' | 'ran'> = []
  constructor (readonly failure: () => Error = () => new StoreUnavailableError()) { super(policy) }
  override async revokeAll (userId: string): Promise<string[]> {
    this.endingsOfAll++
    return await this.#answer(() => super.revokeAll(userId))
  }

  override async revokeOthers (userId: string, keptFamilyId: string): Promise<string[] | null> {
    return await this.#answer(() => super.revokeOthers(userId, keptFamilyId))
  }

  async #answer<T> (write: () => Promise<T>): Promise<T> {
    const next = this.failNext.shift()
    if (next === 'unsent') throw new StoreUnavailableError({ cause: new StoreNotReachedError('not connected') })
    if (next === 'ran') {
      await write()
      throw new StoreUnavailableError()
    }
    if (this.out) throw this.failure()
    return await write()
  }
}

async function endingsOn (t: Test, store: FailingEndings) {
  const warnings: Array<{ obj: object, msg: string }> = []
  const { sessions, revocations } = revokingOn(t, store, { info () {}, warn: (obj: object, msg: string) => { warnings.push({ obj, msg }) } })
  const user = { id: newUserId(), email: 'someone@example.com' }
  const [kept, other] = [await sessions.start(user, meta), await sessions.start(user, meta)]
  return { sessions, revocations, user, kept, other, warnings }
}

t.test('the sessions a change already made ends again', async (t) => {
  t.test('are ended now when the store answers, but the one kept, and their access tokens revoked', async (t) => {
    const store = new FailingEndings()
    const { sessions, revocations, user, kept, other, warnings } = await endingsOn(t, store)
    t.same(await sessions.revokeAllEventually(user.id, kept.familyId), [other.familyId], 'the other session ended now')
    t.same(warnings, [], 'nothing to say in the log')
    t.ok(await store.isLive(user.id, kept.familyId), 'the one kept lives')
    t.ok(revocations.isRevoked(other.familyId), 'the other\'s access tokens are revoked')
    t.equal(sessions.pendingFollowUps, 0, 'nothing is left to do')
  })

  t.test('all of them, once the one to keep has ended too', async (t) => {
    const store = new FailingEndings()
    const { sessions, user, kept, other } = await endingsOn(t, store)
    await sessions.revoke(user.id, kept.familyId)
    t.same(await sessions.revokeAllEventually(user.id, kept.familyId), [other.familyId])
    t.same(await store.list(user.id), [], 'no session is left')
  })

  t.test('are ended later when the store cannot take it now; the change is not failed for it', async (t) => {
    const store = new FailingEndings()
    const { sessions, revocations, user, kept, other, warnings } = await endingsOn(t, store)
    store.out = true
    t.same(await sessions.revokeAllEventually(user.id, kept.familyId), [], 'resolves, with nothing ended yet')
    matchList(t, warnings, [{ obj: { followUp: `sessions of ${user.id}` }, msg: /did not take a write that follows a change already made; retrying/ }], 'saying so in the log')
    t.ok(await store.isLive(user.id, other.familyId), 'the store was out: the other session still lives')
    t.equal(sessions.pendingSecondEndings, 1, 'its second ending is pending')
    store.out = false
    await within(2000, async () => !await store.isLive(user.id, other.familyId), 'the other session ended once the store is back')
    t.ok(await store.isLive(user.id, kept.familyId), 'the one kept still lives')
    await within(2000, async () => revocations.isRevoked(other.familyId), 'the other\'s access tokens revoked')
    await within(2000, async () => sessions.pendingFollowUps === 0, 'nothing left to do')
    t.equal(sessions.pendingSecondEndings, 0, 'no second ending pending')
    t.pass('ended later, access tokens too')
  })

  t.test('a retry the store runs without answering still revokes the access tokens of what it ended', async (t) => {
    const store = new FailingEndings()
    const { sessions, revocations, user, kept, other } = await endingsOn(t, store)
    store.failNext = ['unsent', 'ran']
    t.same(await sessions.revokeAllEventually(user.id, kept.familyId), [], 'never sent: nothing ended yet')
    await within(2000, async () => !await store.isLive(user.id, other.familyId), 'the retry ended the other session, unanswered')
    await within(2000, async () => revocations.isRevoked(other.familyId), 'the other\'s access tokens revoked')
    t.pass('though the next try found nothing left to end')
  })

  t.test('a failure that is no outage (a bug) rejects, and is not retried', async (t) => {
    const store = new FailingEndings(() => new TypeError('a bug'))
    const { sessions, user } = await endingsOn(t, store)
    store.out = true
    await t.rejects(sessions.revokeAllEventually(user.id), TypeError)
    await sleep(50)
    t.equal(store.endingsOfAll, 1, 'asked once, in five retry intervals')
  })
})
