import { execFileSync } from 'node:child_process'
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEnv } from 'node:util'
import t from 'tap'
import { ConfigError, defaultHashConcurrency, EnvSchema, FROM_FILE, HASHES_QUEUED_PER_SLOT, loadConfig, patternOf, threadpoolSize } from '../../src/config.js'
import { usableCores } from '../../src/cpu-quota.js'
import { generateKeySetJson } from '../../src/signing-keys.js'
import { keySetJson, privateJwk } from '../helpers/keys.js'
import { matchList } from '../helpers/match-list.js'

// Each one distinct, and as production takes a secret: no character or text repeated throughout.
const secret = (c: string) => `${c}-a-test-secret-of-forty-bytes-or-more`
const production = { NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: secret('j'), REFRESH_TOKEN_SECRET: secret('r') }

/** What a configuration is refused with, or 'taken'. */
function refusal (env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  return 'taken'
}

t.test('defaults match the documented ones', async (t) => {
  const config = loadConfig({})
  // hasStrict, not match: a string in a match pattern is a substring, and '' matches every value.
  t.hasStrict(config, {
    env: 'development',
    port: 3000,
    host: '127.0.0.1',
    metricsPort: null,
    logLevel: 'info',
    redis: null,
    jwt: { secret: null, issuer: 'auth-service', audience: 'auth-service', accessTokenTtlSeconds: 600 },
    refresh: { secret: null, idleTtlSeconds: 604_800, absoluteTtlSeconds: 2_592_000, reuseGraceSeconds: 10, maxFamiliesPerUser: 100 },
    cookie: { name: '__Secure-refresh_token', secure: true, path: '/auth' },
    publicPathPrefix: '',
    argon2: { memoryCost: 19_456, timeCost: 2, parallelism: 1, threadNice: 19 }
  })
})

t.test('values are parsed and bounded', async (t) => {
  t.match(loadConfig({ PORT: '8080', COOKIE_SECURE: 'false', ACCESS_TOKEN_TTL: '60' }), { port: 8080, cookie: { secure: false, name: 'refresh_token' }, jwt: { accessTokenTtlSeconds: 60 } })
  for (const [name, value] of [['PORT', '70000'], ['PORT', 'abc'], ['ACCESS_TOKEN_TTL', '0'], ['REFRESH_IDLE_TTL', '1.5'], ['LOG_LEVEL', 'loud'], ['REDIS_URL', 'http://x'], ['COOKIE_NAME', 'bad name;'], ['ARGON2_THREAD_NICE', '20'], ['ARGON2_THREAD_NICE', '-5']] as const) {
    t.throws(() => loadConfig({ [name]: value }), { name: 'ConfigError', message: new RegExp(name) }, `${name}=${value} is refused, naming the variable`)
  }
})

t.test('an integer is taken in decimal digits only, not as JavaScript reads a number: a blank is not 0, nor 0x10 16', async (t) => {
  t.match(loadConfig({ PORT: '08080', REFRESH_REUSE_GRACE: '0', ARGON2_MAX_QUEUE: '5' }), { port: 8080, refresh: { reuseGraceSeconds: 0 }, argon2: { maxQueue: 5 } },
    'digits, a leading zero among them, and 0 itself')
  const blank = (name: string) => `${name} is blank: give it in decimal digits, or leave it empty for its default`
  // Each of these was read as 0: the API on whatever port was free, concurrent tabs' refreshes taken for reuse, every
  // sign-in that had to wait refused.
  for (const [name, value] of [['PORT', ' '], ['REFRESH_REUSE_GRACE', '  '], ['ARGON2_MAX_QUEUE', '\t'], ['JWT_CLOCK_TOLERANCE', ' ']] as const) {
    t.equal(refusal({ [name]: value }), blank(name), `${name}=${JSON.stringify(value)} is refused as blank, not taken as 0`)
  }
  for (const [name, value, read] of [['PORT', '0x10', 16], ['ACCESS_TOKEN_TTL', '6e2', 600], ['REFRESH_IDLE_TTL', '+3600', 3600], ['ARGON2_TIME_COST', '0b11', 3], ['MAX_SESSIONS_PER_USER', '0o17', 15]] as const) {
    t.equal(refusal({ [name]: value }), `${name} must be an integer in decimal digits`, `${name}=${value} is refused, not read as ${read}`)
  }
  for (const value of [' 600', '600 ', '6 00', '600\r']) {
    t.equal(refusal({ ACCESS_TOKEN_TTL: value }), 'ACCESS_TOKEN_TTL must be an integer in decimal digits, without spaces',
      `${JSON.stringify(value)} is refused, saying why, as " true" is for a boolean`)
  }
  t.equal(refusal({ REFRESH_REUSE_GRACE: '-1' }), 'REFRESH_REUSE_GRACE must be >= 0', 'a minus sign is the minimum\'s to refuse')
  t.equal(refusal({ NODE_ENV: 'prod', PORT: ' ', LOG_LEVEL: 'loud', SHUTDOWN_TIMEOUT: '1e1' }),
    `4 problems: (1) NODE_ENV must be one of development, production, test; (2) ${blank('PORT')}; (3) LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; (4) SHUTDOWN_TIMEOUT must be an integer in decimal digits`,
    'said with the schema\'s refusals, in the schema\'s order')
  t.equal(refusal({ PORT: ' ', METRICS_PORT: '3000' }), blank('PORT'), 'and, refused, its default is no other variable\'s problem')
})

t.test('a value written in quotes, which docker run --env-file keeps, is refused as such, naming the variable and never a secret', async (t) => {
  const quoted = (name: string) => `${name} is written in quotes, which were kept as part of its value: remove them (docker's --env-file and the list form of Compose's environment, - ${name}="…", keep them; a shell and Node's --env-file do not)`
  // Each was refused as something else (NODE_ENV "must be one of development, production, test"), or, for the claims
  // and the secrets, taken with its quotes: tokens a resource server expecting the value without them refuses.
  for (const [name, value] of [['NODE_ENV', '"production"'], ['PORT', '"3000"'], ['LOG_LEVEL', "'info'"], ['JWT_ISSUER', '"auth-service"'], ['JWT_AUDIENCE', "'api'"], ['DEV_SECRETS_FILE', '"secrets.json"'], ['REFRESH_TOKEN_SECRET', `"${secret('r')}"`]] as const) {
    t.equal(refusal({ [name]: value }), quoted(name), `${name}=${value}`)
  }
  t.notOk(refusal({ REFRESH_TOKEN_SECRET: `"${secret('r')}"` }).includes(secret('r')), 'without the secret')
  t.equal(refusal({ JWT_KEYS_FILE: '"/run/secrets/jwks.json"' }), quoted('JWT_KEYS_FILE'), 'a *_FILE path too, not "cannot read" it')
  t.equal(refusal({ NODE_ENV: '"production"', PORT: 'x', LOG_LEVEL: '"info"' }), `3 problems: (1) ${quoted('NODE_ENV')}; (2) PORT must be an integer in decimal digits; (3) ${quoted('LOG_LEVEL')}`,
    'said with the other refusals, in the schema\'s order')
  t.equal(loadConfig({ JWT_ISSUER: 'a"b"' }).jwt.issuer, 'a"b"', 'a quote inside a value is the value\'s')
  t.equal(loadConfig({ JWT_ISSUER: '"auth' }).jwt.issuer, '"auth', 'and so is one at an end only')
  t.equal(loadConfig({ JWT_ISSUER: '"auth\'' }).jwt.issuer, '"auth\'', 'or two of different kinds')
})

t.test('METRICS_PORT: /metrics on a port of its own, which cannot be the API\'s', async (t) => {
  t.equal(loadConfig({ METRICS_PORT: '9464' }).metricsPort, 9464)
  t.throws(() => loadConfig({ PORT: '9464', METRICS_PORT: '9464' }), { name: 'ConfigError', message: /METRICS_PORT must differ from PORT/ })
  t.throws(() => loadConfig({ METRICS_PORT: '0' }), { name: 'ConfigError', message: /METRICS_PORT/ }, 'a port a scraper can be told of, not a random one')
  t.throws(() => loadConfig({ METRICS_PORT: 'tcp://10.96.12.7:9464' }), { name: 'ConfigError', message: /METRICS_PORT holds a Kubernetes service link .* enableServiceLinks: false/ },
    'what Kubernetes sets for a Service named "metrics" is refused, saying where it came from')
})

t.test('empty strings count as unset', async (t) => {
  t.equal(loadConfig({ REDIS_URL: '', JWT_SECRET: '' }).redis, null)
})

/** Runs `fn` with these variables in the process environment, then puts it back as it was. */
function withProcessEnv<T> (variables: Record<string, string>, fn: () => T): T {
  const saved = { ...process.env }
  Object.assign(process.env, variables)
  try {
    return fn()
  } finally {
    for (const name of Object.keys(process.env)) if (!(name in saved)) Reflect.deleteProperty(process.env, name)
    Object.assign(process.env, saved)
  }
}

t.test('variables an env file leaves empty count as unset in the process environment too (.env.example loaded as it says)', async (t) => {
  const listed = parseEnv(readFileSync(new URL('../../.env.example', import.meta.url), 'utf8'))
  t.ok(Object.values(listed).filter((value) => value === '').length > 10, 'the file leaves many variables empty')
  const config = withProcessEnv({ ...listed, REFRESH_TOKEN_SECRET: secret('r') }, () => loadConfig())
  t.match(config, { port: 3000, metricsPort: null, redis: null, cookie: { name: '__Secure-refresh_token' } }, 'it loads, with the defaults')
})

t.test('a configuration read from a given source takes nothing from the process environment', async (t) => {
  const config = withProcessEnv({ PORT: '8123', NODE_ENV: 'production', METRICS_PORT: '' }, () => loadConfig({}))
  t.match(config, { port: 3000, env: 'development', metricsPort: null })
})

t.test('secrets must be at least 32 bytes, and the two must differ', async (t) => {
  t.throws(() => loadConfig({ JWT_SECRET: 'short' }), { message: /JWT_SECRET must be at least 32 bytes/ })
  t.throws(() => loadConfig({ REFRESH_TOKEN_SECRET: 'short' }), { message: /REFRESH_TOKEN_SECRET must be at least 32 bytes/ })
  t.throws(() => loadConfig({ JWT_SECRET: secret('s'), REFRESH_TOKEN_SECRET: secret('s') }), { message: /must differ/ })
  // Counted in bytes as UTF-8 encodes them, not in characters: 16 characters of two bytes each are 32 bytes.
  const accented = 'àáâãäåæçèéêëìíîï'
  t.equal(loadConfig({ JWT_SECRET: accented }).jwt.secret, accented, '32 bytes, in 16 characters: taken')
  t.throws(() => loadConfig({ JWT_SECRET: `${accented.slice(0, 15)}i` }), { message: /JWT_SECRET must be at least 32 bytes/ }, '31 bytes: refused')
})

