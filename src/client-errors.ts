import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance } from 'fastify'
import { HeaderTooLargeError, MalformedRequestError, RequestTimeoutError } from './errors.js'

/**
 * The whole response for a request Node's HTTP parser gave up on, in the shape of every other error of the
 * service. Written straight to the socket: no route, hook or reply exists for such a request.
 */
function rawResponse (err: FastifyError): string {
  const statusCode = err.statusCode as number
  const error = STATUS_CODES[statusCode] as string
  const body = JSON.stringify({ statusCode, code: err.code, error, message: err.message })
  return `HTTP/1.1 ${statusCode} ${error}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Cache-Control: no-store\r\n' +
    'X-Content-Type-Options: nosniff\r\n' +
    'Connection: close\r\n\r\n' +
    body
}

const TIMEOUT = rawResponse(new RequestTimeoutError())
const HEADER_OVERFLOW = rawResponse(new HeaderTooLargeError())
const MALFORMED = rawResponse(new MalformedRequestError())

/**
 * Fastify's `clientErrorHandler`: malformed HTTP, headers over Node's limit, a request not received within
 * `requestTimeout`. Fastify's default answers without a stable code, and logs the error whole at trace level,
 * and Node attaches to it the raw bytes received (`rawPacket`): cookies, bearer tokens, a login's password.
 * This one logs the parser's code alone.
 */
export function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection is already gone; nothing to answer or to log.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  this.log.debug({ code: err.code }, 'client error')
  if (socket.writable) {
    socket.write(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? TIMEOUT : err.code === 'HPE_HEADER_OVERFLOW' ? HEADER_OVERFLOW : MALFORMED)
  }
  socket.destroy()
}
