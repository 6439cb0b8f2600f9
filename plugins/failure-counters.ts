import fp from 'fastify-plugin'
import type { RateLimit } from '../src/config.js'
import { MemoryFailureCounter, RedisFailureCounter, type FailureCounter } from '../src/failure-counter.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Failed password checks. Login counts them per account from one client address (`loginFromClient`, keyed
     * by email and address) and per account from every address (`login`, by email); from a browser in which the
     * account has signed in before, per browser instead (`loginFromDevice`, by its device cookie's id). A password
     * asked again of a signed-in user (a password change, an account deletion) is counted likewise: per session
     * (`passwordFromSession`, by session id), at the tight limit, and per user from every session (`password`, by user
     * id), at the loose one.
     */
    failureCounters: { login: FailureCounter, loginFromClient: FailureCounter, loginFromDevice: FailureCounter, password: FailureCounter, passwordFromSession: FailureCounter }
  }
}

export default fp(async function failureCountersPlugin (fastify) {
  const { redis, config } = fastify
  const { loginAccount, loginAccountIp } = config.rateLimits
  const counter = (name: string, limit: RateLimit): FailureCounter => redis === null
    ? new MemoryFailureCounter({ max: limit.max, windowSeconds: limit.windowSeconds })
    : new RedisFailureCounter(redis, { keyPrefix: config.redis?.keyPrefix ?? '', name, max: limit.max, windowSeconds: limit.windowSeconds })
  fastify.decorate('failureCounters', {
    login: counter('login', loginAccount),
    loginFromClient: counter('login-client', loginAccountIp),
    loginFromDevice: counter('login-device', loginAccountIp),
    password: counter('password', loginAccount),
    passwordFromSession: counter('password-session', loginAccountIp)
  })
}, { name: 'failure-counters', dependencies: ['config', 'redis'], fastify: '5.x' })
