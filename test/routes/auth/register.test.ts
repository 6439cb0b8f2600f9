import t from 'tap'
import { buildApp, listenOnLoopback, ONE_SLOW_HASH_AT_A_TIME, PASSWORD, uniqueEmail } from '../../helpers/app.js'
import { launchBrowser, needsChromium } from '../../helpers/browser.js'
import { within } from '../../helpers/poll.js'
import { unansweredRequest } from '../../helpers/raw-http.js'

for (const store of ['redis', 'memory'] as const) {
  t.test(`POST /auth/register (${store} store)`, async (t) => {
    const app = await buildApp(t, { store })
    const register = (payload: unknown) => app.inject({ method: 'POST', url: '/auth/register', payload: payload as object })

    t.test('creates an account and answers 201 with its id and normalised email', async (t) => {
      const local = uniqueEmail().split('@')[0] as string
      const res = await register({ email: `  ${local.toUpperCase()}@Example.COM `, password: PASSWORD })
      t.equal(res.statusCode, 201)
      t.match(res.json(), { id: /^[A-Za-z0-9_-]{22}$/, email: `${local}@example.com` })
      t.same(Object.keys(res.json()).sort(), ['email', 'id'], 'nothing else, never a hash')
    })

    t.test('409 for an email already taken, compared after NFKC and lower-casing', async (t) => {
      const local = `dup${Date.now()}`
      t.equal((await register({ email: `${local}@example.com`, password: PASSWORD })).statusCode, 201)
      for (const variant of [`${local.toUpperCase()}@EXAMPLE.COM`, `${local}@ｅｘａｍｐｌｅ.ｃｏｍ`, `${[...local].map((c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0)).join('')}@example.com`]) {
        const res = await register({ email: variant, password: PASSWORD })
        t.equal(res.statusCode, 409, variant)
        t.equal(res.json().code, 'AUTH_EMAIL_TAKEN')
      }
    })

    t.test('concurrent registrations of one email: exactly one wins', async (t) => {
      const email = uniqueEmail()
      const results = await Promise.all(Array.from({ length: 5 }, () => register({ email, password: PASSWORD })))
      t.same(results.map((r) => r.statusCode).sort(), [201, 409, 409, 409, 409])
    })

    t.test('400 AUTH_WEAK_PASSWORD for a password on the blocklist, saying why; no account is made', async (t) => {
      const email = uniqueEmail()
      for (const [password, why] of [['qwerty123456', /most common/], [email, /email address/], ['abcabcabcabc', /repeated or in sequence/], ['xy1234567890', /repeated or in sequence/]] as const) {
        const res = await register({ email, password })
        t.same([res.statusCode, res.json().code], [400, 'AUTH_WEAK_PASSWORD'], password)
        t.match(res.json().message, why)
      }
      t.equal((await register({ email, password: PASSWORD })).statusCode, 201, 'the email was never taken')
    })

    t.test('400 for invalid emails', async (t) => {
      for (const email of ['', 'no-at-sign', 'a@b', 'two@@example.com', 'sp ace@example.com', 'nul\u0000@example.com', 'ctl\u0007@example.com', `${'a'.repeat(300)}@example.com`]) {
        const res = await register({ email, password: PASSWORD })
        t.equal(res.statusCode, 400, JSON.stringify(email))
        t.match(res.json().code, /^(AUTH_INVALID_EMAIL|REQUEST_VALIDATION)$/)
      }
    })

    t.test('400 AUTH_INVALID_EMAIL for another way of writing a mailbox; an account made before that rule still signs in', async (t) => {
      const local = uniqueEmail().split('@')[0] as string
      for (const email of [`"${local}"@example.com`, `${local}(note)@example.com`, `<${local}@example.com>`, `${local},b@example.com`, `${local}@[127.0.0.1]`]) {
        const res = await register({ email, password: PASSWORD })
        t.same([res.statusCode, res.json().code], [400, 'AUTH_INVALID_EMAIL'], email)
      }
      // As an earlier release took it: the address as it was written is its canonical form.
      const earlier = `"${local}"@example.com`
      t.not(await app.users.create(earlier, await app.passwordHasher.hash(PASSWORD)), null)
      const signIn = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: earlier, password: PASSWORD } })
      t.equal(signIn.statusCode, 200, 'its owner signs in as before')
      t.equal((await register({ email: `${local}@example.com`, password: PASSWORD })).statusCode, 201, 'and the plain address was never taken')
    })

    t.test('400 for a password outside 12..128 characters; the bounds themselves are accepted', async (t) => {
      t.equal((await register({ email: uniqueEmail(), password: 'x'.repeat(11) })).statusCode, 400)
      t.equal((await register({ email: uniqueEmail(), password: 'x'.repeat(129) })).statusCode, 400)
      t.equal((await register({ email: uniqueEmail(), password: 'kq7-vz!m2pwr' })).statusCode, 201)
      // 128 emoji, none repeated in a pattern the blocklist refuses: 512 bytes of UTF-8.
      const emoji = Array.from({ length: 128 }, (_, i) => String.fromCodePoint(0x1F600 + (i * 7) % 80)).join('')
      t.equal((await register({ email: uniqueEmail(), password: emoji })).statusCode, 201, 'characters, not bytes')
    })

    t.test('a 200 kB password is refused before hashing (413, fast)', async (t) => {
      const started = process.hrtime.bigint()
      const res = await register({ email: uniqueEmail(), password: 'x'.repeat(200_000) })
      t.equal(res.statusCode, 413)
      t.equal(res.json().code, 'REQUEST_BODY_TOO_LARGE')
      t.equal(app.passwordHasher.pending, 0, 'no hash queued')
      t.ok(process.hrtime.bigint() - started < 1_000_000_000n, 'answered without running the KDF')
    })

    t.test('the stored password hash is argon2id with the configured parameters', async (t) => {
      const email = uniqueEmail()
      await register({ email, password: PASSWORD })
      const user = await app.users.findByEmail(email)
      t.match(user?.passwordHash, /^\$argon2id\$v=19\$m=8192,p=1,t=1\$/)
      t.notOk(user?.passwordHash.includes(PASSWORD))
    })
  })
}

