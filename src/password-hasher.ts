import { randomBytes } from 'node:crypto'
import argon2 from 'argon2'
import pLimit, { type LimitFunction } from 'p-limit'
import { HashingBusyError } from './errors.js'

/** The head of a PHC-format argon2 hash: `$argon2id$v=19$m=19456,p=1,t=2$<salt>$<hash>` (parameters in any order). */
const PHC = /^\$(argon2(?:id|i|d))\$v=([0-9]+)\$([a-z]=[0-9]+(?:,[a-z]=[0-9]+)*)\$/
/** 0x13, the version argon2 hashes with. */
const ARGON2_VERSION = 19

export interface Argon2Params {
  memoryCost: number
  timeCost: number
  parallelism: number
  /** Hashes allowed in flight at once; the rest wait their turn. */
  maxConcurrency: number
  /** Hashes allowed to wait for a slot; one more is refused at once (HashingBusyError). */
  maxQueue: number
}

/**
 * argon2id hashing with bounded concurrency.
 * Argon2 saturates a libuv thread per hash; unbounded, a login flood would queue
 * behind it every other task that uses the threadpool and starve the event loop.
 * The queue is bounded too, and a hash whose caller has gone (its `signal` aborted) is dropped before it starts:
 * under a flood that outlasts clients' patience, the slots would otherwise go to requests no one awaits any more,
 * and every login would time out.
 */
export class PasswordHasher {
  readonly #options: argon2.HashOptions
  readonly #limit: LimitFunction
  readonly #maxQueue: number
  #dropped = 0
  #refused = 0
  #dummyHash: Promise<string> | null = null

  constructor (params: Argon2Params) {
    this.#options = {
      type: argon2.argon2id,
      memoryCost: params.memoryCost,
      timeCost: params.timeCost,
      parallelism: params.parallelism
    }
    this.#limit = pLimit(params.maxConcurrency)
    this.#maxQueue = params.maxQueue
  }

  /** Computes the hash compared against when an email is unknown, so both paths cost one argon2 verification. */
  async warmUp (): Promise<void> {
    await this.#dummy()
  }

  hash (password: string, signal?: AbortSignal): Promise<string> {
    return this.#run(() => argon2.hash(normalizePassword(password), this.#options), signal)
  }

  /** Constant-work verification: with `hash` null it verifies against a dummy hash and returns false. */
  async verify (hash: string | null, password: string, signal?: AbortSignal): Promise<boolean> {
    const target = hash ?? await this.#dummy()
    const ok = await this.#run(async () => {
      try {
        return await argon2.verify(target, normalizePassword(password))
      } catch {
        // A corrupt stored hash must read as a failed login, not a 500.
        return false
      }
    }, signal)
    return ok && hash !== null
  }

  /**
   * True when a stored hash is weaker than one made now: another variant or version of argon2, less memory or
   * fewer passes. Never for a stronger one: in a fleet midway through a deploy of new parameters, the instances
   * still on the old ones would otherwise undo at every login the upgrades the others made. So lowering the
   * parameters applies to new passwords only.
   */
  needsRehash (hash: string): boolean {
    const stored = PHC.exec(hash)
    // Not an argon2 hash at all: nothing verifies against it, so nothing is ever rehashed from it.
    if (stored === null) return false
    const [, variant, version, list] = stored as unknown as [string, string, string, string]
    const param = (name: string): number => Number(new RegExp(`(?:^|,)${name}=([0-9]+)(?:,|$)`).exec(list)?.[1] ?? 0)
    return variant !== 'argon2id' || Number(version) !== ARGON2_VERSION ||
      param('m') < (this.#options.memoryCost ?? 0) || param('t') < (this.#options.timeCost ?? 0)
  }

  /** Hashes waiting for a slot; exposed for metrics and tests. */
  get pending (): number {
    return this.#limit.pendingCount
  }

  /** Hashes in their slots, computing. */
  get running (): number {
    return this.#limit.activeCount
  }

  /** Hashes dropped before they started, their callers gone. */
  get dropped (): number {
    return this.#dropped
  }

  /** Hashes refused at once, the queue full. */
  get refused (): number {
    return this.#refused
  }

  /** Queues `work` for a slot, unless the queue is full; skips it, rejecting with the signal's reason, if aborted by then. */
  #run<T> (work: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    // Counted together: p-limit starts a queued task a microtask later, so in one burst all of it shows as pending.
    if (this.#limit.pendingCount + this.#limit.activeCount >= this.#limit.concurrency + this.#maxQueue) {
      this.#refused++
      return Promise.reject(new HashingBusyError())
    }
    return this.#limit(async () => {
      if (signal?.aborted === true) {
        this.#dropped++
        throw signal.reason
      }
      return await work()
    })
  }

  #dummy (): Promise<string> {
    this.#dummyHash ??= argon2.hash(randomBytes(32).toString('base64url'), this.#options)
    return this.#dummyHash
  }
}

/**
 * The form of a password that is hashed and verified: NFKC, as NIST SP 800-63B (5.1.1.2) advises for secrets
 * with Unicode characters. The same typed password reaches the service composed from one keyboard or system and
 * decomposed from another ("é" as one code point or as "e" and a combining accent), and would otherwise be a
 * different password there.
 */
function normalizePassword (password: string): string {
  return password.normalize('NFKC')
}
