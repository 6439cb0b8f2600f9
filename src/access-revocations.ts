import { Cluster, ReplyError } from 'ioredis'
import type { RevocationList } from './revocation-list.js'
import { closeOnRefusedSelect, type RedisClient } from './redis-client.js'

/**
 * Makes the access tokens of revoked families fail on every instance within a second,
 * while checking a token stays an in-memory lookup (no Redis call per protected request).
 */
export interface AccessRevocations {
  /** Refuses, from now on, the access tokens of these families; never throws. */
  revoke (familyIds: string[]): Promise<void>
  isRevoked (familyId: string): boolean
  /** Revocations not yet told to the other instances (the store did not take them): retried until it does. */
  readonly pending: number
  close (): Promise<void>
}

interface Revocation {
  /** Until when the families' access tokens could be presented (epoch ms). */
  until: number
  familyIds: string[]
}

interface Logger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

/** How long a revocation must be remembered: the longest life of an access token, plus clock skew between instances. */
export function revocationTtlMs (accessTokenTtlSeconds: number): number {
  return accessTokenTtlSeconds * 1000 + 5000
}

/**
 * How often each instance checks its subscription and reads the revocations recorded since its last read: the
 * bound on how late it applies one whose message pub/sub lost (pub/sub delivers at most once).
 */
const CATCH_UP_MS = 1000

/** The longest wait before a failed resync is tried again, by default. */
const MAX_RESYNC_DELAY_MS = 30_000

/** Clock skew between instances that a catch-up allows for (as revocationTtlMs does). */
const CLOCK_SKEW_MS = 5000

/** `ACCESS_TOKEN_REVOCATION=off`: access tokens live out their TTL. */
export const noRevocations: AccessRevocations = {
  async revoke () {},
  isRevoked: () => false,
  pending: 0,
  async close () {}
}

/** One process: the list is the whole truth. */
export class LocalAccessRevocations implements AccessRevocations {
  constructor (readonly list: RevocationList, readonly ttlMs: number) {}

  async revoke (familyIds: string[]): Promise<void> {
    const until = Date.now() + this.ttlMs
    for (const id of familyIds) this.list.add(id, until)
  }

  isRevoked (familyId: string): boolean {
    return this.list.has(familyId)
  }

  /** None: there are no other instances to tell. */
  readonly pending = 0

  async close (): Promise<void> {
    this.list.close()
  }
}

/**
 * Every instance: revocations are recorded in a sorted set (member sid, score = expiry ms) and
 * published on a channel. Each instance applies what it hears, on every (re)connection of its
 * subscriber reloads the sorted set, so a restart or a dropped subscription opens no window, and every
 * second reads what was recorded since its last read, for the messages lost without a reconnection it
 * could see (a Redis Cluster moves its subscription to another node silently).
 */
export class RedisAccessRevocations implements AccessRevocations {
  readonly #redis: RedisClient
  readonly #subscriber: RedisClient
  readonly #list: RevocationList
  readonly #ttlMs: number
  readonly #key: string
  readonly #channel: string
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  /** When the last complete read of the set began (this instance's clock); 0 until the first. */
  #loadedAt = 0
  /** Revocations this instance could not record: retried every second until their tokens are dead. */
  #unsent: Revocation[] = []
  #retrying = false
  /** The resync's failures since it last succeeded, by message: each is said once. */
  readonly #resyncFailures = new Set<string>()
  readonly #maxResyncDelayMs: number
  /** The first wait after a failed resync, and the one after each success. */
  readonly #firstResyncDelayMs: number
  #resyncDelayMs: number
  #resyncTimer: NodeJS.Timeout | undefined

