import fp from 'fastify-plugin'
import { closeUnreceivedAtDrain } from '../src/client-errors.js'

/**
 * What the drain (SIGTERM, src/server.ts) does with connections: the requests received are served, and a request still
 * arriving is given a second to arrive, then refused, so that a stalled client cannot hold the exit.
 */
export default fp(async function drainPlugin (fastify) {
  closeUnreceivedAtDrain(fastify, fastify.config.shutdownTimeoutSeconds * 1000)
}, { name: 'drain', dependencies: ['config'], fastify: '5.x' })
