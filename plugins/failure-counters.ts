import fp from 'fastify-plugin'
import { MemoryFailureCounter, RedisFailureCounter, type FailureCounter } from '../src/failure-counter.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed password checks per account: for login (by email) and password change (by user id). */
    failureCounters: { login: FailureCounter, password: FailureCounter }
  }
}

export default fp(async function failureCountersPlugin (fastify) {
  const { redis, config } = fastify
  const limit = config.rateLimits.loginAccount
  const counter = (name: string): FailureCounter => redis === null
    ? new MemoryFailureCounter({ max: limit.max, windowSeconds: limit.windowSeconds })
    : new RedisFailureCounter(redis, { keyPrefix: config.redis?.keyPrefix ?? '', name, max: limit.max, windowSeconds: limit.windowSeconds })
  fastify.decorate('failureCounters', { login: counter('login'), password: counter('password') })
}, { name: 'failure-counters', dependencies: ['config', 'redis'], fastify: '5.x' })
