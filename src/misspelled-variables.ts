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

/**
 * The beginnings of the service's own names: a variable under one of them is meant for this service, whoever else sets
 * variables in its environment. Not the short, shared ones (PORT, LOG_, NODE_, METRICS_).
 */
const NAMESPACES = ['JWT_', 'ACCESS_TOKEN_', 'REFRESH_', 'COOKIE_', 'RATE_LIMIT_', 'ARGON2_', 'REDIS_']

/**
 * What platforms name after a service of theirs, whatever it is called: Kubernetes' service links (`REDIS_SERVICE_HOST`,
 * `REDIS_PORT`, `REDIS_PORT_6379_TCP_ADDR`, for a Service named redis) and Docker's legacy links (`REDIS_NAME`,
 * `REDIS_ENV_*`, and the same `_PORT` ones).
 */
const PLATFORM_LINK = /_(SERVICE_(HOST|PORT)(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(ADDR|PORT|PROTO))?)?|NAME|ENV_\w+)$/

interface Stray { name: string, namespace: string, family: string[] }

/**
 * The variables of `given` that the service does not read, found once at start: `misspelt`, each a slip of a name it
 * reads, with that name; and `strays`, neither read nor a slip of one, that begin as the service's own names do
 * (`REDIS_HOST`, `RATE_LIMIT_LOGIN_MAX`, `JWT_EXPIRES_IN`: what another service or a tutorial reads), each with the
 * names the service reads under that beginning: such a variable was set for this service, which then goes without it.
 */
export function unreadVariables (given: readonly string[], known: readonly string[]): { misspelt: Array<{ name: string, meant: string }>, strays: Stray[] } {
  const misspelt = misspelledVariables(given, known)
  const slipped = new Set(misspelt.map(({ name }) => name))
  const knownSet = new Set(known)
  const strays: Stray[] = []
  for (const name of given) {
    if (knownSet.has(name) || slipped.has(name) || PLATFORM_LINK.test(name)) continue
    const namespace = NAMESPACES.find((prefix) => name.startsWith(prefix))
    if (namespace !== undefined) strays.push({ name, namespace, family: known.filter((candidate) => candidate.startsWith(namespace)) })
  }
  return { misspelt, strays }
}
