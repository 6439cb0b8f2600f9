import { randomBytes } from 'node:crypto'
import argon2 from 'argon2'
import pLimit, { type LimitFunction } from 'p-limit'

export interface Argon2Params {
  memoryCost: number
  timeCost: number
  parallelism: number
  /** Hashes allowed in flight at once; the rest wait their turn. */
  maxConcurrency: number
}

/**
 * argon2id hashing with bounded concurrency.
 * Argon2 saturates a libuv thread per hash; unbounded, a login flood would queue
 * behind it every other task that uses the threadpool and starve the event loop.
 */
export class PasswordHasher {
  readonly #options: argon2.HashOptions
  readonly #limit: LimitFunction
  #dummyHash: Promise<string> | null = null

  constructor (params: Argon2Params) {
    this.#options = {
      type: argon2.argon2id,
      memoryCost: params.memoryCost,
      timeCost: params.timeCost,
      parallelism: params.parallelism
    }
    this.#limit = pLimit(params.maxConcurrency)
  }

  /** Computes the hash compared against when an email is unknown, so both paths cost one argon2 verification. */
  async warmUp (): Promise<void> {
    await this.#dummy()
  }

  hash (password: string): Promise<string> {
    return this.#limit(() => argon2.hash(normalizePassword(password), this.#options))
  }

  /** Constant-work verification: with `hash` null it verifies against a dummy hash and returns false. */
  async verify (hash: string | null, password: string): Promise<boolean> {
    const target = hash ?? await this.#dummy()
    const ok = await this.#limit(async () => {
      try {
        return await argon2.verify(target, normalizePassword(password))
      } catch {
        // A corrupt stored hash must read as a failed login, not a 500.
        return false
      }
    })
    return ok && hash !== null
  }

  /** True when a stored hash was made with other parameters than the configured ones. */
  needsRehash (hash: string): boolean {
    try {
      return argon2.needsRehash(hash, this.#options)
    } catch {
      return false
    }
  }

  /** Hashes waiting for a slot; exposed for metrics and tests. */
  get pending (): number {
    return this.#limit.pendingCount
  }

  /** Hashes in their slots, computing. */
  get running (): number {
    return this.#limit.activeCount
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
