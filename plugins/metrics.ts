import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, onResponseHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { onUnanswered } from '../src/client-errors.js'
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
 *
 * Fastify runs onResponse only for an answer it has written. A request whose client hangs up first (a client's
 * timeout while Redis stalls or logins queue to hash) is counted as 499, nginx's code for it, with the time its
 * client waited: otherwise an outage would thin the error rate out instead of showing in it. One whose body Node's
 * parser gave up on once it was routed is counted with the status written in its place (408 too slow, 400
 * malformed: src/client-errors.ts). Not on the routes that answer at once (src/app.ts): the listener per request
 * would cost /me a few per cent, and count nothing there.
 */
export default fp(async function metricsPlugin (fastify) {
  const metrics = new ServiceMetrics()
  fastify.decorate('metrics', metrics)
  fastify.addHook('onRoute', (route) => {
    const method = Array.isArray(route.method) ? route.method.join(',') : route.method
    const recorder = metrics.route(method, route.url)
    const watch = function watchUnanswered (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
      onUnanswered(reply, (statusCode) => { recorder.record(statusCode, reply.elapsedTime) })
      done()
    }
    const record = function recordMetrics (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
      recorder.record(reply.statusCode, reply.elapsedTime)
      done()
    }
    if (route.config?.answersAtOnce !== true) route.onRequest = [watch, ...hookList(route.onRequest) as onRequestHookHandler[]]
    route.onResponse = [...hookList(route.onResponse) as onResponseHookHandler[], record]
  })
}, { name: 'metrics', fastify: '5.x' })
