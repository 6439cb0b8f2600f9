import t from 'tap'
import { normalizeEmail } from '../../src/email.js'

t.test('canonical form: trimmed, NFKC, lower-cased', async (t) => {
  t.equal(normalizeEmail('  Alice@Example.COM\t'), 'alice@example.com')
  t.equal(normalizeEmail('ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ'), 'alice@example.com', 'fullwidth folds to ASCII')
  t.equal(normalizeEmail('ﬁle@example.com'), 'file@example.com', 'compatibility ligature folds')
  t.equal(normalizeEmail('Ünïcødé@exämple.org'), 'ünïcødé@exämple.org', 'non-ASCII letters are kept')
})

t.test('refuses what is not a plausible address', async (t) => {
  const bad = ['', '   ', 'plain', '@example.com', 'a@', 'a@b', 'a@@b.com', 'a b@example.com', 'a@exa mple.com',
    'nul\u0000@example.com', 'bell\u0007@example.com', 'del\u007f@example.com', 'line\u2028@example.com', 'c1\u0085@example.com',
    `${'x'.repeat(65)}@example.com`, `a@${'d'.repeat(250)}.com`, 'a@.example.com', 'a@example..com']
  // Names escaped: a raw U+2028 in a test name would split the TAP line.
  const name = (s: string) => JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  for (const input of bad) t.equal(normalizeEmail(input), null, name(input))
})
