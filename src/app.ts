import type { Server } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import AutoLoad from '@fastify/autoload'
import { compile } from '@fastify/proxy-addr'
import { LogController, type FastifyHttpOptions, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { stdSerializers, type DestinationStream } from 'pino'
import { clientAddress, withoutPort } from './client-address.js'
import { refusalOptions } from './client-errors.js'
import type { Config } from './config.js'
import { AUTH_BODY_LIMIT_BYTES } from './http-schemas.js'
import { logRedaction } from './log-redaction.js'
import { requestIdOf } from './request-id.js'
import { everyRequestLogged } from './route-hooks.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// Running from TypeScript sources (tsx, tap): autoload recognises `--require` loaders only,
// not `--import tsx`, so tell it explicitly. Compiled builds (dist/) load .js and skip this.
if (import.meta.url.endsWith('.ts')) process.env.FASTIFY_AUTOLOAD_TYPESCRIPT ??= '1'

export interface AppOptions {
  config: Config
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * 'failures': a route that answers at high volume (refresh, /me, health, JWKS, metrics). Its successes are
     * logged at debug unless ACCESS_LOG=all; its failures, like every request of other routes, at info.
     */
    accessLog?: 'failures'
    /**
     * A route that answers from memory, waiting on neither the store nor the password hasher (/me, liveness, JWKS,
     * metrics): no client gives up on it midway, so plugins/metrics.ts spares its requests the listener that counts
     * those abandoned (499).
     */
    answersAtOnce?: true
  }
}

/**
 * One access-log line per request, at completion, instead of Fastify's two ("incoming request" and
 * "request completed"). The line carries method, URL, client, status and time.
 *
 * With ACCESS_LOG=notable (the default) the successes of routes marked
 * `accessLog: 'failures'` go to debug: those are the routes a load tester or a fleet of clients
 * calls thousands of times a second, where a line per success cost /me about a fifth of its
 * throughput (bench: meLogged / me) and says nothing the ingress's access log and /metrics counters
 * do not. Every failure, every login, registration, logout, password change and session
 * revocation, and every warning (refresh token reuse) is still logged at info or above.
 */
export class AccessLogController extends LogController {
  readonly #accessLog: Config['accessLog']