  constructor (redis: RedisClient, list: RevocationList, options: { keyPrefix: string, ttlMs: number, log: Logger, maxResyncDelayMs?: number }) {
    this.#maxResyncDelayMs = options.maxResyncDelayMs ?? MAX_RESYNC_DELAY_MS
    this.#firstResyncDelayMs = Math.min(CATCH_UP_MS, this.#maxResyncDelayMs)
    this.#resyncDelayMs = this.#firstResyncDelayMs
    this.#redis = redis
    this.#list = list
    this.#ttlMs = options.ttlMs
    this.#key = `${options.keyPrefix}revoked-sids`
    this.#channel = `${options.keyPrefix}revoked-sids`
    this.#log = options.log
    // A connection of its own: a subscribed connection serves nothing else.
    this.#subscriber = redis instanceof Cluster
      ? redis.duplicate(undefined, { lazyConnect: true })
      // Closed, as the main connection is, while the server refuses its database: the two come back together.
      : closeOnRefusedSelect(redis.duplicate({ autoResubscribe: false, lazyConnect: true }))
    this.#subscriber.on('error', () => {}) // the main connection already reports Redis outages
    this.#subscriber.on('message', (_channel: string, message: string) => this.#apply(message))
    this.#subscriber.on('ready', () => {
      // One retry pending at most: a reconnection resyncs now, in its place.
      clearTimeout(this.#resyncTimer)
      this.#resync().catch(() => {})
    })
  }

  async start (): Promise<void> {
    // Not awaited: the list is loaded on 'ready' either way, and through Sentinels connect() does not settle
    // while none answers. Down at start, the subscriber keeps reconnecting and resyncs when it is back.
    this.#subscriber.connect().catch(() => {})
    this.#timer = setInterval(() => {
      // A subscribed connection only listens, so a server gone silent (frozen, cut off) would go unnoticed for as
      // long as TCP takes to give up. An unanswered PING makes the client close the connection (its socketTimeout)
      // and connect again — through Sentinels, to the master they name now. (A cluster's subscription is on a
      // connection of ioredis's own, which it moves when the slot map drops that node.)
      if (!(this.#subscriber instanceof Cluster) && this.#subscriber.status === 'ready') this.#subscriber.ping().catch(() => {})
      // Nothing to read from or write to while the client is not ready; the subscriber resyncs when it is back.
      if (this.#redis.status !== 'ready') return
      this.#catchUp().catch(() => {})
      this.#retryUnsent().catch(() => {})
    }, CATCH_UP_MS).unref()
  }

  async revoke (familyIds: string[]): Promise<void> {
    if (familyIds.length === 0) return
    const until = Date.now() + this.#ttlMs
    for (const id of familyIds) this.#list.add(id, until)
    try {
      await this.#broadcast({ until, familyIds })
    } catch (err) {
      // The families are revoked in the store already; only other instances' view of their access tokens lags,
      // until a retry gets through (every second, for as long as the tokens could live).
      this.#log.error({ err, count: familyIds.length }, 'could not broadcast access-token revocation; retrying')
      this.#unsent.push({ until, familyIds })
    }
  }

  /**
   * Records, then announces. The record is what tells the other instances: they read it on every resync and every
   * second (catchUp). The announcement only makes it immediate, and is not retried: when it is refused (an ACL
   * without the channel, where it was sent in the record's transaction, aborted it) the record still reaches them.
   */
  async #broadcast ({ until, familyIds }: Revocation): Promise<void> {
    const recorded = this.#redis.multi()
      .zadd(this.#key, ...familyIds.flatMap((id) => [until, id]))
      .zremrangebyscore(this.#key, '-inf', Date.now())
      .pexpire(this.#key, this.#ttlMs)
      .exec()
    // Not awaited, and its failure not the caller's: the message carries the revocation itself, to whoever hears it.
    this.#redis.publish(this.#channel, `${until} ${familyIds.join(' ')}`).catch(() => {})
    await recorded
  }

  async #retryUnsent (): Promise<void> {
    if (this.#retrying || this.#unsent.length === 0) return
    this.#retrying = true
    const now = Date.now()
    this.#unsent = this.#unsent.filter((r) => r.until > now) // past `until`, no access token of theirs is left
    try {
      // Each stays counted (`pending`) until it is broadcast; one made meanwhile joins the queue.
      for (let revocation = this.#unsent[0]; revocation !== undefined; revocation = this.#unsent[0]) {
        try {
          await this.#broadcast(revocation)
        } catch {
          return // still unreachable: the rest waits for the next round
        }
        this.#unsent.shift()
        this.#log.warn({ count: revocation.familyIds.length }, 'access-token revocation broadcast on retry')
      }
    } finally {
      this.#retrying = false
    }
  }

  isRevoked (familyId: string): boolean {
    return this.#list.has(familyId)
  }

  get pending (): number {
    return this.#unsent.length
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    clearTimeout(this.#resyncTimer)
    this.#subscriber.disconnect()
    this.#list.close()
  }

  #apply (message: string): void {
    const [until, ...ids] = message.split(' ')
    const untilMs = Number(until)
    if (!Number.isFinite(untilMs)) return
    for (const id of ids) this.#list.add(id, untilMs)
  }

  /** Applies the live revocations scoring at least `min`, and notes when this read began. */
  async #load (min: number): Promise<void> {
    const startedAt = Date.now()
    const entries = await this.#redis.zrangebyscore(this.#key, Math.max(min, startedAt), '+inf', 'WITHSCORES')
    for (let i = 0; i + 1 < entries.length; i += 2) this.#list.add(entries[i] as string, Number(entries[i + 1]))
    this.#loadedAt = startedAt
  }

  async #catchUp (): Promise<void> {
    // Never loaded (the resync's load was refused, and it backs off): all of it, as soon as the store serves.
    // A revocation scores the revoking instance's clock + the TTL: one recorded since the last read began scores at
    // least this (instances share ACCESS_TOKEN_TTL).
    await this.#load(this.#loadedAt === 0 ? 0 : this.#loadedAt + this.#ttlMs - CLOCK_SKEW_MS)
  }

  /**
   * Subscribes, then loads the record: a revocation published in between is seen at least once. A subscription
   * refused (an ACL without the channel) does not keep the record from being loaded, and read every second after
   * (catchUp): revocations then reach this instance within a second, not at once. Tried again, less and less
   * often, until both are done; each failure said once. (A refused load is made by the catch-up as soon as it can.)
   */
  async #resync (): Promise<void> {
    const subscribing = await this.#subscriber.subscribe(this.#channel).then(() => null, (err: Error) => err)
    const loading = await this.#load(0).then(() => null, (err: Error) => err)
    const failure = loading ?? subscribing
    if (failure === null) {
      if (this.#resyncFailures.size > 0) this.#log.info({}, 'access-token revocation resync done')
      this.#resyncFailures.clear()
      this.#resyncDelayMs = this.#firstResyncDelayMs
      return
    }
    if (!this.#resyncFailures.has(failure.message)) {
      this.#resyncFailures.add(failure.message)
      // Refused by the server (NOPERM), not lost with a connection: the operator's to grant.
      if (loading !== null || !(subscribing instanceof ReplyError)) this.#log.warn({ err: failure }, 'access-token revocation resync failed; retrying')
      else this.#log.error({ err: failure }, `the subscription to ${this.#channel} was refused: other instances' access-token revocations reach this one within a second (read from the store), not at once, until it is granted (the README's ACL grants the channel); retrying`)
    }
    if (this.#subscriber.status !== 'ready') return // it resyncs when it is back
    clearTimeout(this.#resyncTimer)
    this.#resyncTimer = setTimeout(() => { this.#resync().catch(() => {}) }, this.#resyncDelayMs).unref()
    this.#resyncDelayMs = Math.min(2 * this.#resyncDelayMs, this.#maxResyncDelayMs)
  }
}
