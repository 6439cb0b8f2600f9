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
  fastify.decorate('sessions', new SessionService(codec, fastify.familyStore, fastify.accessRevocations))
}, { name: 'sessions', dependencies: ['config', 'secrets', 'family-store', 'access-revocations'], fastify: '5.x' })
