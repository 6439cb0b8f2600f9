import { readFileSync } from 'node:fs'
import swagger from '@fastify/swagger'
import type { RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { hookList } from '../src/route-hooks.js'

/** The service's version, from its package.json: beside plugins/ in the sources, beside dist/ once compiled. */
function packageVersion (): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { version: string }).version
    } catch {}
  }
  throw new Error('package.json not found beside the service')
}

/**
 * The OpenAPI 3.1 description of the HTTP contract (`fastify.swagger()`, served at GET /openapi.json), generated
 * from the routes' own TypeBox schemas: what validates and serializes a request is what is documented.
 *
 * How a route is authenticated is read from the hooks that enforce it, not declared beside them: a route whose
 * `onRequest` runs `authenticate` takes the bearer access token, one that runs `csrfProtection` the refresh cookie.
 */
export default fp(async function openapiPlugin (fastify) {
  const { authenticate, csrfProtection, config } = fastify
  const runs = (route: RouteOptions, hook: unknown): boolean => hookList<unknown>(route.onRequest).includes(hook)

  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'auth-service',
        version: packageVersion(),
        description: 'Sign-in with short-lived JWT access tokens and rotating refresh tokens in an HttpOnly cookie. ' +
          'Errors are { statusCode, code, error, message }: match on `code`.'
      },
      components: {
        securitySchemes: {
          accessToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The access token from login or refresh' },
          refreshCookie: { type: 'apiKey', in: 'cookie', name: config.cookie.name, description: 'Set by login and refresh; HttpOnly, sent by the browser to /auth only' }
        }
      }
    },
    transform: ({ schema, url, route }) => {
      const security = runs(route, authenticate) ? [{ accessToken: [] }] : runs(route, csrfProtection) ? [{ refreshCookie: [] }] : undefined
      return { schema: security === undefined ? schema : { ...schema, security }, url }
    }
  })
}, { name: 'openapi', dependencies: ['config', 'authenticate', 'csrf'], fastify: '5.x' })
