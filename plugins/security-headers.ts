import fastifyHelmet from '@fastify/helmet'
import fp from 'fastify-plugin'
import { HeaderTooLargeError } from '../src/errors.js'

/** Nothing here is ever rendered, framed or loaded as a subresource: allow nothing. */
const CONTENT_SECURITY_POLICY = "default-src 'none';frame-ancestors 'none'"

/** Largest Cookie header accepted; far above any cookie this service sets. */
export const MAX_COOKIE_HEADER_BYTES = 8 * 1024

/**
 * Headers suited to a JSON API: nothing here is ever rendered, framed or loaded as a
 * subresource, so the CSP allows nothing. HSTS in production only (local HTTP works).
 * Also refuses an oversized Cookie header up front with a 431. (An oversized bearer token is the
 * access-token verifier's to refuse, with the same 401 as any other invalid token.)
 */
export default fp(async function securityHeadersPlugin (fastify) {
  await fastify.register(fastifyHelmet, {
    // Set statically below: helmet re-serialises its CSP on every request (to allow nonces),
    // measurable on the hot routes (bench/README.md), and this policy never changes.
    contentSecurityPolicy: false,
    hsts: fastify.config.isProduction ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    crossOriginResourcePolicy: { policy: 'same-site' },
    referrerPolicy: { policy: 'no-referrer' }
  })
  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    if ((request.headers.cookie?.length ?? 0) > MAX_COOKIE_HEADER_BYTES) throw new HeaderTooLargeError()
  })
}, { name: 'security-headers', dependencies: ['config'], fastify: '5.x' })
