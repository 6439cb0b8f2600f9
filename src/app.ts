import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import AutoLoad from '@fastify/autoload'
import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'
import { AUTH_BODY_LIMIT_BYTES } from './http-schemas.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// Running from TypeScript sources (tsx, tap): autoload recognises `--require` loaders only,
// not `--import tsx`, so tell it explicitly. Compiled builds (dist/) load .js and skip this.
if (import.meta.url.endsWith('.ts')) process.env.FASTIFY_AUTOLOAD_TYPESCRIPT ??= '1'

export interface AppOptions {
  config: Config
}

/**
 * One access-log line per request, at completion, instead of Fastify's two ("incoming request" and
 * "request completed"): at thousands of refreshes per second the second line is measurable
 * (bench/README.md). The one line carries what both did: method, URL, client, status, time.
 */
export class OneLineLogController extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    if (error !== null && error !== undefined) {
      reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    } else {
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
    }
  }
}

function trustHops (hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops
}

/**
 * The service's pino options; the benchmark's logged baseline uses them too. No `redact`: Fastify's
 * request and reply serializers log no headers and no route logs a body, so there is nothing to
 * redact, and pino's redaction cost about a tenth of a bare route's throughput here (bench/README.md).
 * test/security/secrets-in-logs.test.ts holds the property at trace level.
 */
export function loggerOptions (level: string, stream?: DestinationStream): FastifyServerOptions['logger'] {
  return { level, ...(stream === undefined ? {} : { stream }) }
}

/**
 * Fastify server options derived from config; used by src/server.ts and by the tests,
 * so both run the exact same server. Logs go to `logStream`, stdout by default.
 */
export function serverOptions (config: Config, logStream?: DestinationStream): FastifyServerOptions {
  return {
    logger: loggerOptions(config.logLevel, logStream),
    logController: new OneLineLogController(),
    bodyLimit: AUTH_BODY_LIMIT_BYTES,
    // Whose X-Forwarded-For is believed for request.ip (rate limits, session listing). Default: nobody's.
    trustProxy: typeof config.trustProxy === 'number'
      // Fastify 5 treats a bare number as "trust nothing"; a hop count means trusting the nearest n hops,
      // which is only sound when the proxies are the sole way in (README).
      ? trustHops(config.trustProxy)
      : config.trustProxy,
    // Slow or stalled clients cannot hold connections open indefinitely.
    requestTimeout: 30_000,
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
  await fastify.register(AutoLoad, {
    dir: join(root, 'routes'),
    options: opts,
    forceESM: true
  })
}

// Not encapsulated: the server and the tests see the decorators (config, stores) the plugins add.
export default fp(app, { name: 'app' })
