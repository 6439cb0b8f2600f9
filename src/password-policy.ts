import { dictionary } from '@zxcvbn-ts/language-common'
import { normalizeEmail } from './email.js'
import { KEY_LINES } from './keyboard-lines.js'

/** What a user is told when a new password is refused; the 400 `AUTH_WEAK_PASSWORD` carries it. */
export type PasswordRefusal =
  | 'This password is one of the most common ones; choose another'
  | 'A password must not be the account\'s email address'
  | 'A password must not be made mostly of characters repeated or in sequence, on the alphabet or a keyboard'

/** Digits, punctuation, symbols and spaces: what people pad a short password with to pass a length rule. */
const PADDING = /^[\p{N}\p{P}\p{S}\p{Z}]+|[\p{N}\p{P}\p{S}\p{Z}]+$/gu
/**
 * A password with no more characters than this outside patterns (outsidePatterns) is what a mask attack tries among
 * the first: "qwz!!!!!!!!!", "xy1234567890", "ab!!!!!!1234".
 */
const MAX_OUTSIDE_PATTERNS = 3
/** The way along the alphabet, after the lines of keys. */
const ALPHABET = KEY_LINES.length
/** For each key, where it is on each line it is on. */
const KEY_POSITIONS = new Map<string, Map<number, number>>()
KEY_LINES.forEach((keys, line) => {
  [...keys].forEach((key, at) => {
    const lines = KEY_POSITIONS.get(key) ?? new Map<number, number>()
    KEY_POSITIONS.set(key, lines.set(line, at))
  })
})

/**
 * The blocklist NIST SP 800-63B (5.1.1.2) requires for a new password, beyond the length rule: the common
 * passwords of breach corpora (@zxcvbn-ts/language-common, about 49,000), also padded with digits or symbols
 * ("password1234", "iloveyou2024!"), the account's email address or its name part, and what is made of patterns but
 * for three characters at most: characters repeated, sequences of the alphabet or the digits, walks along a keyboard,
 * also over every second one, two of them interleaved ("aaaaaaaaaaaa", "abcd1234efgh", "qwertyuiopasdf",
 * "135792468013", "a1b2c3d4e5f6", "xy1234567890"), and a core of such patterns however it is padded.
 * Compared case-insensitively after NFKC, the form that is hashed. Nothing here scores strength (zxcvbn's estimator
 * cost tens of milliseconds of the event loop for some 64-character inputs, and 40 MB per process): it refuses only
 * what an attacker tries first, as a cracker's first lists and masks hold it.
 */
export class PasswordPolicy {
  readonly #common: Set<string>

  constructor (common: Iterable<string> = dictionary['passwords-common']) {
    this.#common = new Set([...common].map((p) => p.toLowerCase()))
  }

