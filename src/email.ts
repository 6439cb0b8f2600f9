/** Longest address RFC 5321 lets through SMTP. */
export const MAX_EMAIL_LENGTH = 254

// After normalisation: one @, a non-empty local part, a dotted domain, no whitespace.
const SHAPE = /^[^\s@]{1,64}@[^\s@.]+(?:\.[^\s@.]+)+$/u
// C0/C1 control characters, DEL and the Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u

/**
 * Canonical form used for storage and comparison: trimmed, NFKC, lower-cased.
 * NFKC folds fullwidth and compatibility forms ("ｕｓｅｒ@ｅｘａｍｐｌｅ.ｃｏｍ"),
 * so look-alike variants of an existing address collide instead of creating a second account.
 * Returns null for anything that is not a plausible address.
 */
export function normalizeEmail (input: string): string | null {
  const trimmed = input.trim()
  if (CONTROL.test(trimmed)) return null
  const email = trimmed.normalize('NFKC').toLowerCase()
  if (email.length === 0 || email.length > MAX_EMAIL_LENGTH) return null
  // NFKC can itself produce controls or separators from compatibility characters.
  if (CONTROL.test(email) || !SHAPE.test(email)) return null
  return email
}
