import { toASCII } from 'tr46'

/** Longest address RFC 5321 lets through SMTP. */
export const MAX_EMAIL_LENGTH = 254

// UTS #46 as the WHATWG URL standard maps a host name (non-strict), which is how browsers map the domain of an
// <input type=email>. Written out: tr46's defaults check no bidi rules. (Its joiner check never fires here: INVISIBLE
// has removed every joiner first; the option stays as the standard sets it.)
const IDNA = { checkBidi: true, checkJoiners: true, checkHyphens: false, useSTD3ASCIIRules: false, transitionalProcessing: false, verifyDNSLength: false }

// After normalisation: one @, a non-empty local part, a dotted domain, no whitespace.
const SHAPE = /^[^\s@]{1,64}@[^\s@.]+(?:\.[^\s@.]+)+$/u
// Characters that show nothing: zero-width spaces and joiners, soft hyphens, bidi controls, variation selectors, tags.
// A copied address can carry them, and they would make a look-alike of an address.
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/gu
// C0/C1 control characters, DEL and the Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u

/**
 * Canonical form used for storage and comparison: invisible characters removed, trimmed, NFKC, lower-cased, the
 * domain in its ASCII form. NFKC folds fullwidth and compatibility forms ("ｕｓｅｒ@ｅｘａｍｐｌｅ.ｃｏｍ"), and
 * "user\u200b@example.com" loses its zero-width space, so look-alike variants of an existing address collide instead
 * of creating a second account (IDNA already maps such characters out of a domain; this does it for the local part).
 * An internationalised domain is one domain whether it arrives as typed ("bücher.de") or as Chromium's
 * <input type=email> submits it ("xn--bcher-kva.de"): both name one mailbox, so both find one account. The ASCII
 * form is the one kept, as a browser form sends it.
 * Returns null for anything that is not a plausible address.
 */
export function normalizeEmail (input: string): string | null {
  const trimmed = input.replace(INVISIBLE, '').trim()
  if (CONTROL.test(trimmed)) return null
  const lowered = trimmed.normalize('NFKC').toLowerCase()
  // NFKC can itself produce controls or separators from compatibility characters.
  if (lowered.length > MAX_EMAIL_LENGTH || CONTROL.test(lowered) || !SHAPE.test(lowered)) return null
  const at = lowered.indexOf('@')
  const domain = toASCII(lowered.slice(at + 1), IDNA)
  if (domain === null) return null
  const email = `${lowered.slice(0, at + 1)}${domain}`
  // The ASCII form of a domain is longer than its Unicode form, and mapping can empty a label (a soft hyphen alone).
  if (email.length > MAX_EMAIL_LENGTH || !SHAPE.test(email)) return null
  return email
}

// A new account's address, in its canonical form, is a mailbox written one way only. Its local part is RFC 5321's
// atoms and dots, with any non-ASCII character (RFC 6531): no quoted string, comment or angle bracket, each of which
// writes an existing mailbox another way ('"a"@x.org', 'a(note)@x.org' and '<a@x.org>' are all 'a@x.org' to a mail
// server), and no comma, which makes an address a list of two. Dots stay free, as browsers leave them: leading,
// trailing and doubled dots are real addresses at some mail providers. The domain is a host name: LDH labels of at
// most 63 characters, and no all-numeric top-level label (RFC 3696 §2: '1.2.3.4' is an IP address, which needs
// brackets, and an address literal is refused).
const NEW_LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~.\-\u{80}-\u{10ffff}]+$/u
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const NEW_DOMAIN = new RegExp(`^(?:${LABEL}\\.)+(?![0-9]+$)${LABEL}$`)

/**
 * The canonical form (normalizeEmail) of an address a new account may take; null when it may not. Stricter than
 * normalizeEmail, which finds the accounts made before this rule however they were written: signing in stays open to
 * them; only a new account is refused.
 */
export function newAccountEmail (input: string): string | null {
  const email = normalizeEmail(input)
  if (email === null) return null
  const at = email.lastIndexOf('@')
  return NEW_LOCAL_PART.test(email.slice(0, at)) && NEW_DOMAIN.test(email.slice(at + 1)) ? email : null
}
