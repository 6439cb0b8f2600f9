import { readFileSync } from 'node:fs'
import swagger, { type SwaggerTransformObject } from '@fastify/swagger'
import type { RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { ErrorResponse } from '../src/http-schemas.js'
import { deviceCookieName } from './device-cookie.js'
import { everyRequestLogged, hookList } from '../src/route-hooks.js'

/** A Fastify route's URL as an OpenAPI path: `/auth/sessions/:id` → `/auth/sessions/{id}`. */
const openapiPath = (url: string): string => url.replace(/:(\w+)/g, '{$1}')

/** The service's version, from its package.json: beside plugins/ in the sources, beside dist/ once compiled. */
function packageVersion (): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { version: string }).version
    } catch {}
  }
  throw new Error('package.json not found beside the service')
}

const RESPONSE_HEADERS: Record<string, { description: string, required?: boolean, schema: { type: 'string' | 'integer', pattern?: string, minimum?: number } }> = {
  RequestId: {
    description: 'The request\'s id: the load balancer\'s X-Request-Id when it sent a plain one, else a random UUID; its log lines carry it as reqId',
    required: true,
    schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' }
  },
  RequestIdOnceRead: {
    description: 'The request\'s id, as for every other failure; absent when the request was refused before it could be read ' +
      '(REQUEST_MALFORMED, REQUEST_TIMEOUT, or headers over Node\'s limit): there is no request to name, nor a log line of it',
    schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' }
  },
  RetryAfter: {
    description: 'Seconds to wait before trying again',
    required: true,
    schema: { type: 'integer', minimum: 0 }
  },
  RetryAfterWhenBusy: {
    description: 'Seconds to wait before trying again, when the answer is SERVICE_BUSY',
    schema: { type: 'integer', minimum: 0 }
  }
}

/**
 * What any operation may answer to a request refused as it was sent, before its route's own work: the `REQUEST_*`
 * codes of the HTTP contract. One range response, so that each operation's own statuses stay the ones its route
 * declares, and a client generated from the document still knows every 4xx body.
 */
export const REFUSED_AS_SENT = '4XX'
const refusedAsSent: { description: string, content: object, headers?: object } = {
  description: 'The request refused as it was sent (code REQUEST_*): a URL that does not decode or has a path segment over ' +
    '100 characters, a body that is not JSON, too large, sent with another media type or encoding, or with fields its schema ' +
    'refuses, headers too large, an expectation other than 100-continue, a request not received in time, or not valid HTTP',
  content: { 'application/json': { schema: ErrorResponse } }
}

/** The headers an answer of `status` carries: the request id when it is `named` (plugins/request-id.ts), Retry-After when limited. */
function headersOf (status: string, named: boolean): Record<string, { $ref: string }> {
  const ref = (name: keyof typeof RESPONSE_HEADERS) => ({ $ref: `#/components/headers/${name}` })
  if (status === REFUSED_AS_SENT) return { 'X-Request-Id': ref('RequestIdOnceRead') }
  return {
    ...(named ? { 'X-Request-Id': ref('RequestId') } : {}),
    ...(status === '429' ? { 'Retry-After': ref('RetryAfter') } : {}),
    ...(status === '503' ? { 'Retry-After': ref('RetryAfterWhenBusy') } : {})
  }
}

/**
 * The OpenAPI 3.1 description of the HTTP contract (`fastify.swagger()`, served at GET /openapi.json), generated
 * from the routes' own TypeBox schemas: what validates and serializes a request is what is documented.
 *
 * How a route is authenticated is read from the hooks that enforce it, not declared beside them: a route whose
 * `onRequest` runs `authenticate` takes the bearer access token, one that runs `csrfProtection` the refresh cookie. A
 * route's own `security` says more where it knows more: login reads the cookie if there is one.
 */
export default fp(async function openapiPlugin (fastify) {
  const { authenticate, csrfProtection, config } = fastify
  const runs = (route: RouteOptions, hook: unknown): boolean => hookList<unknown>(route.onRequest).includes(hook)
  // "get /me": operations whose successes carry no X-Request-Id (plugins/request-id.ts).
  const successesUnnamed = new Set<string>()

  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'auth-service',
        version: packageVersion(),
        description: 'Sign-in with short-lived JWT access tokens and rotating refresh tokens in an HttpOnly cookie. ' +
          'Errors are { statusCode, code, error, message }: match on `code`.'
      },
      // Behind a proxy that serves the service under a prefix it strips, the paths below are reached under it.
      ...(config.publicPathPrefix === '' ? {} : { servers: [{ url: config.publicPathPrefix }] }),
      components: {
        securitySchemes: {
          accessToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The access token from login or refresh' },
          refreshCookie: { type: 'apiKey', in: 'cookie', name: config.cookie.name, description: `Set by login and refresh (by a refresh answered 503 too: its successor); HttpOnly, sent by the browser to ${config.cookie.path} only` },
          deviceCookie: { type: 'apiKey', in: 'cookie', name: deviceCookieName(config.cookie.name), description: `Set by login; HttpOnly, sent by the browser to ${config.cookie.path}/login only: the browser's failed sign-ins to its account are limited by themselves, not with every other client's` }
        },
        headers: RESPONSE_HEADERS
      }
    },
    transform: ({ schema, url, route }) => {
      if (!everyRequestLogged(route, config.accessLog)) {
        for (const method of hookList(route.method)) successesUnnamed.add(`${method.toLowerCase()} ${openapiPath(url)}`)
      }
      const security = runs(route, authenticate) ? [{ accessToken: [] }] : runs(route, csrfProtection) ? [{ refreshCookie: [] }] : undefined
      return { schema: security === undefined || schema.security !== undefined ? schema : { ...schema, security }, url }
    },
    // Headers every answer of a status carries, set by hooks and the error handler rather than by route schemas.
    transformObject: (document) => {
      // This service's document is OpenAPI (the `openapi` option above), never Swagger 2.
      const openapiObject = (document as { openapiObject: { paths?: Record<string, object> } }).openapiObject
      for (const [path, operations] of Object.entries(openapiObject.paths ?? {})) {
        for (const [method, operation] of Object.entries(operations as Record<string, { responses?: Record<string, { headers?: object }> }>)) {
          const named = (status: string) => Number(status) >= 400 || !successesUnnamed.has(`${method} ${path}`)
          const responses = operation.responses = { ...operation.responses, [REFUSED_AS_SENT]: { ...refusedAsSent } }
          for (const [status, response] of Object.entries(responses)) {
            response.headers = { ...response.headers, ...headersOf(status, named(status)) }
          }
        }
      }
      return openapiObject as ReturnType<SwaggerTransformObject>
    }
  })
}, { name: 'openapi', dependencies: ['config', 'authenticate', 'csrf'], fastify: '5.x' })
