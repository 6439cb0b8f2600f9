import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

/**
 * CORS for the browser apps in ALLOWED_ORIGINS, with credentials (the refresh cookie).
 * Any other origin gets no CORS headers, so its browser blocks the response and, for
 * non-simple requests, the request itself at preflight.
 */
export default fp(async function corsPlugin (fastify) {
  const allowed = new Set(fastify.config.allowedOrigins)
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
