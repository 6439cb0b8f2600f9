import t from 'tap'
import { PasswordPolicy } from '../../src/password-policy.js'

const policy = new PasswordPolicy()
const email = 'jane.doe@example.com'
const COMMON = 'This password is one of the most common ones; choose another'
const EMAIL = 'A password must not be the account\'s email address'
const PATTERN = 'A password must not be one character, or a few, repeated or in sequence'

t.test('refuses what an attacker tries first, saying which rule', async (t) => {
  const refused: Array<[string, string]> = [
    ['qwerty123456', COMMON],
    ['administrator', COMMON],
    ['1qaz2wsx3edc', COMMON],
    ['password1234', COMMON], // a common one padded to the length rule
    ['Sunshine2024!', COMMON],
    ['!!iloveyou!!', COMMON],
    ['PASSWORD 1234', COMMON], // case and spaces change nothing
    ['2024  sunshine', COMMON], // padded in front, spaces too
    ['ｐａｓｓｗｏｒｄ１２３４', COMMON], // nor fullwidth forms: NFKC, as hashed
    [email, EMAIL],
    ['Jane.Doe@Example.com', EMAIL],
    ['jane.doe2024!!', EMAIL],
    ['aaaaaaaaaaaa', PATTERN],
    ['abcabcabcabc', PATTERN],
    ['a1a1a1a1a1a1', PATTERN],
    ['ab\n'.repeat(4), PATTERN], // a line break is a character like any other
    ['xyzw'.repeat(32), PATTERN],
    ['abcdefghijkl', PATTERN],
    ['lkjihgfedcba', PATTERN],
    ['234567890123', PATTERN], // digits wrap around
    ['zyxwvutsrqpo!!', PATTERN]
  ]
  for (const [password, reason] of refused) t.equal(policy.refusal(password, email), reason, password)
})

t.test('refuses a few characters padded with repeated units or sequences: what a mask attack tries first', async (t) => {
  const refused = [
    'xy1234567890', // two letters, then a sequence
    '1234567890ab', // the same in front
    'a!!!!!!!!!!!', // one letter, then one symbol repeated
    '!!!!!a!!!!!!', // on both sides
    'qwz123456789', // three letters
    'ab!!!!!!1234', // padding of two runs, each a pattern
    'x!?1234567890', // a run of two that is no pattern, and one letter: three characters outside patterns
    '!!!!!!111111', // padding alone, of two runs
    'xy🔐1234567890', // a symbol outside the Basic Multilingual Plane is one character too
    'Zz  987654321' // case and spaces change nothing
  ]
  for (const password of refused) t.equal(policy.refusal(password, email), PATTERN, password)
  // Shorter than any new password may be (the length rule is the schema's), and refused here as well.
  t.equal(policy.refusal('abc', email), PATTERN, 'three characters alone')
})

t.test('takes a few characters padded with runs that hold more than that', async (t) => {
  const accepted = [
    'xy8301947256', // ten random digits
    'qwz830194725',
    'ab!!2024!!!!', // a year is no sequence
    'ab#!?12345678', // two letters and three symbols
    'wxqz!!!!!!!!', // four letters
    'q!#%&(8301947',
    '839201758312', // random digits alone
    '10.0.0.1/8/2' // runs of one or two, many of them
  ]
  for (const password of accepted) t.equal(policy.refusal(password, email), null, password)
})

t.test('refuses the account\'s address in either form of an internationalised domain', async (t) => {
  // Kept with its domain in ASCII (src/email.ts), typed as its owner knows it.
  const kept = 'annabella@xn--bcher-kva.de'
  t.equal(policy.refusal('annabella@bücher.de', kept), EMAIL, 'as typed')
  t.equal(policy.refusal('Annabella@Bücher.de2024!', kept), EMAIL, 'padded')
  t.equal(policy.refusal(kept, kept), EMAIL, 'as kept')
})

t.test('takes passwords and passphrases no list or pattern holds', async (t) => {
  const accepted = [
    'correct horse battery staple',
    'a brand new passphrase 9',
    'a password the thief chose',
    'Tr0ub4dor&3-but-longer',
    'jane.doe was here in 2019', // the name inside a longer phrase
    'my password is long enough', // a common word inside one
    'abcdefghijkX', // a sequence, broken
    'correct horse battery 🐎',
    '🔐'.repeat(6) + 'xk!q2',
    'é'.repeat(3) + 'zq-9 vowels'
  ]
  for (const password of accepted) t.equal(policy.refusal(password, email), null, password)
})

t.test('a list of its own: what the blocklist holds is data, not code', async (t) => {
  const own = new PasswordPolicy(['CompanyName2026'])
  t.equal(own.refusal('companyname2026', email), COMMON, 'compared case-insensitively')
  t.equal(own.refusal('qwerty123456', email), null, 'and nothing from the default list')
})
