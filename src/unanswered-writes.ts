import { performance } from 'node:perf_hooks'
import type { AccessRevocations } from './access-revocations.js'
import { StoreUnavailableError } from './errors.js'
import type { FamilyStore } from './family-store.js'
import { StoreNotReachedError } from './redis-client.js'

interface Logger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

interface FollowUp {
  /**
   * No late write can run after this (ms on the monotonic clock, performance.now(): a step of the wall clock must not
   * settle them early): only an attempt from then on is final.
   */
  settledAtMs: number
  /** Resolves once the store has answered. */
  attempt: () => Promise<unknown>
  /** Given to retry(): waits for the store only, no late write. */
  retried?: true
}

/**
 * How long one sweep keeps starting batches; the rest waits for the next. With the store stalled each batch waits out a
 * command timeout: thousands of follow-ups would otherwise hold a sweep, and a shutdown waiting on it, for minutes.
 */
const SWEEP_BUDGET_MS = 1000

export interface UnansweredWritesOptions {
  log: Logger
  /** How often follow-ups the store has not taken yet are tried again. */
  retryMs?: number
  /** Follow-ups remembered at most; beyond it the oldest is dropped. */
  max?: number
}

/** Whether an operation that failed with `err` may have run, or may still run late. */
export function mayHaveRun (err: unknown): boolean {
  return !(err instanceof StoreUnavailableError && err.cause instanceof StoreNotReachedError)
}

/**
 * What the service does about the store's writes it was not answered in time, which may still run after the caller
 * has been answered 503 (FamilyStore.lateWritesMs):
 * - a family created for a login that was not answered with its token is ended: no one holds it, yet it would be
 *   listed among the user's sessions (and count towards their cap) until its idle timeout;
 * - the access tokens of the families such a write ended (a revoke, a detected reuse, the per-user cap) are revoked,
 *   as they would have been had the store answered;
 * - the user's sessions that a change already made ends a second time (SessionService.revokeAllEventually) are ended,
 *   though that change was answered as made.
 * Each is done once no late write can run, and retried every second until the store takes it.
 */
export class UnansweredWrites {
  readonly #store: FamilyStore
  readonly #revocations: AccessRevocations
  readonly #log: Logger
  readonly #retryMs: number
  readonly #max: number
  /** Oldest first. */
  readonly #pending = new Map<string, FollowUp>()
  #timer: NodeJS.Timeout | undefined
  #sweeping: Promise<void> | undefined
  #closed = false
  /** The bound was hit since the last time nothing was pending: said once, not for every follow-up dropped. */
  #overflowed = false

  constructor (store: FamilyStore, revocations: AccessRevocations, options: UnansweredWritesOptions) {
    this.#store = store
    this.#revocations = revocations
    this.#log = options.log
    this.#retryMs = options.retryMs ?? 1000
    this.#max = options.max ?? 10_000
  }

  /**
   * Ends a family made for a login that will not be answered with it: now if the store answers, and again once its
   * create can no longer run late (`createAnswered`: it cannot). Never rejects.
   */
  async endFamily (userId: string, familyId: string, createAnswered: boolean): Promise<void> {
    const settledAtMs = createAnswered ? 0 : performance.now() + this.#store.lateWritesMs
    const attempt = () => this.#store.revoke(userId, familyId)
    this.#remember(`family ${familyId}`, { settledAtMs, attempt })
    if (await this.#try(attempt) && settledAtMs <= performance.now()) this.#pending.delete(`family ${familyId}`)
  }

  /** Revokes the access tokens of whatever the user's unanswered write ended, once it can no longer run late. */
  revokeEnded (userId: string): void {
    this.#remember(`ended ${userId}`, {
      settledAtMs: performance.now() + this.#store.lateWritesMs,
      attempt: async () => { await this.#revocations.revoke(await this.#store.recentlyEnded(userId)) }
    })
  }

  /**
   * Asks the store again every retry interval until it takes `attempt`, which it failed just now. Said in the log: the
   * caller was answered as if it had, and no error answer shows it.
   */
  retry (key: string, attempt: () => Promise<unknown>): void {
    this.#log.warn({ followUp: key }, 'the store did not take a write that follows a change already made; retrying until it does')
    this.#remember(key, { settledAtMs: 0, attempt, retried: true })
  }

  /** Follow-ups not yet done for good. */
  get size (): number {
    return this.#pending.size
  }

  /** Of them, the writes given to retry(): the others may wait for late writes to settle, these only for the store. */
  get retries (): number {
    let count = 0
    for (const followUp of this.#pending.values()) if (followUp.retried === true) count++
    return count
  }

  /** One last try at every follow-up, its late writes settled or not: what the store takes now is better than nothing. */
  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#sweeping
    await this.#sweep(true)
    if (this.#pending.size > 0) this.#log.warn({ count: this.#pending.size }, 'store writes that were not answered left unsettled at shutdown')
  }

  #remember (key: string, followUp: FollowUp): void {
    // At shutdown (a request still in flight): one try, as close() gave the others; the store is closing too.
    if (this.#closed) {
      this.#try(followUp.attempt).catch(() => {})
      return
    }
    this.#pending.delete(key) // a newer one of the same key goes last, with its own deadline
    if (this.#pending.size >= this.#max) {
      const [oldest] = this.#pending.keys()
      this.#pending.delete(oldest!)
      if (!this.#overflowed) this.#log.warn({ max: this.#max }, 'too many store writes that were not answered to follow up; the oldest are dropped')
      this.#overflowed = true
    }
    this.#pending.set(key, followUp)
    this.#timer ??= setInterval(() => { this.#sweep(false).catch(() => {}) }, this.#retryMs).unref()
  }

  async #sweep (all: boolean): Promise<void> {
    if (this.#sweeping !== undefined) return
    const now = performance.now()
    const due = [...this.#pending].filter(([, f]) => all || f.settledAtMs <= now)
    this.#sweeping = (async () => {
      let done = 0
      // In batches: after a long outage thousands may be due, and one batch is one socket write (auto-pipelining).
      for (let i = 0; i < due.length && performance.now() - now < SWEEP_BUDGET_MS; i += 100) {
        await Promise.all(due.slice(i, i + 100).map(async ([key, followUp]) => {
          if (!await this.#try(followUp.attempt) || this.#pending.get(key) !== followUp) return
          this.#pending.delete(key)
          done++
        }))
      }
      if (done > 0) this.#log.info({ count: done }, 'settled store writes that were not answered')
      if (this.#pending.size === 0) {
        clearInterval(this.#timer)
        this.#timer = undefined
        this.#overflowed = false
      }
    })().finally(() => { this.#sweeping = undefined })
    await this.#sweeping
  }

  /** True once the store has answered. */
  async #try (attempt: () => Promise<unknown>): Promise<boolean> {
    try {
      await attempt()
      return true
    } catch {
      return false
    }
  }
}
