import leven from 'leven'

/**
 * How far two names may be apart for one to be taken for a slip of the other: a letter or two in long names
 * (REFRESH_IDEL_TTL), one in middling ones (LOGLEVEL), none in short ones (HOME is two letters from HOST, and every
 * shell sets it).
 */
function slack (a: string, b: string): number {
  const length = Math.max(a.length, b.length)
  return length >= 12 ? 2 : length >= 6 ? 1 : 0
}

/** A name with a plural ending taken off: the plural slips, TRUST_PROXIES for TRUST_PROXY, are three letters off. */
function singular (name: string): string {
  return name.endsWith('IES') ? `${name.slice(0, -3)}Y` : name.replace(/S$/, '')
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
      // A plural for a singular, or the reverse, counts as one letter off.
      const d = Math.min(leven(upper, candidate, { maxDistance: allowed + 1 }), singular(upper) === singular(candidate) ? 1 : Infinity)
      if (d <= allowed && d < distance) {
        meant = candidate
        distance = d
      }
    }
    if (meant !== undefined) found.push({ name, meant })
  }
  return found
}
