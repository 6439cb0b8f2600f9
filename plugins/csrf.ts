import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { CsrfError, UnsupportedMediaTypeError } from '../src/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for cookie-authenticated routes: refuses cross-site requests before anything else runs. */
    csrfProtection (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void
  }
}

const JSON_TYPE = /^application\/json\s*(;|$)/i

/**
 * The refresh cookie is sent by the browser whoever initiated the request, so the routes it
 * authenticates (refresh, logout) must establish that the request comes from an allowed app:
 * - an `Origin` outside ALLOWED_ORIGINS is refused, unless the browser says same-origin: by `Sec-Fetch-Site`, or,
 *   in a browser that sends no Fetch Metadata (Safari before 16.4: iOS 15, which some iPhones cannot leave), by
 *   sending the API's own origin, as it does on every same-origin POST and no other site's page can make it do;
 * - `Sec-Fetch-Site: cross-site` (set by the browser, unforgeable by page scripts) is refused, unless the `Origin`
 *   is listed: an app on another site than the API's (COOKIE_SAMESITE=none) makes only cross-site requests;
 * - no `Origin` at all means no browser made a cross-origin request: curl, servers, load testers pass;
 * - a body type other than JSON (form posts, text/plain — the "simple" requests that skip the CORS
 *   preflight) is refused, so a cross-site form can never reach the store.
 * All of it happens in onRequest: nothing is parsed, rotated or revoked for a refused request.
 * A callback hook, not an async one: it runs on every refresh and needs no promise.
 */
export default fp(async function csrfPlugin (fastify) {
  const allowed = new Set(fastify.config.allowedOrigins)

  fastify.decorate('csrfProtection', function csrfProtection (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
    const { headers } = request
    const site = headers['sec-fetch-site']
    const origin = headers.origin
    const listed = origin !== undefined && allowed.has(origin)
    if (!listed && (site === 'cross-site' || (origin !== undefined && !sameOrigin(request, site, origin)))) {
      done(new CsrfError())
      return
    }
    const type = headers['content-type']
    if (type !== undefined && !JSON_TYPE.test(type)) {
      done(new UnsupportedMediaTypeError())
      return
    }
    done()
  })
}, { name: 'csrf', dependencies: ['config'], fastify: '5.x' })

/**
 * Whether the browser says the request comes from the API's own origin: by Fetch Metadata, or, in a browser without
 * it, by an `Origin` that is the origin the request was addressed to. Fastify's `protocol` and `host` read
 * `X-Forwarded-Proto` and `X-Forwarded-Host` only from a proxy TRUST_PROXY trusts: behind one that terminates TLS
 * untrusted, the scheme is `http`, no `https://` origin matches, and such a browser is refused as before.
 */
function sameOrigin (request: FastifyRequest, site: string | undefined, origin: string): boolean {
  if (site !== undefined) return site === 'same-origin'
  // As a browser writes an origin: the host in lower case, without its scheme's default port, which a proxy may add
  // (`X-Forwarded-Host: api.example.com:443`) and a browser's Origin never has.
  const host = request.host.toLowerCase()
  const defaultPort = request.protocol === 'https' ? ':443' : ':80'
  return origin === `${request.protocol}://${host.endsWith(defaultPort) ? host.slice(0, -defaultPort.length) : host}`
}
