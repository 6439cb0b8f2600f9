import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { devSecretDigest } from '../../src/dev-secrets.js'
import { buildApp, capturedLogs, connectedRedis, refresh, registerAndLogin, uniquePrefix } from '../helpers/app.js'
import { PrivateRedis } from '../helpers/redis-server.js'
import { matchList } from '../helpers/match-list.js'

/** Outside production with Redis and no key material configured: what a developer running instances locally has. */
function devEnv (file: string, extra: Record<string, string> = {}) {
  return { JWT_SECRET: '', REFRESH_TOKEN_SECRET: '', DEV_SECRETS_FILE: file, ...extra }
}

/** Every value Redis holds under a prefix, whatever the key's type: what someone reading the store would see. */
async function valuesUnder (t: Test, prefix: string): Promise<Map<string, string>> {
  const redis = await connectedRedis(t)
  const values = new Map<string, string>()
  const keys: string[] = []
  for await (const batch of redis.scanStream({ match: `${prefix}*`, count: 1000 })) keys.push(...batch as string[])
  for (const key of keys) {
    const type = await redis.type(key)
    const parts = type === 'string'
      ? [await redis.get(key) ?? '']
      : type === 'hash'
        ? Object.entries(await redis.hgetall(key)).flat()
        : type === 'zset' ? await redis.zrange(key, 0, -1, 'WITHSCORES') : type === 'list' ? await redis.lrange(key, 0, -1) : [`(${type})`]
    values.set(key, parts.join('\n'))
  }
  return values
}

/** The reason a start is refused. */
async function refusedStart (t: Test, prefix: string, env: Record<string, string>): Promise<Error> {
  return await buildApp(t, { prefix, env }).then(() => new Error('started'), (err: Error) => err)
}

t.test('outside production, local instances sharing Redis agree on generated key material, which only they hold', async (t) => {
  const file = join(t.testdir(), 'dev-secrets.json')
  const prefix = uniquePrefix()
  const a = await buildApp(t, { prefix, env: devEnv(file) })
  const b = await buildApp(t, { prefix, env: devEnv(file) })
  t.equal(a.config.jwt.keyMode, 'generate')
  t.same((await b.inject({ url: '/.well-known/jwks.json' })).json(), (await a.inject({ url: '/.well-known/jwks.json' })).json(), 'one generated key pair')
  const s = await registerAndLogin(a)
  t.equal((await b.inject({ url: '/me', headers: { authorization: `Bearer ${s.accessToken}` } })).statusCode, 200, 'B verifies what A signed')
  const rotated = await refresh(b, s.cookie)
  t.equal(rotated.statusCode, 200, 'B rotates what A issued: one refresh-token secret')

  t.equal(statSync(file).mode & 0o777, 0o600, 'the file is readable by its owner only')
  const kept = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>
  t.equal(kept.REFRESH_TOKEN_SECRET, a.secrets.refreshTokenSecret, 'the refresh-token secret is the file\'s')
  const privateKey = (JSON.parse(kept['JWT_KEYS:ES256'] as string) as { keys: Array<{ d: string, kid: string }> }).keys[0]
  t.equal(a.secrets.signingKeys.current.kid, privateKey?.kid, 'so is the ES256 key pair')

  const values = await valuesUnder(t, prefix)
  t.ok(values.size > 3, 'Redis holds the session, the user and the digests')
  t.same([...values].filter(([, value]) => value.includes(kept.REFRESH_TOKEN_SECRET as string) || value.includes(privateKey?.d as string)), [],
    'no value in Redis holds the refresh-token secret or the private key')
  t.equal(values.get(`${prefix}dev-secret-digest:REFRESH_TOKEN_SECRET`), devSecretDigest(kept.REFRESH_TOKEN_SECRET as string), 'only a digest of each')
  t.equal(values.get(`${prefix}dev-secret-digest:JWT_KEYS:ES256`), devSecretDigest(kept['JWT_KEYS:ES256'] as string))

  await a.close()
  await b.close()
  const restarted = await buildApp(t, { prefix, env: devEnv(file) })
  t.equal((await restarted.inject({ url: '/me', headers: { authorization: `Bearer ${s.accessToken}` } })).statusCode, 200, 'a restart keeps the key pair')
  t.equal((await refresh(restarted, rotated.headers['set-cookie']?.toString().split(';')[0] as string)).statusCode, 200, 'and the refresh-token secret: the session goes on')
})

