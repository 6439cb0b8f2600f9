import leven from 'leven'

/**
 * How far two names may be apart for one to be taken for a slip of the other: a letter or two in long names
 * (TRUST_PROXIES), one in middling ones (LOGLEVEL), none in short ones (HOME is two letters from HOST, and every
 * shell sets it).
 */
function slack (a: string, b: string): number {
  const length = Math.max(a.length, b.length)
  return length >= 12 ? 2 : length >= 6 ? 1 : 0
}

/**
 * The variables of `given` that are not among `known` but are a slip of one of them (`REFRESH_IDEL_TTL`, `redis_url`,
 * `JWT_KEY_FILE`), each with the one it is taken for: a misspelt name is otherwise read by no one, and its variable
 * left at its default without a word. Names only: a value is never looked at.
 */
export function misspelledVariables (given: Iterable<string>, known: readonly string[]): Array<{ name: string, meant: string }> {
  const knownSet = new Set(known)
  const found: Array<{ name: string, meant: string }> = []
  for (const name of given) {
    if (knownSet.has(name)) continue
    // Environment names are case-sensitive: `redis_url` is not REDIS_URL, however a shell or a .env file shows it.
    const upper = name.toUpperCase()
    let meant: string | undefined
    let distance = Infinity
    for (const candidate of known) {
      const allowed = slack(upper, candidate)
      const d = leven(upper, candidate, { maxDistance: allowed + 1 })
      if (d <= allowed && d < distance) {
        meant = candidate
        distance = d
      }
    }
    if (meant !== undefined) found.push({ name, meant })
  }
  return found
}
