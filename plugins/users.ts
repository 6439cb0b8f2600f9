import fp from 'fastify-plugin'
import { MemoryUserDirectory } from '../src/memory-user-directory.js'
import { RedisUserDirectory } from '../src/redis-user-directory.js'
import type { UserDirectory } from '../src/user-directory.js'

declare module 'fastify' {
  interface FastifyInstance {
    users: UserDirectory
  }
}

export default fp(async function usersPlugin (fastify) {
  const { redis, config } = fastify
  const users: UserDirectory = redis === null
    ? new MemoryUserDirectory()
    : new RedisUserDirectory(redis, config.redis?.keyPrefix ?? '')
  fastify.decorate('users', users)
}, { name: 'users', dependencies: ['config', 'redis'], fastify: '5.x' })
