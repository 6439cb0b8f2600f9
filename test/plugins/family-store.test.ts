import t, { type Test } from 'tap'
import type { RedisFamilyStore } from '../../src/redis-family-store.js'
import { buildApp, capturedLogs } from '../helpers/app.js'
import { wallClockOff } from '../helpers/wall-clock.js'
import { matchList } from '../helpers/match-list.js'

async function appWithClockOff (t: Test, offsetMs: number) {
  const wall = wallClockOff(t, offsetMs)
  const logs = capturedLogs()
  const app = await buildApp(t, { env: { LOG_LEVEL: 'info' }, logStream: logs.stream })
  const store = app.familyStore as RedisFamilyStore
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'ready once it has read the store\'s clock')
  t.not(store.clock.skewMs, null)
  const skewWarnings = () => logs.lines().filter((line) => line.clockSkewMs !== undefined)
  const skewMetric = async () => /^auth_store_clock_skew_seconds (\S+)$/m.exec((await app.inject({ url: '/metrics' })).body)?.[1]
  return { wall, store, skewWarnings, skewMetric }
}

t.test('an instance whose clock is further off the store\'s than JWT_CLOCK_TOLERANCE (5 s) says so, once each time it strays', async (t) => {
  const { wall, store, skewWarnings, skewMetric } = await appWithClockOff(t, -8000)
  matchList(t, skewWarnings(), [{ level: 40, clockSkewMs: Number, msg: /clock is 8\.0 s behind the Redis server's, more than JWT_CLOCK_TOLERANCE \(5 s\).*synchronise/ }])
  t.ok(Math.abs(Number(await skewMetric()) + 8) < 0.05, 'auth_store_clock_skew_seconds shows it')
  await store.clock.read()
  await store.clock.read()
  t.equal(skewWarnings().length, 1, 'not said again while it stays off')
  wall.set(0)
  await store.clock.read()
  t.ok(Math.abs(Number(await skewMetric())) < 0.05, 'set right (NTP stepping it), the metric follows at the next reading')
  wall.set(6500)
  await store.clock.read()
  t.equal(skewWarnings().length, 2, 'straying again is said again')
  t.match(skewWarnings()[1], { msg: /6\.5 s ahead of/ })
})

t.test('an instance within the tolerance says nothing', async (t) => {
  const { skewWarnings, skewMetric } = await appWithClockOff(t, 3000)
  t.ok(Math.abs(Number(await skewMetric()) - 3) < 0.05, 'the metric shows the 3 s')
  t.same(skewWarnings(), [])
})

t.test('the embedded store has one clock: no skew to show', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  t.notMatch((await app.inject({ url: '/metrics' })).body, /auth_store_clock_skew_seconds/)
})
