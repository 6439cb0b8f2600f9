import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, onResponseHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { ServiceMetrics } from '../src/metrics.js'
import { hookList } from '../src/route-hooks.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus metrics: per-route requests and latency, refresh and login outcomes (GET /metrics). */
    metrics: ServiceMetrics
  }
}

/**
 * Every route gets its own onResponse recorder, bound to its method and URL pattern when the route
 * is registered: a request then costs a counter increment and a histogram bucket, with no look-up
 * of its route by name.
 */
export default fp(async function metricsPlugin (fastify) {
  const metrics = new ServiceMetrics()
  fastify.decorate('metrics', metrics)
  fastify.addHook('onRoute', (route) => {
    const method = Array.isArray(route.method) ? route.method.join(',') : route.method
    const recorder = metrics.route(method, route.url)
    const record = function recordMetrics (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
      recorder.record(reply.statusCode, reply.elapsedTime)
      done()
    }
    route.onResponse = [...hookList(route.onResponse) as onResponseHookHandler[], record]
  })
}, { name: 'metrics', fastify: '5.x' })
