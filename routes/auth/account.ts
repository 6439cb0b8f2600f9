import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { confirmCallerPassword } from '../../src/caller-password.js'
import { AccountDeletion, ErrorResponse } from '../../src/http-schemas.js'

const account: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordIp } = fastify.config.rateLimits
  fastify.delete('/auth/account', {
    onRequest: [fastify.authenticate, fastify.requireLiveSession],
    config: { rateLimit: { max: passwordIp.max, timeWindow: passwordIp.windowSeconds * 1000 } },
    schema: {
      summary: 'Delete the caller\'s account: every session ends, and its email is free to register again',
      body: AccountDeletion,
      response: { 204: { type: 'null' }, 400: ErrorResponse, 401: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const { users, sessions } = fastify
    const { clientGone } = await confirmCallerPassword(fastify, request, reply, request.body.password)
    clientGone.throwIfAborted()
    const { sub } = request.user
    // The sessions first: a store failing after them (503) leaves an account with no session, which its owner signs in
    // to and deletes again; the reverse would leave sessions refreshing for an account that is gone.
    await sessions.revokeAll(sub)
    await users.delete(sub)
    // Again: a sign-in that read the account before it went may have begun a session since (login.ts checks the
    // account once its session exists, and ends that session itself; this covers the store that failed it).
    await sessions.revokeAll(sub)
    fastify.refreshCookie.clear(reply)
    return reply.code(204).send(null)
  })
}

export default account