t.test('instances starting together create one file, and all use it', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'dev-secrets.json')
  const prefix = uniquePrefix()
  const apps = await Promise.all(Array.from({ length: 4 }, async () => await buildApp(t, { prefix, env: devEnv(file) })))
  const kids = new Set(apps.map((a) => a.secrets.signingKeys.current.kid))
  const secrets = new Set(apps.map((a) => a.secrets.refreshTokenSecret))
  t.same([kids.size, secrets.size], [1, 1], 'one key pair and one secret among them')
  t.same(readdirSync(dir), ['dev-secrets.json'], 'and no draft left beside it')
})

t.test('JWT_ALGORITHM picks the file\'s key pair of that algorithm', async (t) => {
  const file = join(t.testdir(), 'dev-secrets.json')
  const ed = await buildApp(t, { env: devEnv(file, { JWT_ALGORITHM: 'EdDSA' }) })
  const kept = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>
  matchList(t, (await ed.inject({ url: '/.well-known/jwks.json' })).json().keys, [{ alg: 'EdDSA', crv: 'Ed25519' }], 'the one key published is EdDSA')
  t.equal(ed.secrets.signingKeys.current.kid, (JSON.parse(kept['JWT_KEYS:EdDSA'] as string) as { keys: Array<{ kid: string }> }).keys[0]?.kid)
})

t.test('an instance with other material than the instances on its Redis refuses to start, and says what to do', async (t) => {
  const dir = t.testdir()
  const prefix = uniquePrefix()
  const first = await buildApp(t, { prefix, env: devEnv(join(dir, 'here.json')) })
  const err = await refusedStart(t, prefix, devEnv(join(dir, 'elsewhere.json')))
  t.match(err.message, new RegExp(`^JWT_KEYS is not set, and the one generated in .*elsewhere\\.json is not the one the other instances on this Redis \\(key prefix ${prefix}\\) use: .*` +
    `Set JWT_KEYS on every instance, or delete the Redis key ${prefix}dev-secret-digest:JWT_KEYS:ES256 to start over$`))
  const elsewhere = JSON.parse(readFileSync(join(dir, 'elsewhere.json'), 'utf8')) as Record<string, string>
  t.notOk(Object.values(elsewhere).some((secret) => err.message.includes(secret)), 'the message holds no secret')

  const keysGiven = await refusedStart(t, prefix, devEnv(join(dir, 'elsewhere.json'), { JWT_KEYS: elsewhere['JWT_KEYS:ES256'] as string, JWT_SECRET: '' }))
  t.match(keysGiven.message, /^REFRESH_TOKEN_SECRET is not set, and the one generated in .* Set REFRESH_TOKEN_SECRET on every instance/, 'each generated secret is checked')
  const another = await buildApp(t, { prefix, env: devEnv(join(dir, 'here.json')) })
  t.equal(another.secrets.signingKeys.current.kid, first.secrets.signingKeys.current.kid, 'the refused ones changed nothing: one more instance of the first file starts')
})

