import { randomUUID } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import fp from 'fastify-plugin'
import { ACCESS_TOKEN_TYP, AccessTokenVerifier, type AccessTokenClaims } from '../src/access-token-verifier.js'
import type { PublicJwk } from '../src/signing-keys.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    /** What a token is signed with; `client_id` is issued for resource servers (RFC 9068) and not read back here. */
    payload: Pick<AccessTokenClaims, 'sub' | 'email' | 'sid' | 'jti'> & { client_id: string }
    user: AccessTokenClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    accessTokens: {
      /** Mints an access token for one session; the body login and refresh answer with. */
      issue (session: { userId: string, email: string, familyId: string }): { accessToken: string, tokenType: 'Bearer', expiresIn: number }
      /** Claims of a token this service would accept, or null. Cached; revocation is checked by the caller. */
      verify (token: string): AccessTokenClaims | null
      /** The published verification keys (public parts only). */
      jwks: { keys: PublicJwk[] }
    }
  }
}

/**
 * Short-lived access tokens: ES256 or EdDSA from a key set with rotation (HS256 with JWT_SECRET
 * for single-service setups). @fastify/jwt signs with the current key, its signer built once
 * (per-call options would build one per token). Verification uses src/access-token-verifier.ts,
 * on fast-jwt as @fastify/jwt does, because it needs what @fastify/jwt cannot express without
 * building a verifier per request: one pinned algorithm per kid, a header policy, and a cache.
 */
export default fp(async function accessTokensPlugin (fastify) {
  const { issuer, audience, accessTokenTtlSeconds, clockToleranceSeconds, verifiedTokenCacheSize } = fastify.config.jwt
  const keys = fastify.secrets.signingKeys
  const { current } = keys
  await fastify.register(fastifyJwt, {
    secret: current.alg === 'HS256' ? current.signKey : { private: current.signKey, public: current.verifyKey },
    sign: {
      algorithm: current.alg,
      kid: current.kid,
      header: { alg: current.alg, typ: ACCESS_TOKEN_TYP },
      iss: issuer,
      aud: audience,
      expiresIn: accessTokenTtlSeconds // seconds: @fastify/jwt converts numbers
    }
  })
  const verifier = new AccessTokenVerifier(keys, { issuer, audience, clockToleranceSeconds, cacheSize: verifiedTokenCacheSize })

  fastify.decorate('accessTokens', {
    issue (session: { userId: string, email: string, familyId: string }) {
      // client_id: RFC 9068 §2.2 requires it of a token whose header says at+jwt, and resource servers that hold tokens
      // to that profile refuse one without it. The client is the service's own sign-in, so it bears the issuer's name.
      const accessToken = fastify.jwt.sign({ sub: session.userId, email: session.email, sid: session.familyId, jti: randomUUID(), client_id: issuer })
      return { accessToken, tokenType: 'Bearer' as const, expiresIn: accessTokenTtlSeconds }
    },
    verify: (token: string) => verifier.verify(token),
    jwks: keys.jwks
  })
}, { name: 'access-tokens', dependencies: ['config', 'secrets'], fastify: '5.x' })