t.test('REFRESH_TOKEN_ACCEPTED_SECRETS: the other secrets of a rotation, each checked like REFRESH_TOKEN_SECRET', async (t) => {
  const current = { REFRESH_TOKEN_SECRET: secret('r') }
  t.same(loadConfig(current).refresh.acceptedSecrets, [], 'none by default')
  t.same(loadConfig({ ...current, REFRESH_TOKEN_ACCEPTED_SECRETS: ` ${secret('a')} , ${secret('b')}` }).refresh.acceptedSecrets, [secret('a'), secret('b')], 'comma-separated, spaces trimmed')
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ REFRESH_TOKEN_ACCEPTED_SECRETS: secret('a') }, /REFRESH_TOKEN_ACCEPTED_SECRETS needs REFRESH_TOKEN_SECRET/],
    [{ ...current, REFRESH_TOKEN_ACCEPTED_SECRETS: 'short' }, /REFRESH_TOKEN_ACCEPTED_SECRETS \(secret 1 of 1\) must be at least 32 bytes/],
    [{ ...current, REFRESH_TOKEN_ACCEPTED_SECRETS: `${secret('a')},` }, /\(secret 2 of 2\) is empty/],
    [{ ...current, REFRESH_TOKEN_ACCEPTED_SECRETS: secret('r') }, /is REFRESH_TOKEN_SECRET itself/],
    [{ ...current, JWT_SECRET: secret('j'), REFRESH_TOKEN_ACCEPTED_SECRETS: secret('j') }, /is JWT_SECRET: one key per purpose/],
    [{ ...current, REFRESH_TOKEN_ACCEPTED_SECRETS: `${secret('a')},${secret('a')}` }, /\(secret 2 of 2\) repeats an earlier one/],
    [{ ...current, REFRESH_TOKEN_ACCEPTED_SECRETS: ['a', 'b', 'c', 'd', 'e'].map(secret).join(',') }, /holds 5 secrets; at most 4/],
    [{ ...production, REFRESH_TOKEN_ACCEPTED_SECRETS: 'change-me-change-me-change-me-change-me' }, /\(secret 1 of 1\) still holds the placeholder/],
    [{ ...production, REFRESH_TOKEN_ACCEPTED_SECRETS: `${secret('a')},${'next-secret'.repeat(4)}` }, /\(secret 2 of 2\) is one text of 11 characters repeated/]
  ]
  for (const [env, message] of cases) {
    try {
      loadConfig(env)
      t.fail(`${String(message)}: should have thrown`)
    } catch (err) {
      t.ok(err instanceof ConfigError, String(message))
      t.match((err as Error).message, message)
      for (const value of env.REFRESH_TOKEN_ACCEPTED_SECRETS?.split(',') ?? []) {
        if (value.trim().length >= 5) t.notOk((err as Error).message.includes(value.trim()), 'without echoing a secret')
      }
    }
  }
})

t.test('JWT_ISSUER and JWT_AUDIENCE are taken as every token carries them: no whitespace at an end, no control character, a URI when they hold ":"', async (t) => {
  for (const value of ['auth-service', 'https://auth.example.com', 'urn:example:auth', 'the auth service']) {
    const config = loadConfig({ JWT_ISSUER: value, JWT_AUDIENCE: value })
    t.same([config.jwt.issuer, config.jwt.audience, config.warnings], [value, value, []], `${value}: taken`)
  }
  const badEnd = (name: string, value: string) => `${name} ${JSON.stringify(value)} begins or ends with whitespace, or holds a control character (the line ending of a file written on Windows?): every token would carry it, and a resource server that expects the value without it refuses them`
  const notUri = (name: string, value: string) => `${name} ${JSON.stringify(value)} holds ":" and is not a URI, which RFC 7519 asks of such a value (https://auth.example.com, or a name without ":")`
  const refused: Array<[string, string, string]> = [
    ['JWT_ISSUER', 'https://auth.example.com\r', badEnd('JWT_ISSUER', 'https://auth.example.com\r')],
    ['JWT_AUDIENCE', ' my-api', badEnd('JWT_AUDIENCE', ' my-api')],
    ['JWT_AUDIENCE', 'my\u0000api', badEnd('JWT_AUDIENCE', 'my\u0000api')],
    ['JWT_AUDIENCE', 'my\u007fapi', badEnd('JWT_AUDIENCE', 'my\u007fapi')],
    ['JWT_ISSUER', 'auth\u0085service', badEnd('JWT_ISSUER', 'auth\u0085service')],
    ['JWT_ISSUER', 'auth service:1', notUri('JWT_ISSUER', 'auth service:1')],
    ['JWT_AUDIENCE', '1:api', notUri('JWT_AUDIENCE', '1:api')],
    // A URL parser takes it, encoding the space; a token would carry it unencoded.
    ['JWT_AUDIENCE', 'https://api.example.com/my api', notUri('JWT_AUDIENCE', 'https://api.example.com/my api')]
  ]
  for (const [name, value, message] of refused) {
    t.throws(() => loadConfig({ [name]: value }), { name: 'ConfigError', message }, `${name}=${JSON.stringify(value)}`)
  }
  const listed = loadConfig({ JWT_AUDIENCE: 'api-one,api-two' })
  t.equal(listed.jwt.audience, 'api-one,api-two', 'an audience with a comma is one audience')
  t.same(listed.warnings, ['JWT_AUDIENCE "api-one,api-two" holds a comma, and is one audience, as every token carries it: a resource server that expects one of its parts refuses them'], 'and the start says so')
})

t.test('a secret the environment held as bytes that are not UTF-8 is refused, not taken as U+FFFD', async (t) => {
  // As Node reads such a variable: each byte that is not UTF-8 becomes U+FFFD, one like the other.
  const read = JSON.parse(execFileSync('bash', ['-c', 'X=$\'a-secret-of-more-than-32-bytes-\\x9f\\xc4\\xe2\' node -p "JSON.stringify(process.env.X)"'], { encoding: 'utf8' })) as string
  t.equal(read, 'a-secret-of-more-than-32-bytes-\uFFFD\uFFFD\uFFFD', 'Node reads the three bytes as three U+FFFD')
  for (const name of ['JWT_SECRET', 'REFRESH_TOKEN_SECRET'] as const) {
    t.throws(() => loadConfig({ [name]: read }), { name: 'ConfigError', message: `${name} holds U+FFFD, what bytes that are not UTF-8 are read as (a binary secret?): give it as text, generated with: openssl rand -base64 48` }, name)
  }
  t.throws(() => loadConfig({ REFRESH_TOKEN_SECRET: secret('r'), REFRESH_TOKEN_ACCEPTED_SECRETS: `${secret('a')},${read}` }),
    { message: /^REFRESH_TOKEN_ACCEPTED_SECRETS \(secret 2 of 2\) holds U\+FFFD/ }, 'and an accepted secret, by its position')
  t.equal(loadConfig({ REFRESH_TOKEN_SECRET: `${secret('r')}ä€😀` }).refresh.secret, `${secret('r')}ä€😀`, 'characters beyond ASCII, as UTF-8, are taken')
})

