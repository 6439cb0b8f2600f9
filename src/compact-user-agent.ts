/**
 * Browser user agents are mostly the same few dozen phrases, and the store keeps one per session.
 * Like HTTP/2's static header table, each phrase below is stored as one control character; a stored
 * user agent is otherwise the client's own text. `clampUserAgent` has already replaced every byte
 * outside printable ASCII, so a control character in a stored value can only be one of these, and a
 * value stored before this table existed expands to itself. The table is append-only: changing or
 * reordering an entry would change the meaning of values already in Redis.
 *
 * A phrase that contains another comes before it, so the longer one is replaced first.
 */
const PHRASES = [
  'Mozilla/5.0 (', // \x01
  ') AppleWebKit/537.36 (KHTML, like Gecko) Chrome/',
  ') AppleWebKit/605.1.15 (KHTML, like Gecko) ',
  ' Mobile Safari/537.36',
  ' Safari/537.36',
  'Windows NT 10.0; Win64; x64',
  'Macintosh; Intel Mac OS X 10_15_7',
  'Macintosh; Intel Mac OS X ',
  'X11; Linux x86_64',
  'Linux; Android ', // \x0a
  'iPhone; CPU iPhone OS ',
  ' like Mac OS X',
  ' Mobile/15E148 Safari/604.1',
  ' Safari/605.1.15',
  'Version/',
  ') Gecko/20100101 Firefox/',
  '; rv:',
  ' Edg/',
  '.0.0.0',
  'CriOS/', // \x14
  'AppleWebKit/537.36 (KHTML, like Gecko)',
  'SamsungBrowser/'
] as const

const CODES = PHRASES.map((_, i) => String.fromCharCode(i + 1))
// eslint-disable-next-line no-control-regex -- control characters are exactly what this matches
const CONTROL = /[\x01-\x1f]/g
/** A process sees few distinct user agents (one per browser build); bounded all the same. */
const CACHE_LIMIT = 1024
const compacted = new Map<string, string>()

/** The stored form of a user agent that `clampUserAgent` has made printable ASCII. */
export function compactUserAgent (userAgent: string): string {
  let out = compacted.get(userAgent)
  if (out !== undefined) return out
  out = userAgent
  for (let i = 0; i < PHRASES.length; i++) out = out.replaceAll(PHRASES[i] as string, CODES[i] as string)
  if (compacted.size >= CACHE_LIMIT) compacted.clear()
  compacted.set(userAgent, out)
  return out
}

/** The user agent a stored value stands for. */
export function expandUserAgent (stored: string): string {
  return stored.replace(CONTROL, (code) => PHRASES[code.charCodeAt(0) - 1] ?? '?')
}
