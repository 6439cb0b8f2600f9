import { compile } from '@fastify/proxy-addr'
import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { RateLimit } from '../src/config.js'
import { clientAddress, countedAddress, untrustedForwarder } from '../src/client-address.js'
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
 * RATE_LIMIT_EXEMPT as @fastify/rate-limit's allowList: the clients the per-address limits do not count, matched as
 * TRUST_PROXY's entries are (proxy-addr), an IPv4 client of a dual-stack listener by its IPv4 address. Behind one NAT
 * (an office), every sign-in of its people is one address's, 30 a minute by default; the limits per account, per
 * browser and per session still hold for them. Nothing when the list is empty: the refresh route pays nothing for it.
 */
export function exemptAddresses (addresses: string[]): { allowList?: (request: FastifyRequest) => boolean } {
  if (addresses.length === 0) return {}
  const listed = compile(addresses)
  return { allowList: (request) => listed(clientAddress(request.ip), 0) }
}

/** The proxy-side half of the warning below, when RATE_LIMIT_EXEMPT lists the proxy TRUST_PROXY does not trust. */
const EXEMPT_FORWARDER = ', and RATE_LIMIT_EXEMPT lists it, so no client behind it is counted by any limit per address'

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
  const { allowList: exempt } = exemptAddresses(config.rateLimitExempt)
  const countClient = (request: FastifyRequest): string => {
    if (!forwarderSaid) {
      const forwarder = untrustedForwarder(request)
      if (forwarder !== null) {
        forwarderSaid = true
        const counted = exempt?.(request) === true ? EXEMPT_FORWARDER : ''
        fastify.log.warn({ forwarder }, `a request names its client in X-Forwarded-For, sent by an address TRUST_PROXY does not trust: the rate limits count that address as the client${counted}. Behind a proxy (a load balancer, an ingress), every client it serves shares one count of each limit: set TRUST_PROXY to the proxy's address or range (README: Configuration). Said once; a client may also send the header itself`)
      }
    }
    return clientKey(request)
  }
  await fastify.register(fastifyRateLimit, {
    global: false,
    ...(redis === null ? {} : { redis, nameSpace: `${config.redis?.keyPrefix ?? ''}rl:` }),
    keyGenerator: countClient,
    ...(exempt === undefined ? {} : { allowList: exempt }),
    skipOnError: true,
    errorResponseBuilder: () => new RateLimitedError()
  })
}, { name: 'rate-limit', dependencies: ['config', 'redis'], fastify: '5.x' })
