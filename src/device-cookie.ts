import { createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'

/** A browser in which an account has signed in: its device cookie, opened. */
export interface KnownDevice {
  userId: string
  /** 128 bits, base64url, new with every sign-in: what its failed sign-ins are counted under. */
  deviceId: string
}

const DEVICE_ID_BYTES = 16
const TAG_BYTES = 16
// userId (128 bits) . deviceId (128 bits) . tag (128 bits), base64url
const FORMAT = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$/

/**
 * Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a browser in which an account has
 * signed in is given a signed cookie naming that account. Its sign-ins to that account are then limited per cookie,
 * not with the sign-ins of every other client: guesses spread over many addresses, which lock the account for
 * everyone else, leave its owner's own browsers signing in. The cookie grants nothing else: a sign-in still needs the
 * password, and a cookie nobody forged only names an account that a password opened in that browser.
 *
 * Signed with a key derived from the refresh-token secret (HKDF, its own label), so no new secret is configured; one
 * sealed under an accepted secret is still known, and one sealed under a secret that is gone is not (its browser
 * signs in as an unknown one would, and gets a new cookie).
 */
export class DeviceCookieCodec {
  readonly #keys: KeyObject[]

  constructor (currentSecret: string, acceptedSecrets: readonly string[] = []) {
    this.#keys = [currentSecret, ...acceptedSecrets].map((secret) =>
      createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'device-cookie/tag/v1', 32))))
  }

  /** A new cookie value for a sign-in of `userId` (a 22-character base64url id, as every user id is). */
  mint (userId: string): string {
    const body = `${userId}.${randomBytes(DEVICE_ID_BYTES).toString('base64url')}`
    return `${body}.${tag(this.#keys[0] as KeyObject, body)}`
  }

  /** The device a cookie value names; null for anything this service did not seal, under any secret it holds. */
  open (value: string): KnownDevice | null {
    const m = FORMAT.exec(value)
    if (m === null) return null
    const [, userId, deviceId, presented] = m as unknown as [string, string, string, string]
    const body = `${userId}.${deviceId}`
    const given = Buffer.from(presented)
    // Compared as encoded strings: base64url has other spellings of the same bytes, which are not this cookie.
    return this.#keys.some((key) => timingSafeEqual(given, Buffer.from(tag(key, body)))) ? { userId, deviceId } : null
  }
}

function tag (key: KeyObject, body: string): string {
  return createHmac('sha256', key).update(body).digest().toString('base64url', 0, TAG_BYTES)
}
