import type { Result } from 'ioredis'
import { guardStore, lateWritesMs, luaScript, pingStore, type RedisClient } from './redis-client.js'
import { compactUserAgent, expandUserAgent } from './compact-user-agent.js'
import { RedisClock } from './redis-clock.js'
import type { CreateFamilyInput, CreateResult, FamilyPolicy, FamilyStore, FamilySummary, RotateInput, RotateResult } from './family-store.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    authFamilyCreate (family: string, index: string, tokenHash: string, familyId: string, idleMs: number, absoluteMs: number,
      maxFamilies: number, userAgent: string, ip: string, familyKeyPrefix: string, email: string, endedMs: number, ended: string, replacingKey: string,
      ...replacing: string[]): Result<[number, ...string[]], Context>
    authFamilyRotate (family: string, index: string, presentedHash: string, generation: number, successorHash: string,
      idleMs: number, graceMs: number, userAgent: string, ip: string, familyId: string,
      limitMax: number, limitWindowMs: number, requestedAtMs: number, endedMs: number, ended: string): Result<[number, number?, string?], Context>
    authFamilyRevoke (family: string, index: string, familyId: string, endedMs: number, ended: string, replacedMs: number): Result<number, Context>
    authFamilyRevokeAll (index: string, familyKeyPrefix: string, keptFamilyId: string, endedMs: number, ended: string): Result<string[] | null, Context>
    authFamilyList (index: string, familyKeyPrefix: string): Result<Array<string | number>, Context>
  }
}

/**
 * Families in Redis. Every key of one user shares the `{userId}` hash tag, so each
 * script touches a single hash slot and the store runs unchanged on Redis Cluster.
 *
 *   <prefix>{<userId>}:f:<familyId>  hash: c current token hash, g generation, r last rotation ms,
 *                                    t created s, a absolute expiry s, u1 u2 user agent (compacted:
 *                                    src/compact-user-agent.ts), ip, e email,
 *                                    lw ln refresh-limit window;
 *                                    or, once a new login has replaced it, x alone for the grace window
 * Every field stays within 64 bytes so the hash keeps Redis's compact listpack encoding
 * (bench/README.md: memory per session).
 *   <prefix>{<userId>}:fams          zset: familyId -> last use ms
 *   <prefix>{<userId>}:ended         zset: familyId -> when it was revoked (ms), for FamilyPolicy.rememberEndedMs;
 *                                    named to the scripts in ARGV, not KEYS (family-revoke.lua says why)
 *   <prefix>{<userId>}:replacing     zset: "<familyId> <familyId>" (a family a sign-in is replacing, and the new family
 *                                    replacing it) -> when (ms): the cap does not count the first while the second
 *                                    lives (family-create.lua); named in ARGV too
 */
export class RedisFamilyStore implements FamilyStore {
  readonly #redis: RedisClient
  readonly #prefix: string
  readonly #policy: FamilyPolicy
  readonly lateWritesMs: number
  /** Redis's clock, which this store's callers share (FamilyStore.now). */
  readonly clock: RedisClock

  /** `onClockReading` hears this instance's wall clock minus Redis's (ms) at each reading of the clock kept. */
  constructor (redis: RedisClient, policy: FamilyPolicy, keyPrefix: string, onClockReading?: (skewMs: number) => void) {
    this.#redis = redis
    this.lateWritesMs = lateWritesMs(redis)
    this.#policy = policy
    this.#prefix = keyPrefix
    defineFamilyCommands(redis)
    this.clock = new RedisClock(redis, `${keyPrefix}clock`, onClockReading)
  }

  now (): number {
    return this.clock.now()
  }