t.test('every secret may be read from a file, as orchestrators mount them: <NAME>_FILE', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'secrets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string, text: string | Buffer): string => {
    const path = join(dir, name)
    writeFileSync(path, text, { mode: 0o600 })
    return path
  }
  const keys = keySetJson(privateJwk('ES256', 'from-file'))
  const config = loadConfig({
    NODE_ENV: 'production',
    REDIS_URL_FILE: file('redis-url', 'rediss://:p%40ss@redis.internal:6380/2\n'),
    JWT_KEYS_FILE: file('jwks.json', keys),
    REFRESH_TOKEN_SECRET_FILE: file('refresh', `${secret('r')}\r\n`),
    REFRESH_TOKEN_ACCEPTED_SECRETS_FILE: file('accepted', `${secret('a')},${secret('b')}\n\n`),
    REDIS_SENTINELS: '127.0.0.1:26379',
    REDIS_SENTINEL_PASSWORD_FILE: file('sentinel', 'sentinel-password\n')
  })
  t.match(config, {
    redis: { url: 'rediss://:p%40ss@redis.internal:6380/2', sentinel: { password: 'sentinel-password' } },
    jwt: { keyMode: 'keys', keySet: { current: { kid: 'from-file' } } },
    refresh: { secret: secret('r'), acceptedSecrets: [secret('a'), secret('b')] }
  }, 'production config from files alone; a file\'s trailing newlines are not part of its value')
  t.same(config.refresh.acceptedSecrets, [secret('a'), secret('b')], 'the two accepted secrets, and no other')
  t.equal(loadConfig({ JWT_SECRET_FILE: file('jwt', secret('j')) }).jwt.secret, secret('j'), 'JWT_SECRET as well')

  // A list is often written to a file one entry per line; a secret may hold a line break (`openssl rand -base64 64`
  // wraps). The two cannot be told apart, so the secret is taken whole, and the start says so.
  const onePerLine = loadConfig({ REFRESH_TOKEN_SECRET: secret('r'), REFRESH_TOKEN_ACCEPTED_SECRETS_FILE: file('lines', `${secret('a')}\n${secret('b')}\n`) })
  t.same(onePerLine.refresh.acceptedSecrets, [`${secret('a')}\n${secret('b')}`], 'secrets one per line are one secret, line break included')
  t.same(onePerLine.warnings, ['REFRESH_TOKEN_ACCEPTED_SECRETS (secret 1 of 1) spans 2 lines and is taken as one secret, line breaks included: separate several secrets with commas'],
    'and a warning says so at start, by position, never with the value')
  const commaPerLine = loadConfig({ REFRESH_TOKEN_SECRET: secret('r'), REFRESH_TOKEN_ACCEPTED_SECRETS_FILE: file('commas', `${secret('a')},\r\n${secret('b')}\r\n`) })
  t.same(commaPerLine.refresh.acceptedSecrets, [secret('a'), secret('b')], 'a comma at the end of each line separates them (the line breaks are trimmed)')
  t.same(commaPerLine.warnings, [], 'with no warning')

  // Some Windows editors begin a UTF-8 file with a byte-order mark, which Node's decoding keeps.
  const bom = '\uFEFF'
  const marked = loadConfig({
    REDIS_URL_FILE: file('bom-url', `${bom}redis://127.0.0.1:6379/2\r\n`),
    JWT_KEYS_FILE: file('bom-jwks.json', `${bom}${keys}`),
    REFRESH_TOKEN_SECRET_FILE: file('bom-refresh', `${bom}${secret('r')}`)
  })
  t.match(marked, { redis: { url: 'redis://127.0.0.1:6379/2' }, jwt: { keySet: { current: { kid: 'from-file' } } }, refresh: { secret: secret('r') } },
    'a byte-order mark is not part of the value: a JWK Set and a URL after one are read, a secret is read without it')
  const said = (name: string, path: string) => `${name}_FILE: ${join(dir, path)} begins with a byte-order mark (U+FEFF), which is not read as part of ${name}`
  t.same(marked.warnings, [said('REDIS_URL', 'bom-url'), said('JWT_KEYS', 'bom-jwks.json'), said('REFRESH_TOKEN_SECRET', 'bom-refresh')],
    'and the start says so for each file, naming the file, never the value')
  t.equal(loadConfig({ REFRESH_TOKEN_SECRET_FILE: file('mid-bom', `${secret('r')}${bom}`) }).refresh.secret, `${secret('r')}${bom}`, 'only at the start: elsewhere it is a character of the secret')

  // A Kubernetes Secret made with `echo secret | base64` ends its value with a line break, in a variable as in a file
  // (where only trailing line breaks are dropped: a line of spaces after one stays).
  for (const env of [{ REFRESH_TOKEN_SECRET: `${secret('r')}\n` }, { REFRESH_TOKEN_SECRET: ` ${secret('r')}` }, { REFRESH_TOKEN_SECRET_FILE: file('base64-echo', `${secret('r')}\n \n`) }]) {
    const padded = loadConfig(env)
    t.not(padded.refresh.secret, secret('r'), 'the whitespace is part of the secret, as every instance has read it')
    t.same(padded.warnings, ['REFRESH_TOKEN_SECRET begins or ends with whitespace (a line break, as `echo secret | base64` encodes one), which is part of the secret; REFRESH_TOKEN_ACCEPTED_SECRETS trims each of its entries, so when this secret is rotated out there, the sessions begun under it end: give its successor without'],
      'and the start says that the list it is rotated into cannot hold it, without the value')
  }

  const unreadable = file('unreadable', secret('u'))
  chmodSync(unreadable, 0o000)
  const refused: Array<[Record<string, string>, RegExp]> = [
    [{ REFRESH_TOKEN_SECRET: secret('r'), REFRESH_TOKEN_SECRET_FILE: file('both', secret('r')) }, /^set REFRESH_TOKEN_SECRET or REFRESH_TOKEN_SECRET_FILE, not both$/],
    [{ JWT_SECRET_FILE: join(dir, 'missing') }, /^JWT_SECRET_FILE: cannot read ".*missing" \(ENOENT\)$/],
    // The path as it was given, quoted: a space at its end (YAML), or the \r an env file written on Windows leaves.
    [{ JWT_SECRET_FILE: `${file('spaced', secret('j'))} ` }, /^JWT_SECRET_FILE: cannot read ".*spaced " \(ENOENT\)$/],
    [{ JWT_SECRET_FILE: `${file('crlf', secret('j'))}\r` }, /^JWT_SECRET_FILE: cannot read ".*crlf\\r" \(ENOENT\)$/],
    [{ JWT_SECRET_FILE: dir }, /^JWT_SECRET_FILE: cannot read ".*" \(EISDIR\)$/],
    [{ REFRESH_TOKEN_SECRET_FILE: file('empty', '\n') }, /^REFRESH_TOKEN_SECRET_FILE: ".*empty" is empty$/],
    [{ REFRESH_TOKEN_SECRET_FILE: file('short', 'short\n') }, /^REFRESH_TOKEN_SECRET must be at least 32 bytes$/],
    [{ REDIS_URL_FILE: file('not-a-url', 'http://redis\n') }, /REDIS_URL/],
    // 32 bytes as `head -c 32 /dev/urandom` writes them: read as UTF-8, 16 of the 30 characters would be U+FFFD, all alike.
    [{ REFRESH_TOKEN_SECRET_FILE: file('binary', Buffer.from('9f3a81c4e2d07b55aa10f8c6ee2b4d9077e1a3c50b98fd2e61c47a8805d3be19', 'hex')) },
      /^REFRESH_TOKEN_SECRET_FILE: ".*binary" is not UTF-8 text \(a binary key\?\); it holds text: for a secret, generate one with: openssl rand -base64 48$/],
    [{ REDIS_URL_FILE: file('latin-1', Buffer.from('redis://:p\xe4ss@127.0.0.1:6379\n', 'latin1')) }, /^REDIS_URL_FILE: ".*latin-1" is not UTF-8 text/]
  ]
  // Root reads any file: the mode only refuses others.
  if (process.getuid?.() !== 0) refused.push([{ JWT_SECRET_FILE: unreadable }, /^JWT_SECRET_FILE: cannot read ".*" \(EACCES\)$/])
  for (const [env, message] of refused) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, String(message))
  }
  t.equal(loadConfig({ JWT_SECRET: secret('j'), JWT_SECRET_FILE: '' }).jwt.secret, secret('j'), 'an empty <NAME>_FILE is unset, like any empty variable')
  t.same([...FROM_FILE].sort(), ['JWT_KEYS', 'JWT_SECRET', 'REDIS_SENTINEL_PASSWORD', 'REDIS_URL', 'REFRESH_TOKEN_ACCEPTED_SECRETS', 'REFRESH_TOKEN_SECRET'], 'every variable that carries a secret, and only those')
})

