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
  const store: FamilyStore = redis === null
    ? new MemoryFamilyStore(policy)
    : new RedisFamilyStore(redis, policy, config.redis?.keyPrefix ?? '')
  fastify.decorate('familyStore', store)
  fastify.addHook('onClose', () => store.close())
}, { name: 'family-store', dependencies: ['config', 'redis'], fastify: '5.x' })
