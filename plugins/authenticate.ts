import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { AccessTokenInvalidError } from '../src/errors.js'
import { logAccount } from '../src/log-account.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook of each protected route: verifies the bearer access token and sets request.user. */
    authenticate (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void
  }
}

/** The Bearer scheme (any case), alone or followed by a space: a bearer token was attempted. */
const BEARER = /^bearer(?: |$)/i

/**
 * Whether a request's raw header lines (name, value, name, value…) hold Authorization more than once. Node keeps the
 * first and drops the others, where a proxy in front, or a server behind one that asked this service (nginx's
 * auth_request), may read another: the token verified here would not be the one acted on.
 */
function repeatsAuthorization (rawHeaders: string[]): boolean {
  let seen = false
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length !== 13 || name.toLowerCase() !== 'authorization') continue
    if (seen) return true
    seen = true
  }
  return false
}

/**
 * Answers from the token alone, with no store round trip, so protected routes keep
 * working while Redis is down. Every failure gives the same body (RFC 6750 §3.1).
 * A callback hook, not an async one: it runs on every protected request and needs no promise.
 */
export default fp(async function authenticatePlugin (fastify) {
  const { accessRevocations: revocations, accessTokens } = fastify
  fastify.decorate('authenticate', function authenticate (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    const header = request.headers.authorization
    if (header === undefined || !BEARER.test(header)) {
      // No bearer token attempted (no credentials, or another scheme's): a challenge without an error code, as
      // RFC 6750 §3.1 asks, which tells the client the scheme to use.
      reply.header('www-authenticate', 'Bearer')
      done(new AccessTokenInvalidError())
      return
    }
    // RFC 6750 §2.1: "Bearer" (any case), one or more spaces, the token.
    let start = 7
    while (header.charCodeAt(start) === 32) start++
    // Two tokens are refused as two refresh cookies are: which one a proxy acts on is not known here.
    const claims = repeatsAuthorization(request.raw.rawHeaders) ? null : accessTokens.verify(header.slice(start))
    // Revoked sessions: an in-memory lookup, kept current over Redis pub/sub; after a cache hit too.
    if (claims === null || revocations.isRevoked(claims.sid)) {
      // A genuine token of an ended session: whose it is goes in the log (a copy kept past a logout is used). A
      // success names no one here: /me is answered all the time, for every client.
      if (claims !== null) logAccount(request, reply, { userId: claims.sub, sessionId: claims.sid })
      done(new AccessTokenInvalidError())
      return
    }
    request.user = claims
    done()
  })
}, { name: 'authenticate', dependencies: ['access-tokens', 'access-revocations'], fastify: '5.x' })
