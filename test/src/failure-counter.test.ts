import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { FailureLimits, MemoryFailureCounter, RedisFailureCounter, type FailureCounter } from '../../src/failure-counter.js'
import { createRedisClient } from '../../src/redis-client.js'
import { deleteKeys, SHARED_REDIS_URL, uniquePrefix, type StoreKind } from '../helpers/app.js'
import { headerFor, heapHolds } from '../helpers/heap-snapshot.js'

/** A counter of either store, allowing `max` failures per window, and a record of the resets it was asked for. */
async function counterOf (t: Test, store: StoreKind, max: number, name = 'test', windowSeconds = 60): Promise<{ counter: FailureCounter, resets: string[] }> {
  let counter: FailureCounter = new MemoryFailureCounter({ max, windowSeconds })
  if (store === 'redis') {
    const prefix = uniquePrefix()
    const redis = createRedisClient({ url: SHARED_REDIS_URL, commandTimeoutMs: 2000 })
    await redis.connect()
    t.teardown(async () => {
      await deleteKeys(SHARED_REDIS_URL, prefix)
      await redis.quit()
    })
    counter = new RedisFailureCounter(redis, { keyPrefix: prefix, name, max, windowSeconds })
  }
  const resets: string[] = []
  const reset = counter.reset.bind(counter)
  counter.reset = async (subject) => {
    resets.push(subject)
    await reset(subject)
  }
  return { counter, resets }
}

for (const store of ['redis', 'memory'] as const) {
  t.test(`${store}: a subject is blocked at its limit, for the rest of the window that began at its first failure`, async (t) => {
    const { counter } = await counterOf(t, store, 3)
    t.same(await counter.check('a'), { failures: 0, blocked: false, retryAfterSeconds: 0 }, 'none yet')
    for (let i = 0; i < 2; i++) await counter.recordFailure('a')
    t.same(await counter.check('a'), { failures: 2, blocked: false, retryAfterSeconds: 0 })
    await counter.recordFailure('a')
    const blocked = await counter.check('a')
    t.match(blocked, { failures: 3, blocked: true })
    t.ok(blocked.retryAfterSeconds > 55 && blocked.retryAfterSeconds <= 60, `Retry-After ${blocked.retryAfterSeconds} s, within the window`)
    t.same(await counter.check('b'), { failures: 0, blocked: false, retryAfterSeconds: 0 }, 'another subject is its own')
    await counter.reset('a')
    t.same(await counter.check('a'), { failures: 0, blocked: false, retryAfterSeconds: 0 }, 'reset: none again')
  })

  t.test(`${store}: the window is fixed at the first failure: failures after it do not lengthen it`, async (t) => {
    const { counter } = await counterOf(t, store, 2, 'fixed', 10)
    await counter.recordFailure('a')
    await sleep(1100)
    await counter.recordFailure('a')
    const blocked = await counter.check('a')
    t.ok(blocked.blocked && blocked.retryAfterSeconds <= 9, `Retry-After ${blocked.retryAfterSeconds} s: the window began 1.1 s ago`)
  })

  t.test(`${store}: when the window ends, the lock lifts and the count starts over`, async (t) => {
    const { counter } = await counterOf(t, store, 2, 'decay', 1)
    for (let i = 0; i < 2; i++) await counter.recordFailure('a')
    t.match(await counter.check('a'), { failures: 2, blocked: true })
    await sleep(1100)
    t.same(await counter.check('a'), { failures: 0, blocked: false, retryAfterSeconds: 0 }, 'the window is over')
    await counter.recordFailure('a')
    t.same(await counter.check('a'), { failures: 1, blocked: false, retryAfterSeconds: 0 }, 'a failure now is the first of a new window')
  })

  t.test(`${store}: limits read together hold an attempt until none is at its limit: Retry-After the last to end`, async (t) => {
    const narrow = await counterOf(t, store, 2, 'narrow', 60)
    const wide = await counterOf(t, store, 3, 'wide', 600)
    const limits = () => FailureLimits.read([{ counter: narrow.counter, key: 'client' }, { counter: wide.counter, key: 'account' }])
    const waits = async (low: number, high: number, message: string) => {
      const seconds = (await limits()).blockedForSeconds
      t.ok(seconds !== null && seconds >= low && seconds <= high, `${message}: ${seconds} s`)
    }
    t.equal((await limits()).blockedForSeconds, null, 'none at its limit')
    for (let i = 0; i < 2; i++) await narrow.counter.recordFailure('client')
    await waits(55, 60, 'the narrow one alone: its window')
    for (let i = 0; i < 3; i++) await wide.counter.recordFailure('account')
    await waits(595, 600, 'both: the wide one\'s, which ends last')
    await narrow.counter.reset('client')
    await waits(595, 600, 'the wide one alone')
  })

  t.test(`${store}: a failure counts toward every limit; a success resets those holding failures, but the one kept`, async (t) => {
    const narrow = await counterOf(t, store, 10, 'narrow')
    const wide = await counterOf(t, store, 10, 'wide')
    const kept = await counterOf(t, store, 10, 'kept')
    const limits = () => FailureLimits.read([
      { counter: narrow.counter, key: 'client' },
      { counter: wide.counter, key: 'account' },
      { counter: kept.counter, key: 'device', keptOnSuccess: true }
    ])
    await (await limits()).recordFailure()
    await (await limits()).recordFailure()
    t.same([(await narrow.counter.check('client')).failures, (await wide.counter.check('account')).failures, (await kept.counter.check('device')).failures], [2, 2, 2])

    await (await limits()).recordSuccess()
    t.same([(await narrow.counter.check('client')).failures, (await wide.counter.check('account')).failures, (await kept.counter.check('device')).failures], [0, 0, 2])
    t.same([narrow.resets, wide.resets, kept.resets], [['client'], ['account'], []])

    await (await limits()).recordSuccess()
    t.same([narrow.resets, wide.resets], [['client'], ['account']], 'a success with no failures counted writes nothing')
  })
}

