import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { CLIENT_CLOSED_REQUEST, onUnanswered } from '../src/client-errors.js'
import { firstOnLoggedRoutes } from '../src/route-hooks.js'

/**
 * A line for the requests whose client closed its connection before the answer was written, on every route whose
 * requests are all logged at info (src/app.ts AccessLogController: all of them with ACCESS_LOG=all, otherwise every
 * route not marked `accessLog: 'failures'`). Fastify writes its completion line only once an answer is written, so
 * such a request left no trace: a credential-stuffing client that sent its login and hung up at once was in no log,
 * though its password was checked. Fastify's own `onRequestAbort` does not fire once the request's body has been
 * read, which a login's always has. Nor does Fastify log a request whose body Node's parser refused once it was
 * routed (too slow, malformed): that one gets the completion line, with the status written in its place.
 *
 * Not on the high-volume routes by default: a listener per request there buys a line that would be at debug.
 */
export default fp(async function accessLogPlugin (fastify) {
  firstOnLoggedRoutes(fastify, noteUnanswered)
}, { name: 'access-log', dependencies: ['config'], fastify: '5.x' })

function noteUnanswered (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  onUnanswered(reply, (statusCode) => {
    const line = { req: request, responseTime: reply.elapsedTime }
    if (statusCode === CLIENT_CLOSED_REQUEST) reply.log.info(line, 'request abandoned by its client')
    // Answered after all, by Node's parser refusing its body (src/client-errors.ts): the line any answer gets.
    else reply.log.info({ ...line, res: { statusCode } }, 'request completed')
  })
  done()
}
