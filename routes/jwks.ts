import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { PublicJwk } from '../src/signing-keys.js'

/**
 * How long verifiers may cache the key set. A key must be published at least this long before it
 * signs anything (README: key rotation), so no verifier meets a kid it has not fetched.
 */
export const JWKS_MAX_AGE_SECONDS = 300

const Jwks = Type.Object({
  keys: Type.Array(Type.Object({
    kty: Type.String(),
    crv: Type.String(),
    x: Type.String(),
    y: Type.Optional(Type.String()),
    kid: Type.String(),
    alg: Type.String(),
    use: Type.String()
  }))
})

const jwks: FastifyPluginAsyncTypebox = async (fastify) => {
  // The response schema is also a guard: only these public members can ever be serialised.
  fastify.get('/.well-known/jwks.json', { config: { accessLog: 'failures', answersAtOnce: true }, schema: { summary: 'The public keys that verify access tokens', response: { 200: Jwks } } }, async (_request, reply) => {
    reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}, must-revalidate`)
    return fastify.accessTokens.jwks as { keys: Array<PublicJwk & { kty: string, crv: string, x: string }> }
  })
}

export default jwks
