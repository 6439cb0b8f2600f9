import t, { type Test } from 'tap'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { RedisClock } from '../../src/redis-clock.js'
import { createRedisClient } from '../../src/redis-client.js'
import { connectedRedis, SHARED_REDIS_URL, uniquePrefix } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { PrivateRedis } from '../helpers/redis-server.js'
import { wallClockOff } from '../helpers/wall-clock.js'

async function readClock (t: Test, url: string) {
  const redis = await connectedRedis(t, url)
  const clock = new RedisClock(redis, `${uniquePrefix()}clock`)
  t.teardown(() => clock.close())
  clock.now() // its first use reads it
  await within(5000, async () => clock.skewMs !== null, 'the clock is read')
  return { redis, clock }
}

/** Redis's own clock, ms, by a TIME of its own. */
async function redisTime (redis: { time (): Promise<Array<string | number>> }): Promise<number> {
  const [seconds, micros] = await redis.time()
  return Number(seconds) * 1000 + Number(micros) / 1000
}

t.test('reads Redis\'s clock, whatever this instance\'s wall clock says', async (t) => {
  wallClockOff(t, 60_000)
  const { redis, clock } = await readClock(t, SHARED_REDIS_URL)
  const before = clock.now()
  const atRedis = await redisTime(redis)
  const after = clock.now()
  t.ok(before - 50 <= atRedis && atRedis <= after + 50, `Redis's TIME (${atRedis}) falls between two readings of the clock (${before}, ${after})`)
  t.ok(Math.abs(clock.skewMs! - 60_000) < 50, `the wall clock's 60 s lead is measured (${clock.skewMs} ms)`)
})

t.test('before its first reading it is this instance\'s wall clock', async (t) => {
  const redis = createRedisClient({ url: SHARED_REDIS_URL, commandTimeoutMs: 2000 })
  t.teardown(() => redis.disconnect())
  const clock = new RedisClock(redis, `${uniquePrefix()}clock`)
  t.teardown(() => clock.close())
  t.equal(clock.skewMs, null, 'nothing read: not connected')
  const before = Date.now()
  const now = clock.now()
  t.ok(before <= now && now <= Date.now(), 'the wall clock')
})

t.test('runs on between readings at the rate of the monotonic clock', async (t) => {
  const { redis, clock } = await readClock(t, SHARED_REDIS_URL)
  const [first, firstMonotonic] = [clock.now(), performance.now()]
  await sleep(250)
  const [second, secondMonotonic] = [clock.now(), performance.now()]
  t.ok(Math.abs((second - first) - (secondMonotonic - firstMonotonic)) < 1, `it advanced ${second - first} ms in ${secondMonotonic - firstMonotonic}`)
  const atRedis = await redisTime(redis)
  t.ok(Math.abs(atRedis - clock.now()) < 50, 'and still reads as Redis\'s')
})

// A reading is off by up to half its round trip: Redis may have read its time at any moment of it.
t.test('a reading less precise than the one held does not replace it', async (t) => {
  const server = await PrivateRedis.start(t)
  const { clock } = await readClock(t, server.url)
  const offset = () => clock.now() - performance.now()
  const held = offset()
  const stall = await server.stall(t, 0.4)
  await clock.read() // sent during the stall: Redis reads its time at the end of a 300 ms round trip or more
  await stall.woken
  t.ok(Math.abs(offset() - held) < 1, `the precise reading is kept (moved ${offset() - held} ms)`)
})

t.test('read at its first use after each connection, not as the client connects', async (t) => {
  const server = await PrivateRedis.start(t)
  const redis = await connectedRedis(t, server.url)
  let readings = 0
  const clock = new RedisClock(redis, `${uniquePrefix()}clock`, () => { readings += 1 })
  t.teardown(() => clock.close())
  t.equal(readings, 0, 'nothing sent while unused')
  clock.now()
  await within(5000, async () => readings === 4, 'a series of four readings, the most precise kept')
  clock.now()
  await sleep(100)
  t.equal(readings, 4, 'and no more while it is used')

  const reconnected = once(redis, 'ready')
  await server.command('CLIENT', 'KILL', 'TYPE', 'normal')
  await reconnected
  await sleep(100)
  t.equal(readings, 4, 'reconnected (perhaps to another server, after a failover): nothing sent yet')
  clock.now()
  await within(5000, async () => readings === 8, 'the next use reads it afresh')
})

// A reading taken while Redis stalls is read at the end of its round trip: it puts the clock up to half that round
// trip ahead, until the next, precise, reading replaces it and would put it back.
t.test('never goes back when a reading replaces another: two refreshes on one instance keep their order', async (t) => {
  const server = await PrivateRedis.start(t)
  const redis = await connectedRedis(t, server.url)
  const given: number[] = []
  const clock = new RedisClock(redis, `${uniquePrefix()}clock`, () => { given.push(clock.now()) })
  t.teardown(() => clock.close())
  clock.now()
  await within(5000, async () => given.length === 4, 'read')
  const reconnected = once(redis, 'ready')
  await server.command('CLIENT', 'KILL', 'TYPE', 'normal')
  await reconnected
  const stall = await server.stall(t, 0.4)
  clock.now() // the first reading on the new connection, which replaces the one held, is taken during the stall
  await stall.woken
  await within(5000, async () => given.length === 8, 'read afresh')
  const [stalled, precise] = [given[4]!, given[5]!]
  t.ok(precise >= stalled, `the time given after the precise reading (${precise}) is not behind the one given after the stalled one (${stalled})`)
})

t.test('a series of readings that fails is tried again at the next use, not only at the next connection', async (t) => {
  const server = await PrivateRedis.start(t)
  const redis = createRedisClient({ url: server.url, commandTimeoutMs: 100 })
  t.teardown(() => redis.disconnect())
  await redis.connect()
  const clock = new RedisClock(redis, `${uniquePrefix()}clock`)
  t.teardown(() => clock.close())
  const stall = await server.stall(t, 0.5)
  clock.now() // its first use: the series times out while Redis is busy
  await stall.woken
  t.equal(clock.skewMs, null, 'nothing read during the stall')
  clock.now()
  // The regular reading comes every 10 s; a reconnection never, on a connection kept.
  await within(3000, async () => clock.skewMs !== null, 'read at the next use after the failure')
  t.ok(Math.abs(await redisTime(redis) - clock.now()) < 50, 'and it reads as Redis\'s clock')
})
