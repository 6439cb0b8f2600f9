import { copyString } from './copy-string.js'
import { SUPERSEDED_TIMES_KEPT, type CreateFamilyInput, type CreateResult, type FamilyPolicy, type FamilyStore, type FamilySummary, type RotateInput, type RotateResult } from './family-store.js'

interface FamilyRecord {
  current: string
  generation: number
  rotatedAtMs: number
  /** When the caller of the latest rotation asked (RotateInput.requestedAtMs); 0 before the first. */
  rotationRequestedAtMs: number
  /**
   * When each generation superseded within the grace window before the latest rotation was superseded: the first is
   * `supersededFrom` (family-rotate.lua: b, bt and bh). The one the latest rotation superseded is at `rotatedAtMs`.
   */
  supersededFrom: number
  supersededAtMs: readonly number[]
  createdAtMs: number
  absoluteExpiryMs: number
  expiresAtMs: number
  userAgent: string
  ip: string
  email: string
  limitWindowStartMs: number
  limitCount: number
  /** The new families sign-ins made to replace this one, until the first's caller ends this (family-create.lua). */
  replacedBy: string[] | null
}

/**
 * The list of a family with no times kept: shared, as most families' is, so that neither a sign-in nor a refresh
 * outside the grace window allocates one.
 */
const NONE_SUPERSEDED: readonly number[] = Object.freeze([])

/** The families that sign-ins are replacing, each while a family replacing it lives. */
function beingReplaced (families: Map<string, FamilyRecord>): Set<string> {
  const going = new Set<string>()
  for (const [id, f] of families) {
    if (f.replacedBy?.some((by) => families.has(by)) === true) going.add(id)
  }
  return going
}

export interface MemoryFamilyStoreOptions {
  /** Milliseconds since the epoch; injectable so tests control time. */
  now?: () => number
  /** How often expired families are swept out; they are also dropped lazily on access. */
  sweepIntervalMs?: number
}

/**
 * The embedded default store: same contract as Redis, one process only.
 * Everything here is synchronous, so each method is atomic with respect to other requests.
 */
export class MemoryFamilyStore implements FamilyStore {
  readonly lateWritesMs: number = 0
  readonly #policy: FamilyPolicy
  readonly #now: () => number
  readonly #users = new Map<string, Map<string, FamilyRecord>>()
  /** By user: the families ended (revoked, reused, evicted) and when, for rememberEndedMs. */
  readonly #ended = new Map<string, Map<string, number>>()
  /** By `userId:familyId`: families a new login's cookie replaced, until when a refresh of them answers superseded. */
  readonly #replaced = new Map<string, number>()
  readonly #sweeper: NodeJS.Timeout

  constructor (policy: FamilyPolicy, options: MemoryFamilyStoreOptions = {}) {
    this.#policy = policy
    this.#now = options.now ?? Date.now
    this.#sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000)
    this.#sweeper.unref()
  }

  /** One process: its own clock. */
  now (): number {
    return this.#now()
  }

  async create (input: CreateFamilyInput): Promise<CreateResult> {
    const now = this.#now()
    const p = this.#policy
    const ttlMs = Math.min(p.idleTtlSeconds, p.absoluteTtlSeconds) * 1000
    const families = this.#live(input.userId, now) ?? new Map<string, FamilyRecord>()
    this.#users.set(input.userId, families)
    families.set(input.familyId, {
      current: input.tokenHash,
      generation: 0,
      rotatedAtMs: now,
      rotationRequestedAtMs: 0,
      supersededFrom: 0,
      supersededAtMs: NONE_SUPERSEDED,
      createdAtMs: Math.floor(now / 1000) * 1000,
      absoluteExpiryMs: Math.floor((now + p.absoluteTtlSeconds * 1000) / 1000) * 1000,
      expiresAtMs: now + ttlMs,
      userAgent: input.userAgent,
      // A copy: an address cut from X-Forwarded-For would keep the whole header alive with the session.
      ip: copyString(input.ip),
      email: input.email,
      limitWindowStartMs: 0,
      limitCount: 0,
      replacedBy: null
    })
    const evictedFamilyIds: string[] = []
    // Families about to be replaced neither count against the cap nor are evicted for it (CreateFamilyInput.replacing),
    // nor are those another sign-in is replacing meanwhile, while the family replacing each lives.
    for (const id of input.replacing ?? []) {
      const replaced = families.get(id)
      // Those of the replacing families that have ended are dropped: a refused sign-in's gives its place back.
      if (replaced !== undefined && id !== input.familyId) replaced.replacedBy = [...(replaced.replacedBy ?? []).filter((by) => families.has(by)), input.familyId]
    }
    // Looked for only at the cap, as on Redis: below it, a sign-in reads nothing of the user's other families.
    const going = families.size > p.maxFamiliesPerUser ? beingReplaced(families) : new Set<string>()
    const excess = families.size - going.size - p.maxFamiliesPerUser
    if (excess > 0) {
      const byLastUse = [...families].filter(([id]) => id !== input.familyId && !going.has(id)).sort((a, b) => a[1].rotatedAtMs - b[1].rotatedAtMs)
      for (const [id] of byLastUse.slice(0, excess)) {
        families.delete(id)
        evictedFamilyIds.push(id)
      }
      this.#recordEnded(input.userId, evictedFamilyIds, now)
    }
    return { ttlSeconds: Math.floor(ttlMs / 1000), evictedFamilyIds }
  }