t.test('every secret configured is listed for the log to redact, whichever variable or file gave it', async (t) => {
  t.same(loadConfig({}).secrets, [], 'none configured: none listed')
  const keys = [privateJwk('ES256', 'k1'), privateJwk('EdDSA', 'k2')]
  const dir = mkdtempSync(join(tmpdir(), 'config-secrets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keysFile = join(dir, 'jwks.json')
  writeFileSync(keysFile, keySetJson(...keys))
  const asymmetric = loadConfig({
    JWT_KEYS_FILE: keysFile,
    REFRESH_TOKEN_SECRET: secret('r'),
    REFRESH_TOKEN_ACCEPTED_SECRETS: `${secret('p')},${secret('q')}`,
    REDIS_URL: 'redis://alice:p%40ss%2Fword@127.0.0.1:6379',
    REDIS_SENTINELS: '127.0.0.1:26379',
    REDIS_SENTINEL_PASSWORD: 'the-sentinels-password'
  })
  t.same(asymmetric.secrets.sort(), [
    secret('r'), secret('p'), secret('q'),
    keys[0]?.d, keys[1]?.d,
    'p%40ss%2Fword', 'p@ss/word',
    'the-sentinels-password'
  ].sort(), 'the refresh secrets, each key\'s private part, the Redis password as written and decoded, the Sentinels\'')
  t.notOk(asymmetric.secrets.includes('alice'), 'not the Redis user name')
  t.same(loadConfig({ JWT_SECRET: secret('j'), REDIS_URL: 'redis://127.0.0.1:6379' }).secrets, [secret('j')], 'JWT_SECRET; a Redis URL without a password adds none')
})

t.test('production refuses unsafe config with a message naming the variable', async (t) => {
  t.ok(loadConfig(production).isProduction, 'a safe production config loads')
  t.same(loadConfig({ ...production, ALLOWED_ORIGINS: 'https://app.example.com' }).allowedOrigins, ['https://app.example.com'], 'with https:// origins granted')
  const cases: Array<[Record<string, string | undefined>, RegExp]> = [
    [{ JWT_SECRET: undefined }, /production needs signing keys: JWT_KEYS or JWT_KEYS_FILE .*, or JWT_SECRET/],
    [{ REFRESH_TOKEN_SECRET: undefined }, /REFRESH_TOKEN_SECRET is required in production/],
    [{ JWT_SECRET: 'too-short' }, /JWT_SECRET must be at least 32 bytes/],
    [{ REDIS_URL: undefined }, /REDIS_URL is required in production/],
    [{ COOKIE_SECURE: 'false' }, /COOKIE_SECURE=false is not allowed in production/],
    [{ JWT_SECRET: 'change-me-change-me-change-me-change-me' }, /JWT_SECRET still holds the placeholder/],
    [{ JWT_SECRET: 'CHANGE_ME-to-a-secret-of-32-bytes-or-more' }, /JWT_SECRET still holds the placeholder/],
    [{ JWT_SECRET: 'j'.repeat(40) }, /^JWT_SECRET is made of one character \(a random one has far more\), which no generator of secrets makes and anyone can guess; generate one with: openssl rand -base64 48$/],
    [{ REFRESH_TOKEN_SECRET: '0110'.repeat(10) }, /^REFRESH_TOKEN_SECRET is made of 2 distinct characters/],
    [{ REFRESH_TOKEN_SECRET: 'abcd'.repeat(10) }, /^REFRESH_TOKEN_SECRET is made of 4 distinct characters/],
    [{ REFRESH_TOKEN_SECRET: 'secret'.repeat(6) }, /^REFRESH_TOKEN_SECRET is one text of 6 characters repeated/],
    [{ REFRESH_TOKEN_SECRET: `${'my-session-key-'.repeat(2)}my-ses` }, /^REFRESH_TOKEN_SECRET is one text of 15 characters repeated/],
    [{ REFRESH_TOKEN_SECRET: 'my-session-key-1'.repeat(2) }, /^REFRESH_TOKEN_SECRET is one text of 16 characters repeated/],
    // Its ends meet as "zzz", where the repeated text begins "zzT": found only by falling back along shorter borders.
    [{ REFRESH_TOKEN_SECRET: 'zzTop!z'.repeat(6) }, /^REFRESH_TOKEN_SECRET is one text of 7 characters repeated/],
    // Characters, not UTF-16 code units: four emoji share one high surrogate, which would make a fifth.
    [{ REFRESH_TOKEN_SECRET: '🔑🔒🔓🔐🔑🔓🔒🔐🔐🔑' }, /^REFRESH_TOKEN_SECRET is made of 4 distinct characters/],
    [{ ALLOWED_ORIGINS: 'https://app.example.com,http://app.example.com' }, /ALLOWED_ORIGINS: "http:\/\/app.example.com" is plain HTTP; production grants sessions to https:\/\/ origins only/],
    [{ ALLOWED_ORIGINS: 'http://localhost:5173' }, /ALLOWED_ORIGINS: "http:\/\/localhost:5173" is plain HTTP/],
    // OWASP's argon2id lines: 47104 KiB at 1 pass, 19456 at 2, 12288 at 3, 9216 at 4, 7168 at 5.
    [{ ARGON2_MEMORY_COST: '8192', ARGON2_TIME_COST: '1' }, /^ARGON2_MEMORY_COST=8192 with ARGON2_TIME_COST=1 is weaker than OWASP's argon2id minimum \(at 1 pass, 47104 KiB; the default is 19456 KiB at 2\), which production refuses/],
    [{ ARGON2_MEMORY_COST: '47103', ARGON2_TIME_COST: '1' }, /^ARGON2_MEMORY_COST=47103 with ARGON2_TIME_COST=1 is weaker/],
    [{ ARGON2_MEMORY_COST: '19455' }, /^ARGON2_MEMORY_COST=19455 with ARGON2_TIME_COST=2 is weaker than OWASP's argon2id minimum \(at 2 passes, 19456 KiB/],
    [{ ARGON2_MEMORY_COST: '12287', ARGON2_TIME_COST: '3' }, /at 3 passes, 12288 KiB/],
    [{ ARGON2_MEMORY_COST: '9215', ARGON2_TIME_COST: '4' }, /at 4 passes, 9216 KiB/]
  ]
  for (const [override, message] of cases) {
    t.throws(() => loadConfig({ ...production, ...override }), { name: 'ConfigError', message }, String(message))
  }
})

t.test('production takes argon2id at each of OWASP\'s configurations and above; outside production, cheaper ones', async (t) => {
  for (const [memory, passes] of [['47104', '1'], ['19456', '2'], ['12288', '3'], ['9216', '4'], ['8192', '5'], ['8192', '10'], ['65536', '1']]) {
    t.match(loadConfig({ ...production, ARGON2_MEMORY_COST: memory, ARGON2_TIME_COST: passes }).argon2, { memoryCost: Number(memory), timeCost: Number(passes) }, `${memory} KiB at ${passes}`)
  }
  t.match(loadConfig({ ARGON2_MEMORY_COST: '8192', ARGON2_TIME_COST: '1' }).argon2, { memoryCost: 8192, timeCost: 1 }, 'tests hash at 8192 KiB, 1 pass')
})

t.test('production takes a generated secret, and a passphrase, however its characters fall', async (t) => {
  // 2,000 of each generator's: a rule that refused one in a thousand would refuse a deploy now and then.
  const refused = []
  for (let i = 0; i < 2000; i++) {
    for (const value of [randomBytes(16).toString('hex'), randomBytes(24).toString('base64'), randomBytes(32).toString('base64url')]) {
      if (patternOf(value) !== null) refused.push(value)
    }
  }
  t.same(refused, [], 'openssl rand -hex 16, -base64 24 and a base64url 32 bytes: none refused')
  const passphrase = 'correct horse battery staple, and then some'
  t.equal(loadConfig({ ...production, REFRESH_TOKEN_SECRET: passphrase }).refresh.secret, passphrase, 'a passphrase of words')
  t.equal(loadConfig({ ...production, REFRESH_TOKEN_SECRET: `${'abcdefghijklmnop'.repeat(2)}x` }).refresh.secret, `${'abcdefghijklmnop'.repeat(2)}x`, 'a text said less than twice over in full is no repetition')
  t.equal(loadConfig({ JWT_SECRET: 'j'.repeat(40) }).jwt.secret, 'j'.repeat(40), 'outside production, a patterned secret is taken: tests and local runs use them')
})

t.test('every problem is reported at once, each naming its variable and what it takes', async (t) => {
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig(env)
    } catch (err) {
      if (err instanceof ConfigError) return err.problems
      throw err
    }
    return []
  }
  t.same(problems({ NODE_ENV: 'production' }), [
    'production needs signing keys: JWT_KEYS or JWT_KEYS_FILE (a JWK Set of ES256/EdDSA private keys), or JWT_SECRET for HS256 in a single-service setup',
    'REFRESH_TOKEN_SECRET is required in production (at least 32 bytes, shared by every instance)',
    'REDIS_URL is required in production: the embedded store serves one process only and loses every session on restart'
  ], 'a production start with nothing set: each missing piece, once, where before only the first was named')
  t.same(problems({ ...production, COOKIE_SECURE: 'false', TRUST_PROXY: '10.0.0.300', RATE_LIMIT_LOGIN_IP: '0/60', ALLOWED_ORIGINS: 'http://app.example.com' }).map((p) => p.split(/[ :=]/, 1)[0]),
    ['COOKIE_SECURE', 'TRUST_PROXY', 'ALLOWED_ORIGINS', 'RATE_LIMIT_LOGIN_IP'], 'every refused setting, in the order of the checks')
  // Ajv says "must be equal to constant" once per allowed value, and never which they are.
  t.same(problems({ NODE_ENV: 'prod', LOG_LEVEL: 'verbose', COOKIE_SAMESITE: 'Strictest', COOKIE_SECURE: 'yes', PORT: '80.5', JWT_ALGORITHM: 'RS256' }), [
    'NODE_ENV must be one of development, production, test',
    'PORT must be an integer in decimal digits',
    'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
    'JWT_ALGORITHM must be one of ES256, EdDSA',
    'COOKIE_SECURE must be true or false',
    'COOKIE_SAMESITE must be one of strict, lax, none'
  ], 'one line per variable, in the schema\'s order')
  // A pattern is for Ajv; a refusal says in words what the variable takes.
  const patterned = Object.entries(EnvSchema.properties as Record<string, { pattern?: string, description?: string }>).filter(([, p]) => p.pattern !== undefined)
  t.ok(patterned.length >= 10, `${patterned.length} variables checked by a pattern`)
  for (const [name, property] of patterned) {
    t.same(problems({ [name]: '! !' }), [`${name} must be ${String(property.description)}`], `${name}: "${String(property.description)}", not its pattern`)
  }
  t.throws(() => loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud' }), { name: 'ConfigError', message: /^2 problems: \(1\) PORT must be an integer in decimal digits; \(2\) LOG_LEVEL must be one of / }, 'one line, numbered')
  t.throws(() => loadConfig({ PORT: 'abc' }), { name: 'ConfigError', message: /^PORT must be an integer in decimal digits$/ }, 'a single problem as it is')
  t.same(problems({ JWT_SECRET: 'j'.repeat(40), JWT_SECRET_FILE: '/nonexistent', METRICS_PORT: 'tcp://10.96.12.7:9464', ACCESS_TOKEN_TTL: '0' }).map((p) => p.split(/[ :]/, 1)[0]),
    ['set', 'METRICS_PORT', 'ACCESS_TOKEN_TTL'], 'sources, service links and the schema in one round')
  t.same(problems({ ...production, PORT: '80.5', COOKIE_SECURE: 'false', TRUST_PROXY: '10.0.0.300' }), [
    'PORT must be an integer in decimal digits',
    'COOKIE_SECURE=false is not allowed in production: the refresh cookie must never travel over plain HTTP',
    'TRUST_PROXY: "10.0.0.300" is not an IP address or CIDR range (use false, a hop count, or a list of addresses)'
  ], 'what the values mean together is checked beside a value refused, not only once every value passes')
  t.same(problems({ PORT: 'abc', METRICS_PORT: '3000' }), ['PORT must be an integer in decimal digits'],
    'but nothing is said of a refused value\'s default (PORT 3000 is not METRICS_PORT\'s problem)')
  const { REFRESH_TOKEN_SECRET: _, ...unreadable } = production
  t.same(problems({ ...unreadable, REFRESH_TOKEN_SECRET_FILE: '/nonexistent' }), ['REFRESH_TOKEN_SECRET_FILE: cannot read "/nonexistent" (ENOENT)'],
    'nor of a secret whose file cannot be read: it is not missing')
})

t.test('a choice or a boolean is taken in any case: SameSite=Strict as Set-Cookie headers write it, LOG_LEVEL=WARN', async (t) => {
  const spelled = loadConfig({ COOKIE_SAMESITE: 'Strict', LOG_LEVEL: 'WARN', JWT_ALGORITHM: 'eddsa', ACCESS_LOG: 'All', ACCESS_TOKEN_REVOCATION: 'Off', COOKIE_SECURE: 'False', NODE_ENV: 'Test' })
  t.match(spelled, {
    cookie: { sameSite: 'strict', secure: false },
    logLevel: 'warn',
    jwt: { generateAlgorithm: 'EdDSA', revocation: 'off' },
    accessLog: 'all',
    env: 'test'
  }, 'each as the value it spells')
  t.same(spelled.warnings, [], 'with no warning')
  t.match(loadConfig({ ...production, NODE_ENV: 'PRODUCTION' }), { env: 'production', isProduction: true }, 'NODE_ENV=PRODUCTION is production')
  t.throws(() => loadConfig({ ...production, NODE_ENV: 'Production', COOKIE_SECURE: 'FALSE' }), { name: 'ConfigError', message: /^COOKIE_SECURE=false is not allowed in production/ },
    'with all of production\'s refusals: a capital letter is no way around them')
  t.throws(() => loadConfig({ COOKIE_SAMESITE: 'Strictly' }), { message: /^COOKIE_SAMESITE must be one of strict, lax, none$/ }, 'a value that is none of them, in any case, is refused as before')
})

t.test('a variable set under a misspelt name is named with the one it seems meant for: a warning at start, and a hint in a refusal', async (t) => {
  t.same(loadConfig({ REFRESH_IDEL_TTL: '3600', redis_url: 'redis://127.0.0.1:6379', JWT_KEY_FILE: '/run/secrets/jwt', COOKIE_SAME_SITE: 'lax', REFRESH_IDLE_TTL: '' }).warnings, [
    'REFRESH_IDEL_TTL is set but not read: did you mean REFRESH_IDLE_TTL?',
    'redis_url is set but not read: did you mean REDIS_URL?',
    'JWT_KEY_FILE is set but not read: did you mean JWT_KEYS_FILE?',
    'COOKIE_SAME_SITE is set but not read: did you mean COOKIE_SAMESITE?'
  ], 'each slip, in the order given, with the variable then left at its default')
  t.same(loadConfig({ REFRESH_IDEL_TTL: '' }).warnings, [], 'an empty one is unset, like any empty variable')
  t.throws(() => loadConfig({ ...production, REFRESH_TOKEN_SECRET: undefined, REFRESH_TOKEN_SECERT: secret('r') }), {
    name: 'ConfigError',
    message: /^REFRESH_TOKEN_SECRET is required in production \(.*\)\. Also: REFRESH_TOKEN_SECERT is set but not read: did you mean REFRESH_TOKEN_SECRET\?$/,
    problems: [/^REFRESH_TOKEN_SECRET is required in production/]
  }, 'a refusal that a slip may explain says so, beside its problems')
  t.throws(() => loadConfig({ PORT: 'abc', LOGLEVEL: 'debug' }), { message: /^PORT must be an integer in decimal digits\. Also: LOGLEVEL is set but not read: did you mean LOG_LEVEL\?$/ }, 'so does a refusal of the values themselves')
  t.throws(() => loadConfig({ ...production, REFRESH_TOKEN_SECRET: undefined, REFRESH_TOKEN_SECERT: 'the-secret-value-itself-0123456789abcdef' }),
    { message: /^(?![\s\S]*the-secret-value-itself)[\s\S]*REFRESH_TOKEN_SECERT is set but not read/ }, 'the name, never the value')
})

t.test('a variable under one of the service\'s own beginnings that it does not read is named with those it does: a warning at start, and a hint in a refusal', async (t) => {
  t.same(loadConfig({ REDIS_HOST: 'redis', RATE_LIMIT_LOGIN_MAX: '1000', REDIS_SERVICE_HOST: '10.0.0.7' }).warnings, [
    'REDIS_HOST is set but not read: no variable of the service has that name; its REDIS_ variables are REDIS_URL, REDIS_KEY_PREFIX, REDIS_COMMAND_TIMEOUT_MS, REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD, REDIS_CLUSTER_NODES, REDIS_URL_FILE, REDIS_SENTINEL_PASSWORD_FILE',
    'RATE_LIMIT_LOGIN_MAX is set but not read: no variable of the service has that name; its RATE_LIMIT_ variables are RATE_LIMIT_LOGIN_IP, RATE_LIMIT_LOGIN_ACCOUNT_IP, RATE_LIMIT_LOGIN_ACCOUNT, RATE_LIMIT_REGISTER_IP, RATE_LIMIT_PASSWORD_IP, RATE_LIMIT_REFRESH_IP, RATE_LIMIT_REFRESH_SESSION, RATE_LIMIT_NOT_FOUND_IP, RATE_LIMIT_EXEMPT'
  ], 'each, in the order given; a Kubernetes service link is not one')
  t.throws(() => loadConfig({ ...production, REDIS_URL: undefined, REDIS_HOST: 'redis', REDIS_PASSWORD: 'the-redis-password-itself' }), {
    name: 'ConfigError',
    message: /^REDIS_URL is required in production: .*\. Also: REDIS_HOST is set but not read: no variable of the service has that name; its REDIS_ variables are REDIS_URL, .*; REDIS_PASSWORD is set but not read: .*$/,
    problems: [/^REDIS_URL is required in production/]
  }, 'the address given as other services read it: the refusal of REDIS_URL says so')
  t.throws(() => loadConfig({ ...production, REDIS_URL: undefined, REDIS_PASSWORD: 'the-redis-password-itself' }),
    { message: /^(?![\s\S]*the-redis-password-itself)[\s\S]*REDIS_PASSWORD is set but not read/ }, 'the name, never the value')
})

t.test('a variable that the rest of the configuration leaves unread is named, with why', async (t) => {
  const keys = generateKeySetJson('EdDSA')
  const kid = (JSON.parse(keys) as { keys: Array<{ kid: string }> }).keys[0]?.kid as string
  t.same(loadConfig({ JWT_KEYS: keys, JWT_ALGORITHM: 'ES256' }).warnings,
    [`JWT_ALGORITHM is set but not read: it is the algorithm of a key generated when none is configured, and JWT_KEYS signs with its key ${kid} (EdDSA)`],
    'JWT_ALGORITHM beside keys of another algorithm: the tokens are not what it says')
  t.same(loadConfig({ JWT_SECRET: secret('j'), JWT_ALGORITHM: 'EdDSA' }).warnings,
    ['JWT_ALGORITHM is set but not read: it is the algorithm of a key generated when none is configured, and JWT_SECRET signs with HS256'])
  t.same(loadConfig({ ...production, DEV_SECRETS_FILE: '/srv/dev-secrets.json' }).warnings, ['DEV_SECRETS_FILE is set but not read: production never generates key material'])
  t.same(loadConfig({ DEV_SECRETS_FILE: 'dev.json' }).warnings, ['DEV_SECRETS_FILE is set but not read: without REDIS_URL each process generates its own key material, kept in memory'])
  t.same(loadConfig({ DEV_SECRETS_FILE: 'dev.json', REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: secret('j'), REFRESH_TOKEN_SECRET: secret('r') }).warnings,
    ['DEV_SECRETS_FILE is set but not read: every signing key and secret is configured, so none is generated'])
  t.same(loadConfig({ REDIS_KEY_PREFIX: 'app:', REDIS_COMMAND_TIMEOUT_MS: '1000' }).warnings, ['REDIS_KEY_PREFIX, REDIS_COMMAND_TIMEOUT_MS are set but not read: without REDIS_URL the embedded store is used'])
  t.same(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_SENTINEL_MASTER: 'auth' }).warnings, ['REDIS_SENTINEL_MASTER is set but not read: it names the master of REDIS_SENTINELS, which is not set'])

  // Each read where it applies: no warning.
  for (const env of [
    { JWT_ALGORITHM: 'EdDSA' },
    { DEV_SECRETS_FILE: 'dev.json', REDIS_URL: 'redis://127.0.0.1:6379' },
    { DEV_SECRETS_FILE: 'dev.json', REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: secret('j') },
    { REDIS_URL: 'redis://:pw@mymaster/0', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_MASTER: 'auth', REDIS_KEY_PREFIX: 'app:', REDIS_COMMAND_TIMEOUT_MS: '1000' },
    production
  ]) {
    t.same(loadConfig(env).warnings, [], `none for ${Object.keys(env).join(', ')}`)
  }
})

t.test('error messages never echo a secret value', async (t) => {
  const leaked = 'super-secret-value-that-must-not-leak'
  for (const env of [{ JWT_SECRET: leaked.slice(0, 20) }, { ...production, JWT_SECRET: leaked + '-change-me' }, { JWT_SECRET: leaked + leaked, REFRESH_TOKEN_SECRET: leaked + leaked }]) {
    try {
      loadConfig(env)
      t.fail('should have thrown')
    } catch (err) {
      t.ok(err instanceof ConfigError)
      t.notMatch((err as Error).message, /super-secret/)
    }
  }
})

t.test('a __Secure- cookie name needs COOKIE_SECURE', async (t) => {
  t.throws(() => loadConfig({ COOKIE_SECURE: 'false', COOKIE_NAME: '__Secure-rt' }), { message: /COOKIE_NAME/ })
  t.throws(() => loadConfig({ COOKIE_SECURE: 'false', COOKIE_NAME: '__secure-rt' }), { message: /COOKIE_NAME/ }, 'browsers match the prefix in any case')
  t.equal(loadConfig({ COOKIE_NAME: 'rt' }).cookie.name, 'rt')
})

t.test('a __Host- cookie name is refused: browsers keep one only on Path=/, and the refresh cookie lives on the auth routes\' path', async (t) => {
  for (const name of ['__Host-refresh_token', '__host-rt', '__HOST-rt']) {
    t.throws(() => loadConfig({ COOKIE_NAME: name }), { name: 'ConfigError', message: /COOKIE_NAME with a __Host- prefix is refused/ }, `${name} is refused`)
  }
  t.equal(loadConfig({ COOKIE_NAME: 'my__Host-rt' }).cookie.name, 'my__Host-rt', 'only as a prefix')
})

t.test('PUBLIC_PATH_PREFIX: the refresh cookie\'s path where a proxy serves the service under a prefix it strips', async (t) => {
  t.match(loadConfig({ PUBLIC_PATH_PREFIX: '/api' }), { cookie: { path: '/api/auth' }, publicPathPrefix: '/api' })
  t.match(loadConfig({ PUBLIC_PATH_PREFIX: '/tenants/acme-1/v2' }), { cookie: { path: '/tenants/acme-1/v2/auth' } })
  t.match(loadConfig({ PUBLIC_PATH_PREFIX: '/v1.2/..x' }), { cookie: { path: '/v1.2/..x/auth' } }, 'dots within a segment are a name like any other')
  // A path whose cookie would never come back (a trailing slash doubles it, a bare '/' is no prefix, browsers resolve
  // dot segments away), or would break the cookie's attributes (';', a space, a control character) or its host (a
  // scheme and host are not a path).
  for (const value of ['api', '/api/', '/', '/a;b', '/a b', '/a\nb', 'https://example.com/api', '/a,b', '/a//b', '/api/..', '/./api', '/api/../x']) {
    t.throws(() => loadConfig({ PUBLIC_PATH_PREFIX: value }), { name: 'ConfigError', message: /PUBLIC_PATH_PREFIX/ }, `${JSON.stringify(value)} is refused`)
  }
})

t.test('an idle timeout longer than the absolute one is said at start: it never ends a session', async (t) => {
  t.same(loadConfig({ REFRESH_IDLE_TTL: '2592001', REFRESH_ABSOLUTE_TTL: '2592000' }).warnings,
    ['REFRESH_IDLE_TTL (2592001 s) is longer than REFRESH_ABSOLUTE_TTL (2592000 s), which ends every session first: idleness never ends one'], 'longer')
  t.same(loadConfig({ REFRESH_IDLE_TTL: '2592000', REFRESH_ABSOLUTE_TTL: '2592000' }).warnings, [], 'as long: nothing to say (an idle session ends with the absolute limit, as it would anyway)')
  t.same(loadConfig({ REFRESH_IDLE_TTL: '3600', REFRESH_ABSOLUTE_TTL: '60' }).warnings.length, 1, 'an hour against a minute, too')
})

t.test('the grace window must be shorter than the idle timeout', async (t) => {
  t.throws(() => loadConfig({ REFRESH_IDLE_TTL: '10', REFRESH_REUSE_GRACE: '10' }), { message: /REFRESH_REUSE_GRACE/ })
})

t.test('an idle timeout no longer than an access token\'s life is said at start: a client refreshing as its token runs out finds its session ended', async (t) => {
  const said = (idle: number, access: number) => `REFRESH_IDLE_TTL (${idle} s) is not longer than ACCESS_TOKEN_TTL (${access} s): a client that refreshes as its access token runs out finds its session ended for idleness, and its user signs in again every ${access} s`
  t.same(loadConfig({ REFRESH_IDLE_TTL: '3600', ACCESS_TOKEN_TTL: '3600' }).warnings, [said(3600, 3600)], 'as long')
  t.same(loadConfig({ REFRESH_IDLE_TTL: '60', ACCESS_TOKEN_TTL: '600' }).warnings, [said(60, 600)], 'shorter')
  t.same(loadConfig({ REFRESH_IDLE_TTL: '3601', ACCESS_TOKEN_TTL: '3600' }).warnings, [], 'longer: nothing to say')
})

t.test('HOST: an address or a host name, the usual slips named at start (they failed at listen, as getaddrinfo ENOTFOUND)', async (t) => {
  for (const host of ['0.0.0.0', '::', '127.0.0.1', 'fd00::2', '::ffff:127.0.0.1', 'localhost', 'auth-service', 'auth_service', 'node-1.internal.']) {
    t.equal(loadConfig({ HOST: host }).host, host, host)
  }
  for (const [host, slip] of [
    ['http://0.0.0.0', 'not a URL'],
    ['0.0.0.0:3000', 'without a port: PORT gives it'],
    ['localhost:3000', 'without a port: PORT gives it'],
    ['[::]', 'an IPv6 address without brackets (::)'],
    ['[fd00::2]', 'an IPv6 address without brackets (fd00::2)'],
    [' ', 'such as 0.0.0.0, :: or 127.0.0.1'],
    ['-x', 'such as 0.0.0.0, :: or 127.0.0.1']
  ]) {
    t.throws(() => loadConfig({ HOST: host }), { message: `HOST must be an address or a host name to listen on, ${slip as string}` }, JSON.stringify(host))
  }
})

t.test('TRUST_PROXY: false, a hop count, or addresses and CIDR ranges', async (t) => {
  t.equal(loadConfig({}).trustProxy, false)
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2)
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1' }).trustProxy, ['10.0.0.0/8', '127.0.0.1', '::1'])
  for (const bad of ['true', 'everyone', '10.0.0.0/33', '300.1.1.1', '10.0.0.1/8/2']) {
    t.throws(() => loadConfig({ TRUST_PROXY: bad }), { message: /TRUST_PROXY/ }, bad)
  }
  for (const everyone of ['0.0.0.0/0', '::/0', '10.0.0.1, ::ffff:0:0/0']) {
    const entry = everyone.split(', ').at(-1) as string
    t.throws(() => loadConfig({ TRUST_PROXY: everyone }), { message: `TRUST_PROXY: "${entry}" is every address: any client could choose the address it is counted by (list the load balancer's addresses, or give its hop count)` },
      `${everyone}: every client's X-Forwarded-For believed, as true would be`)
  }
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.0/1' }).trustProxy, ['10.0.0.0/1'], 'half of them is a choice of the operator\'s')
  t.throws(() => loadConfig({ TRUST_PROXY: '10.0.0.0/33, 127.0.0.1, 300.1.1.1' }), { message: /^2 problems: \(1\) TRUST_PROXY: "10.0.0.0\/33" .*; \(2\) TRUST_PROXY: "300.1.1.1" / }, 'every refused entry is named')
})

