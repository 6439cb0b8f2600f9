// A separate service that trusts access tokens from auth-service knowing nothing but its JWKS URL:
// no shared secret, nothing that could mint a token. Run it with
//   AUTH_JWKS_URL=http://127.0.0.1:3000/.well-known/jwks.json PORT=4000 node --import tsx examples/resource-server.ts
import Fastify, { type FastifyInstance } from 'fastify'
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'

export interface ResourceServerOptions {
  jwksUrl: string
  issuer?: string
  audience?: string
}

/**
 * Whether the token's signature is spelled as its bytes encode. Its last base64url character can carry bits no byte
 * uses, which decoders ignore: changed, they give another spelling of the same token that verifies, and that a cache
 * or a deny-list keyed by the token would take for another. A token is accepted only as it was issued.
 */
function isCanonical (token: string): boolean {
  const signature = token.slice(token.lastIndexOf('.') + 1)
  return Buffer.from(signature, 'base64url').toString('base64url') === signature
}

export function buildResourceServer (options: ResourceServerOptions): FastifyInstance {
  // Fetched on first use, cached, refetched when a token names an unknown kid (so key rotation just works).
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl))
  const app = Fastify({ logger: false })
  // Node drops the headers of a request past its first thousand or so: a second Authorization among them would go
  // unseen. Kept all; Node's 16 kB limit on a request's headers bounds them.
  app.server.maxHeadersCount = 0

  app.decorateRequest('claims', null)
  app.addHook('onRequest', async (request, reply) => {
    // RFC 6750 §2.1: the scheme in any case, one or more spaces, the token.
    const token = /^bearer +(\S+)$/i.exec(request.headers.authorization ?? '')?.[1]
    // Node keeps the first of several Authorization headers; a proxy in front may act on another.
    const authorizations = request.raw.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'authorization')
    try {
      if (token === undefined) throw new Error('no bearer token')
      if (authorizations.length > 1) throw new Error('two Authorization headers')
      if (!isCanonical(token)) throw new Error('a respelled token')
      const { payload } = await jwtVerify(token, jwks, {
        issuer: options.issuer ?? 'auth-service',
        audience: options.audience ?? 'auth-service',
        algorithms: ['ES256', 'EdDSA'],
        typ: 'at+jwt',
        requiredClaims: ['exp', 'sub']
      });
      (request as unknown as { claims: JWTPayload }).claims = payload
    } catch {
      return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send({ error: 'invalid_token' })
    }
  })

  app.get('/orders', async (request) => {
    const { sub } = (request as unknown as { claims: JWTPayload }).claims
    return { owner: sub, orders: [] }
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = buildResourceServer({ jwksUrl: process.env.AUTH_JWKS_URL ?? 'http://127.0.0.1:3000/.well-known/jwks.json' })
  await app.listen({ port: Number(process.env.PORT ?? 4000), host: '127.0.0.1' })
}
