import { createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'

/** One refresh token, decoded. Never logged: `secret` is the bearer credential. */
export interface RefreshToken {
  userId: string
  familyId: string
  /** 0 for the token issued at login, +1 on every rotation. */
  generation: number
  /** 256 bits, base64url: random at login, HMAC-derived from the parent afterwards. */
  secret: string
  /**
   * Which of the codec's secrets the family began under, and so every token of it is sealed and derived with:
   * 0 the current one, then the accepted ones in order. Not part of the token's text.
   */
  keyIndex: number
}

const SECRET_BYTES = 32
const TAG_BYTES = 16
/**
 * 96 bits: the stored digest only confirms that an authentic token (its 128-bit tag already checked)
 * is the family's current one, a second line of defence should the key leak. As 16 base64url
 * characters it costs the family hash what 16 raw bytes did, and keeps every argument of the
 * rotation command a string (ioredis encodes any command with a Buffer argument through a slower
 * path; bench/README.md).
 */
const DIGEST_BYTES = 12
const FAMILY_ID_BYTES = 16
const MAX_GENERATION = 999_999_999
// userId (128 bits) . familyId (128 bits) . generation . secret (256 bits) . tag (128 bits), base64url
const FORMAT = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})\.(0|[1-9][0-9]{0,8})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{22})$/
/** Longest string `parse` will look at; anything longer is rejected before a regex runs. */
export const MAX_REFRESH_TOKEN_LENGTH = 128

/**
 * Mints, parses and rotates opaque refresh tokens.
 *
 * The successor of a token is derived from it with a key every instance shares,
 * so concurrent refreshes of one token on any instance compute the same successor
 * and the store keeps nothing but hashes. A truncated HMAC tag over the whole token
 * lets any instance recognise a genuine token of an older generation — which is what
 * makes reuse detection safe: a forged token naming someone's family is rejected
 * before the store is touched, so it can never revoke that family.
 *
 * Secrets rotate without signing anyone out: new families begin under the current secret, and a family
 * begun under an accepted one stays under it for life. So a token's successor depends on the token alone,
 * never on which secret an instance mints with, and instances midway through a rollout of a new secret
 * still derive the same successor for two tabs refreshing at once.
 */
export class RefreshTokenCodec {
  readonly #keys: TokenKeys[]

  /** `currentSecret` begins new families; tokens of families begun under `acceptedSecrets` keep opening and rotating. */
  constructor (currentSecret: string, acceptedSecrets: readonly string[] = []) {
    this.#keys = [currentSecret, ...acceptedSecrets].map(deriveKeys)
  }

  /** A token for a new family, the first of its chain, under the current secret. */
  mint (userId: string): RefreshToken {
    return {
      userId,
      familyId: randomBytes(FAMILY_ID_BYTES).toString('base64url'),
      generation: 0,
      secret: randomBytes(SECRET_BYTES).toString('base64url'),
      keyIndex: 0
    }
  }

  /** The one token that follows `token`: same on every instance, for every concurrent caller. */
  successor (token: RefreshToken): RefreshToken {
    if (token.generation >= MAX_GENERATION) throw new RangeError('refresh token generation exhausted')
    const secret = createHmac('sha256', this.#keysOf(token).successor).update(body(token)).digest('base64url')
    return { userId: token.userId, familyId: token.familyId, generation: token.generation + 1, secret, keyIndex: token.keyIndex }
  }

  /**
   * The cookie value of a token, and the digest the store keeps for it. Both come from one HMAC
   * over the whole token: its first 128 bits are the tag in the cookie, the next 96 are stored, so
   * the stored value appears nowhere in the cookie and reveals nothing without the key.
   */
  seal (token: RefreshToken): SealedRefreshToken {
    const b = body(token)
    const mac = createHmac('sha256', this.#keysOf(token).tag).update(b).digest()
    return {
      token,
      value: `${b}.${mac.toString('base64url', 0, TAG_BYTES)}`,
      digest: mac.toString('base64url', TAG_BYTES, TAG_BYTES + DIGEST_BYTES)
    }
  }

  /** Decodes a token this service issued; null for anything malformed or not carrying a valid tag under any secret. */
  open (value: string | undefined): SealedRefreshToken | null {
    if (value === undefined || value.length > MAX_REFRESH_TOKEN_LENGTH) return null
    const m = FORMAT.exec(value)
    if (m === null) return null
    const [, userId, familyId, generation, secret, tag] = m as unknown as [string, string, string, string, string, string]
    const presented = Buffer.from(tag)
    for (let keyIndex = 0; keyIndex < this.#keys.length; keyIndex++) {
      const sealed = this.seal({ userId, familyId, generation: Number(generation), secret, keyIndex })
      // Compare the encoded strings, not decoded bytes: base64url has non-canonical spellings of the same bytes.
      if (timingSafeEqual(presented, Buffer.from(sealed.value.slice(sealed.value.length - tag.length)))) return sealed
    }
    return null
  }

  #keysOf (token: RefreshToken): TokenKeys {
    const keys = this.#keys[token.keyIndex]
    if (keys === undefined) throw new RangeError('refresh token names a secret this codec does not hold')
    return keys
  }
}

interface TokenKeys { successor: KeyObject, tag: KeyObject }

/** Separate keys per purpose (HKDF, RFC 5869), so the tag key can never be used to derive successors. */
function deriveKeys (masterSecret: string): TokenKeys {
  const derive = (info: string): KeyObject =>
    createSecretKey(Buffer.from(hkdfSync('sha256', masterSecret, Buffer.alloc(0), `refresh-token/${info}/v1`, 32)))
  return { successor: derive('successor'), tag: derive('tag') }
}

/** A token with its cookie value and the digest the store keeps instead of it. */
export interface SealedRefreshToken {
  token: RefreshToken
  value: string
  /** 96 bits, base64url; the only trace of the token in the store. */
  digest: string
}

function body (token: RefreshToken): string {
  return `${token.userId}.${token.familyId}.${token.generation}.${token.secret}`
}
