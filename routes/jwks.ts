import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import etag from 'etag'
import fresh from 'fresh'
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
}, {
  // Response headers, for the OpenAPI document (@fastify/swagger moves them there from the schema).
  headers: {
    'Cache-Control': { type: 'string', description: `public, max-age=${JWKS_MAX_AGE_SECONDS}, must-revalidate: verifiers revalidate the set at least this often` },
    ETag: { type: 'string', description: 'The set\'s tag: the same on every instance with the same keys; send it as If-None-Match to revalidate' }
  }
})

const jwks: FastifyPluginAsyncTypebox = async (fastify) => {
  const keySet = fastify.accessTokens.jwks as { keys: Array<PublicJwk & { kty: string, crv: string, x: string }> }
  let tag: string | undefined
  // The response schema is also a guard: only these public members can ever be serialised.
  fastify.get('/.well-known/jwks.json', {
    config: { accessLog: 'failures', answersAtOnce: true },
    schema: {
      summary: 'The public keys that verify access tokens',
      response: { 200: Jwks, 304: Type.Unsafe<undefined>({ description: 'The key set the If-None-Match names is the current one: no body', type: 'null' }) }
    }
  }, async (request, reply) => {
    // Verifiers, and the caches in front of them, revalidate the set every few minutes (must-revalidate): with an
    // ETag they do it with a 304 and no body. A hash of the set as served, so every instance with the same keys gives
    // the same one, and a key published or retired a new one. Per route, not @fastify/etag's hook: route modules
    // share one context (src/app.ts), and no other answer is meant to be kept.
    tag ??= etag(reply.serialize(keySet) as string)
    reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}, must-revalidate`)
    reply.header('etag', tag)
    if (fresh(request.headers, { etag: tag })) return reply.code(304).send()
    return keySet
  })
}

export default jwks
