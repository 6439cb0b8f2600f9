import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { CsrfError, UnsupportedMediaTypeError } from '../src/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for cookie-authenticated routes: refuses cross-site requests before anything else runs. */
    csrfProtection (request: FastifyRequest, reply: FastifyReply): Promise<void>
  }
}

/**
 * The refresh cookie is sent by the browser whoever initiated the request, so the routes it
 * authenticates (refresh, logout) must establish that the request comes from an allowed app:
 * - `Sec-Fetch-Site: cross-site` (set by the browser, unforgeable by page scripts) is refused;
 * - an `Origin` outside ALLOWED_ORIGINS is refused, unless the browser says same-origin;
 * - no `Origin` at all means no browser made a cross-origin request: curl, servers, load testers pass;
 * - a body type other than JSON (form posts, text/plain — the "simple" requests that skip the CORS
 *   preflight) is refused, so a cross-site form can never reach the store.
 * All of it happens in onRequest: nothing is parsed, rotated or revoked for a refused request.
 */
export default fp(async function csrfPlugin (fastify) {
  const allowed = new Set(fastify.config.allowedOrigins)

  fastify.decorate('csrfProtection', async function csrfProtection (request: FastifyRequest) {
    const site = request.headers['sec-fetch-site']
    if (site === 'cross-site') throw new CsrfError()
    const origin = request.headers.origin
    if (origin !== undefined && site !== 'same-origin' && !allowed.has(origin)) throw new CsrfError()
    const type = request.headers['content-type']
    if (type !== undefined && !/^application\/json\s*(;|$)/i.test(type)) throw new UnsupportedMediaTypeError()
  })
}, { name: 'csrf', dependencies: ['config'], fastify: '5.x' })
