import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { SessionNotFoundError } from '../../src/errors.js'
import { sessionView } from '../../src/family-store.js'
import { ErrorResponse, SessionList, SessionParams } from '../../src/http-schemas.js'

const sessions: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/auth/sessions', {
    onRequest: [fastify.authenticate, fastify.requireLiveSession],
    schema: { summary: 'The caller\'s sessions, most recently used first', response: { 200: SessionList, 401: ErrorResponse, 503: ErrorResponse } }
  }, async (request, reply) => {
    const list = await fastify.sessions.list(request.user.sub)
    return { sessions: list.map((s) => ({ ...sessionView(s), current: s.familyId === request.user.sid })) }
  })

  fastify.delete('/auth/sessions/:id', {
    onRequest: [fastify.authenticate, fastify.requireLiveSession],
    schema: {
      summary: 'End one of the caller\'s sessions, with its access tokens',
      params: SessionParams,
      response: { 204: { type: 'null' }, 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    // Store keys are scoped by the caller's user id: another user's session id is simply not found,
    // with the same answer as an id that never existed (no oracle).
    if (!await fastify.sessions.revoke(request.user.sub, request.params.id)) throw new SessionNotFoundError()
    // Ending one's own session is a logout: a browser's refresh cookie, which holds it, goes too (it is sent to /auth).
    if (request.params.id === request.user.sid) fastify.refreshCookie.clear(reply)
    return reply.code(204).send(null)
  })
}

export default sessions