t.test('RATE_LIMIT_EXEMPT: addresses and CIDR ranges, none by default, never every address', async (t) => {
  t.same(loadConfig({}).rateLimitExempt, [])
  t.same(loadConfig({ RATE_LIMIT_EXEMPT: '203.0.113.7, 198.51.100.0/24,2001:db8::/32' }).rateLimitExempt, ['203.0.113.7', '198.51.100.0/24', '2001:db8::/32'])
  t.throws(() => loadConfig({ RATE_LIMIT_EXEMPT: '203.0.113.7, 198.51.100.0/33' }), { message: 'RATE_LIMIT_EXEMPT: "198.51.100.0/33" is not an IP address or CIDR range (list addresses and ranges, such as 203.0.113.7, 198.51.100.0/24)' })
  for (const bad of ['office.example.com', '300.1.1.1', '10.0.0.1/8/2', 'true']) {
    t.throws(() => loadConfig({ RATE_LIMIT_EXEMPT: bad }), { message: /^RATE_LIMIT_EXEMPT/ }, bad)
  }
  for (const everyone of ['0.0.0.0/0', '10.0.0.1, ::/0']) {
    const entry = everyone.split(', ').at(-1) as string
    t.throws(() => loadConfig({ RATE_LIMIT_EXEMPT: everyone }), { message: `RATE_LIMIT_EXEMPT: "${entry}" is every address: no per-address request limit would count anyone (raise those limits instead)` }, everyone)
  }
})