t.test('with Redis refusing the check (a user without DEL), the instance starts on the file\'s material and says Redis refused it', async (t) => {
  const redis = await PrivateRedis.start(t)
  await redis.command('ACL', 'SETUSER', 'no-del', 'on', '>no-del-password', '~*', '&*', '+@all', '-del')
  const logs = capturedLogs()
  const app = await buildApp(t, { env: devEnv(join(t.testdir(), 'dev-secrets.json'), { REDIS_URL: `redis://no-del:no-del-password@127.0.0.1:${redis.port}`, LOG_LEVEL: 'warn' }), logStream: logs.stream })
  const unchecked = logs.lines().filter((line) => /unchecked/.test(line.msg))
  t.equal(unchecked.length, 2, 'a warning for each generated secret')
  matchList(t, unchecked, [{ msg: /^JWT_KEYS is not set: .*, unchecked against the other instances' \(Redis refused the check\)$/, err: { message: /NOPERM/ } }, { msg: /^REFRESH_TOKEN_SECRET is not set: .*\(Redis refused the check\)$/ }], 'with Redis\'s refusal')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'and it is ready')
})

t.test('with Redis down at start the instance starts on the file\'s material, says it went unchecked, and serves what needs no store', async (t) => {
  const file = join(t.testdir(), 'dev-secrets.json')
  const first = await buildApp(t, { env: devEnv(file) })
  const session = await registerAndLogin(first)
  const redis = await PrivateRedis.create(t)
  const logs = capturedLogs()
  const down = await buildApp(t, { env: devEnv(file, { REDIS_URL: redis.url, LOG_LEVEL: 'warn' }), logStream: logs.stream })
  t.equal(down.secrets.refreshTokenSecret, first.secrets.refreshTokenSecret, 'the file\'s secret')
  const unchecked = logs.lines().filter((line) => /unchecked/.test(line.msg)).map((line) => line.msg)
  t.equal(unchecked.length, 2, 'a warning for each generated secret')
  t.notOk(logs.lines().some((line) => /unchecked/.test(line.msg) && 'err' in line), 'without the client\'s refusal to send, which says nothing more')
  matchList(t, unchecked, [/^JWT_KEYS is not set: .* kept in .*dev-secrets\.json, unchecked against the other instances' \(Redis not ready\)$/, /^REFRESH_TOKEN_SECRET is not set: /])
  t.equal((await down.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })).statusCode, 200, 'access tokens the others signed verify')
  t.equal((await down.inject({ url: '/health/ready' })).statusCode, 503, 'and it is not ready until its store is')
})

t.test('what releases before this one shared through Redis in plain text is deleted at start', async (t) => {
  const prefix = uniquePrefix()
  const redis = await connectedRedis(t)
  await redis.set(`${prefix}dev-secret:REFRESH_TOKEN_SECRET`, 'r'.repeat(64))
  await redis.set(`${prefix}dev-secret:JWT_KEYS`, '{"keys":[]}')
  const started = await buildApp(t, { prefix, env: devEnv(join(t.testdir(), 'dev-secrets.json')) })
  t.not(started.secrets.refreshTokenSecret, 'r'.repeat(64), 'not adopted')
  t.same(await redis.exists(`${prefix}dev-secret:REFRESH_TOKEN_SECRET`, `${prefix}dev-secret:JWT_KEYS`), 0, 'both gone')
})

t.test('a file that is not the service\'s stops the start, naming it and what to do', async (t) => {
  const dir = t.testdir({ 'empty.json': '{}', 'text.json': 'not json' })
  for (const name of ['empty.json', 'text.json']) {
    chmodSync(join(dir, name), 0o600)
    const err = await refusedStart(t, uniquePrefix(), devEnv(join(dir, name)))
    t.match(err.message, /^JWT_KEYS is not set and .* cannot keep a generated one for the instances sharing Redis; set JWT_KEYS explicitly$/, name)
    t.match((err.cause as Error).message, new RegExp(`${name.replace('.', '\\.')} does not hold the development secrets this service generates \\(JWT_KEYS:ES256, JWT_KEYS:EdDSA, REFRESH_TOKEN_SECRET missing\\); remove it`))
  }
  const unwritable = await refusedStart(t, uniquePrefix(), devEnv(join(dir, 'no-such-dir', 'dev-secrets.json')))
  t.match((unwritable.cause as NodeJS.ErrnoException).code, 'ENOENT', 'nor can a file that cannot be written: the start stops')
})

t.test('without Redis each process generates its own material and keeps no file', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'dev-secrets.json')
  const a = await buildApp(t, { store: 'memory', env: devEnv(file) })
  const b = await buildApp(t, { store: 'memory', env: devEnv(file) })
  t.not(a.secrets.refreshTokenSecret, b.secrets.refreshTokenSecret)
  t.not(a.secrets.signingKeys.current.kid, b.secrets.signingKeys.current.kid)
  t.same(readdirSync(dir), [], 'its sessions end with it, and so does its key material')
})

t.test('configured key material is used as given: no file, no digest', async (t) => {
  const dir = t.testdir()
  const prefix = uniquePrefix()
  await buildApp(t, { prefix, env: { DEV_SECRETS_FILE: join(dir, 'dev-secrets.json') } })
  t.same(readdirSync(dir), [])
  t.same([...(await valuesUnder(t, prefix)).keys()].filter((key) => key.includes('dev-secret')), [])
})
