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
    const entry = this.#live(subject)
    const failures = entry?.count ?? 0
    const blocked = entry !== undefined && failures >= this.#max
    return { failures, blocked, retryAfterSeconds: blocked ? Math.ceil((entry.resetAtMs - this.#now()) / 1000) : 0 }
  }

  async recordFailure (subject: string): Promise<void> {
    const entry = this.#live(subject)
    if (entry === undefined) {
      // Expired entries are dropped on the way: the map holds only subjects failing right now.
      if (this.#entries.size > 10_000) for (const key of this.#entries.keys()) this.#live(key)
      this.#entries.set(subject, { count: 1, resetAtMs: this.#now() + this.#windowMs })
    } else {
      entry.count += 1
    }
  }

  async reset (subject: string): Promise<void> {
    this.#entries.delete(subject)
  }

  #live (subject: string) {
    const entry = this.#entries.get(subject)
    if (entry !== undefined && entry.resetAtMs <= this.#now()) {
      this.#entries.delete(subject)
      return undefined
    }
    return entry
  }
}
