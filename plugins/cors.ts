import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

/**
 * CORS for the browser apps in ALLOWED_ORIGINS, with credentials (the refresh cookie).
 * Any other origin gets no CORS headers, so its browser blocks the response and, for
 * non-simple requests, the request itself at preflight.
 *
 * With no origin listed (same-origin deployments, the default) there is nothing to grant, so
 * @fastify/cors is not registered at all: its hook and its `Vary: Origin` would cost every request
 * (about 5 % of a refresh, bench/README.md) to say no. A preflight then finds no route (404), and
 * the browser refuses the cross-origin request just the same.
 */
export default fp(async function corsPlugin (fastify) {
  const allowed = new Set(fastify.config.allowedOrigins)
  if (allowed.size === 0) return
  await fastify.register(fastifyCors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['Content-Type', 'Authorization'],
    maxAge: 600,
    // Preflights end here, answered by @fastify/cors; they never reach routes or rate limits.
    preflight: true,
    strictPreflight: true
  })
}, { name: 'cors', dependencies: ['config'], fastify: '5.x' })