  async create (input: CreateFamilyInput): Promise<CreateResult> {
    const p = this.#policy
    const [ttlMs, ...evictedFamilyIds] = await guardStore(this.#redis, () => this.#redis.authFamilyCreate(
      this.#familyKey(input.userId, input.familyId), this.#indexKey(input.userId), input.tokenHash, input.familyId,
      p.idleTtlSeconds * 1000, p.absoluteTtlSeconds * 1000, p.maxFamiliesPerUser, compactUserAgent(input.userAgent), input.ip,
      this.#familyKeyPrefix(input.userId), input.email, p.rememberEndedMs, this.#endedKey(input.userId), this.#replacingKey(input.userId),
      ...(input.replacing ?? [])))
    return { ttlSeconds: Math.floor(ttlMs / 1000), evictedFamilyIds }
  }

  async rotate (input: RotateInput): Promise<RotateResult> {
    const p = this.#policy
    const [status, ttlMs, email] = await guardStore(this.#redis, () => this.#redis.authFamilyRotate(
      this.#familyKey(input.userId, input.familyId), this.#indexKey(input.userId), input.presentedHash, input.generation,
      input.successorHash, p.idleTtlSeconds * 1000, p.reuseGraceSeconds * 1000, compactUserAgent(input.userAgent), input.ip, input.familyId,
      p.refreshLimit.max, p.refreshLimit.windowSeconds * 1000, input.requestedAtMs, p.rememberEndedMs, this.#endedKey(input.userId)))
    switch (status) {
      case 1: return { status: 'rotated', ttlSeconds: Math.floor((ttlMs ?? 0) / 1000), email: email ?? '' }
      case 2: return { status: 'grace', ttlSeconds: Math.floor((ttlMs ?? 0) / 1000), email: email ?? '' }
      case 3: return { status: 'reused' }
      case 4: return { status: 'limited', retryAfterSeconds: Math.max(1, Math.ceil((ttlMs ?? 0) / 1000)) }
      case 5: return { status: 'superseded' }
      default: return { status: 'invalid' }
    }
  }

  revoke (userId: string, familyId: string): Promise<boolean> {
    return this.#revoke(userId, familyId, 0)
  }

  replace (userId: string, familyId: string): Promise<boolean> {
    return this.#revoke(userId, familyId, this.#policy.reuseGraceSeconds * 1000)
  }

  async revokeAll (userId: string): Promise<string[]> {
    return await this.revokeOthers(userId, '') ?? []
  }

  revokeOthers (userId: string, keptFamilyId: string): Promise<string[] | null> {
    return guardStore(this.#redis, () => this.#redis.authFamilyRevokeAll(this.#indexKey(userId), this.#familyKeyPrefix(userId),
      keptFamilyId, this.#policy.rememberEndedMs, this.#endedKey(userId)))
  }

  recentlyEnded (userId: string): Promise<string[]> {
    // Entries older than rememberEndedMs are trimmed on the next write only: reading one again does no harm.
    return guardStore(this.#redis, () => this.#redis.zrange(this.#endedKey(userId), 0, -1))
  }

  async list (userId: string): Promise<FamilySummary[]> {
    const flat = await guardStore(this.#redis, () => this.#redis.authFamilyList(this.#indexKey(userId), this.#familyKeyPrefix(userId)))
    const now = Number(flat[0])
    const out: FamilySummary[] = []
    for (let i = 1; i + 6 < flat.length; i += 7) {
      out.push({
        familyId: String(flat[i]),
        createdAtMs: Number(flat[i + 1]),
        lastUsedAtMs: Number(flat[i + 2]),
        // The earlier of the idle and the absolute deadline, as Redis will enforce it.
        expiresAtMs: Math.min(Number(flat[i + 3]), now + Number(flat[i + 4])),
        userAgent: expandUserAgent(String(flat[i + 5])),
        ip: String(flat[i + 6])
      })
    }
    return out
  }

  async isLive (userId: string, familyId: string): Promise<boolean> {
    // A family's key is deleted when it ends and expires with it (its TTL is the earlier of its two deadlines); a
    // replaced family's tombstone has no current token.
    // HMGET, not HEXISTS: the ACL the README gives grants the one.
    const [current] = await guardStore(this.#redis, () => this.#redis.hmget(this.#familyKey(userId, familyId), 'c'))
    return current !== null && current !== undefined
  }

  async ping (): Promise<void> {
    await pingStore(this.#redis)
    // Ready only once the clock it orders refreshes on has been read (until then it is this instance's own), and only
    // while it can be: the reading runs a script on a key of the service's prefix, as every store route does, so an
    // ACL that no longer grants them (NOPERM) is found by the probe, not only by each request it fails.
    await this.clock.read()
  }

  async close (): Promise<void> {
    // The connection belongs to the redis plugin, which closes it.
    this.clock.close()
  }

  async #revoke (userId: string, familyId: string, replacedMs: number): Promise<boolean> {
    const n = await guardStore(this.#redis, () => this.#redis.authFamilyRevoke(this.#familyKey(userId, familyId), this.#indexKey(userId),
      familyId, this.#policy.rememberEndedMs, this.#endedKey(userId), replacedMs))
    return n === 1
  }

  #familyKeyPrefix (userId: string): string {
    return `${this.#prefix}{${userId}}:f:`
  }

  #familyKey (userId: string, familyId: string): string {
    return `${this.#prefix}{${userId}}:f:${familyId}`
  }

  #indexKey (userId: string): string {
    return `${this.#prefix}{${userId}}:fams`
  }

  #endedKey (userId: string): string {
    return `${this.#prefix}{${userId}}:ended`
  }

  #replacingKey (userId: string): string {
    return `${this.#prefix}{${userId}}:replacing`
  }
}

function defineFamilyCommands (redis: RedisClient): void {
  // Registered once per connection; ioredis sends EVALSHA and falls back to EVAL after a Redis restart.
  if (typeof redis.authFamilyRotate === 'function') return
  redis.defineCommand('authFamilyCreate', { numberOfKeys: 2, lua: luaScript('family-create') })
  redis.defineCommand('authFamilyRotate', { numberOfKeys: 2, lua: luaScript('family-rotate') })
  redis.defineCommand('authFamilyRevoke', { numberOfKeys: 2, lua: luaScript('family-revoke') })
  redis.defineCommand('authFamilyRevokeAll', { numberOfKeys: 1, lua: luaScript('family-revoke-all') })
  redis.defineCommand('authFamilyList', { numberOfKeys: 1, lua: luaScript('family-list') })
}
