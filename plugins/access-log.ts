import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { onClientLeft } from '../src/client-errors.js'
import { firstOnLoggedRoutes } from '../src/route-hooks.js'

/**
 * A line for the requests whose client closed its connection before the answer was written, on every route whose
 * requests are all logged at info (src/app.ts AccessLogController: all of them with ACCESS_LOG=all, otherwise every
 * route not marked `accessLog: 'failures'`). Fastify writes its completion line only once an answer is written, so
 * such a request left no trace: a credential-stuffing client that sent its login and hung up at once was in no log,
 * though its password was checked. Fastify's own `onRequestAbort` does not fire once the request's body has been
 * read, which a login's always has.
 *
 * Not on the high-volume routes by default: a listener per request there buys a line that would be at debug.
 */
export default fp(async function accessLogPlugin (fastify) {
  firstOnLoggedRoutes(fastify, noteAbandonment)
}, { name: 'access-log', dependencies: ['config'], fastify: '5.x' })

function noteAbandonment (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  onClientLeft(reply, () => { reply.log.info({ req: request, responseTime: reply.elapsedTime }, 'request abandoned by its client') })
  done()
}
