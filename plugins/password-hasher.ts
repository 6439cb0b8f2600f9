import fp from 'fastify-plugin'
import { PasswordHasher } from '../src/password-hasher.js'

declare module 'fastify' {
  interface FastifyInstance {
    passwordHasher: PasswordHasher
  }
}

export default fp(async function passwordHasherPlugin (fastify) {
  const hasher = new PasswordHasher(fastify.config.argon2)
  // The dummy hash for unknown emails is ready before the first login, so that login costs the same.
  await hasher.warmUp()
  fastify.decorate('passwordHasher', hasher)
}, { name: 'password-hasher', dependencies: ['config'], fastify: '5.x' })
