import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { RateLimit } from '../src/config.js'
import { countedAddress, untrustedForwarder } from '../src/client-address.js'
import { RateLimitedError } from '../src/errors.js'

/** A limit of the configuration (a `RATE_LIMIT_*` variable) as @fastify/rate-limit takes it: a route's `config.rateLimit`. */
export function limitOf ({ max, windowSeconds }: RateLimit): { max: number, timeWindow: number } {
  return { max, timeWindow: windowSeconds * 1000 }
}

/**
 * Whom a limit counts: the client's address, an IPv6 one by its /64, as failed sign-ins count it (src/client-address.ts).
 */
export function clientKey (request: FastifyRequest): string {
  return countedAddress(request.ip)
}

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
  // A proxy TRUST_PROXY does not trust is every client to the limits, and nothing else says so until sign-ins fail
  // with 429 for everyone behind it (30 a minute by default): said once, at the first such request a limit counts.
  let forwarderSaid = false
  const countClient = (request: FastifyRequest): string => {
    if (!forwarderSaid) {
      const forwarder = untrustedForwarder(request)
      if (forwarder !== null) {
        forwarderSaid = true
        fastify.log.warn({ forwarder }, 'a request names its client in X-Forwarded-For, sent by an address TRUST_PROXY does not trust: the rate limits count that address as the client. Behind a proxy (a load balancer, an ingress), every client it serves shares one count of each limit: set TRUST_PROXY to the proxy\'s address or range (README: Configuration). Said once; a client may also send the header itself')
      }
    }
    return clientKey(request)
  }
  await fastify.register(fastifyRateLimit, {
    global: false,
    ...(redis === null ? {} : { redis, nameSpace: `${config.redis?.keyPrefix ?? ''}rl:` }),
    keyGenerator: countClient,
    skipOnError: true,
    errorResponseBuilder: () => new RateLimitedError()
  })
}, { name: 'rate-limit', dependencies: ['config', 'redis'], fastify: '5.x' })
