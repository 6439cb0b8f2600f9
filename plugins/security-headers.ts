import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import { HeaderTooLargeError } from '../src/errors.js'

/** Largest Cookie header accepted; far above any cookie this service sets. */
export const MAX_COOKIE_HEADER_BYTES = 8 * 1024

/**
 * Runs helmet once, against a response that only records, and returns the headers it sets.
 * These headers depend on nothing in the request, so computing them per request (what
 * @fastify/helmet does, through Node's validating setHeader a dozen times) cost about a tenth of a
 * no-op route here (bench/README.md); helmet stays the source of what the headers are.
 */
export function helmetHeaders (options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const recorder = {
    setHeader (name: string, value: string | number) { headers[name.toLowerCase()] = String(value) },
    removeHeader (name: string) { Reflect.deleteProperty(headers, name.toLowerCase()) }
  }
  let failure: unknown
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => { failure = err })
  if (failure !== undefined) throw failure
  return headers
}

/**
 * The headers OWASP's REST Security Cheat Sheet asks of every API response: nothing here is ever
 * rendered, framed or loaded as a subresource, so the CSP allows nothing, framing is denied and
 * nothing is stored by caches (the JWKS route alone opts into caching). HSTS in production only
 * (local HTTP works). CORP keeps other sites from loading responses as no-cors subresources.
 * Headers that only act on rendered documents are off: each is bytes and work on every response of
 * the hot routes, for the server and for every client parsing it (bench/README.md).
 * Also refuses an oversized Cookie header up front with a 431. (An oversized bearer token is the
 * access-token verifier's to refuse, with the same 401 as any other invalid token.)
 */
export default fp(async function securityHeadersPlugin (fastify) {
  const headers = {
    ...helmetHeaders({
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      strictTransportSecurity: fastify.config.isProduction ? { maxAge: 31_536_000, includeSubDomains: true } : false,
      crossOriginResourcePolicy: { policy: 'same-site' },
      xFrameOptions: { action: 'deny' },
      // Document-only (DNS prefetching, IE downloads, Flash and PDF cross-domain policies, the retired
      // XSS auditor, agent clusters, opener isolation, the Referer a page sends): a JSON API has none.
      crossOriginOpenerPolicy: false,
      referrerPolicy: false,
      xDnsPrefetchControl: false,
      xDownloadOptions: false,
      xPermittedCrossDomainPolicies: false,
      xXssProtection: false,
      originAgentCluster: false
    }),
    // Tokens, sessions and account data: no cache anywhere keeps a copy.
    'cache-control': 'no-store'
  }
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.headers(headers)
    if ((request.headers.cookie?.length ?? 0) > MAX_COOKIE_HEADER_BYTES) {
      done(new HeaderTooLargeError())
      return
    }
    done()
  })
}, { name: 'security-headers', dependencies: ['config'], fastify: '5.x' })