  constructor (accessLog: Config['accessLog']) {
    super()
    this.#accessLog = accessLog
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    if (error !== null && error !== undefined) {
      reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    } else if (reply.statusCode < 400 && !everyRequestLogged(request.routeOptions, this.#accessLog)) {
      reply.log.debug({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
    } else {
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
    }
  }
}

function trustHops (hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops
}

/**
 * TRUST_PROXY's addresses, matched as Fastify matches them (proxy-addr), and an X-Forwarded-For entry written with
 * its port too: behind two proxies that write ports (Azure Front Door, then Application Gateway), the inner one's
 * entry is `10.1.2.3:51234`, which proxy-addr matches with no listed address, so every client was counted as it.
 */
function trustListed (addresses: string[]): (address: string, hop: number) => boolean {
  const listed = compile(addresses)
  return (address, hop) => listed(withoutPort(address), hop)
}

/**
 * What the access log says of a request: method, path and client address. Fastify's default adds the
 * Host header, the client port and an `accept-version` look-up to every line, which an auth service's
 * log has no use for and which the hot routes paid for on every request (bench/README.md). No route
 * takes a query string, and a client that puts a token or a password in one (`?access_token=`) must not
 * have it logged: a query shows as a bare `?`.
 */
function requestSerializer (request: FastifyRequest): { method: string, url: string, remoteAddress: string } {
  const query = request.url.indexOf('?')
  return { method: request.method, url: query === -1 ? request.url : request.url.slice(0, query + 1), remoteAddress: clientAddress(request.ip) }
}

/** What pino's error serializer makes of an error, its own and its nested errors alike. */
const SERIALIZED_ERROR: unknown = Object.getPrototypeOf(stdSerializers.err(new Error('prototype')))

/** The errors being serialized, outermost first: one that an array among their fields holds again is not followed. */
const serializing = new Set<Error>()

/**
 * pino's error serializer, less what errors carry of the traffic: ioredis attaches a failed command's arguments
 * (`command.args`: emails, client addresses, token digests, password hashes), Node a malformed request's raw
 * bytes (`rawPacket`). The command's name stays: it says which call failed.
 */
function errorSerializer (err: Error): ReturnType<typeof stdSerializers.err> {
  serializing.add(err)
  try {
    const serialized = stdSerializers.err(err)
    dropTraffic(serialized)
    return serialized
  } finally {
    serializing.delete(err)
  }
}

function dropTraffic (serialized: unknown): void {
  if (typeof serialized !== 'object' || serialized === null || Object.getPrototypeOf(serialized) !== SERIALIZED_ERROR) return
  const fields = serialized as Record<string, unknown>
  delete fields.rawPacket
  // What a URL that failed to parse was given (Node's ERR_INVALID_URL): a connection URL, its password included.
  delete fields.input
  const command = fields.command
  if (typeof command === 'object' && command !== null) fields.command = { name: (command as { name?: unknown }).name }
  for (const [key, value] of Object.entries(fields)) {
    if (Array.isArray(value)) fields[key] = value.map(withoutTraffic)
    else dropTraffic(value)
  }
}

/**
 * An item of an error's array field, less what it carries of the traffic. pino serializes the errors it finds in an
 * error's fields, not those in an array: ioredis lists the commands a transaction had refused (EXECABORT), each with
 * its arguments, in `previousErrors`, which pino would log as they are.
 */
function withoutTraffic (item: unknown): unknown {
  if (item instanceof Error) return serializing.has(item) ? '[Circular]' : errorSerializer(item)
  dropTraffic(item)
  return item
}

/**
 * The service's pino options. No `redact` of fields: these serializers log no headers, no route logs a body, and
 * errors lose what they carry of the traffic, so no field holds a secret, and pino's redaction cost about a tenth of a
 * bare route's throughput here (bench/README.md). What an error's text says is redacted line by line, which costs a
 * line only a search for `://` and for each configured secret (src/log-redaction.ts).
 * test/security/secrets-in-logs.test.ts holds the property at trace level.
 */
function loggerOptions (config: Config, stream?: DestinationStream): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    serializers: { req: requestSerializer, err: errorSerializer },
    hooks: { streamWrite: logRedaction(config.secrets) },
    ...(stream === undefined ? {} : { stream })
  }
}

/**
 * Fastify server options derived from config; used by src/server.ts and by the tests,
 * so both run the exact same server. Logs go to `logStream`, stdout by default.
 */
export function serverOptions (config: Config, logStream?: DestinationStream): FastifyHttpOptions<Server> {
  return {
    logger: loggerOptions(config, logStream),
    logController: new AccessLogController(config.accessLog),
    // The load balancer's X-Request-Id when it sends a plain one, else a UUID: unique across the fleet.
    genReqId: requestIdOf,
    bodyLimit: AUTH_BODY_LIMIT_BYTES,
    // Whose X-Forwarded-For is believed for request.ip (rate limits, session listing). Default: nobody's.
    trustProxy: typeof config.trustProxy === 'number'
      // Fastify 5 treats a bare number as "trust nothing"; a hop count means trusting the nearest n hops,
      // which is only sound when the proxies are the sole way in (README).
      ? trustHops(config.trustProxy)
      : config.trustProxy === false ? false : trustListed(config.trustProxy),
    // Slow or stalled clients cannot hold connections open indefinitely.
    requestTimeout: 30_000,
    // While the instance drains (SIGTERM), a request that comes on a connection still open is served, with
    // `Connection: close`, instead of Fastify's 503 (a body without the service's code): its client, or the load
    // balancer's kept-alive connection, goes elsewhere for the next one. Readiness answers 503 meanwhile.
    return503OnClosing: false,
    // Malformed requests, undecodable URLs and a missing Host answered in the service's shape (the errors plugin
    // adds the hook and listener these options count on).
    ...refusalOptions,
    ajv: {
      customOptions: {
        // Unknown fields are refused, not silently dropped; types are never coerced ("123" is not 123).
        removeAdditional: false,
        coerceTypes: false,
        allErrors: false
      }
    }
  }
}

/**
 * The whole service. Plugins load in dependency order (each declares its own):
 * config → redis → secrets → stores, password hasher → sessions, access tokens → cookie,
 * authentication, errors; then the route modules, whose folders give their prefixes.
 */
async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  await fastify.register(AutoLoad, {
    dir: join(root, 'plugins'),
    options: opts,
    forceESM: true
  })
  // Route modules share this context instead of each getting one: every encapsulated context builds
  // its own Request and Reply classes, so the per-request code all routes run (Fastify's, Node's)
  // met a dozen object shapes; in one context refresh spends about 5 % less per request (bench/README.md).
  // So a route module declares its full path and its hooks per route (`onRequest`), never per scope;
  // test/src/app.test.ts holds both.
  await fastify.register(AutoLoad, {
    dir: join(root, 'routes'),
    options: opts,
    forceESM: true,
    encapsulate: false,
    dirNameRoutePrefix: false
  })
}

// Not encapsulated: the server and the tests see the decorators (config, stores) the plugins add.
export default fp(app, { name: 'app' })
