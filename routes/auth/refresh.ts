import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import fastifyRateLimit from '@fastify/rate-limit'
import { clientKey, exemptAddresses, limitOf } from '../../plugins/rate-limit.js'
import { RateLimitedError, RefreshInvalidError, RefreshReusedError, RefreshSupersededError } from '../../src/errors.js'
import { ErrorResponse, TokenResponse } from '../../src/http-schemas.js'
import { logAccount } from '../../src/log-account.js'
import { sessionMeta } from '../../src/session-meta.js'

const refresh: FastifyPluginAsyncTypebox = async (fastify) => {
  // The one route with a scope of its own (src/app.ts says why routes share one): its limiter counts
  // in this instance's memory and applies to every route of its scope.
  await fastify.register(refreshRoute)
}

const refreshRoute: FastifyPluginAsyncTypebox = async (fastify) => {
  const { refreshIp } = fastify.config.rateLimits
  const { idleTtlSeconds } = fastify.config.refresh
  // Per client IP, counted in this instance's memory: a shared counter would cost a second Redis
  // round trip on the hottest route. The shared bound is per session, inside the rotation script.
  await fastify.register(fastifyRateLimit, {
    global: true,
    ...limitOf(refreshIp),
    keyGenerator: clientKey,
    ...exemptAddresses(fastify.config.rateLimitExempt),
    // Limit headers only on the 429 (with Retry-After): a client refreshing within its limit
    // has no use for them, and this is the route load testers hammer.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    errorResponseBuilder: () => new RateLimitedError()
  })

  // Takes the refresh cookie and nothing else: no body, no content type needed.
  fastify.post('/auth/refresh', {
    onRequest: fastify.csrfProtection,
    // Successes logged at debug (src/app.ts): every client refreshes every few minutes; a reuse is a warning.
    config: { accessLog: 'failures' },
    schema: {
      summary: 'A new access token, and the refresh cookie rotated',
      response: { 200: TokenResponse, 401: ErrorResponse, 403: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const { refreshCookie, sessions, metrics } = fastify
    const cookie = refreshCookie.read(request)
    if (cookie.status !== 'present') {
      metrics.refresh('invalid')
      refreshCookie.clear(reply, cookie.status === 'duplicate')
      throw new RefreshInvalidError()
    }

    const outcome = await sessions.refresh(cookie.value, sessionMeta(request))
    if (outcome.status === 'unavailable') {
      metrics.refresh('unavailable')
      // The successor goes with the 503 (src/session-service.ts says why). Its lifetime is unknown without the store;
      // the idle timeout bounds it, and the store refuses it once the session has ended.
      refreshCookie.set(reply, outcome.refreshToken, idleTtlSeconds)
      throw outcome.error
    }
    if (outcome.status === 'reused') {
      metrics.refresh('reused')
      refreshCookie.clear(reply)
      logAccount(request, reply, { userId: outcome.userId, sessionId: outcome.familyId })
      request.log.warn('refresh token reuse detected: family revoked')
      throw new RefreshReusedError()
    }
    if (outcome.status === 'superseded') {
      metrics.refresh('superseded')
      // Not cleared: a browser shares the cookie between tabs, and by now it holds the token that superseded this one.
      throw new RefreshSupersededError()
    }
    if (outcome.status === 'limited') {
      metrics.refresh('limited')
      // The token stays valid: keep the cookie, tell the client when to come back.
      reply.header('retry-after', outcome.retryAfterSeconds)
      throw new RateLimitedError()
    }
    if (outcome.status === 'invalid') {
      metrics.refresh('invalid')
      refreshCookie.clear(reply)
      throw new RefreshInvalidError()
    }

    metrics.refresh(outcome.grace ? 'grace' : 'rotated')
    if (outcome.acceptedSecret) metrics.refreshUnderAcceptedSecret()
    refreshCookie.set(reply, outcome.refreshToken, outcome.ttlSeconds)
    return fastify.accessTokens.issue(outcome)
  })
}

export default refresh
