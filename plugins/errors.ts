import { isUtf8 } from 'node:buffer'
import { STATUS_CODES } from 'node:http'
import type { FastifyError } from 'fastify'
import fp from 'fastify-plugin'
import { answerWhatNodeRefuses, unservedRefusal } from '../src/client-errors.js'
import {
  AccessTokenInvalidError, BodyTooLargeError, HashingBusyError, InternalError, MalformedBodyError, NotReadyError,
  NotUtf8BodyError, StoreUnavailableError, UnsupportedEncodingError, UnsupportedMediaTypeError, ValidationError
} from '../src/errors.js'
import { nameTheAnswer } from '../src/request-id.js'
import { limitOf } from './rate-limit.js'

/** Fastify's own error codes, mapped once to this service's stable ones. */
const FRAMEWORK_ERRORS: Record<string, () => FastifyError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => new BodyTooLargeError(),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new UnsupportedMediaTypeError(),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new MalformedBodyError(),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => new MalformedBodyError()
}

// JSON lets "\ud800" escape a lone surrogate, which is no Unicode character: argon2 and Redis see its UTF-8 form,
// U+FFFD, so two different passwords or emails would become one (and not in the in-memory store, which keeps
// JavaScript strings). Only a body with such an escape is walked. In `u` mode a class of surrogates matches only
// an unpaired one; a pair (an emoji) is one code point outside it.
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/
const LONE_SURROGATE = /[\uD800-\uDFFF]/u

function holdsLoneSurrogate (value: unknown): boolean {
  if (typeof value === 'string') return LONE_SURROGATE.test(value)
  if (typeof value !== 'object' || value === null) return false
  for (const [key, member] of Object.entries(value)) {
    if (LONE_SURROGATE.test(key) || holdsLoneSurrogate(member)) return true
  }
  return false
}

/**
 * Every error leaves as { statusCode, code, error, message } with a stable code.
 * 4xx messages are specific and safe; 5xx messages never carry internal detail.
 */
export default fp(async function errorsPlugin (fastify) {
  // What Node itself refuses with an empty answer, refused here in the service's shape: an HTTP/1.1 request without
  // Host (RFC 9112 §3.2; serverOptions turns Node's own check off) and an Expect other than 100-continue.
  answerWhatNodeRefuses(fastify)

  // JSON only. Dropping the text/plain parser makes form-less cross-site "simple" posts a 415.
  fastify.removeContentTypeParser('text/plain')
  // An empty body with a JSON content type reads as "no body": routes that take none (refresh, logout)
  // accept it, routes that require one fail validation with a 400.
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, bytes, done) => {
    if (bytes.length === 0) {
      done(null, undefined)
      return
    }
    // A compressed body would be parsed as if it were not (Fastify decodes none): refused, as RFC 9110 §8.4.1
    // allows, rather than read differently from a proxy or filter in front that does decode it.
    const encoding = request.headers['content-encoding']
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      done(new UnsupportedEncodingError(), undefined)
      return
    }
    // Decoding replaces each byte that is not UTF-8 with U+FFFD, silently: a password sent in Latin-1 ("ä" as one
    // byte) would be stored as one that any other such byte in its place matches, and U+FFFD itself.
    if (!isUtf8(bytes as Buffer)) {
      done(new NotUtf8BodyError(), undefined)
      return
    }
    const body = (bytes as Buffer).toString('utf8')
    if (!SURROGATE_ESCAPE.test(body)) {
      parseJson(request, body, done)
      return
    }
    parseJson(request, body, (err, value) => {
      if (err === null && holdsLoneSurrogate(value)) done(new ValidationError('body must be well-formed Unicode text; it holds an unpaired surrogate'), undefined)
      else done(err, value)
    })
  })

  fastify.setErrorHandler(function errorHandler (error: FastifyError, request, reply) {
    // Every failure is logged at info or above, on every route: its answer names it (plugins/request-id.ts).
    nameTheAnswer(request, reply)
    let err: FastifyError = error
    if (error.validation !== undefined) {
      err = new ValidationError(error.message)
    } else if (error.code !== undefined && error.code in FRAMEWORK_ERRORS) {
      err = (FRAMEWORK_ERRORS[error.code] as () => FastifyError)()
    }

    const statusCode = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (err instanceof StoreUnavailableError) {
      request.log.warn({ err: error.cause ?? error }, 'store unavailable')
    } else if (err instanceof NotReadyError) {
      // An expected answer during an outage, already logged by the redis plugin.
    } else if (err instanceof AccessTokenInvalidError && !reply.hasHeader('www-authenticate')) {
      // Every refusal of a bearer token is challenged (RFC 6750 §3), wherever it is found out, and nothing else is: a
      // client reading the header tells a token to renew from a password refused, which sent again is a second guess.
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
    } else if (err instanceof HashingBusyError) {
      // Load shed on purpose (src/password-hasher.ts), counted per route in /metrics; a log line each would add load.
      reply.header('retry-after', '1')
    } else if (statusCode >= 500) {
      request.log.error({ err: error }, 'request failed')
      err = new InternalError()
    }
    reply.code(statusCode).send({
      statusCode,
      code: err.code ?? 'REQUEST_ERROR',
      error: STATUS_CODES[statusCode] ?? 'Error',
      message: err.message
    })
  })

  const unserved = unservedRefusal(fastify)
  const { unmatched } = fastify.metrics
  // Scanners probing for paths get throttled like everyone else.
  fastify.setNotFoundHandler({ preHandler: fastify.rateLimit(limitOf(fastify.config.rateLimits.notFoundIp)) }, function notFound (request, reply) {
    nameTheAnswer(request, reply)
    const err = unserved(request, reply)
    const statusCode = err.statusCode as number
    unmatched.record(statusCode, reply.elapsedTime)
    reply.code(statusCode).send({ statusCode, code: err.code, error: STATUS_CODES[statusCode] as string, message: err.message })
  })
}, { name: 'errors', dependencies: ['config', 'rate-limit', 'metrics', 'security-headers'], fastify: '5.x' })