t.test('ALLOWED_ORIGINS must be exact origins', async (t) => {
  t.same(loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com, http://localhost:5173' }).allowedOrigins, ['https://app.example.com', 'http://localhost:5173'])
  for (const bad of ['app.example.com', 'https://app.example.com/', 'https://app.example.com/path', '*', 'ftp://x.example']) {
    t.throws(() => loadConfig({ ALLOWED_ORIGINS: bad }), { message: /ALLOWED_ORIGINS/ }, bad)
  }
  t.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com/' }), { message: /^ALLOWED_ORIGINS: "https:\/\/app.example.com\/" is not an origin like https:\/\/app.example.com \(its origin is https:\/\/app.example.com: no path, not even "\/"\)$/ },
    'a URL copied with its trailing slash: the message says which origin it holds')
  t.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://App.Example.com' }), { message: /^ALLOWED_ORIGINS: "https:\/\/App.Example.com" is not an origin like https:\/\/app.example.com \(its origin is https:\/\/app.example.com: as browsers send it, the host in lower case, without the scheme's default port\)$/ },
    'a host in capitals: the message says how browsers write it, not that it has a path')
  t.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com:443' }), { message: /\(its origin is https:\/\/app.example.com: as browsers send it, .* default port\)$/ }, 'the scheme\'s own port')
  for (const wildcard of ['https://*.example.com', 'https://*', 'http://app.*.example.com:8080']) {
    t.throws(() => loadConfig({ ALLOWED_ORIGINS: `https://app.example.com, ${wildcard}` }), { message: `ALLOWED_ORIGINS: "${wildcard}" holds a wildcard, which origins never do: list each origin granted (each one's pages can refresh its sessions and read their access tokens)` },
      `${wildcard}: a URL, and no origin a browser sends`)
  }
  t.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com?x=1' }), { message: /\(its origin is https:\/\/app.example.com: no path, not even "\/"\)$/ }, 'a query is a path\'s kind of slip')
  t.throws(() => loadConfig({ NODE_ENV: 'production', ALLOWED_ORIGINS: 'https://a.example/, http://b.example, https://c.example' }), { message: /"https:\/\/a.example\/" is not an origin.*; \(\d\) ALLOWED_ORIGINS: "http:\/\/b.example" is plain HTTP/ },
    'every refused origin is named, not only the first')
})

t.test('an empty entry is refused in every list, by position: it is most often a variable that expanded to nothing', async (t) => {
  const node = '10.0.0.1:6379'
  const lists: Array<[string, string, Record<string, string>]> = [
    ['TRUST_PROXY', '10.0.0.1', {}],
    ['RATE_LIMIT_EXEMPT', '10.0.0.1', {}],
    ['ALLOWED_ORIGINS', 'https://app.example.com', {}],
    ['REDIS_SENTINELS', node, { REDIS_URL: 'redis://:pw@mymaster/0' }],
    ['REDIS_CLUSTER_NODES', node, { REDIS_URL: 'redis://:pw@cluster' }],
    ['REFRESH_TOKEN_ACCEPTED_SECRETS', secret('a'), { REFRESH_TOKEN_SECRET: secret('r') }]
  ]
  for (const [name, entry, rest] of lists) {
    t.doesNotThrow(() => loadConfig({ ...rest, [name]: ` ${entry} ` }), `${name}: one entry, spaces trimmed`)
    const empty = (value: string): string => {
      try {
        loadConfig({ ...rest, [name]: value })
      } catch (err) {
        t.ok(err instanceof ConfigError, `${name}=${value}: a configuration problem`)
        return (err as Error).message
      }
      return `${name}=${value} was taken`
    }
    const because = 'is empty: a doubled or trailing comma, or a variable that expanded to nothing'
    t.match(empty(`,${entry}`), new RegExp(`^${name} \\(\\w+ 1 of 2\\) ${because}$`), `${name}: a leading comma (\${A},\${B} with A unset)`)
    t.match(empty(`${entry},`), new RegExp(`^${name} \\(\\w+ 2 of 2\\) ${because}$`), `${name}: a trailing comma`)
    t.match(empty(`${entry}, ,${entry.replace('1', '2').replace('a', 'b')}`), new RegExp(`^${name} \\(\\w+ 2 of 3\\) is empty`), `${name}: a blank between two`)
    t.match(empty(' '), new RegExp(`^${name} \\(\\w+ 1 of 1\\) is empty`), `${name}: nothing but a space (an empty value is unset)`)
  }
  t.throws(() => loadConfig({ TRUST_PROXY: '300.1.1.1,,10.0.0.1' }), { message: /^2 problems: \(1\) TRUST_PROXY: "300.1.1.1" is not an IP address.*; \(2\) TRUST_PROXY \(entry 2 of 3\) is empty/ },
    'empty and refused entries are reported together, in order')
})

t.test('COOKIE_SAMESITE=none requires a Secure cookie', async (t) => {
  t.equal(loadConfig({ COOKIE_SAMESITE: 'none' }).cookie.sameSite, 'none')
  t.throws(() => loadConfig({ COOKIE_SAMESITE: 'none', COOKIE_SECURE: 'false' }), { message: /COOKIE_SAMESITE=none requires COOKIE_SECURE=true/ })
})

t.test('rate limits are "max/windowSeconds"', async (t) => {
  t.same(loadConfig({}).rateLimits.loginAccountIp, { max: 10, windowSeconds: 900 })
  t.same(loadConfig({}).rateLimits.loginAccount, { max: 100, windowSeconds: 900 })
  t.same(loadConfig({ RATE_LIMIT_LOGIN_IP: '5/10' }).rateLimits.loginIp, { max: 5, windowSeconds: 10 })
  for (const bad of ['5', '0/10', '5/0', 'a/b']) t.throws(() => loadConfig({ RATE_LIMIT_LOGIN_IP: bad }), { message: /RATE_LIMIT_LOGIN_IP/ }, bad)
})

