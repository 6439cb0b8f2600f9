import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, HTTPMethods } from 'fastify'
import { ClientClosedError, ExpectationFailedError, HeaderTooLargeError, InternalError, MalformedRequestError, MalformedUrlError, MethodNotAllowedError, NotFoundError, NotReadyError, RequestTimeoutError, UrlTooLongError } from './errors.js'
import { nameTheAnswer } from './request-id.js'

/** The headers of an error answered here, outside the service's hooks (plugins/security-headers.ts sets the rest's). */
const ERROR_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }

/** The body of an error answered outside Fastify, in the shape of every other. */
function errorBody (err: FastifyError): { statusCode: number, error: string, body: string } {
  const statusCode = err.statusCode as number
  const error = STATUS_CODES[statusCode] as string
  return { statusCode, error, body: JSON.stringify({ statusCode, code: err.code, error, message: err.message }) }
}

interface RawResponse { statusCode: number, bytes: string }

/**
 * The whole response for a request Node's HTTP parser gave up on, in the shape of every other error of the
 * service. Written straight to the socket: no hook or reply answers such a request.
 */
function rawResponse (err: FastifyError): RawResponse {
  const { statusCode, error, body } = errorBody(err)
  const headers = Object.entries({ ...ERROR_HEADERS, 'content-length': Buffer.byteLength(body), connection: 'close' })
  return { statusCode, bytes: `HTTP/1.1 ${statusCode} ${error}\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n${body}` }
}

const TIMEOUT = rawResponse(new RequestTimeoutError())
const HEADER_OVERFLOW = rawResponse(new HeaderTooLargeError())
const MALFORMED = rawResponse(new MalformedRequestError())
const NO_TUNNEL = rawResponse(new NotFoundError())
const DRAINING = rawResponse(new NotReadyError())

/**
 * The status `clientErrorHandler` wrote on a connection. A request can be routed (its headers in) before the parser
 * gives up on it (its body too slow, or in chunks it cannot read): that request was answered, by this status.
 */
const refusedWith = new WeakMap<Socket, number>()

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
    const refusal = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? TIMEOUT : err.code === 'HPE_HEADER_OVERFLOW' ? HEADER_OVERFLOW : MALFORMED
    socket.write(refusal.bytes)
    refusedWith.set(socket, refusal.statusCode)
  }
  socket.destroy()
}

/**
 * Fastify's `frameworkErrors`: a URL the router cannot decode (`/%`, a broken UTF-8 escape) or a path parameter over
 * its length limit. Fastify's default answers these outside every hook, in a shape of its own with its internal code
 * (`FST_ERR_BAD_URL`) and the URL echoed back. Here they get the service's error shape and stable codes; no hook has
 * run for such a request, so the headers every error carries are set here (X-Request-Id naming its access-log line, as
 * plugins/request-id.ts names every failure's), that line written and its count kept (`(unmatched)`: no route took it).
 */
export function frameworkErrorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const known = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new UrlTooLongError() : err.code === 'FST_ERR_BAD_URL' ? new MalformedUrlError() : null
  if (known === null) request.log.error({ err }, 'request failed')
  const { statusCode, body } = errorBody(known ?? new InternalError())
  reply.code(statusCode).headers(ERROR_HEADERS)
  nameTheAnswer(request, reply)
  reply.send(body)
  // The access-log line and the count every other failure gets, which Fastify's hooks skip for these.
  reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  countUnmatched(request.server, statusCode, reply.elapsedTime)
}

/**
 * The refusal of a request no route of its method serves, for a not-found handler: 405 with the methods its path is
 * served with, in `Allow` (RFC 9110 §15.5.6) and the message, so that a client that sent GET to POST /auth/login learns
 * what it got wrong; 404 when no route serves the path. Called before the routes are added, whose methods it learns.
 * OPTIONS is refused as any other method is: only a CORS preflight of a listed origin is served (plugins/cors.ts), and
 * @fastify/cors's route for those (`OPTIONS *`) is no method a path is served with.
 */
