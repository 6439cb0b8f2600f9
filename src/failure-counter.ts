import { createHash } from 'node:crypto'
import type { Result } from 'ioredis'
import { guardStore, type RedisClient } from './redis-client.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    authFailureRecord (key: string, windowMs: number): Result<[number, number], Context>
  }
}

export interface FailureState {
  /** Failures counted in the current window; 0 when none, and nothing to reset. */
  failures: number
  blocked: boolean
  /** Seconds until the window ends and the counter starts over (when blocked). */
  retryAfterSeconds: number
}

/**
 * Counts failed attempts per subject (an account) in a fixed window that starts at the first
 * failure and then expires on its own: the lock decays, so an attacker can hold an account for
 * at most one window after their last attempt. Success resets it.
 * (@fastify/rate-limit counts requests, not failures, and cannot reset a key.)
 */
export interface FailureCounter {
  check (subject: string): Promise<FailureState>
  recordFailure (subject: string): Promise<void>
  reset (subject: string): Promise<void>
}

const RECORD = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { n, redis.call('PTTL', KEYS[1]) }
`

export class RedisFailureCounter implements FailureCounter {
  readonly #redis: RedisClient
  readonly #prefix: string
  readonly #max: number
  readonly #windowMs: number

  constructor (redis: RedisClient, options: { keyPrefix: string, name: string, max: number, windowSeconds: number }) {
    this.#redis = redis
    this.#prefix = `${options.keyPrefix}failures:${options.name}:`
    this.#max = options.max
    this.#windowMs = options.windowSeconds * 1000
    if (typeof redis.authFailureRecord !== 'function') redis.defineCommand('authFailureRecord', { numberOfKeys: 1, lua: RECORD })
  }

  async check (subject: string): Promise<FailureState> {
    const key = this.#key(subject)
    const [count, ttl] = await guardStore(this.#redis, () => Promise.all([this.#redis.get(key), this.#redis.pttl(key)]))
    const failures = ttl > 0 ? Number(count ?? 0) : 0
    const blocked = failures >= this.#max
    return { failures, blocked, retryAfterSeconds: blocked ? Math.ceil(ttl / 1000) : 0 }
  }

  async recordFailure (subject: string): Promise<void> {
    await guardStore(this.#redis, () => this.#redis.authFailureRecord(this.#key(subject), this.#windowMs))
  }

  async reset (subject: string): Promise<void> {
    await guardStore(this.#redis, () => this.#redis.del(this.#key(subject)))
  }

  // A digest, so no email address appears in a key name.
  #key (subject: string): string {
    return this.#prefix + createHash('sha256').update(subject).digest('base64url')
  }
}

export class MemoryFailureCounter implements FailureCounter {
  readonly #entries = new Map<string, { count: number, resetAtMs: number }>()
  readonly #max: number
  readonly #windowMs: number
  readonly #now: () => number

  constructor (options: { max: number, windowSeconds: number, now?: () => number }) {
    this.#max = options.max
    this.#windowMs = options.windowSeconds * 1000
    this.#now = options.now ?? Date.now
  }

  async check (subject: string): Promise<FailureState> {
    const now = this.#now()
    const entry = this.#live(subject, now)
    const failures = entry?.count ?? 0
    const blocked = entry !== undefined && failures >= this.#max
    return { failures, blocked, retryAfterSeconds: blocked ? Math.ceil((entry.resetAtMs - now) / 1000) : 0 }
  }

  async recordFailure (subject: string): Promise<void> {
    const now = this.#now()
    const entry = this.#live(subject, now)
    if (entry === undefined) {
      this.#dropEnded(now)
      this.#entries.set(subject, { count: 1, resetAtMs: now + this.#windowMs })
    } else {
      entry.count += 1
    }
  }

  /**
   * Every window is as long, and an entry is set anew when its window starts, so the map's order is the order the
   * windows end: the ended ones are at its front, and dropping them costs one step each, not a pass over the map.
   * So it holds only subjects failing right now, however many a guessing spree names.
   */
  #dropEnded (now: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.resetAtMs > now) return
      this.#entries.delete(key)
    }
  }

  async reset (subject: string): Promise<void> {
    this.#entries.delete(subject)
  }

  #live (subject: string, now: number) {
    const entry = this.#entries.get(subject)
    if (entry !== undefined && entry.resetAtMs <= now) {
      this.#entries.delete(subject)
      return undefined
    }
    return entry
  }
}

/** A counter one attempt counts toward, under its key. `keptOnSuccess`: the attempt's success leaves its failures. */
export interface FailureLimit {
  counter: FailureCounter
  key: string
  keptOnSuccess?: boolean
}

/**
 * The counters one attempt (a password checked) is held to, read together: while any is at its limit the attempt
 * waits, until none is; a failure counts toward each; a success resets those that hold failures (most attempts find
 * none, and are spared the writes), except those it keeps.
 */
export class FailureLimits {
  readonly #limits: readonly FailureLimit[]
  readonly #states: readonly FailureState[]

  private constructor (limits: readonly FailureLimit[], states: readonly FailureState[]) {
    this.#limits = limits
    this.#states = states
  }

  static async read (limits: readonly FailureLimit[]): Promise<FailureLimits> {
    // In parallel: with a stalled Redis each sequential call would add a full command timeout.
    return new FailureLimits(limits, await Promise.all(limits.map((limit) => limit.counter.check(limit.key))))
  }

  /**
   * Null when no counter is at its limit; else the seconds until the last of those that are ends its window (the
   * attempt's Retry-After): an answer naming the first to end would send the client back to a 429.
   */
  get blockedForSeconds (): number | null {
    const blocked = this.#states.filter((state) => state.blocked)
    return blocked.length === 0 ? null : Math.max(...blocked.map((state) => state.retryAfterSeconds))
  }

  async recordFailure (): Promise<void> {
    await Promise.all(this.#limits.map((limit) => limit.counter.recordFailure(limit.key)))
  }

  async recordSuccess (): Promise<void> {
    await Promise.all(this.#limits.map((limit, i) =>
      limit.keptOnSuccess !== true && (this.#states[i] as FailureState).failures > 0 && limit.counter.reset(limit.key)))
  }
}
