import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const metrics: FastifyPluginAsyncTypebox = async (fastify) => {
  // For the Prometheus scraper on the instance's own address; keep it off the public load balancer
  // (README: containers), like /health/ready. It reveals traffic and outcomes, never a secret.
  // With METRICS_PORT it is served there instead (src/metrics-server.ts), and not on the API's port at all.
  if (fastify.config.metricsPort !== null) return
  fastify.get('/metrics', {
    config: { accessLog: 'failures', answersAtOnce: true },
    schema: { summary: 'Prometheus metrics', produces: ['text/plain'], response: { 200: Type.String({ description: 'Prometheus text exposition format' }) } }
  }, async (_request, reply) => {
    const { contentType, body } = await fastify.metrics.exposition()
    // Not JSON: a string with its own content type is sent as it is.
    return reply.type(contentType).send(body)
  })
}

export default metrics
