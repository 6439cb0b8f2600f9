import t from 'tap'
import { PasswordPolicy } from '../../src/password-policy.js'

const policy = new PasswordPolicy()
const email = 'jane.doe@example.com'
const COMMON = 'This password is one of the most common ones; choose another'
const EMAIL = 'A password must not be the account\'s email address'
const PATTERN = 'A password must not be made mostly of characters repeated or in sequence, on the alphabet or a keyboard'

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
    ['q7m@q7m@q7m@', PATTERN], // a unit of four
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

t.test('refuses walks along a keyboard and passwords made of patterns alone, as a keyboard-walk list holds them', async (t) => {
  const refused = [
    'poiuytrewq12', // a row backwards, then a sequence
    'qwertyuiopasdf', // two rows
    'asdfghjklqwe',
    'ytrewqasdfgh',
    'mnbvcxz98765',
    'mju7nhy6bgt5vfr4', // columns, up to the digits
    '!qaz@wsx#edc', // columns, shifted
    'zse4xdr5cft6vgy7', // the other diagonals, up to the digits
    'zse$xdr%cft^vgy&', // shifted
    'qwertzuiopü!', // a German row
    'poiuytreza12', // a French one, backwards
    'qsdfghjklm!!',
    '147258369147', // the number pad's columns
    '1q2w3e4r5t6y7u', // zigzags between two rows: down then up
    'azsxdcfvgbhn',
    'plokijuhygtf', // up then down, leftwards
    '1q2w3e4r5t6z', // a German zigzag
    'ysxdcfvgbhnj', // and one of its bottom rows, which begins one key further left
    'aqwzsxedcrfv', // French columns
    '1a2z3e4r5t6y', // a French zigzag, the digits shifted as French keyboards type them
    'abcd1234efgh', // sequences of the alphabet and the digits, one after another (NIST's "1234abcd")
    'abcdefghijkX', // a sequence and one character more
    'abcabcabxyz!' // a unit repeated, cut short, then a sequence
  ]
  for (const password of refused) t.equal(policy.refusal(password, email), PATTERN, password)
  // Padding counts for nothing around a core of patterns alone, however much it holds, as around a common one.
  t.equal(policy.refusal('qwertyasdf8301947', email), PATTERN, 'walks padded with random digits')
  t.equal(policy.refusal('yhntgbrfv83019', email), PATTERN, 'columns padded')
  t.equal(policy.refusal('qwertzuiopü83019', email), PATTERN, 'a German row padded')
})

t.test('counts the fewest characters outside patterns, however the password is cut', async (t) => {
  // Taking the longest pattern first would cut "abcabc" and leave "d" outside; "abc", "abcd" leaves nothing.
  const refused = [
    'abcabcdq7mzz', // three characters outside, not four
    'zyxzyxwq7m88', // the same backwards, padded
    'abcabcd83019472', // a core of patterns alone, however its padding reads
    'aaaabcq7mxyz', // a run ends where a sequence starts: "aaa", "abc"
    'abcdcbq7m!!!' // a sequence turns back: "abc", "dcb"
  ]
  for (const password of refused) t.equal(policy.refusal(password, email), PATTERN, password)
  t.equal(policy.refusal('abcabcdq7mz!', email), null, 'four characters outside, whichever way it is cut')
  t.equal(policy.refusal('abcbq7m!!!!!', email), null, 'a sequence goes one way: "abc", then "b" outside')
})

t.test('refuses sequences that step over every second character, on the alphabet, the digits and a keyboard', async (t) => {
  const refused = [
    '135792468013', // the odd digits, then the even ones, wrapping around (8, 0)
    '975319753197', // backwards
    '7913579135xy', // wrapping from 9 to 1
    'acegikmoqsuw',
    'qetuoadgjl13', // two rows of keys, over every second key
    'wryipsfhkxvn' // three
  ]
  for (const password of refused) t.equal(policy.refusal(password, email), PATTERN, password)
  t.equal(policy.refusal('acegq7m!!!!!', email), PATTERN, 'four are a sequence')
  t.equal(policy.refusal('aceq7m!!!!!!', email), null, 'three are none: a year\'s "024" is none either')
  t.equal(policy.refusal('adgjmpsvybeh', email), null, 'over two characters is no sequence')
})

t.test('refuses two sequences interleaved, of three characters each at least', async (t) => {
  const refused = [
    'a1b2c3d4e5f6g7', // the alphabet and the digits
    '1a2b3c4d5e6f', // the other way round
    '9z8y7x6w5v4u', // both backwards
    'a1s2d3f4g5h6j7', // a row of keys and the digits, which no walk joins
    'w2e3r4t5y6u7', // two rows in the other alignment than a zigzag's (1q2w3e), each key with the one up-left of it
    '1!2@3#4$5%6^', // the digits, each with its shifted key
    'abcd1a2b3c4d', // after a sequence
    'a1b2c3!!!!q7m' // three characters outside
  ]
  for (const password of refused) t.equal(policy.refusal(password, email), PATTERN, password)
  t.equal(policy.refusal('a1b2c3dq7m!!', email), PATTERN, 'one of them a character longer: "a1b2c3d"')
  t.equal(policy.refusal('a1b2c!!!!!q7m', email), null, 'two of one of them are no sequence: "a1b2c" is five characters outside')
  t.equal(policy.refusal('a1b2a3q7m!!!!', email), null, 'a sequence goes one way, interleaved too: "aba" is none')
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
    'abcdefgh-q7mz', // a sequence, and more than three characters besides
    'q7m@zq7m@zq7m', // a unit of five is more than a few
    'correct horse battery 🐎',
    '🔐'.repeat(6) + 'xk!q2',
    'é'.repeat(3) + 'zq-9 vowels'
  ]
  for (const password of accepted) t.equal(policy.refusal(password, email), null, password)
})

t.test('a list of its own: what the blocklist holds is data, not code', async (t) => {
  const own = new PasswordPolicy(['CompanyName2026'])
  t.equal(own.refusal('companyname2026', email), COMMON, 'compared case-insensitively')
  t.equal(own.refusal('administrator', email), null, 'and nothing from the default list')
})
