import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { limitOf } from '../../plugins/rate-limit.js'
import { deleteAccount } from '../../src/account-deletion.js'
import { confirmCallerPassword } from '../../src/caller-password.js'
import { AccountDeletion, ErrorResponse } from '../../src/http-schemas.js'

const account: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordIp } = fastify.config.rateLimits
  fastify.delete('/auth/account', {
    onRequest: [fastify.authenticate, fastify.requireLiveSession],
    config: { rateLimit: limitOf(passwordIp) },
    schema: {
      summary: 'Delete the caller\'s account: every session ends, and its email is free to register again',
      body: AccountDeletion,
      response: { 204: { type: 'null' }, 400: ErrorResponse, 401: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const { clientGone } = await confirmCallerPassword(fastify, request, reply, request.body.password)
    clientGone.throwIfAborted()
    await deleteAccount(fastify, request.user.sub)
    fastify.refreshCookie.clear(reply)
    return reply.code(204).send(null)
  })
}

export default account
