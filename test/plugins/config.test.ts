import t from 'tap'
import { buildApp, capturedLogs } from '../helpers/app.js'

t.test('what the configuration sets but does not read is logged once at start, as a warning naming each variable', async (t) => {
  const logs = capturedLogs()
  const app = await buildApp(t, { store: 'memory', env: { LOG_LEVEL: 'warn', REFRESH_IDEL_TTL: '3600', JWT_ALGORITHM: 'EdDSA' }, logStream: logs.stream })
  t.same(logs.lines().filter((line) => /is set but not read/.test(line.msg)).map(({ level, msg }) => ({ level, msg })), [
    { level: 40, msg: 'REFRESH_IDEL_TTL is set but not read: did you mean REFRESH_IDLE_TTL?' },
    { level: 40, msg: 'JWT_ALGORITHM is set but not read: it is the algorithm of a key generated when none is configured, and JWT_SECRET signs with HS256' }
  ])
  t.equal(app.config.refresh.idleTtlSeconds, 604_800, 'the misspelt variable is left at its default, as the warning says')
  t.notMatch(logs.text(), /3600/, 'names only, never a value')
})

t.test('a configuration read as written says nothing at start', async (t) => {
  const logs = capturedLogs()
  await buildApp(t, { store: 'memory', env: { LOG_LEVEL: 'warn', REFRESH_IDLE_TTL: '3600' }, logStream: logs.stream })
  t.same(logs.lines().filter((line) => /is set but not read/.test(line.msg)), [])
  t.ok(logs.lines().length > 0, 'while the start\'s other warnings are logged (the embedded store\'s), so the log was read')
})
