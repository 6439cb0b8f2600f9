import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import AutoLoad from '@fastify/autoload'
import { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
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
 * "request completed"): at thousands of refreshes per second the second line is measurable (bench/README.md).
 */
class OneLineLogController extends LogController {
  override incomingRequest (): void {}
}

function trustHops (hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops
}

/**
 * Fastify server options derived from config; used by src/server.ts and by the tests,
 * so both run the exact same server.
 */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    logger: {
      level: config.logLevel,
      // Belt and braces: the default serializers log no headers, and no route logs a body.
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'], censor: '[redacted]' }
    },
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