t.test('signing keys: JWT_KEYS or JWT_KEYS_FILE, validated at start', async (t) => {
  const a = privateJwk('ES256', 'key-a')
  const b = privateJwk('EdDSA', 'key-b')

  const config = loadConfig({ JWT_KEYS: keySetJson(a, b), JWT_SIGNING_KID: 'key-b' })
  t.equal(config.jwt.keyMode, 'keys')
  t.equal(config.jwt.keySet?.current.kid, 'key-b')
  t.equal(config.jwt.keySet?.current.alg, 'EdDSA')
  t.same([...config.jwt.keySet?.byKid.keys() ?? []], ['key-a', 'key-b'])
  t.equal(loadConfig({ JWT_KEYS: keySetJson(a, b) }).jwt.keySet?.current.kid, 'key-a', 'the first key signs by default')
  t.equal(loadConfig({ JWT_KEYS: keySetJson({ ...a, use: 'sig', key_ops: ['sign', 'verify'] }) }).jwt.keySet?.current.kid, 'key-a', 'a key meant for signatures says so as it likes')
  t.notOk(JSON.stringify(config.jwt.keySet?.jwks).includes('"d"'), 'the published set has no private part')
  const longest = 'k'.repeat(64)
  t.equal(loadConfig({ JWT_KEYS: keySetJson({ ...a, kid: longest }) }).jwt.keySet?.current.kid, longest, 'a kid of 64 characters')

  const dir = mkdtempSync(join(tmpdir(), 'keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true })) // it holds a private key
  writeFileSync(join(dir, 'jwks.json'), keySetJson(a))
  t.equal(loadConfig({ JWT_KEYS_FILE: join(dir, 'jwks.json') }).jwt.keySet?.current.kid, 'key-a')

  t.equal(loadConfig({ JWT_SECRET: secret('s') }).jwt.keyMode, 'hs256', 'JWT_SECRET alone selects HS256')
  const pem = createPrivateKey({ key: a, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }) as string
  const pemSecret = loadConfig({ JWT_SECRET: pem })
  t.same([pemSecret.jwt.keyMode, pemSecret.warnings], ['hs256', ['JWT_SECRET holds a PEM key, taken as an HS256 secret that every verifier must hold; for ES256 or EdDSA, give the key as a JWK Set in JWT_KEYS (README: Signing keys and rotation)']],
    'a PEM as JWT_SECRET: HS256 as asked, with a warning that never quotes it')
  t.equal(loadConfig({}).jwt.keyMode, 'generate', 'nothing outside production: generated')
  t.equal(loadConfig({ ...production, JWT_SECRET: undefined, JWT_KEYS: keySetJson(a) }).jwt.keyMode, 'keys', 'production with keys and no JWT_SECRET')

  const { d, ...publicOnly } = a
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' })
  t.ok(d)
  const refused: Array<[Record<string, string>, RegExp]> = [
    [{ JWT_KEYS: keySetJson(a), JWT_SECRET: secret('s') }, /either JWT_SECRET .* or JWT_KEYS/],
    [{ JWT_KEYS: keySetJson(a), JWT_KEYS_FILE: '/nope' }, /JWT_KEYS or JWT_KEYS_FILE, not both/],
    [{ JWT_KEYS_FILE: '/does/not/exist.json' }, /JWT_KEYS_FILE: cannot read/],
    [{ JWT_KEYS: '{not json' }, /^JWT_KEYS is not valid JSON \(expected a JWK Set: \{"keys":\[\.\.\.\]\}\)$/],
    [{ JWT_KEYS: createPrivateKey({ key: a, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }) as string }, /^JWT_KEYS is not valid JSON \(expected a JWK Set: \{"keys":\[\.\.\.\]\}\): it holds a PEM key, and takes the key as a JWK Set \(the README's "Signing keys and rotation" makes one\)$/],
    [{ JWT_KEYS: '{"keys":[]}' }, /at least one key/],
    [{ JWT_KEYS: keySetJson({ ...a, kid: '../../etc/passwd' }) }, /"kid" of 1-64 characters/],
    [{ JWT_KEYS: keySetJson(a, { ...b, kid: 'key-a' }) }, /appears twice/],
    [{ JWT_KEYS: keySetJson({ ...a, alg: 'HS256' }) }, /"alg" must be ES256 or EdDSA/],
    [{ JWT_KEYS: keySetJson({ ...a, kid: 'k'.repeat(65) }) }, /"kid" of 1-64 characters/],
    [{ JWT_KEYS: keySetJson({ ...a, alg: 'EdDSA' }) }, /EdDSA needs kty OKP/],
    // An EC key of another curve imports and signs, with signatures no ES256 verifier takes.
    [{ JWT_KEYS: keySetJson({ ...p384, kid: 'key-a', alg: 'ES256' }) }, /^JWT_KEYS key #1 \(kid "key-a"\): ES256 needs kty EC and crv P-256$/],
    [{ JWT_KEYS: keySetJson({ ...a, kty: 'OKP' }) }, /^JWT_KEYS key #1 \(kid "key-a"\): ES256 needs kty EC and crv P-256$/],
    [{ JWT_KEYS: keySetJson(publicOnly as typeof a) }, /no private part "d"/],
    [{ JWT_KEYS: keySetJson({ ...a, d: 'AAAA' }) }, /is malformed/],
    // Meant by its maker for something else: encryption (ECDH-ES takes EC keys), or verifying only.
    [{ JWT_KEYS: keySetJson(a, { ...b, use: 'enc' }) }, /^JWT_KEYS key #2 \(kid "key-b"\): "use" must be "sig" \(or absent\): it signs tokens$/],
    [{ JWT_KEYS: keySetJson({ ...a, key_ops: ['verify'] }) }, /^JWT_KEYS key #1 \(kid "key-a"\): "key_ops" must include "sign" \(or be absent\): it signs tokens$/],
    [{ JWT_KEYS: keySetJson({ ...a, key_ops: 'sign' }) }, /"key_ops" must include "sign"/],
    [{ JWT_KEYS: keySetJson(a), JWT_SIGNING_KID: 'missing' }, /JWT_SIGNING_KID "missing" is not a kid/],
    [{ JWT_SIGNING_KID: 'key-a' }, /JWT_SIGNING_KID needs JWT_KEYS/]
  ]
  for (const [env, message] of refused) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, String(message))
    try { loadConfig(env) } catch (err) { t.notOk((err as Error).message.includes(a.d as string), 'never echoes key material') }
  }
})

t.test('REDIS_URL: a URL the Redis client reads as it was meant, or refused without quoting it (it may hold the password)', async (t) => {
  const password = 'Tr0ub4dor-and-more-secret-words'
  const read = (url: string) => loadConfig({ REDIS_URL: url }).redis?.url
  t.equal(read(`redis://:${password}@redis.internal:6379/2`), `redis://:${password}@redis.internal:6379/2`, 'a database number after the host')
  t.ok(read(`redis://:${password}@p@ss@redis.internal:6379`), 'an @ in the password: the host is after the last one')
  t.ok(read(`rediss://auth:${password}%23x@redis.internal`), 'a reserved character percent-encoded')
  t.ok(read(`redis://:${password} x@redis.internal/`), 'a space (the URL encodes it)')
  t.ok(read(`redis://:${password}@redis.internal:6379/2?family=6`), 'the address family to resolve the host to')
  t.ok(read(`redis://:${password}@redis.internal?family=0&family=4`), 'each one of 0, 4 and 6')
  t.ok(read(`redis://:${password}@redis.internal/2?`), 'an empty query')
  const refused: Array<[string, RegExp]> = [
    [`redis://:${password}#x@redis.internal:6379`, /^REDIS_URL is not a URL: in a password, a character URLs reserve must be percent-encoded \(# as %23, \/ as %2F, \? as %3F, % as %25\)$/],
    // The URL parses, the password before the # taken for the host (which a failed connection would log) and the rest lost.
    [`redis://${password}#x@redis.internal:6379`, /^REDIS_URL is not a URL/],
    [`redis://:${password}/x@redis.internal`, /^REDIS_URL is not a URL/],
    [`redis://:${password}?x@redis.internal`, /^REDIS_URL is not a URL/],
    [`redis://:${password}%zz@redis.internal`, /^REDIS_URL: its user name or password holds a % that begins no percent-encoding \(write % as %25\)$/],
    [`redis://:${password}@redis.internal/zero`, /^REDIS_URL: what follows the host must be a database number \(redis:\/\/host:6379\/2\), or nothing$/],
    [`redis://:${password}@redis.internal/0/1`, /database number/],
    // ioredis takes a query parameter as an option, over the service's own; a keyPrefix kept logout-all from ending the sessions.
    [`redis://:${password}@redis.internal:6379/2?keyPrefix=zero:`, /^REDIS_URL: \?keyPrefix= is refused: set REDIS_KEY_PREFIX$/],
    [`redis://:${password}@redis.internal:6379?db=zero`, /^REDIS_URL: \?db= is refused: write the database as the path \(redis:\/\/host:6379\/2\)$/],
    [`redis://redis.internal:6379?password=${password}`, /^REDIS_URL: \?password= is refused: write it before the host/],
    [`redis://:${password}@redis.internal?tls=zero`, /^REDIS_URL: \?tls= is refused: write rediss:\/\/ for TLS$/],
    [`redis://:${password}@redis.internal?commandTimeout=zero`, /^REDIS_URL: \?commandTimeout= is refused: set REDIS_COMMAND_TIMEOUT_MS$/],
    [`redis://:${password}@redis.internal?family=4&zero=${password}`, /^REDIS_URL: its query \(\?…\) would set options of the Redis client, which the service sets itself: only \?family= \(0, 4 or 6\) may be given$/],
    [`redis://:${password}@redis.internal?__proto__=zero`, /only \?family=/],
    [`redis://:${password}@redis.internal?family=zero`, /^REDIS_URL: \?family= must be 0 \(IPv4 or IPv6\), 4 or 6/],
    [`redis://:${password}@redis.internal?family=5`, /^REDIS_URL: \?family= must be 0/]
  ]
  for (const [url, message] of refused) {
    let refusal: unknown = null
    try { loadConfig({ REDIS_URL: url }) } catch (err) { refusal = err }
    t.ok(refusal instanceof ConfigError, `refused: ${String(message)}`)
    t.match((refusal as Error).message, message)
    t.notOk((refusal as Error).message.includes(password) || (refusal as Error).message.includes('zero'), 'without quoting it')
  }
})

t.test('REDIS_SENTINELS: host:port list, the master group name, and the URL for credentials only', async (t) => {
  const url = 'redis://:pw@mymaster/2'
  t.same(loadConfig({ REDIS_URL: url, REDIS_SENTINELS: 's1.internal:26379, 10.0.0.2:26380,[fd00::3]:26381' }).redis?.sentinel, {
    nodes: [{ host: 's1.internal', port: 26379 }, { host: '10.0.0.2', port: 26380 }, { host: 'fd00::3', port: 26381 }],
    master: 'mymaster',
    username: undefined,
    password: undefined
  })
  t.match(loadConfig({ REDIS_URL: url, REDIS_SENTINELS: 's:1', REDIS_SENTINEL_MASTER: 'auth-primary', REDIS_SENTINEL_PASSWORD: 'sentinel-secret' }).redis,
    { url, sentinel: { master: 'auth-primary', password: 'sentinel-secret' } })
  t.match(loadConfig({ REDIS_URL: url, REDIS_SENTINELS: 's:1', REDIS_SENTINEL_USERNAME: 'auth-sentinel', REDIS_SENTINEL_PASSWORD: 'sentinel-secret' }).redis,
    { sentinel: { username: 'auth-sentinel', password: 'sentinel-secret' } }, 'a Sentinel ACL user of its own')
  t.equal(loadConfig({ REDIS_URL: url }).redis?.sentinel, null, 'no Sentinels: REDIS_URL names the server')
  const throughSentinels = loadConfig({ REDIS_URL: 'rediss://:pw@mymaster', REDIS_SENTINELS: 'localhost:26379' }).redis
  t.match(throughSentinels, { url: 'rediss://:pw@mymaster' }, 'TLS through Sentinels')
  t.same(throughSentinels?.sentinel?.nodes, [{ host: 'localhost', port: 26379 }], 'the one Sentinel listed')

  for (const [env, message] of [
    [{ REDIS_URL: url, REDIS_SENTINELS: 's1' }, /^REDIS_SENTINELS: "s1" is not host:port \(a comma-separated list of them, IPv6 as \[address\]:port\)$/],
    [{ REDIS_URL: url, REDIS_SENTINELS: 's1:26379,' }, /^REDIS_SENTINELS \(node 2 of 2\) is empty/],
    [{ REDIS_URL: url, REDIS_SENTINELS: 's1:0' }, /^REDIS_SENTINELS: "s1:0" is not host:port/],
    [{ REDIS_URL: url, REDIS_SENTINELS: 's1:65536' }, /^REDIS_SENTINELS: "s1:65536" is not host:port/],
    [{ REDIS_URL: url, REDIS_SENTINELS: 's1, s2:26379, s3' }, /^2 problems: \(1\) REDIS_SENTINELS: "s1" is not host:port.*; \(2\) REDIS_SENTINELS: "s3" is not host:port/],
    [{ REDIS_URL: url, REDIS_SENTINELS: 'fd00::3:26379' }, /IPv6 as \[address\]:port/],
    [{ REDIS_SENTINELS: 's1:26379' }, /REDIS_SENTINELS needs REDIS_URL/],
    [{ REDIS_URL: url, REDIS_SENTINEL_PASSWORD: 'sentinel-secret' }, /REDIS_SENTINEL_PASSWORD needs REDIS_SENTINELS/],
    [{ REDIS_URL: url, REDIS_SENTINEL_USERNAME: 'auth-sentinel' }, /REDIS_SENTINEL_USERNAME needs REDIS_SENTINELS/],
    [{ REDIS_URL: url, REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_USERNAME: 'two words' }, /REDIS_SENTINEL_USERNAME/],
    [{ REDIS_URL: url, REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'bad name' }, /REDIS_SENTINEL_MASTER/]
  ] as const) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
  const refused = (() => { try { loadConfig({ REDIS_URL: url, REDIS_SENTINELS: 'bad entry', REDIS_SENTINEL_PASSWORD: 'sentinel-secret' }) } catch (err) { return (err as Error).message } })()
  t.type(refused, 'string', 'refused')
  t.notMatch(refused, /sentinel-secret/, 'the Sentinel password is never echoed')
})

t.test('REDIS_CLUSTER_NODES: seed nodes of a Redis Cluster, with REDIS_URL for the credentials only', async (t) => {
  t.same(loadConfig({ REDIS_URL: 'redis://:pw@cluster', REDIS_CLUSTER_NODES: '10.0.0.1:6379,10.0.0.2:6379' }).redis?.cluster,
    { nodes: [{ host: '10.0.0.1', port: 6379 }, { host: '10.0.0.2', port: 6379 }] })
  t.same(loadConfig({ REDIS_URL: 'redis://:pw@cluster/0', REDIS_CLUSTER_NODES: 'n1:7000' }).redis?.cluster, { nodes: [{ host: 'n1', port: 7000 }] }, 'database 0 may be named')
  t.match(loadConfig({ REDIS_URL: 'rediss://:pw@cluster', REDIS_CLUSTER_NODES: 'n1:7000' }).redis, { url: 'rediss://:pw@cluster' }, 'TLS to every node')
  t.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redis?.cluster, null)
  for (const [env, message] of [
    [{ REDIS_URL: 'redis://:pw@cluster', REDIS_CLUSTER_NODES: 'n1' }, /^REDIS_CLUSTER_NODES: "n1" is not host:port/],
    [{ REDIS_CLUSTER_NODES: 'n1:7000' }, /REDIS_CLUSTER_NODES needs REDIS_URL/],
    [{ REDIS_URL: 'redis://:pw@cluster/2', REDIS_CLUSTER_NODES: 'n1:7000' }, /a Redis Cluster has only database 0/],
    [{ REDIS_URL: 'redis://:pw@cluster/00', REDIS_CLUSTER_NODES: 'n1:7000' }, /a Redis Cluster has only database 0/],
    [{ REDIS_URL: 'redis://:pw@cluster/0?family=4', REDIS_CLUSTER_NODES: 'n1:7000' }, /^REDIS_URL: with REDIS_CLUSTER_NODES only its credentials are read: no query \(\?…\)$/],
    [{ REDIS_URL: 'redis://:pw@cluster?db=2', REDIS_CLUSTER_NODES: 'n1:7000' }, /^REDIS_URL: \?db= is refused/],
    [{ REDIS_URL: 'redis://:pw@cluster', REDIS_CLUSTER_NODES: 'n1:7000', REDIS_SENTINELS: 's1:26379' }, /either REDIS_SENTINELS or REDIS_CLUSTER_NODES/]
  ] as const) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
})

t.test('argon2 concurrency by default: one hash more than cores when the hashing threads are niced, one thread of libuv\'s pool always left', async (t) => {
  const cases: Array<[{ cores: number, threadpoolSize: number, niced: boolean }, number]> = [
    [{ cores: 2, threadpoolSize: 4, niced: true }, 3],
    [{ cores: 2, threadpoolSize: 4, niced: false }, 2],
    [{ cores: 1, threadpoolSize: 4, niced: true }, 2],
    [{ cores: 8, threadpoolSize: 4, niced: true }, 3],
    [{ cores: 8, threadpoolSize: 16, niced: true }, 9],
    [{ cores: 8, threadpoolSize: 16, niced: false }, 8],
    [{ cores: 4, threadpoolSize: 1, niced: true }, 1]
  ]
  for (const [machine, expected] of cases) t.equal(defaultHashConcurrency(machine), expected, JSON.stringify(machine))
  t.equal(loadConfig({ ARGON2_MAX_CONCURRENCY: '5' }).argon2.maxConcurrency, 5, 'ARGON2_MAX_CONCURRENCY overrides it')
  t.equal(loadConfig({}).argon2.maxConcurrency, defaultHashConcurrency({ cores: usableCores(), threadpoolSize: threadpoolSize(process.env.UV_THREADPOOL_SIZE), niced: process.platform === 'linux' }),
    'the default is that rule applied to this machine (its cores, within any CPU quota: cpu-quota.test.ts)')
  t.equal(loadConfig({ ARGON2_MAX_CONCURRENCY: '3' }).argon2.maxQueue, 3 * HASHES_QUEUED_PER_SLOT, 'ARGON2_MAX_QUEUE: by default a number per slot')
  t.equal(loadConfig({ ARGON2_MAX_QUEUE: '0' }).argon2.maxQueue, 0, 'or what it says, 0 included (no waiting at all)')
  t.throws(() => loadConfig({ ARGON2_MAX_QUEUE: '-1' }), /ARGON2_MAX_QUEUE/)
})

t.test('UV_THREADPOOL_SIZE is read as libuv reads it: the threads of the pool of a process started with it', { skip: process.platform !== 'linux' && 'counts threads in /proc' }, async (t) => {
  // The pool's threads start together, at its first use: a hash. They are told from the process's other threads by
  // the count of a process with one (tap starts its loader in every process it spawns, which may start the pool).
  const program = 'require("node:crypto").pbkdf2("p", "s", 1, 32, "sha256", () => process.stdout.write(String(require("node:fs").readdirSync("/proc/self/task").length)))'
  const threadsOf = (value: string | undefined): number =>
    Number(execFileSync(process.execPath, ['-e', program], { env: value === undefined ? {} : { UV_THREADPOOL_SIZE: value }, encoding: 'utf8' }))
  const others = threadsOf('1') - 1
  const started = (value: string | undefined): number => threadsOf(value) - others
  // An env file's empty line, and a number JavaScript reads and C does not, were taken as 4 and 100 threads.
  // A no-break space (pasted from a page) is no space to C, as it is to JavaScript's parseInt.
  const values = [undefined, '', '0', '1', '3', ' 8', '\t8', '+3', '8 threads', '1e2', '0x10', '-1', '2000', '\u00a08']
  const expected = [4, 1, 1, 1, 3, 8, 8, 3, 8, 1, 1, 1024, 1024, 1]
  t.same(values.map(started), expected, 'libuv runs these (unset, then each value)')
  t.same(values.map(threadpoolSize), expected, 'and the default concurrency counts these')
  const warned = (value: string) => withProcessEnv({ UV_THREADPOOL_SIZE: value }, () => loadConfig({})).warnings.filter((w) => w.startsWith('UV_THREADPOOL_SIZE'))
  matchList(t, warned(''), [/^UV_THREADPOOL_SIZE="" leaves libuv's threadpool one thread \(libuv reads a value that does not begin with a number, an empty one too, as 0, and runs 0 as 1\): each password hash holds it, and file reads and DNS look-ups \(of Redis hosts\) wait/],
    'one thread is said at start: hashing holds it')
  t.equal(withProcessEnv({ UV_THREADPOOL_SIZE: '' }, () => loadConfig({})).argon2.maxConcurrency, 1, 'and one hash at a time, not three')
  matchList(t, warned('1'), [/^UV_THREADPOOL_SIZE="1" leaves libuv's threadpool one thread: each password hash/], 'chosen, without the reading explained')
  matchList(t, warned('2'), [], 'two threads are not said')
})

t.test('every variable is documented: in .env.example, which loads once its placeholder is replaced, and in the README', async (t) => {
  const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const listed = parseEnv(example)
  const documented = new Set([...readme.matchAll(/^\| `([A-Z0-9_]+)`(?: \/ `([A-Z0-9_]+)`)*/gm)].flatMap((m) => m[0].match(/[A-Z0-9_]{2,}/g) ?? []))
  const variables = [...Object.keys(EnvSchema.properties), ...FROM_FILE.map((name) => `${name}_FILE`)]
  for (const name of variables) {
    t.ok(name in listed, `${name} is in .env.example`)
    t.ok(documented.has(name), `${name} is in the README's configuration table`)
  }
  t.same(Object.keys(listed).filter((name) => !variables.includes(name)), [], '.env.example lists nothing the service does not read')
  // `docker run --env-file` and `kubectl create configmap --from-env-file` take all of a line after its first '=' as
  // the value: an inline comment, a quote or a trailing space would be part of it.
  const literal = Object.fromEntries(example.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))
  t.same(literal, listed, '.env.example reads the same taken literally, as docker run and kubectl take it, as parsed as a dotenv file')
  const { refresh } = loadConfig({ ...listed, REFRESH_TOKEN_SECRET: secret('r') })
  t.same([refresh.secret, refresh.acceptedSecrets], [secret('r'), []], 'and is a configuration the service takes as it is: no accepted secret')
})
