import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AccessTokenInvalidError } from '../src/errors.js'
import { logAccount } from '../src/log-account.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * onRequest hook after `authenticate` on the routes that manage the account (sessions, logout-all, password):
     * the caller's session must be live in the store.
     */
    requireLiveSession (request: FastifyRequest, reply: FastifyReply): Promise<void>
  }
}

/**
 * Also names the caller's account and session on the request's log lines (src/log-account.ts): these routes change
 * the account, and are not called all the time as /me is.
 *
 * `authenticate` answers from the token and this instance's revocation list, which hears of a session ended on
 * another instance over pub/sub, a few milliseconds later (longer while its subscription reconnects). That lag is
 * the price of a /me that works while Redis is down; it is no price to pay where the account itself is changed,
 * and those routes go to the store anyway. So they ask the store, which every instance shares: a session ended
 * anywhere can no longer change the password, end the other sessions or list them, anywhere, from that moment.
 */
export default fp(async function liveSessionPlugin (fastify) {
  const { sessions } = fastify
  fastify.decorate('requireLiveSession', async function requireLiveSession (request: FastifyRequest, reply: FastifyReply) {
    // Named before the look: an ended session's attempt at the account is logged as its own too.
    logAccount(request, reply, { userId: request.user.sub, sessionId: request.user.sid })
    if (await sessions.isLive(request.user.sub, request.user.sid)) return
    throw new AccessTokenInvalidError()
  })
}, { name: 'live-session', dependencies: ['sessions', 'authenticate'], fastify: '5.x' })