export function unservedRefusal (fastify: FastifyInstance): (request: FastifyRequest, reply: FastifyReply) => FastifyError {
  const methods = new Set<string>()
  fastify.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'OPTIONS') methods.add(method)
  })
  return (request, reply) => {
    const path = request.url.split('?', 1)[0] ?? request.url
    const allowed = [...methods].filter((method) => fastify.findRoute({ method: method as HTTPMethods, url: path }) !== null).join(', ')
    if (allowed === '') return new NotFoundError()
    reply.header('allow', allowed)
    return new MethodNotAllowedError(allowed)
  }
}

/** Counts a request no route answered, on a server that keeps the service's metrics (the metrics port's does not). */
function countUnmatched (fastify: FastifyInstance, statusCode: number, elapsedMs: number): void {
  if (fastify.hasDecorator('metrics')) fastify.metrics.unmatched.record(statusCode, elapsedMs)
}

const EXPECTATION_FAILED = errorBody(new ExpectationFailedError())

/**
 * The server's `checkExpectation` listener: a request with an `Expect` other than 100-continue, which Node answers
 * before Fastify sees it, with a 417 and no body when nothing listens. The body it did not ask to send is not read.
 */
function expectationFailedHandler (_request: IncomingMessage, response: ServerResponse): void {
  response.writeHead(EXPECTATION_FAILED.statusCode, { ...ERROR_HEADERS, 'content-length': Buffer.byteLength(EXPECTATION_FAILED.body), connection: 'close' })
  response.end(EXPECTATION_FAILED.body)
}

/**
 * The server's `connect` listener: a CONNECT asks for a tunnel, which Node hands to no route and, when nothing
 * listens, answers by closing the connection without a word. This service tunnels nowhere: the answer is the one
 * any other route it does not have gets, and the connection is closed once it is written.
 */
function refuseTunnel (_request: IncomingMessage, socket: Duplex): void {
  if (socket.writable) socket.end(NO_TUNNEL.bytes, () => socket.destroy())
  else socket.destroy()
}

/** onRequest hook: an HTTP/1.1 request without Host is a 400 (RFC 9112 §3.2). */
function requireHost (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  done(request.headers.host === undefined && request.raw.httpVersion === '1.1' ? new MalformedRequestError() : undefined)
}

/** nginx's "client closed request": the status of a request whose client left before its answer. */
export const CLIENT_CLOSED_REQUEST = new ClientClosedError().statusCode as number

/**
 * Calls `unanswered` if the request's connection closes before the service has answered it (ended its response),
 * with the status the request ends with: the one Node's parser refusal wrote (`clientErrorHandler`), or
 * CLIENT_CLOSED_REQUEST when its client hung up. Not "before the answer was flushed": `inject`'s responses
 * (light-my-request) are never flushed, and would all count.
 */
export function onUnanswered (reply: FastifyReply, unanswered: (statusCode: number) => void): void {
  // on, not once: 'close' comes once anyway, and once's wrapper would cost every request plugins/metrics.ts watches.
  reply.raw.on('close', () => {
    if (!reply.raw.writableEnded) unanswered(refusedWith.get(reply.request.raw.socket) ?? CLIENT_CLOSED_REQUEST)
  })
}

/**
 * Aborted when the request's connection closes before its answer (its client hung up, or its body was refused), so
 * that work queued for it (a password hash waiting for a slot) is dropped instead of done for no one, and what was
 * made for it is undone.
 */
export function whenClientGone (reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  onUnanswered(reply, () => { controller.abort(new ClientClosedError()) })
  return controller.signal
}

/**
 * Server options that hand what Node's parser and Fastify's router refuse on their own to the handlers above, and
 * turn off Node's own Host check (an empty 400): a server made with them calls `answerWhatNodeRefuses` too.
 */
export const refusalOptions = { clientErrorHandler, frameworkErrors: frameworkErrorHandler, http: { requireHostHeader: false } }

/**
 * The Host check and the answers to an unmet `Expect` and to CONNECT, in the service's shape, on a server made with
 * `refusalOptions`; and every header of a request seen.
 */
