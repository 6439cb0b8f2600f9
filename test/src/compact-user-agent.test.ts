import t from 'tap'
import { compactUserAgent, expandUserAgent } from '../../src/compact-user-agent.js'
import { clampUserAgent } from '../../src/family-store.js'
import { headerFor, heapHolds } from '../helpers/heap-snapshot.js'

// What browsers sent in 2025–2026, as a session list would show them.
const browsers = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36'
]

t.test('every browser user agent comes back exactly, and fits one 64-byte field of the family hash', async (t) => {
  for (const ua of browsers) {
    const stored = compactUserAgent(ua)
    t.equal(expandUserAgent(stored), ua)
    t.ok(stored.length <= 64, `${stored.length} bytes stored for ${ua.length}: ${ua.slice(13, 40)}`)
  }
})

t.test('any printable user agent comes back exactly, and is never stored longer than it came', async (t) => {
  const phrases = ['Mozilla/5.0 (', ' Safari/537.36', '.0.0.0', '; rv:', 'Version/', ') Gecko/20100101 Firefox/']
  let seed = 42
  const random = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  for (let i = 0; i < 2000; i++) {
    let ua = ''
    while (ua.length < 1 + random(140)) {
      ua += random(3) === 0 ? phrases[random(phrases.length)] : String.fromCharCode(0x20 + random(95))
    }
    ua = clampUserAgent(ua)
    const stored = compactUserAgent(ua)
    if (expandUserAgent(stored) !== ua || stored.length > ua.length) {
      t.fail(`round trip of ${JSON.stringify(ua)}`)
      return
    }
  }
  t.pass('2,000 random printable agents, partly made of table phrases, round-trip')
})

t.test('a value stored before the table existed, or by a client outside it, is its own expansion', async (t) => {
  for (const plain of ['curl/8.5.0', 'okhttp/4.12.0', '', 'Mozilla/4.0 (compatible)']) {
    t.equal(compactUserAgent(plain), plain)
    t.equal(expandUserAgent(plain), plain)
  }
  t.equal(expandUserAgent(clampUserAgent('bell\u0007 and \u0001 from a client')), 'bell? and ? from a client', 'control bytes from a client were replaced before storage')
})

t.test('a phrase is replaced wherever it stands, however often', async (t) => {
  const twice = 'Mozilla/5.0 (compatible) Mozilla/5.0 (X11; Linux x86_64) X11; Linux x86_64'
  t.equal(compactUserAgent(twice), '\x01compatible) \x01\x09) \x09')
  t.equal(expandUserAgent(compactUserAgent(twice)), twice)
})

t.test('a code the table does not hold yet, as a later release appends, reads as ? on this one', async (t) => {
  // During a rolling deploy this release lists sessions the next one stored, with the phrases it added.
  const codes = Array.from({ length: 0x1f }, (_, i) => String.fromCharCode(i + 1)).filter((code) => expandUserAgent(code) === '?')
  t.ok(codes.length > 0, `${codes.length} codes left to append`)
  t.same(codes, codes.map((_, i) => String.fromCharCode(0x1f - codes.length + 1 + i)), 'the last ones, after every phrase the table holds')
  t.equal(expandUserAgent('Mozilla/5.0 (\x1f)'), 'Mozilla/5.0 (?)')
})

t.test('a user agent cut to its first 128 characters is kept without the rest of the header', async (t) => {
  let stored = ''
  const needle = headerFor('Mozilla/5.0 (X11; Linux x86_64) ', (header) => { stored = clampUserAgent(header) })
  t.equal(stored.length, 128, 'cut')
  t.notOk(await heapHolds(needle), 'the whole header is not kept alive with it')
})

t.test('the cache of compacted agents is bounded: a client sending a new user agent each time fills no memory', async (t) => {
  const needle = headerFor('Mozilla/5.0 (', (header) => { compactUserAgent(header) })
  t.ok(await heapHolds(needle), 'an agent compacted is kept, to be found again')
  for (let i = 0; i < 1024; i++) compactUserAgent(`Mozilla/5.0 (agent ${i})`)
  t.notOk(await heapHolds(needle), 'not once 1,024 other agents have come since')
})
