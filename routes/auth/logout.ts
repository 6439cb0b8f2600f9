import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { presentedValues } from '../../plugins/refresh-cookie.js'
import { ErrorResponse } from '../../src/http-schemas.js'
import { logAccount } from '../../src/log-account.js'

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
    const presented = presentedValues(cookie)
    // Named before they end, from the tokens alone: a logout the store cannot take (503) names them too.
    const holders = presented.map((value) => sessions.holder(value)).filter((holder) => holder !== null)
    const [only] = holders
    if (holders.length === 1 && only !== undefined) {
      logAccount(request, reply, { userId: only.userId, sessionId: only.familyId })
    } else if (holders.length > 1) {
      // Which is the browser's own is not known: a planted copy's session is whichever account its planter chose.
      request.log.warn({ sessions: holders.map((s) => ({ userId: s.userId, sessionId: s.familyId })) },
        'logout of several refresh cookies: copies were planted beside the browser\'s own')
    }
    // With planted duplicates, end every genuine family presented: the user asked to be logged out.
    for (const value of presented) await sessions.end(value)
    refreshCookie.clear(reply, cookie.status === 'duplicate')
    return reply.code(204).send(null)
  })
}

export default logout
