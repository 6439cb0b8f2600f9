import t from 'tap'
import { newAccountEmail, normalizeEmail } from '../../src/email.js'

t.test('canonical form: trimmed, NFKC, lower-cased', async (t) => {
  t.equal(normalizeEmail('  Alice@Example.COM\t'), 'alice@example.com')
  t.equal(normalizeEmail('ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ'), 'alice@example.com', 'fullwidth folds to ASCII')
  t.equal(normalizeEmail('ﬁle@example.com'), 'file@example.com', 'compatibility ligature folds')
  t.equal(normalizeEmail('Ünïcødé@example.org'), 'ünïcødé@example.org', 'non-ASCII letters of the local part are kept')
})

t.test('characters that show nothing are removed: a copied address signs in, a look-alike is the same account', async (t) => {
  t.equal(normalizeEmail('user\u200b@example.com'), 'user@example.com', 'a zero-width space')
  t.equal(normalizeEmail('\u200buser@example.com\u200b'), 'user@example.com', 'around the address')
  t.equal(normalizeEmail('us\u00ader@example.com'), 'user@example.com', 'a soft hyphen')
  t.equal(normalizeEmail('us\u200d\u200cer@example.com'), 'user@example.com', 'joiners')
  t.equal(normalizeEmail('\u202euser@example.com'), 'user@example.com', 'a bidi override, which reorders what is shown')
  t.equal(normalizeEmail('us\u2060er\ufe0f@example.com'), 'user@example.com', 'a word joiner and a variation selector')
  t.equal(normalizeEmail('\u200b@example.com'), null, 'and a local part of nothing else is no address')
})

t.test('an internationalised domain is kept in its ASCII form, however it arrives', async (t) => {
  // As typed, and as Chromium's <input type=email> submits it (test/routes/auth/login.test.ts, in Chromium).
  t.equal(normalizeEmail('anna@bücher.de'), 'anna@xn--bcher-kva.de', 'as typed')
  t.equal(normalizeEmail('anna@xn--bcher-kva.de'), 'anna@xn--bcher-kva.de', 'as a browser form sends it')
  t.equal(normalizeEmail('Anna@XN--BCHER-KVA.DE'), 'anna@xn--bcher-kva.de', 'its ASCII form in capitals')
  t.equal(normalizeEmail('Anna@BÜCHER.DE'), 'anna@xn--bcher-kva.de', 'its Unicode form in capitals')
  t.equal(normalizeEmail('ünïcødé@exämple.org'), 'ünïcødé@xn--exmple-cua.org', 'the local part is left as it is')
  t.equal(normalizeEmail('user@例え.jp'), 'user@xn--r8jz45g.jp')
  t.equal(normalizeEmail('user@straße.de'), 'user@xn--strae-oqa.de', 'ß is its own letter (nontransitional, as browsers map it), not "ss"')
  t.equal(normalizeEmail('user@exam\u00adple.com'), 'user@example.com', 'an invisible soft hyphen is mapped away: one look-alike fewer')
  t.equal(normalizeEmail('user@exam_ple.com'), 'user@exam_ple.com', 'an ASCII domain is only lower-cased')
})

// 60 different ideographs: 157 characters in an address, 259 in its ASCII form.
const CJK_60 = Array.from({ length: 60 }, (_, i) => String.fromCodePoint(0x4e00 + i * 37)).join('')

t.test('refuses what is not a plausible address', async (t) => {
  const bad = ['', '   ', 'plain', '@example.com', 'a@', 'a@b', 'a@@b.com', 'a b@example.com', 'a@exa mple.com',
    'nul\u0000@example.com', 'bell\u0007@example.com', 'del\u007f@example.com', 'line\u2028@example.com', 'c1\u0085@example.com',
    `${'x'.repeat(65)}@example.com`, `a@${'d'.repeat(250)}.com`, 'a@.example.com', 'a@example..com',
    // Domains that are not one under IDNA: invalid punycode, a label of nothing but an invisible character, a label
    // breaking the bidi rule, and one whose ASCII form is too long though its Unicode form is not.
    'a@xn--zz.com', 'a@\u00ad.example.com', 'a@\u0661\u0662.com', `a@${CJK_60}.${'d'.repeat(90)}.com`]
  // Names escaped: a raw U+2028 in a test name would split the TAP line.
  const name = (s: string) => JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  for (const input of bad) t.equal(normalizeEmail(input), null, name(input))
})

t.test('an address is at most 254 characters, the longest SMTP carries (RFC 5321)', async (t) => {
  const domain = `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}.${'g'.repeat(60)}`
  t.equal(`a@${domain}`.length, 254)
  t.equal(normalizeEmail(`a@${domain}`), `a@${domain}`, '254 characters')
  t.equal(normalizeEmail(`ab@${domain}`), null, '255 characters')
})

t.test('a new account takes an address written the one way a mailbox is written', async (t) => {
  t.test('each other way of writing an address is refused, though normalizeEmail still reads it', async (t) => {
    // Each is a@example.com to a mail server, or more than one mailbox; normalizeEmail keeps it as it was written.
    for (const input of ['"a"@example.com', 'a(note)@example.com', 'a@example.com(note)', '<a@example.com>',
      'a,b@example.com', 'a\\b@example.com', 'a;b@example.com', 'a:b@example.com', 'a[b]@example.com']) {
      t.not(normalizeEmail(input), null, `${input} is read`)
      t.equal(newAccountEmail(input), null, `${input} is refused`)
    }
  })

  t.test('a domain that is no host name is refused', async (t) => {
    for (const input of ['a@[127.0.0.1]', 'a@[ipv6:::1]', 'a@123.123.123.123', 'a@example.123', 'a@-example.com',
      'a@example-.com', 'a@exam_ple.com', 'a@ex!ample.com', `a@${'d'.repeat(64)}.com`]) {
      t.equal(newAccountEmail(input), null, input)
    }
  })

  t.test('what a mailbox may hold is taken, in its canonical form', async (t) => {
    t.equal(newAccountEmail('  Alice@Example.COM '), 'alice@example.com')
    t.equal(newAccountEmail("!#$%&'*+/=?^_`{|}~-@example.com"), "!#$%&'*+/=?^_`{|}~-@example.com", 'every special character of an atom')
    // Addresses some Japanese mobile carriers gave out, which browsers take too.
    for (const input of ['taro.@docomo.ne.jp', '.taro@docomo.ne.jp', 'ta..ro@docomo.ne.jp']) t.equal(newAccountEmail(input), input, input)
    t.equal(newAccountEmail('Ünïcødé@bücher.de'), 'ünïcødé@xn--bcher-kva.de', 'a non-ASCII local part (RFC 6531), the domain in ASCII')
    t.equal(newAccountEmail('user@1e100.net'), 'user@1e100.net', 'digits in a label')
    t.equal(newAccountEmail('user@a-b--c.example'), 'user@a-b--c.example', 'hyphens inside a label')
    t.equal(newAccountEmail(`a@${'d'.repeat(63)}.com`), `a@${'d'.repeat(63)}.com`, 'a label of 63 characters')
  })

  t.test('and what normalizeEmail refuses stays refused', async (t) => {
    for (const input of ['', 'plain', 'a@b', 'a b@example.com', 'a@example..com']) t.equal(newAccountEmail(input), null, input)
  })
})