  async rotate (input: RotateInput): Promise<RotateResult> {
    const now = this.#now()
    const families = this.#live(input.userId, now)
    const f = families?.get(input.familyId)
    if (families === undefined || f === undefined) {
      return (this.#replaced.get(`${input.userId}:${input.familyId}`) ?? 0) > now ? { status: 'superseded' } : { status: 'invalid' }
    }

    const limitWindowMs = this.#policy.refreshLimit.windowSeconds * 1000
    if (now - f.limitWindowStartMs >= limitWindowMs) {
      f.limitWindowStartMs = now
      f.limitCount = 0
    }
    if (f.limitCount >= this.#policy.refreshLimit.max) {
      return { status: 'limited', retryAfterSeconds: Math.max(1, Math.ceil((f.limitWindowStartMs + limitWindowMs - now) / 1000)) }
    }
    f.limitCount += 1

    // A later generation than the store's rotates too (src/lua/family-rotate.lua says why).
    if (input.generation >= f.generation) {
      if (input.generation === f.generation && f.current !== input.presentedHash) return { status: 'invalid' }
      const ttlMs = Math.min(this.#policy.idleTtlSeconds * 1000, f.absoluteExpiryMs - now)
      if (ttlMs <= 0) {
        families.delete(input.familyId)
        return { status: 'invalid' }
      }
      const graceMs = this.#policy.reuseGraceSeconds * 1000
      if (graceMs > 0 && now - f.rotatedAtMs < graceMs && f.generation > 0) {
        // Generations the store lost (a token ahead of it) were superseded after its latest rotation.
        const times = [...f.supersededAtMs, ...Array<number>(input.generation - f.generation + 1).fill(f.rotatedAtMs)]
        // Past the window, or past the cap, as family-rotate.lua lets them go; the latest is within the window.
        const keep = Math.max(times.findIndex((at) => now - at < graceMs), times.length - SUPERSEDED_TIMES_KEPT)
        f.supersededFrom = input.generation - times.length + keep
        f.supersededAtMs = times.slice(keep)
      } else {
        f.supersededAtMs = NONE_SUPERSEDED
      }
      f.current = input.successorHash
      f.generation = input.generation + 1
      f.rotatedAtMs = now
      f.rotationRequestedAtMs = input.requestedAtMs
      f.expiresAtMs = now + ttlMs
      f.userAgent = input.userAgent
      if (f.ip !== input.ip) f.ip = copyString(input.ip)
      return { status: 'rotated', ttlSeconds: Math.floor(ttlMs / 1000), email: f.email }
    }

    const graceMs = this.#policy.reuseGraceSeconds * 1000
    // No parent hash kept: a genuine previous-generation token whose successor is current is the parent.
    if (input.generation === f.generation - 1 && graceMs > 0 && now - f.rotatedAtMs < graceMs &&
        f.current === input.successorHash) {
      return { status: 'grace', ttlSeconds: Math.floor((f.expiresAtMs - now) / 1000), email: f.email }
    }

    // Asked for before the latest rotation was: a late attempt of the caller's own, not a replay; or superseded
    // within the grace window, by concurrent requests (family-rotate.lua).
    if (input.requestedAtMs < f.rotationRequestedAtMs) return { status: 'superseded' }
    const supersededAtMs = input.generation === f.generation - 1 ? f.rotatedAtMs : f.supersededAtMs[input.generation - f.supersededFrom]
    if (graceMs > 0 && supersededAtMs !== undefined && now - supersededAtMs < graceMs) return { status: 'superseded' }
    families.delete(input.familyId)
    this.#recordEnded(input.userId, [input.familyId], now)
    return { status: 'reused' }
  }

  async revoke (userId: string, familyId: string): Promise<boolean> {
    return this.#revoke(userId, familyId, this.#now())
  }

  async replace (userId: string, familyId: string): Promise<boolean> {
    const now = this.#now()
    const revoked = this.#revoke(userId, familyId, now)
    const graceMs = this.#policy.reuseGraceSeconds * 1000
    if (revoked && graceMs > 0) this.#replaced.set(`${userId}:${familyId}`, now + graceMs)
    return revoked
  }

  async revokeAll (userId: string): Promise<string[]> {
    const now = this.#now()
    const families = this.#live(userId, now)
    if (families === undefined) return []
    const revoked = [...families.keys()]
    this.#users.delete(userId)
    this.#recordEnded(userId, revoked, now)
    return revoked
  }

  async revokeOthers (userId: string, keptFamilyId: string): Promise<string[] | null> {
    const now = this.#now()
    const families = this.#live(userId, now)
    if (families?.has(keptFamilyId) !== true) return null
    const revoked = [...families.keys()].filter((id) => id !== keptFamilyId)
    for (const id of revoked) families.delete(id)
    this.#recordEnded(userId, revoked, now)
    return revoked
  }

  async recentlyEnded (userId: string): Promise<string[]> {
    return [...this.#endedOf(userId, this.#now())?.keys() ?? []]
  }

  async list (userId: string): Promise<FamilySummary[]> {
    const families = this.#live(userId, this.#now())
    if (families === undefined) return []
    return [...families]
      .sort((a, b) => b[1].rotatedAtMs - a[1].rotatedAtMs)
      .map(([familyId, f]) => ({
        familyId,
        createdAtMs: f.createdAtMs,
        lastUsedAtMs: f.rotatedAtMs,
        expiresAtMs: f.expiresAtMs,
        userAgent: f.userAgent,
        ip: f.ip
      }))
  }

  async isLive (userId: string, familyId: string): Promise<boolean> {
    return this.#live(userId, this.#now())?.has(familyId) ?? false
  }

  async ping (): Promise<void> {}

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    this.#users.clear()
    this.#ended.clear()
    this.#replaced.clear()
  }

  /** Drops every expired family, ended ones no longer remembered and replaced ones past their window; runs on a timer so memory stays bounded without traffic. */
  sweep (): void {
    const now = this.#now()
    for (const userId of this.#users.keys()) this.#live(userId, now)
    for (const userId of this.#ended.keys()) this.#endedOf(userId, now)
    for (const [key, until] of this.#replaced) {
      if (until <= now) this.#replaced.delete(key)
    }
  }

  /** Number of live families, for tests and metrics. */
  get size (): number {
    let n = 0
    for (const families of this.#users.values()) n += families.size
    return n
  }

  #revoke (userId: string, familyId: string, now: number): boolean {
    const revoked = this.#live(userId, now)?.delete(familyId) ?? false
    if (revoked) this.#recordEnded(userId, [familyId], now)
    return revoked
  }

  #recordEnded (userId: string, familyIds: string[], now: number): void {
    if (familyIds.length === 0) return
    // Copies: the ids given are often cut from a request's Cookie header, which they would keep alive.
    let ended = this.#endedOf(userId, now)
    if (ended === undefined) {
      ended = new Map<string, number>()
      this.#ended.set(copyString(userId), ended)
    }
    for (const id of familyIds) ended.set(copyString(id), now)
  }

  #endedOf (userId: string, now: number): Map<string, number> | undefined {
    const ended = this.#ended.get(userId)
    if (ended === undefined) return undefined
    for (const [id, at] of ended) {
      if (at <= now - this.#policy.rememberEndedMs) ended.delete(id)
    }
    if (ended.size === 0) {
      this.#ended.delete(userId)
      return undefined
    }
    return ended
  }

  #live (userId: string, now: number): Map<string, FamilyRecord> | undefined {
    const families = this.#users.get(userId)
    if (families === undefined) return undefined
    for (const [id, f] of families) {
      if (f.expiresAtMs <= now) families.delete(id)
    }
    if (families.size === 0) {
      this.#users.delete(userId)
      return undefined
    }
    return families
  }
}
