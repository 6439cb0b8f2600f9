import { generateKeyPairSync, type JsonWebKey } from 'node:crypto'
import type { AsymmetricAlgorithm } from '../../src/signing-keys.js'

/** A private JWK with kid and alg, as an operator would put in JWT_KEYS. */
export function privateJwk (alg: AsymmetricAlgorithm, kid: string): JsonWebKey & { kid: string, alg: string } {
  const { privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')
  return { ...privateKey.export({ format: 'jwk' }), kid, alg }
}

export function keySetJson (...keys: Array<JsonWebKey & { kid: string }>): string {
  return JSON.stringify({ keys })
}
