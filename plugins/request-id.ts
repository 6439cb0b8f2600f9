import fp from 'fastify-plugin'
import { REQUEST_ID_HEADER } from '../src/request-id.js'

/**
 * Every answer names its request (`X-Request-Id`, chosen by src/request-id.ts): a client reporting a failure,
 * or a load balancer's log, points at the instance's log lines for it.
 */
export default fp(async function requestIdPlugin (fastify) {
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id)
    done()
  })
}, { name: 'request-id', fastify: '5.x' })
