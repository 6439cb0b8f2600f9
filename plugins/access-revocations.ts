import fp from 'fastify-plugin'
import { LocalAccessRevocations, noRevocations, RedisAccessRevocations, revocationTtlMs, type AccessRevocations } from '../src/access-revocations.js'
import { RevocationList } from '../src/revocation-list.js'

declare module 'fastify' {
  interface FastifyInstance {
    accessRevocations: AccessRevocations
  }
}

export default fp(async function accessRevocationsPlugin (fastify) {
  const { config, redis } = fastify
  let revocations: AccessRevocations = noRevocations
  if (config.jwt.revocation === 'instant') {
    const ttlMs = revocationTtlMs(config.jwt.accessTokenTtlSeconds)
    if (redis === null) {
      revocations = new LocalAccessRevocations(new RevocationList(), ttlMs)
    } else {
      const shared = new RedisAccessRevocations(redis, new RevocationList(), { keyPrefix: config.redis?.keyPrefix ?? '', ttlMs, log: fastify.log })
      await shared.start()
      revocations = shared
    }
  }
  fastify.decorate('accessRevocations', revocations)
  fastify.addHook('onClose', () => revocations.close())
}, { name: 'access-revocations', dependencies: ['config', 'redis'], fastify: '5.x' })
