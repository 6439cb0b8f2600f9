import { performance } from 'node:perf_hooks'
import type { Result } from 'ioredis'
import { guardStore, luaScript, type RedisClient } from './redis-client.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    authClock (key: string): Result<[string, string], Context>
  }
}

/** How often the clock is read again while the store answers. */
const READ_EVERY_MS = 10_000

/** Readings taken on each (re)connection, of which the most precise is kept. */
const READINGS_ON_CONNECTION = 4

/**
 * How fast this instance's monotonic clock and Redis's clock may drift apart, as a fraction: NTP slews each by at
 * most 500 ppm. A reading's error bound grows by this much per millisecond of its age.
 */
const MAX_DRIFT = 0.001

interface Reading {
  /** Redis's clock minus this instance's monotonic clock (performance.now()), ms. */
  offsetMs: number
  /** When it was taken, on the monotonic clock. */
  takenAt: number
  /** Half the round trip it took: how far off it can be when taken. */
  errorMs: number
}

/**
 * Redis's clock, as every instance sharing the store reads it: the clock on which a refresh says when it was asked
 * for (RotateInput.requestedAtMs), so that instances on hosts whose wall clocks disagree still agree on the order of
 * two refreshes of one session (family-rotate.lua: a late attempt or a replay). Read every 10 s, on the server
 * that holds one key (the same node of a cluster for every instance), and kept between readings on the monotonic
 * clock, which no step of the wall clock moves.
 */
export class RedisClock {
  readonly #redis: RedisClient
  readonly #key: string
  readonly #timer: NodeJS.Timeout
  readonly #onReading: (skewMs: number) => void
  #reading: Reading | null = null
  /** The latest time given by a reading: never given back smaller. */
  #latest = 0
  #skewMs: number | null = null
  /**
   * Set by each (re)connection, perhaps to another server after a failover: the next use reads the clock afresh, and
   * the first of those readings replaces the one held. Read at the next use, not as the client connects: a cluster
   * client is ready before its connections to the nodes are, and a command it sends then is refused and resent to
   * another node, which redirects it (MOVED).
   */
  #unread = true
  #readingAfresh: Promise<void> | null = null
  readonly #markUnread = (): void => { this.#unread = true }

  constructor (redis: RedisClient, key: string, onReading: (skewMs: number) => void = () => {}) {
    this.#redis = redis
    this.#key = key
    this.#onReading = onReading
    if (typeof redis.authClock !== 'function') redis.defineCommand('authClock', { numberOfKeys: 1, lua: luaScript('clock') })
    redis.on('ready', this.#markUnread)
    this.#timer = setInterval(() => {
      if (redis.status === 'ready') this.read().catch(() => {})
    }, READ_EVERY_MS).unref()
  }

  /**
   * Redis's clock now (ms since the epoch), by the best reading held; this instance's wall clock before the first.
   * It never goes back: a reading that replaces another may put the time it gives behind what the other gave, by as
   * much as their errors, and two refreshes on this instance must keep the order they came in (it stands still
   * instead, until the time catches up).
   */
  now (): number {
    if (this.#unread) this.#readAfresh()
    const reading = this.#reading
    if (reading === null) return Date.now()
    const time = performance.now() + reading.offsetMs
    if (time > this.#latest) this.#latest = time
    return this.#latest
  }

  /** This instance's wall clock minus Redis's (ms), by the latest reading; null before the first. */
  get skewMs (): number | null {
    return this.#skewMs
  }

  /**
   * Reads Redis's clock. The reading replaces the one held when it is at least as precise as that one is by now (its
   * round trip against the other's and its age). The wall clock's skew is taken from every reading: it is off by as
   * much, a trifle beside what it is watched for, and a step of the wall clock (NTP correcting it) changes it at once.
   */
  async read (): Promise<void> {
    await this.#read(false)
  }

  /** A reading, which replaces the one held whatever its precision when `replaceHeld` (the first on a new connection). */
  async #read (replaceHeld: boolean): Promise<void> {
    const sent = performance.now()
    const [seconds, micros] = await guardStore(this.#redis, () => this.#redis.authClock(this.#key))
    const received = performance.now()
    const wall = Date.now()
    const errorMs = (received - sent) / 2
    const redisMs = Number(seconds) * 1000 + Number(micros) / 1000
    const held = this.#reading
    if (replaceHeld || held === null || errorMs <= held.errorMs + (received - held.takenAt) * MAX_DRIFT) {
      this.#reading = { offsetMs: redisMs - (sent + errorMs), takenAt: received, errorMs }
    }
    this.#skewMs = wall - errorMs - redisMs
    this.#onReading(this.#skewMs)
  }

  /**
   * Several readings in a row, the most precise kept: the first on a connection carries the whole script, which Redis
   * compiles, and the process may still be compiling its own code. One series at a time; a failed one is tried again
   * at the next use.
   */
  #readAfresh (): void {
    if (this.#readingAfresh !== null || this.#redis.status !== 'ready') return
    this.#unread = false
    this.#readingAfresh = (async () => {
      for (let i = 0; i < READINGS_ON_CONNECTION; i++) await this.#read(i === 0)
    })().catch(() => { this.#unread = true }).finally(() => { this.#readingAfresh = null })
  }

  close (): void {
    clearInterval(this.#timer)
    this.#redis.off('ready', this.#markUnread)
  }
}