export function answerWhatNodeRefuses (fastify: FastifyInstance): void {
  // Node keeps the first thousand or so headers of a request and drops the rest without a word (by default; measured on
  // Node 20: 1,000 in `headers`, 1,023 in `rawHeaders`): a second Authorization header or refresh cookie sent after a
  // thousand others went unseen, and the request was served with the first. Kept all: the 16 kB limit on a request's
  // headers (Node's maxHeaderSize, a 431) bounds how many there can be.
  fastify.server.maxHeadersCount = 0
  fastify.addHook('onRequest', requireHost)
  fastify.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    expectationFailedHandler(request, response)
    noteAnsweredByNode(fastify, request, EXPECTATION_FAILED.statusCode)
  })
  fastify.server.on('connect', (request: IncomingMessage, socket: Duplex) => {
    refuseTunnel(request, socket)
    noteAnsweredByNode(fastify, request, NO_TUNNEL.statusCode)
  })
}

/**
 * The access-log line and the count of a request answered by Node's server before any route. Answered on its headers,
 * it took no time; with no Fastify request made of it, its client is the connection's peer.
 */
function noteAnsweredByNode (fastify: FastifyInstance, request: IncomingMessage, statusCode: number): void {
  const req = { method: request.method, url: request.url, ip: request.socket.remoteAddress }
  fastify.log.info({ req, res: { statusCode }, responseTime: 0 }, 'request completed')
  countUnmatched(fastify, statusCode, 0)
}

/** How long a request still arriving when the drain begins has to arrive: enough for a client sending at any usable speed. */
const ARRIVAL_GRACE_MS = 1000

/** A connection as Node's HTTP server keeps it: `_httpMessage`, the response it is on, which Node's own modules read. */
type ServedSocket = Socket & { _httpMessage?: ServerResponse | null }

/**
 * At the drain (SIGTERM), a request still arriving (its headers, or its body, slow or stalled) gets `ARRIVAL_GRACE_MS`
 * to arrive, and its connection is then closed: a 503 `SERVICE_NOT_READY` when its headers are in, so its client may
 * send it again, to another instance; nothing of it was done, no handler runs before a request's body is in. Node's
 * server closes only connections with no request at all: one client that had sent part of a request held the exit
 * for SHUTDOWN_TIMEOUT, and made it a failure (exit 1, "killed by timeout"). Requests received are served, as before.
 */
export function closeUnreceivedAtDrain (fastify: FastifyInstance, shutdownTimeoutMs: number): void {
  const sockets = new Set<ServedSocket>()
  fastify.server.on('connection', (socket: ServedSocket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  fastify.addHook('preClose', (done) => {
    for (const socket of sockets) closeAfterAnswer(socket)
    fastify.server.on('request', keepOpenForPipelined)
    // Within SHUTDOWN_TIMEOUT (1 s at least), which ends the process whatever is left.
    setTimeout(() => { for (const socket of sockets) closeIfUnreceived(socket) }, Math.min(ARRIVAL_GRACE_MS, shutdownTimeoutMs / 2)).unref()
    done()
  })
}

/**
 * A request under way when the drain begins is answered with `Connection: close`, as Fastify answers those that come
 * after: Node's server closes the connections idle when it closes, and none that become idle later, so a client
 * keeping its connection alive after that answer (nginx's upstream keepalive, undici's 71 s) held the exit too.
 */
function closeAfterAnswer (socket: ServedSocket): void {
  const response = socket._httpMessage
  if (response !== null && response !== undefined && !response.headersSent) response.setHeader('connection', 'close')
}

/**
 * A request sent on such a connection behind the one in flight (pipelined), and so already on its way, is served: the
 * answer ahead of it keeps the connection open, and its own closes it (Fastify marks every request that comes while
 * it closes). Listened to from the drain on: no request before pays for it.
 */
function keepOpenForPipelined (request: IncomingMessage, response: ServerResponse): void {
  const ahead = (request.socket as ServedSocket)._httpMessage
  if (ahead !== null && ahead !== undefined && ahead !== response && !ahead.headersSent) ahead.removeHeader('connection')
}

function closeIfUnreceived (socket: ServedSocket): void {
  const response = socket._httpMessage
  // No response under way: between requests (Node closes those itself), or a request whose headers are still coming.
  if (response === null || response === undefined) {
    socket.destroy()
    return
  }
  if (response.req.complete || response.headersSent) return
  socket.write(DRAINING.bytes)
  // Logged and counted with the status it was answered with, not as a client that hung up (onUnanswered).
  refusedWith.set(socket, DRAINING.statusCode)
  socket.destroy()
}
