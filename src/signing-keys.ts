import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto'

export type AsymmetricAlgorithm = 'ES256' | 'EdDSA'
export type SigningAlgorithm = AsymmetricAlgorithm | 'HS256'

/** One key of the set: what verifies tokens that name its `kid`, pinned to its one algorithm. */
export interface VerificationKey {
  kid: string
  alg: SigningAlgorithm
  /** PEM public key (asymmetric) or the shared secret (HS256). */
  verifyKey: string
}

export interface SigningKeySet {
  /** The key new tokens are signed with. */
  current: VerificationKey & { signKey: string }
  /** Every key tokens are accepted from: current, next (published early) and previous (until their tokens expire). */
  byKid: Map<string, VerificationKey>
  /** Public keys only, for /.well-known/jwks.json; empty for HS256, whose secret is never published. */
  jwks: { keys: PublicJwk[] }
}

export interface PublicJwk extends JsonWebKey {
  kid: string
  alg: AsymmetricAlgorithm
  use: 'sig'
}

export class SigningKeyError extends Error {
  override name = 'SigningKeyError'
}

const KID = /^[A-Za-z0-9._-]{1,64}$/
const CURVES: Record<AsymmetricAlgorithm, { kty: string, crv: string }> = {
  ES256: { kty: 'EC', crv: 'P-256' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' }
}

/** The `kid` HS256 tokens carry: one secret, one id. */
export const HS256_KID = 'hs256'

export function hs256KeySet (secret: string): SigningKeySet {
  const key = { kid: HS256_KID, alg: 'HS256' as const, verifyKey: secret }
  return { current: { ...key, signKey: secret }, byKid: new Map([[HS256_KID, key]]), jwks: { keys: [] } }
}

/** Whether a value is a PEM (`-----BEGIN …`), the form an asymmetric key usually comes in where a JWK Set belongs. */
export function isPem (value: string): boolean {
  return /^\s*-----BEGIN /.test(value)
}

/**
 * Validates a JWK Set of private keys (JWT_KEYS) and builds the key set. Messages name the
 * offending key by position and kid, never echo key material.
 */
export function parseKeySet (json: string, signingKid: string | undefined): SigningKeySet {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch {
    // Never quoted: a PEM, pasted where a JWK Set belongs, is the private key itself.
    const pem = isPem(json) ? ': it holds a PEM key, and takes the key as a JWK Set (the README\'s "Signing keys and rotation" makes one)' : ''
    throw new SigningKeyError(`JWT_KEYS is not valid JSON (expected a JWK Set: {"keys":[...]})${pem}`)
  }
  const keys = (parsed as { keys?: unknown })?.keys
  if (!Array.isArray(keys) || keys.length === 0) throw new SigningKeyError('JWT_KEYS must be a JWK Set with at least one key: {"keys":[...]}')

  const byKid = new Map<string, VerificationKey>()
  const signing = new Map<string, string>()
  const publicKeys: PublicJwk[] = []
  keys.forEach((jwk: unknown, index: number) => {
    const where = `JWT_KEYS key #${index + 1}`
    if (typeof jwk !== 'object' || jwk === null) throw new SigningKeyError(`${where} is not an object`)
    const { kid, alg, kty, crv, d, use, key_ops: keyOps } = jwk as Record<string, unknown>
    if (typeof kid !== 'string' || !KID.test(kid)) throw new SigningKeyError(`${where} needs a "kid" of 1-64 characters [A-Za-z0-9._-]`)
    if (byKid.has(kid)) throw new SigningKeyError(`${where}: kid "${kid}" appears twice`)
    if (alg !== 'ES256' && alg !== 'EdDSA') throw new SigningKeyError(`${where} (kid "${kid}"): "alg" must be ES256 or EdDSA`)
    const expected = CURVES[alg]
    if (kty !== expected.kty || crv !== expected.crv) throw new SigningKeyError(`${where} (kid "${kid}"): ${alg} needs kty ${expected.kty} and crv ${expected.crv}`)
    if (typeof d !== 'string') throw new SigningKeyError(`${where} (kid "${kid}") has no private part "d": JWT_KEYS holds private keys`)
    // A key its maker meant for something else (RFC 7517 4.2, 4.3) is not taken to sign: the JWKS would publish it
    // for signatures, under "use": "sig", whatever it was meant for.
    if (use !== undefined && use !== 'sig') throw new SigningKeyError(`${where} (kid "${kid}"): "use" must be "sig" (or absent): it signs tokens`)
    if (keyOps !== undefined && !(Array.isArray(keyOps) && keyOps.includes('sign'))) {
      throw new SigningKeyError(`${where} (kid "${kid}"): "key_ops" must include "sign" (or be absent): it signs tokens`)
    }
    let privateKey: KeyObject
    try {
      privateKey = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' })
    } catch {
      throw new SigningKeyError(`${where} (kid "${kid}") is malformed`)
    }
    const publicKey = createPublicKey(privateKey)
    // A JWK whose private part does not match its public part imports fine and then signs tokens
    // nobody can verify: prove the pair with one signature before accepting it.
    const probe = randomBytes(32)
    const digest = alg === 'ES256' ? 'sha256' : null
    let matches = false
    try {
      matches = verify(digest, probe, publicKey, sign(digest, probe, privateKey))
    } catch {}
    if (!matches) throw new SigningKeyError(`${where} (kid "${kid}") is malformed: its private and public parts do not match`)
    byKid.set(kid, { kid, alg, verifyKey: publicKey.export({ type: 'spki', format: 'pem' }) as string })
    signing.set(kid, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)
    // Only the public members: exporting the public KeyObject cannot carry "d".
    publicKeys.push({ ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' })
  })

  const currentKid = signingKid ?? [...byKid.keys()][0] as string
  const current = byKid.get(currentKid)
  if (current === undefined) throw new SigningKeyError(`JWT_SIGNING_KID "${currentKid}" is not a kid in JWT_KEYS`)
  return { current: { ...current, signKey: signing.get(currentKid) as string }, byKid, jwks: { keys: publicKeys } }
}

/** A fresh private JWK Set of one key, for development without configured keys. */
export function generateKeySetJson (alg: AsymmetricAlgorithm): string {
  const { privateKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('ed25519')
  const kid = `dev-${randomBytes(6).toString('hex')}`
  return JSON.stringify({ keys: [{ ...privateKey.export({ format: 'jwk' }), kid, alg }] })
}
