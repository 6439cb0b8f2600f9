import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

/**
 * CORS for the browser apps in ALLOWED_ORIGINS, with credentials (the refresh cookie).
 * Any other origin gets no CORS headers, so its browser blocks the response and, for
 * non-simple requests, the request itself at preflight.
 *
 * With no origin listed (same-origin deployments, the default) there is nothing to grant, so
 * @fastify/cors is not registered at all: its hook and its `Vary: Origin` would cost every request
 * (about 5 % of a refresh, bench/README.md) to say no. A preflight then finds no route serving OPTIONS (405, with
 * the path's methods in `Allow`), and the browser refuses the cross-origin request just the same.
 *
 * Registered after the error handler, the security headers and the request id: a route takes the error handler
 * and hooks in place when it is added, and @fastify/cors adds one (`OPTIONS *`), which before them answered an
 * OPTIONS with a body in Fastify's own shape and codes (`FST_ERR_CTP_INVALID_JSON_BODY`) and its granted
 * preflights without the headers.
 */
export default fp(async function corsPlugin (fastify) {
  const allowed = new Set(fastify.config.allowedOrigins)
  if (allowed.size === 0) return
  // A preflight names the method it asks about; an OPTIONS without one is a request of its own, which no route
  // serves: the 405 (or 404) it gets without CORS, where @fastify/cors's strict mode answered a text/plain 400.
  fastify.addHook('onRequest', function notAPreflight (request, reply, done) {
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] === undefined) reply.callNotFound()
    else done()
  })
  await fastify.register(fastifyCors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['Content-Type', 'Authorization'],
    // The app's code may read which request failed, to report it (plugins/request-id.ts), when to retry a 429 or a
    // 503, whether a 401 refused its access token (a Bearer challenge, RFC 6750) or a password it sent, and which
    // methods a path it called with another takes (a 405's Allow): none is a CORS-safelisted response header, so a
    // cross-origin app sees null unless they are exposed.
    exposedHeaders: ['X-Request-Id', 'Retry-After', 'WWW-Authenticate', 'Allow'],
    maxAge: 600,
    // Preflights end here, answered by @fastify/cors; they never reach routes or rate limits.
    preflight: true,
    strictPreflight: true
  })
}, { name: 'cors', dependencies: ['config', 'errors', 'security-headers', 'request-id'], fastify: '5.x' })
