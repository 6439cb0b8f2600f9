import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** The header a load balancer names a request by (nginx: `proxy_set_header X-Request-Id $request_id`). */
export const REQUEST_ID_HEADER = 'x-request-id'

/**
 * Short and plain: nginx's `$request_id` (32 hex digits), a UUID, most tracing ids. Anything else, which could
 * split or fake a log line or a header, is never adopted.
 */
const ADOPTABLE = /^[A-Za-z0-9_.:-]{1,128}$/

/**
 * A request's id, in its log lines and its response's `X-Request-Id`: the one the load balancer gave it, so that
 * its log and the instance's name the same request, or else a random UUID. Fastify's own ids (req-1, req-2, …)
 * start over in every process, and every instance of a fleet logs a req-1.
 */
export function requestIdOf (req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER]
  return typeof given === 'string' && ADOPTABLE.test(given) ? given : randomUUID()
}

/** Names `reply` by its request's id: `X-Request-Id`. */
export function nameTheAnswer (request: FastifyRequest, reply: FastifyReply): void {
  reply.header(REQUEST_ID_HEADER, request.id)
}
