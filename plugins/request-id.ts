import fp from 'fastify-plugin'
import { nameTheAnswer } from '../src/request-id.js'
import { firstOnLoggedRoutes } from '../src/route-hooks.js'

/**
 * Answers name their request (`X-Request-Id`, chosen by src/request-id.ts), so that a client reporting a failure,
 * or a load balancer's log, points at the instance's log line for it: every answer that leaves a line at info.
 * That is every answer of most routes, and the failures of the high-volume ones (refresh, /me, health, JWKS,
 * metrics), which the error handler names; their successes, logged at debug, are not named unless ACCESS_LOG=all:
 * the header and its hook cost /me about 5 % of its throughput (bench/README.md).
 */
export default fp(async function requestIdPlugin (fastify) {
  firstOnLoggedRoutes(fastify, (request, reply, done) => {
    nameTheAnswer(request, reply)
    done()
  })
}, { name: 'request-id', dependencies: ['config'], fastify: '5.x' })
