import { deepStrictEqual } from 'node:assert'
import { setTimeout as sleep } from 'node:timers/promises'
import fc from 'fast-check'
import t from 'tap'
import type { FamilyPolicy, FamilyStore, RotateResult } from '../../src/family-store.js'
import { MemoryFamilyStore } from '../../src/memory-family-store.js'
import { RedisFamilyStore } from '../../src/redis-family-store.js'
import { RefreshTokenCodec, type RefreshToken } from '../../src/refresh-token.js'
import { newUserId } from '../../src/user-directory.js'
import { connectedRedis, deleteKeys, SHARED_REDIS_URL, uniquePrefix } from '../helpers/app.js'

// The contract suite (family-store.contract.ts) holds each store to the cases someone thought of. This holds the two
// stores to each other on sequences no one wrote down: random sign-ins (at a cap of three sessions, some replacing
// sessions, the user's own or not), refreshes with the current token, an older one, one ahead of the store or a
// tampered one, revocations of every kind, and the reads. Each operation goes to both stores in turn, and both must
// answer it alike; a counterexample is shrunk to the shortest sequence the stores disagree on.
// AGREE_RUNS and AGREE_SEED widen or replay a run; the fixed seed keeps CI's run the same every time.
const RUNS = Number(process.env.AGREE_RUNS ?? 60)
const SEED = Number(process.env.AGREE_SEED ?? 20261205)

const codec = new RefreshTokenCodec('stores-agree-secret-0123456789abcdef')
const meta = { userAgent: 'Mozilla/5.0 (agree)', ip: '203.0.113.9' }

/**
 * Families are picked by index among those made so far in the run (modulo their number); users are two, so that one
 * user's operations can reach the other's families. `offset` is the presented token's generation against the latest
 * one the store has issued: 0 the current token, below 0 an older one, 1 one ahead of the store (issued with a 503).
 */
type Op =
  | { kind: 'create', user: number, replacing: number[] }
  | { kind: 'rotate', family: number, offset: number, tampered: boolean }
  | { kind: 'revoke' | 'replace' | 'revokeOthers' | 'isLive', family: number }
  | { kind: 'revokeAll' | 'list' | 'recentlyEnded', user: number }

// Mostly the first user, who then often has more sessions than the cap, and sometimes the other.
const user = fc.constantFrom(0, 0, 0, 1)
const family = fc.nat({ max: 15 })
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('create' as const), user, replacing: fc.array(family, { maxLength: 2 }) }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('rotate' as const), family, offset: fc.integer({ min: -3, max: 1 }), tampered: fc.nat({ max: 4 }).map((n) => n === 0) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('revoke' as const, 'replace' as const, 'revokeOthers' as const, 'isLive' as const), family }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('revokeAll' as const, 'list' as const, 'recentlyEnded' as const), user }) }
)

/** A family made in the run; `latest` is the generation of the last token the stores issued for it. */
interface Family { userId: string, familyId: string, first: RefreshToken, latest: number }

/** A figure of an answer (a lifetime, a wait), if it has one. */
function figureOf (answer: unknown, name: string): number | undefined {
  const value = typeof answer === 'object' && answer !== null ? (answer as Record<string, unknown>)[name] : undefined
  return typeof value === 'number' ? value : undefined
}

/** The family's token of a generation, as the session service derives it from the first. */
function tokenAt (family: Family, generation: number): RefreshToken {
  let token = family.first
  while (token.generation < generation) token = codec.successor(token)
  return token
}