t.test('memory: subjects whose window has ended are let go when the next subject fails, so a guessing spree fills no memory', async (t) => {
  let now = 0
  const counter = new MemoryFailureCounter({ max: 5, windowSeconds: 60, now: () => now })
  // Decoded, as a request's body gives it: a heap snapshot names a string made by concatenation only by its parts.
  let recorded: Promise<void> = Promise.resolve()
  const needle = headerFor('someone@example.com', (subject) => { recorded = counter.recordFailure(Buffer.from(subject).toString()) })
  await recorded
  for (let i = 0; i < 100; i++) await counter.recordFailure(`guess-${i}@example.com`)
  t.ok(await heapHolds(needle), 'a subject failing is held')
  now = 60_000
  await counter.recordFailure('the next one@example.com')
  t.notOk(await heapHolds(needle), 'once its window has ended, the next subject sweeps it out')
  t.equal((await counter.check('the next one@example.com')).failures, 1, 'and the new subject is counted')
  now = 60_000 + 59_999
  t.equal((await counter.check('the next one@example.com')).failures, 1, 'while those whose window goes on are kept')
})

t.test('memory: a new subject costs the same whether 10 or 20,000 are failing: those held are not swept each time', async (t) => {
  // Counted: the steps through any map while a failure is recorded, each an entry looked at.
  const mapIterator = Object.getPrototypeOf(new Map().entries()) as { next: () => unknown }
  const next = mapIterator.next
  let steps = 0
  mapIterator.next = function (this: unknown) { steps += 1; return next.call(this) }
  t.teardown(() => { mapIterator.next = next })
  let now = 0
  const counter = new MemoryFailureCounter({ max: 5, windowSeconds: 60, now: () => now })
  const stepsForNewSubject = async (subject: string): Promise<number> => {
    steps = 0
    await counter.recordFailure(subject)
    return steps
  }
  for (let i = 0; i < 10; i++) await counter.recordFailure(`few-${i}@example.com`)
  const few = await stepsForNewSubject('one more@example.com')
  for (let i = 0; i < 20_000; i++) { now = i; await counter.recordFailure(`guess-${i}@example.com`) }
  t.equal(await stepsForNewSubject('and another@example.com'), few, 'as many with 20,000 held as with 10')
  now = 59_999 + 100
  // The 11 set at 0 and the first 100 guesses have ended: one step for each of those, and one to the first held.
  t.equal(await stepsForNewSubject('later@example.com'), 111 + 1, 'once their windows end, a step for each ended')
  t.equal(await stepsForNewSubject('and later@example.com'), few, 'and those are gone: as few after them')
  t.equal((await counter.check('guess-100@example.com')).failures, 1, 'the first whose window goes on is still held')
})
