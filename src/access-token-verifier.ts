import { createVerifier } from 'fast-jwt'
import type { SigningKeySet } from './signing-keys.js'

/** Claims of an access token (RFC 7519 / RFC 9068 names); `sid` is the refresh family it came from. */
export interface AccessTokenClaims {
  sub: string
  email: string
  sid: string
  jti: string
  iat: number
  exp: number
  iss: string
  aud: string
}

/** RFC 9068 §2.1: access tokens say what they are, so no other JWT of ours can pass for one. */
export const ACCESS_TOKEN_TYP = 'at+jwt'
/** Longest token looked at; anything larger is refused before decoding. */
export const MAX_ACCESS_TOKEN_BYTES = 8 * 1024

// Header members that point at keys elsewhere or carry a key inline: never fetched, never trusted.
const KEY_POINTERS = ['jku', 'jwk', 'x5u', 'x5c', 'x5t', 'x5t#S256']
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * Whether a JWT's signature is spelled as its bytes encode. Its last base64url character can carry bits no byte uses,
 * and decoders ignore them: changed, they give another spelling of the same token that verifies (the header and payload
 * are signed as spelled, so theirs cannot). A token is accepted only as it was issued, as refresh tokens are, and a
 * respelled one is never cached beside it.
 */
function isCanonical (token: string): boolean {
  const signature = token.slice(token.lastIndexOf('.') + 1)
  return Buffer.from(signature, 'base64url').toString('base64url') === signature
}

export interface VerifierOptions {
  issuer: string
  audience: string
  clockToleranceSeconds: number
  /** Verified tokens remembered at once (the oldest goes first); 0 disables the cache. */
  cacheSize: number
  now?: () => number
}

type Verify = (token: string) => Record<string, unknown>

/**
 * Verifies access tokens against a key set, refusing everything in the jwt_tool / PortSwigger
 * catalogue: the algorithm is pinned per key (so `none`, HS256-with-the-public-key and the like
 * never match), `kid` only selects among configured keys, key-carrying headers and unknown `crit`
 * are refused, `typ` must be at+jwt, `exp` is required, `iss` and `aud` must be exactly ours.
 *
 * Successful verifications are cached (bounded, oldest out first, keyed by the token, never past its `exp`):
 * clients present one token on many requests, and asymmetric verification costs ~70 µs here.
 * Failures are never cached. Revocation is checked by the caller on every request, cache or not.
 */
export class AccessTokenVerifier {
  readonly #verifiers = new Map<string, { alg: string, verify: Verify }>()
  readonly #cache = new Map<string, { claims: AccessTokenClaims, expMs: number }>()
  readonly #cacheSize: number
  readonly #now: () => number

  constructor (keys: SigningKeySet, options: VerifierOptions) {
    this.#cacheSize = options.cacheSize
    this.#now = options.now ?? Date.now
    for (const key of keys.byKid.values()) {
      this.#verifiers.set(key.kid, {
        alg: key.alg,
        verify: createVerifier({
          key: key.verifyKey,
          algorithms: [key.alg],
          allowedIss: options.issuer,
          allowedAud: options.audience,
          requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub', 'sid', 'jti', 'email'],
          clockTolerance: options.clockToleranceSeconds * 1000
        }) as Verify
      })
    }
  }

  /** The token's claims, or null for any token that must not be accepted. Never throws. */
  verify (token: string): AccessTokenClaims | null {
    const cached = this.#cache.get(token)
    if (cached !== undefined) {
      if (cached.expMs > this.#now()) return cached.claims
      this.#cache.delete(token)
    }

    const claims = this.#verifyUncached(token)
    if (claims !== null && this.#cacheSize > 0) {
      // Full: the oldest entry goes. Every token lives ACCESS_TOKEN_TTL, so the first cached is the
      // first to expire; keeping hits in place (no LRU reordering) saves two Map writes per request.
      if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value as string)
      this.#cache.set(token, { claims, expMs: claims.exp * 1000 })
    }
    return claims
  }

  /** Verified tokens currently remembered; for tests and metrics. */
  get cached (): number {
    return this.#cache.size
  }

  /** Whether a token's verification is remembered; for tests. */
  isCached (token: string): boolean {
    return this.#cache.has(token)
  }

  #verifyUncached (token: string): AccessTokenClaims | null {
    if (token.length > MAX_ACCESS_TOKEN_BYTES || !JWT_SHAPE.test(token) || !isCanonical(token)) return null
    let header: Record<string, unknown>
    try {
      header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'))
    } catch {
      return null
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) return null
    if (header.typ !== ACCESS_TOKEN_TYP) return null
    if (header.crit !== undefined) return null // we implement no extensions: RFC 7515 §4.1.11
    if (KEY_POINTERS.some((name) => name in header)) return null
    if (typeof header.kid !== 'string') return null
    const verifier = this.#verifiers.get(header.kid)
    if (verifier === undefined || header.alg !== verifier.alg) return null

    let payload: Record<string, unknown>
    try {
      payload = verifier.verify(token)
    } catch {
      return null
    }
    // fast-jwt accepts arrays for iss/aud and any JSON for the rest: we want exactly strings and numbers.
    const { sub, email, sid, jti, iat, exp, iss, aud } = payload
    if (typeof sub !== 'string' || typeof email !== 'string' || typeof sid !== 'string' || typeof jti !== 'string' ||
        typeof iss !== 'string' || typeof aud !== 'string' || typeof iat !== 'number' || typeof exp !== 'number') {
      return null
    }
    return { sub, email, sid, jti, iat, exp, iss, aud }
  }
}