t.test('a registration whose client hangs up while its password is hashed makes no account: the retry is answered 201', async (t) => {
  const app = await buildApp(t, { env: ONE_SLOW_HASH_AT_A_TIME })
  const port = await listenOnLoopback(app)
  const payload = { email: uniqueEmail(), password: PASSWORD }
  const impatient = unansweredRequest(port, '/auth/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) })
  await within(5000, async () => app.passwordHasher.running === 1, 'its password is being hashed')
  impatient.hangUp()
  // The retry's own hash waits behind that one, so its account is created after the abandoned one would have been.
  const retry = await app.inject({ method: 'POST', url: '/auth/register', payload })
  t.equal(retry.statusCode, 201, 'the retry creates the account', { body: retry.body })
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload })).statusCode, 200, 'whose password signs in')
})

t.test('in Chromium, an address a form\'s <input type=email> takes makes an account, and one it refuses makes none, but for dotless and all-numeric domains', needsChromium(), async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const page = await (await (await launchBrowser(t)).newContext()).newPage()
  await page.setContent('<input type="email">')
  const base = uniqueEmail().split('@')[0] as string
  // One local part per address (base + its index at X), so no two of them name one account.
  const shapes = ['X@example.com', '"X"@example.com', 'X(note)@example.com', '<X@example.com>', 'X,b@example.com',
    'X\\b@example.com', 'X.@example.com', '.X@example.com', 'X..b@example.com', "X!#$%&'*+/=?^_`{|}~-@example.com",
    'X@[127.0.0.1]', 'X@-example.com', 'X@example-.com', 'X@exam_ple.com', 'X@a-b--c.example', `X@${'d'.repeat(64)}.com`,
    'X@localhost', 'X@123.123.123.123', 'X@example.123']
  const addresses = shapes.map((shape, i) => shape.replace('X', `${base}${i}`))
  const inForm = await page.$eval('input', (input, list) => list.map((address) => {
    const field = input as unknown as { value: string, checkValidity: () => boolean }
    field.value = address
    return field.checkValidity()
  }), addresses)
  const disagreements: string[] = []
  for (const [i, email] of addresses.entries()) {
    const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
    const expected = res.statusCode === 201 ? [201, undefined] : [400, 'AUTH_INVALID_EMAIL']
    t.same([res.statusCode, res.json().code], expected, `${shapes[i]}: 201, or 400 AUTH_INVALID_EMAIL`)
    if ((res.statusCode === 201) !== inForm[i]) disagreements.push(shapes[i] as string)
  }
  t.equal(inForm.filter(Boolean).length, 9, 'the form takes nine of them')
  t.same(disagreements, ['X@localhost', 'X@123.123.123.123', 'X@example.123'],
    'and the service takes the same, but for a domain with no dot, and one whose last label is all digits (an IP address without brackets)')
})
