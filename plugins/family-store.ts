import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { revocationTtlMs } from '../src/access-revocations.js'
import type { FamilyStore } from '../src/family-store.js'
import { MemoryFamilyStore } from '../src/memory-family-store.js'
import { RedisFamilyStore } from '../src/redis-family-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    familyStore: FamilyStore
  }
}

export default fp(async function familyStorePlugin (fastify) {
  const { redis, config } = fastify
  const policy = { ...config.refresh, refreshLimit: config.rateLimits.refreshSession, rememberEndedMs: revocationTtlMs(config.jwt.accessTokenTtlSeconds) }
  let store: FamilyStore
  if (redis === null) {
    store = new MemoryFamilyStore(policy)
  } else {
    const redisStore = new RedisFamilyStore(redis, policy, config.redis?.keyPrefix ?? '', warnOfSkew(fastify))
    fastify.metrics.observeClockSkew(redisStore.clock)
    store = redisStore
  }
  fastify.decorate('familyStore', store)
  fastify.addHook('onClose', () => store.close())
}, { name: 'family-store', dependencies: ['config', 'redis', 'metrics'], fastify: '5.x' })

/**
 * Sessions are ordered on Redis's clock, but access tokens are signed and checked on each instance's own: one whose
 * clock is off by more than the tolerance has its tokens refused early, or accepted late, by the others. Said once
 * each time it goes out of bounds.
 */
function warnOfSkew (fastify: FastifyInstance): (skewMs: number) => void {
  const toleranceMs = fastify.config.jwt.clockToleranceSeconds * 1000
  let outOfBounds = false
  return (skewMs) => {
    const out = Math.abs(skewMs) > toleranceMs
    if (out && !outOfBounds) {
      fastify.log.warn({ clockSkewMs: Math.round(skewMs) },
        `this instance's clock is ${(Math.abs(skewMs) / 1000).toFixed(1)} s ${skewMs > 0 ? 'ahead of' : 'behind'} the Redis server's, more than JWT_CLOCK_TOLERANCE (${toleranceMs / 1000} s): other instances will refuse the access tokens it signs early or accept them late, and it theirs; synchronise the hosts' clocks (NTP)`)
    }
    outOfBounds = out
  }
}
