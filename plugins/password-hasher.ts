import fp from 'fastify-plugin'
import { PasswordHasher } from '../src/password-hasher.js'
import { lowerHelperThreadPriority } from '../src/thread-priority.js'

declare module 'fastify' {
  interface FastifyInstance {
    passwordHasher: PasswordHasher
  }
}

export default fp(async function passwordHasherPlugin (fastify) {
  const { argon2 } = fastify.config
  const lowered = await lowerHelperThreadPriority(argon2.threadNice)
  if (lowered > 0) fastify.log.info({ threads: lowered, nice: argon2.threadNice }, 'hashing threads run below the event loop')
  const hasher = new PasswordHasher(argon2)
  // The dummy hash for unknown emails is ready before the first login, so that login costs the same.
  await hasher.warmUp()
  fastify.metrics.observeHashing(hasher)
  fastify.decorate('passwordHasher', hasher)
}, { name: 'password-hasher', dependencies: ['config', 'metrics'], fastify: '5.x' })
