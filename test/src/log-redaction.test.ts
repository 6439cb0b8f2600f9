import t from 'tap'
import { logRedaction, MIN_REDACTED_LENGTH, REDACTED } from '../../src/log-redaction.js'

/** A log line as pino writes it: the message is a JSON string. */
const line = (msg: string) => `${JSON.stringify({ level: 50, msg })}\n`
const msgOf = (written: string) => (JSON.parse(written) as { msg: string }).msg

t.test('a URL\'s password is redacted; its scheme, user name, host and the rest of the line are kept', async (t) => {
  const redact = logRedaction([])
  const cases: Array<[string, string]> = [
    ['connect redis://:hunter2@10.0.0.7:6379/0 failed', `connect redis://:${REDACTED}@10.0.0.7:6379/0 failed`],
    ['rediss://alice:s3cr3t@cache.internal:6380', `rediss://alice:${REDACTED}@cache.internal:6380`],
    // As URL parsers read it: the host follows the last @.
    ['redis://:p@ss@w@rd@host:6379', `redis://:${REDACTED}@host:6379`],
    ['redis://bob:a:b:c@host', `redis://bob:${REDACTED}@host`],
    ['REDIS://Bob:Pw@Host', `REDIS://Bob:${REDACTED}@Host`],
    ['an empty one, redis://:@host', `an empty one, redis://:${REDACTED}@host`],
    ['two: redis://:one@a and postgres://u:two@b/db', `two: redis://:${REDACTED}@a and postgres://u:${REDACTED}@b/db`],
    ['a short password in a URL, redis://:pw@h', `a short password in a URL, redis://:${REDACTED}@h`],
    // A scheme need not begin a word.
    ['glued to a name: via_redis://:pw@h', `glued to a name: via_redis://:${REDACTED}@h`]
  ]
  for (const [message, expected] of cases) {
    t.equal(msgOf(redact(line(message))), expected, message)
  }
})

t.test('what is not a URL\'s password is left as it is', async (t) => {
  const redact = logRedaction([])
  for (const message of [
    'redis://alice@host:6379 (a user name alone)',
    'http://example.com:8080/a@b (an @ in the path)',
    'http://example.com/?to=a@b (in the query)',
    'mail alice@example.com at redis://host:6379',
    'no URL at all: a:b@c'
  ]) {
    const written = line(message)
    t.equal(redact(written), written, message)
  }
  // A URL in one field and an @ in the next: a match never crosses the JSON string it began in.
  const fields = `${JSON.stringify({ url: 'redis://host:6379', user: 'a@b' })}\n`
  t.equal(redact(fields), fields, 'the line is unchanged, and still JSON')
})

t.test('each secret is redacted wherever it stands, also as JSON writes it', async (t) => {
  const plain = 'Zq7-plain-secret-0123456789abcdef'
  const escaped = 'Zq7-with "quotes", a \\ and a\nline break'
  const redact = logRedaction([plain, escaped])
  const written = `${JSON.stringify({ err: { message: `bad key ${plain}`, stack: `Error: ${escaped}\n    at x` }, msg: `${plain}${plain}` })}\n`
  const redacted = redact(written)
  t.same(JSON.parse(redacted), { err: { message: `bad key ${REDACTED}`, stack: `Error: ${REDACTED}\n    at x` }, msg: `${REDACTED}${REDACTED}` })
  t.notOk(redacted.includes('Zq7'), 'nothing of either is left')
})

t.test('a secret that holds another is redacted whole', async (t) => {
  const short = 'Zq7-inner-part'
  const redact = logRedaction([short, `${short}-and-its-tail`])
  t.equal(msgOf(redact(line(`key ${short}-and-its-tail, then ${short}`))), `key ${REDACTED}, then ${REDACTED}`)
})

t.test(`a secret under ${MIN_REDACTED_LENGTH} characters is not looked for outside a URL`, async (t) => {
  // Redacted everywhere, a password such as `redis` would take the word from every line that says it, and show
  // itself by its absence.
  const redact = logRedaction(['redis', 'x'.repeat(MIN_REDACTED_LENGTH)])
  const written = line('redis connection restored')
  t.equal(redact(written), written, 'a secret shorter than the least is not')
  t.equal(msgOf(redact(line(`at ${'x'.repeat(MIN_REDACTED_LENGTH)}`))), `at ${REDACTED}`, 'one of the least length is')
})

t.test('a line with nothing to redact is written as it came', async (t) => {
  const redact = logRedaction(['Zq7-plain-secret-0123456789abcdef'])
  const written = `${JSON.stringify({ level: 30, req: { method: 'POST', url: '/auth/refresh' }, msg: 'request completed' })}\n`
  t.equal(redact(written), written)
})