  /** Why `password` may not be set for the account `email` (normalised: see normalizeEmail); null when it may. */
  refusal (password: string, email: string): PasswordRefusal | null {
    const p = password.normalize('NFKC').toLowerCase()
    const core = p.replace(PADDING, '')
    const candidates = core === '' || core === p ? [p] : [p, core]
    if (candidates.some((c) => this.#common.has(c))) return 'This password is one of the most common ones; choose another'
    const at = email.lastIndexOf('@')
    const name = at < 0 ? email : email.slice(0, at)
    // As an address, the password is compared in the form the account's is kept in: its domain may have been typed in
    // Unicode and be kept in ASCII.
    if (candidates.some((c) => c === name || normalizeEmail(c) === email)) return 'A password must not be the account\'s email address'
    // Padding counts for nothing around a core made of patterns alone, as around a common one. Around any other, what
    // it holds counts: "qwz123456789" is refused, "qwz830194725" is not. Unpadded, the core is the whole: counted once.
    if (outsidePatterns(p) <= MAX_OUTSIDE_PATTERNS || (core !== '' && core !== p && outsidePatterns(core) === 0)) {
      return 'A password must not be made mostly of characters repeated or in sequence, on the alphabet or a keyboard'
    }
    return null
  }
}

/**
 * How many characters of `text` are in no pattern: a sequence along the alphabet, the digits (which wrap around:
 * "890123") or a line of keys, one way, of three characters or more, or of four or more over every second one ("1357",
 * "aceg", "qetu"); two sequences of the first kind interleaved ("a1b2c3", "q1w2e3"); or a unit of one to four
 * characters, repeated. 0 in "qwerty123456", "abcabcabcabc", "1a2b3c4d5e6f" and "!!!!2468", 2 in "xy!!!!!!!!!!", 4 in
 * "!!!!2024". The fewest over every way of cutting `text` into patterns and single characters, as an attacker's mask
 * would cut it: 0 in "abcabcd" ("abc", "abcd"), where taking the longest pattern first ("abcabc") would leave "d"
 * outside.
 */
function outsidePatterns (text: string): number {
  const chars = [...text]
  // fewest[i]: the fewest characters outside patterns in chars[i..]. Every part of a pattern from its start is one
  // too if it is long enough ("abcd" holds "abc"), so a pattern from i may end anywhere from its least length on.
  const fewest = new Array<number>(chars.length + 1).fill(0)
  // Walking from the right, a pattern from i is the one from i + 1 grown by one, or starts afresh. The grown one may
  // end where the one from i + 1 may, and at one place more, so for each kind of pattern the least of `fewest` over
  // the places it may end is carried along, one comparison a character (Infinity: no pattern from i).
  // runs[unit]: how long the run from i repeating `unit` characters is, at least `unit`; runEnds[unit]: that least.
  const runs = [0, 1, 2, 3, 4]
  const runEnds = new Array<number>(5).fill(Infinity)
  // steps[way]: the step from i along each line of keys (way: the line's index) and the alphabet (way ALPHABET);
  // lengths[way]: how long the sequence from i with that step is; sequenceEnds[way]: that least for it.
  const steps = new Array<number>(ALPHABET + 1).fill(NaN)
  const lengths = new Array<number>(ALPHABET + 1).fill(1)
  const sequenceEnds = new Array<number>(ALPHABET + 1).fill(Infinity)
  // Once the sequence from i is long enough, it may also end where the shortest one ends.
  const follow = (i: number, way: number, step: number): number => {
    const least = leastLength(step)
    // Not grown, it is two characters long, shorter than any sequence: what was carried is another's.
    lengths[way] = step === steps[way] ? (lengths[way] as number) + 1 : 2
    steps[way] = step
    sequenceEnds[way] = (lengths[way] as number) >= least ? Math.min(sequenceEnds[way] as number, fewest[i + least] as number) : Infinity
    return sequenceEnds[way] as number
  }
  // Interleaved sequences: spaced[i], how many of chars i, i + 2, i + 4… are a sequence one way. It grows from the
  // one from i + 2, so each way's step and count are kept apart for odd and even places (spacedSteps, spacedCounts);
  // as for sequences, a line this character is not on needs no update: the one two places before finds no step.
  // A way's are at `way` for even places, at `ways + way` for odd ones.
  const spaced = new Array<number>(chars.length + 1).fill(0)
  const ways = ALPHABET + 1
  const spacedSteps = new Array<number>(2 * ways).fill(NaN)
  const spacedCounts = new Array<number>(2 * ways).fill(1)
  const stride = (slot: number, step: number): number => {
    spacedCounts[slot] = Math.abs(step) !== 1 ? 1 : step === spacedSteps[slot] ? (spacedCounts[slot] as number) + 1 : 2
    spacedSteps[slot] = step
    return spacedCounts[slot] as number
  }
  for (let i = chars.length - 1; i >= 0; i--) {
    const char = chars[i] as string
    const next = chars[i + 1]
    let best = 1 + (fewest[i + 1] as number)
    for (let unit = 1; unit <= 4; unit++) {
      const grown = chars[i + unit] === char
      runs[unit] = grown ? (runs[unit] as number) + 1 : unit
      runEnds[unit] = grown && (runs[unit] as number) >= 2 * unit ? Math.min(runEnds[unit] as number, fewest[i + 2 * unit] as number) : Infinity
      best = Math.min(best, runEnds[unit] as number)
    }
    // A line the next character is not on ends any sequence along it here, so a line this one is not on needs no
    // update: the character before finds no step along it.
    best = Math.min(best, follow(i, ALPHABET, next === undefined ? NaN : alphabetStep(char, next)))
    const afterNext = chars[i + 2]
    const offset = (i % 2) * ways
    let count = stride(offset + ALPHABET, afterNext === undefined ? NaN : alphabetStep(char, afterNext))
    // Where the next character and the one after it are, looked up once for all the lines this one is on.
    const nextAt = KEY_POSITIONS.get(next as string)
    const afterNextAt = KEY_POSITIONS.get(afterNext as string)
    for (const [line, at] of KEY_POSITIONS.get(char) ?? []) {
      best = Math.min(best, follow(i, line, (nextAt?.get(line) ?? NaN) - at))
      count = Math.max(count, stride(offset + line, (afterNextAt?.get(line) ?? NaN) - at))
    }
    spaced[i] = count
    // The two from i and i + 1, three characters each at least (six in all), may end anywhere both reach.
    const reach = i + Math.min(2 * count, 2 * (spaced[i + 1] as number) + 1)
    for (let end = i + 6; end <= reach; end++) best = Math.min(best, fewest[end] as number)
    fewest[i] = best
  }
  return fewest[0] as number
}

/** From `a` to `b` along the alphabet (by code point), or the digits, which wrap around: -5 to 4 ("9" to "1" is 2). */
function alphabetStep (a: string, b: string): number {
  const d = (b.codePointAt(0) ?? 0) - (a.codePointAt(0) ?? 0)
  return /[0-9]/.test(a) && /[0-9]/.test(b) ? ((d + 15) % 10) - 5 : d
}

/**
 * A sequence's least length: three when it steps to the next character ("abc"), four when it steps over one ("aceg",
 * "1357": a year's "024" is none). Farther steps make none.
 */
function leastLength (step: number): number {
  const along = Math.abs(step)
  return along === 1 ? 3 : along === 2 ? 4 : Infinity
}
