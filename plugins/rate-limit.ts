import fastifyRateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import { RateLimitedError } from '../src/errors.js'

/**
 * @fastify/rate-limit with its Redis store, so every instance shares the counters
 * (the embedded store when REDIS_URL is unset). Routes opt in with `config.rateLimit`.
 *
 * Redis down: the limiter fails open (skipOnError). That is deliberate per route: login,
 * register and password change need the store themselves and already fail closed with 503,
 * and the 404 handler has nothing to protect; failing closed in the limiter would only turn
 * an outage into 500s or 429s for everyone.
 */
export default fp(async function rateLimitPlugin (fastify) {
  const { redis, config } = fastify
  await fastify.register(fastifyRateLimit, {
    global: false,
    ...(redis === null ? {} : { redis, nameSpace: `${config.redis?.keyPrefix ?? ''}rl:` }),
    skipOnError: true,
    // Clients are counted by address, an IPv6 one by its /64 (the plugin's default ipv6Subnet; login counts its
    // failures per address with the plugin's own normalizeIP).
    errorResponseBuilder: () => new RateLimitedError()
  })
}, { name: 'rate-limit', dependencies: ['config', 'redis'], fastify: '5.x' })
