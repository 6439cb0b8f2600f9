import { copyString } from './copy-string.js'

/**
 * Family ids (`sid`) whose access tokens must be refused, each only until the last access
 * token of that family has expired. Insertion order is expiry order (every entry lives the
 * same ACCESS_TOKEN_TTL), so sweeping stops at the first live entry: memory stays bounded
 * by the revocations of one access-token lifetime, whatever the total.
 */
export class RevocationList {
  readonly #untilMs = new Map<string, number>()
  readonly #now: () => number
  readonly #sweeper: NodeJS.Timeout

  constructor (options: { now?: () => number, sweepIntervalMs?: number } = {}) {
    this.#now = options.now ?? Date.now
    this.#sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 1000)
    this.#sweeper.unref()
  }

  /** Refuses tokens of `sid` until `untilMs`. */
  add (sid: string, untilMs: number): void {
    if (untilMs <= this.#now()) return
    const known = this.#untilMs.get(sid)
    if (known !== undefined && known >= untilMs) return
    // Re-insert so the entry moves to the end, keeping the map in expiry order.
    this.#untilMs.delete(sid)
    // A copy: the id given is often cut from a request's Cookie header, which it would keep alive.
    this.#untilMs.set(copyString(sid), untilMs)
  }

  has (sid: string): boolean {
    const until = this.#untilMs.get(sid)
    if (until === undefined) return false
    if (until > this.#now()) return true
    this.#untilMs.delete(sid)
    return false
  }

  sweep (): void {
    const now = this.#now()
    for (const [sid, until] of this.#untilMs) {
      if (until > now) break
      this.#untilMs.delete(sid)
    }
  }

  get size (): number {
    return this.#untilMs.size
  }

  close (): void {
    clearInterval(this.#sweeper)
    this.#untilMs.clear()
  }
}
