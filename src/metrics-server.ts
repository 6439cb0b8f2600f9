import Fastify, { type FastifyInstance } from 'fastify'
import { answerWhatNodeRefuses, closeUnreceivedAtDrain, refusalOptions, unservedRefusal } from './client-errors.js'

/**
 * GET /metrics on a port of its own (METRICS_PORT), for a scraper on the instance's network, so that no route of
 * the API's port — the one the load balancer publishes — reveals traffic and outcomes. It serves the registry of
 * `service`, whose routes record into it, and nothing else; it logs only failures of its own.
 */
export function metricsServer (service: FastifyInstance): FastifyInstance {
  const server = Fastify({
    loggerInstance: service.log.child({ server: 'metrics' }),
    disableRequestLogging: true,
    // What the API's port refuses in the service's error shape, this port refuses in it too (src/client-errors.ts).
    ...refusalOptions
  })
  answerWhatNodeRefuses(server)
  closeUnreceivedAtDrain(server, service.config.shutdownTimeoutSeconds * 1000)
  const unserved = unservedRefusal(server)
  server.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await service.metrics.exposition()
    return reply.type(contentType).send(body)
  })
  server.setNotFoundHandler((request, reply) => {
    const err = unserved(request, reply)
    reply.code(err.statusCode as number).send(err)
  })
  return server
}
