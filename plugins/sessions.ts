import fp from 'fastify-plugin'
import { RefreshTokenCodec } from '../src/refresh-token.js'
import { SessionService } from '../src/session-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionService
  }
}

export default fp(async function sessionsPlugin (fastify) {
  const codec = new RefreshTokenCodec(fastify.secrets.refreshTokenSecret, fastify.config.refresh.acceptedSecrets)
  const sessions = new SessionService(codec, fastify.familyStore, fastify.accessRevocations, { log: fastify.log })
  fastify.decorate('sessions', sessions)
  fastify.metrics.observeUnansweredWrites(sessions)
  // Before the store's onClose (plugins close in reverse order of registration), which this one depends on.
  fastify.addHook('onClose', () => sessions.close())
}, { name: 'sessions', dependencies: ['config', 'secrets', 'family-store', 'access-revocations', 'metrics'], fastify: '5.x' })
