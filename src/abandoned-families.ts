import { StoreUnavailableError } from './errors.js'
import type { FamilyStore } from './family-store.js'
import { StoreNotReachedError } from './redis-client.js'

interface Logger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

interface Pending {
  userId: string
  /** No late create of the family can run after this (epoch ms): a revoke from then on is final. */
  settledAtMs: number
}

export interface AbandonedFamiliesOptions {
  log: Logger
  /** How often the families the store has not ended yet are tried again. */
  retryMs?: number
  /** Families remembered at most; beyond it the oldest is left to its idle TTL. */
  max?: number
}

/** Whether an operation that failed with `err` may have run, or may still run late. */
export function mayHaveRun (err: unknown): boolean {
  return !(err instanceof StoreUnavailableError && err.cause instanceof StoreNotReachedError)
}

/**
 * Families created for a login that was not answered with their token. No one holds one, yet it would be listed among
 * the user's sessions (and count towards the per-user cap) until its idle TTL: each is ended once the store answers.
 * A create the store failed to answer may still run after that (FamilyStore.lateWritesMs), so such a family is ended
 * again once no late create can run, and only that end is final.
 */
export class AbandonedFamilies {
  readonly #store: FamilyStore
  readonly #log: Logger
  readonly #retryMs: number
  readonly #max: number
  /** By family id, oldest first. */
  readonly #pending = new Map<string, Pending>()
  #timer: NodeJS.Timeout | undefined
  #sweeping: Promise<void> | undefined
  #closed = false

  constructor (store: FamilyStore, options: AbandonedFamiliesOptions) {
    this.#store = store
    this.#log = options.log
    this.#retryMs = options.retryMs ?? 1000
    this.#max = options.max ?? 10_000
  }

  /**
   * Ends the family now if the store answers, and retries in the background until it has ended for good; never
   * rejects. `createAnswered`: the store answered its create, so it cannot run late.
   */
  async end (userId: string, familyId: string, createAnswered: boolean): Promise<void> {
    const settledAtMs = createAnswered ? 0 : Date.now() + this.#store.lateWritesMs
    // A login still in flight at shutdown: one try, as close() gave the others; the store is closing too.
    if (this.#closed) {
      await this.#revoke(userId, familyId)
      return
    }
    if (this.#pending.size >= this.#max) {
      const [oldest] = this.#pending.keys()
      this.#pending.delete(oldest!)
      this.#log.warn({ max: this.#max }, 'too many sessions of unanswered logins to end; the oldest is left to its idle timeout')
    }
    this.#pending.set(familyId, { userId, settledAtMs })
    this.#timer ??= setInterval(() => { this.#sweep(false).catch(() => {}) }, this.#retryMs).unref()
    if (await this.#revoke(userId, familyId) && settledAtMs <= Date.now()) this.#pending.delete(familyId)
  }

  /** Families not yet ended for good. */
  get size (): number {
    return this.#pending.size
  }

  /** One last try at every family still pending, settled or not: what the store takes now is better than nothing. */
  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#sweeping
    await this.#sweep(true)
    if (this.#pending.size > 0) this.#log.warn({ count: this.#pending.size }, 'sessions of unanswered logins left to their idle timeout')
  }

  async #sweep (all: boolean): Promise<void> {
    if (this.#sweeping !== undefined) return
    const now = Date.now()
    const due = [...this.#pending].filter(([, p]) => all || p.settledAtMs <= now)
    this.#sweeping = (async () => {
      let ended = 0
      // In batches: after a long outage thousands may be due, and one batch is one socket write (auto-pipelining).
      for (let i = 0; i < due.length; i += 100) {
        await Promise.all(due.slice(i, i + 100).map(async ([familyId, { userId }]) => {
          if (!await this.#revoke(userId, familyId)) return
          this.#pending.delete(familyId)
          ended++
        }))
      }
      if (ended > 0) this.#log.info({ count: ended }, 'ended the sessions of logins that were not answered')
      if (this.#pending.size === 0) {
        clearInterval(this.#timer)
        this.#timer = undefined
      }
    })().finally(() => { this.#sweeping = undefined })
    await this.#sweeping
  }

  /** True once the store has answered: the family is gone, whether it was there or not. */
  async #revoke (userId: string, familyId: string): Promise<boolean> {
    try {
      await this.#store.revoke(userId, familyId)
      return true
    } catch {
      return false
    }
  }
}
