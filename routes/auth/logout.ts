import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { presentedValues } from '../../plugins/refresh-cookie.js'
import { ErrorResponse } from '../../src/http-schemas.js'

const logout: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/auth/logout', {
    onRequest: fastify.csrfProtection,
    schema: {
      summary: 'End the session of the refresh cookie, and clear the cookie',
      response: { 204: Type.Null(), 403: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const { refreshCookie, sessions } = fastify
    const cookie = refreshCookie.read(request)
    // With planted duplicates, end every genuine family presented: the user asked to be logged out.
    for (const value of presentedValues(cookie)) await sessions.end(value)
    refreshCookie.clear(reply, cookie.status === 'duplicate')
    return reply.code(204).send(null)
  })
}

export default logout
