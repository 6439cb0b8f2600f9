import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorResponse } from '../../src/http-schemas.js'

const logoutAll: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/auth/logout-all', {
    onRequest: [fastify.authenticate, fastify.requireLiveSession],
    schema: {
      summary: 'End every session of the caller\'s account, on every device',
      response: { 204: { type: 'null' }, 401: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const { sub, sid } = request.user
    const revoked = await fastify.sessions.revokeAll(sub)
    // The caller's family goes too, even when it expired between the hook's look and this: its access tokens must
    // stop now.
    if (!revoked.includes(sid)) await fastify.accessRevocations.revoke([sid])
    fastify.refreshCookie.clear(reply)
    return reply.code(204).send(null)
  })
}

export default logoutAll