/** One run: the operations applied to both stores, each answer compared; the answers seen are tallied in `seen`. */
async function agree (stores: { memory: FamilyStore, redis: FamilyStore }, ops: Op[], seen: Map<string, number>): Promise<void> {
  const users = [newUserId(), newUserId()] as const
  const families: Family[] = []
  const pick = (index: number): Family | undefined => families[index % families.length]
  const both = async <T>(what: string, call: (store: FamilyStore) => Promise<T>, normalize: (answer: T) => unknown = (a) => a): Promise<T> => {
    const memory = await call(stores.memory)
    const redis = await call(stores.redis)
    const message = `${what}: Redis answered ${JSON.stringify(redis)}, memory ${JSON.stringify(memory)}`
    deepStrictEqual(normalize(redis), normalize(memory), message)
    // Lifetimes and waits are whole seconds, each on its store's own clock: they agree to within one.
    for (const figure of ['ttlSeconds', 'retryAfterSeconds']) {
      const [a, b] = [figureOf(redis, figure), figureOf(memory, figure)]
      if (a !== undefined && b !== undefined && Math.abs(a - b) > 1) throw new Error(message)
    }
    // Apart by more than a millisecond, so that "least recently used" names one family on both stores, not a tie.
    await sleep(2)
    return memory
  }
  const sorted = (ids: string[] | null): string[] | null => ids === null ? null : [...ids].sort()
  const tally = (outcome: string): void => { seen.set(outcome, (seen.get(outcome) ?? 0) + 1) }

  for (const [i, step] of ops.entries()) {
    const what = `operation ${i} (${JSON.stringify(step)})`
    if (step.kind === 'create') {
      const userId = users[step.user] as string
      const first = codec.mint(userId)
      const replacing = families.length === 0 ? [] : step.replacing.map((index) => (pick(index) as Family).familyId)
      const created = await both(what, (store) => store.create({ userId, email: `${userId}@example.com`, familyId: first.familyId, tokenHash: codec.seal(first).digest, replacing, ...meta }))
      families.push({ userId, familyId: first.familyId, first, latest: 0 })
      tally(created.evictedFamilyIds.length > 0 ? 'create: evicted' : 'create')
      continue
    }
    if (!('family' in step)) {
      const userId = users[step.user] as string
      if (step.kind === 'revokeAll') tally(`revokeAll: ${(await both(what, (store) => store.revokeAll(userId), sorted)).length > 0}`)
      if (step.kind === 'recentlyEnded') tally(`recentlyEnded: ${(await both(what, (store) => store.recentlyEnded(userId), sorted)).length > 0}`)
      // Most recently used first, on both; the times are each store's own clock.
      if (step.kind === 'list') tally(`list: ${(await both(what, (store) => store.list(userId), (list) => list.map((f) => [f.familyId, f.userAgent, f.ip]))).length}`)
      continue
    }
    const target = pick(step.family)
    if (target === undefined) continue
    const { userId, familyId } = target
    if (step.kind === 'rotate') {
      const token = tokenAt(target, Math.max(0, target.latest + step.offset))
      const presentedHash = step.tampered ? codec.seal(codec.mint(userId)).digest : codec.seal(token).digest
      const input = (store: FamilyStore) => ({ userId, familyId, generation: token.generation, presentedHash, successorHash: codec.seal(codec.successor(token)).digest, requestedAtMs: store.now(), ...meta })
      const result = await both(what, (store) => store.rotate(input(store)), ({ ttlSeconds, retryAfterSeconds, ...rest }: RotateResult & { ttlSeconds?: number, retryAfterSeconds?: number }) => rest)
      if (result.status === 'rotated') target.latest = token.generation + 1
      tally(`rotate: ${result.status}`)
    } else if (step.kind === 'revoke' || step.kind === 'replace') {
      const end = step.kind === 'revoke' ? (store: FamilyStore) => store.revoke(userId, familyId) : (store: FamilyStore) => store.replace(userId, familyId)
      tally(`${step.kind}: ${await both(what, end)}`)
    } else if (step.kind === 'revokeOthers') {
      tally(`revokeOthers: ${(await both(what, (store) => store.revokeOthers(userId, familyId), sorted)) !== null}`)
    } else {
      tally(`isLive: ${await both(what, (store) => store.isLive(userId, familyId))}`)
    }
  }
}

const basePolicy: FamilyPolicy = { idleTtlSeconds: 3600, absoluteTtlSeconds: 7200, reuseGraceSeconds: 3600, maxFamiliesPerUser: 3, refreshLimit: { max: 1000, windowSeconds: 60 }, rememberEndedMs: 605_000 }

const policies: Array<[string, FamilyPolicy, string[]]> = [
  // Every rotation within the grace window of the one before: parents get grace, older tokens are superseded.
  ['with a grace window longer than the run', basePolicy, ['rotate: rotated', 'rotate: grace', 'rotate: superseded', 'rotate: invalid', 'create: evicted', 'replace: true', 'revokeOthers: true', 'recentlyEnded: true']],
  // Strict: every older token is a reuse; and a session refreshes twice an hour at most.
  ['strict, with a low refresh limit', { ...basePolicy, reuseGraceSeconds: 0, refreshLimit: { max: 2, windowSeconds: 3600 } }, ['rotate: rotated', 'rotate: reused', 'rotate: limited', 'rotate: invalid', 'create: evicted', 'revokeAll: true']]
]

for (const [name, policy, expected] of policies) {
  t.test(`the embedded store and Redis answer alike any sequence of operations, ${name}`, async (t) => {
    const redis = await connectedRedis(t)
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
    const stores = { memory: new MemoryFamilyStore(policy), redis: new RedisFamilyStore(redis, policy, prefix) }
    t.teardown(() => stores.memory.close())
    // Ready, as the service serves it: its clock read (src/redis-clock.ts).
    await stores.redis.ping()

    const seen = new Map<string, number>()
    const failure = await fc.check(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40, size: 'max' }), (ops) => agree(stores, ops, seen)), { numRuns: RUNS, seed: SEED, includeErrorInReport: true })
    t.equal(failure.failed, false, failure.failed ? fc.defaultReportMessage(failure) ?? 'the stores disagreed' : `${failure.numRuns} sequences, the same answers`)
    // A comparison of answers only the simplest paths give would pass whatever the stores did on the others.
    for (const outcome of expected) t.ok((seen.get(outcome) ?? 0) > 0, `the sequences reached "${outcome}" (${seen.get(outcome) ?? 0} times)`)
    t.comment([...seen].sort().map(([outcome, n]) => `${outcome}: ${n}`).join(', '))
  })
}
