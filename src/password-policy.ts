import { dictionary } from '@zxcvbn-ts/language-common'
import { normalizeEmail } from './email.js'

/** What a user is told when a new password is refused; the 400 `AUTH_WEAK_PASSWORD` carries it. */
export type PasswordRefusal =
  | 'This password is one of the most common ones; choose another'
  | 'A password must not be the account\'s email address'
  | 'A password must not be one character, or a few, repeated or in sequence'

/** Digits, punctuation, symbols and spaces: what people pad a short password with to pass a length rule. */
const PADDING = /^[\p{N}\p{P}\p{S}\p{Z}]+|[\p{N}\p{P}\p{S}\p{Z}]+$/gu
/** A unit of one to four characters, repeated: "aaaaaaaaaaaa", "abcabcabcabc", "a1a1a1a1a1a1". */
const REPEATED = /^(.{1,4})\1+$/su
/** The runs padding is made of: digits, and the other padding characters ("!!2024" is "!!" and "2024"). */
const PADDING_RUN = /\p{N}+|[\p{P}\p{S}\p{Z}]+/gu
/**
 * A password with no more characters than this outside repeated units and sequences, its core's and its padding's
 * together, is what a mask attack tries among the first ("qwz!!!!!!!!!", "xy1234567890", "ab!!!!!!1234").
 */
const MAX_OUTSIDE_PATTERNS = 3

/**
 * The blocklist NIST SP 800-63B (5.1.1.2) requires for a new password, beyond the length rule: the common
 * passwords of breach corpora (@zxcvbn-ts/language-common, about 49,000), also padded with digits or symbols
 * ("password1234", "iloveyou2024!"), the account's email address or its name part, a character or a few repeated
 * or in sequence, and a few characters padded with those ("xy1234567890", "qwz!!!!!!!!!"). Compared
 * case-insensitively after NFKC, the form that is hashed. Nothing here scores strength (zxcvbn's estimator cost tens
 * of milliseconds of the event loop for some 64-character inputs, and 40 MB per process): it refuses only what an
 * attacker tries first.
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
    // Padding counts for nothing around a core on the list or a pattern. Around a few characters, or none, it is what
    // the password holds: "qwz123456789" is refused, "qwz830194725" is not.
    if (candidates.some(patterned) || [...core].length + outsidePatterns(p) <= MAX_OUTSIDE_PATTERNS) {
      return 'A password must not be one character, or a few, repeated or in sequence'
    }
    return null
  }
}

function patterned (text: string): boolean {
  return REPEATED.test(text) || inSequence(text)
}

/** How many characters of the runs of padding in `text` are in none that is a pattern: 4 in "!!!!2024", 0 in "!!!!". */
function outsidePatterns (text: string): number {
  let count = 0
  for (const run of text.match(PADDING_RUN) ?? []) if (!patterned(run)) count += [...run].length
  return count
}

/** "abcdefghijkl", "987654321098": each character the one after (or before) the previous; digits wrap around. */
function inSequence (text: string): boolean {
  const chars = [...text]
  if (chars.length < 3) return false
  const step = (a: string, b: string): number => {
    const d = (b.codePointAt(0) ?? 0) - (a.codePointAt(0) ?? 0)
    return /[0-9]/.test(a) && /[0-9]/.test(b) && Math.abs(d) === 9 ? -Math.sign(d) : d
  }
  const first = step(chars[0] as string, chars[1] as string)
  return Math.abs(first) === 1 && chars.every((c, i) => i === 0 || step(chars[i - 1] as string, c) === first)
}
