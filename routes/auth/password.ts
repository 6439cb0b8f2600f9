import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { whenClientGone } from '../../src/client-errors.js'
import { InvalidCredentialsError, RateLimitedError, WeakPasswordError } from '../../src/errors.js'
import { ErrorResponse, PasswordChange } from '../../src/http-schemas.js'

const password: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordIp } = fastify.config.rateLimits
  fastify.post('/auth/password', {
    onRequest: [fastify.authenticate, fastify.requireLiveSession],
    config: { rateLimit: { max: passwordIp.max, timeWindow: passwordIp.windowSeconds * 1000 } },
    schema: {
      summary: 'Change the password; every other session ends',
      body: PasswordChange,
      response: { 204: { type: 'null' }, 400: ErrorResponse, 401: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const { users, passwordHasher, sessions, failureCounters } = fastify
    const { sub, sid } = request.user
    // A stolen access token must not become a password-guessing oracle: limited like login.
    const throttle = await failureCounters.password.check(sub)
    if (throttle.blocked) {
      reply.header('retry-after', throttle.retryAfterSeconds)
      throw new RateLimitedError()
    }
    const user = await users.findById(sub)
    const clientGone = whenClientGone(reply)
    const ok = await passwordHasher.verify(user?.passwordHash ?? null, request.body.currentPassword, clientGone)
    if (!ok || user === null) {
      await failureCounters.password.recordFailure(sub)
      throw new InvalidCredentialsError()
    }
    await failureCounters.password.reset(sub)
    // After the current password is checked: a stolen access token learns nothing of the account from this answer.
    const refusal = fastify.passwordPolicy.refusal(request.body.newPassword, user.email)
    if (refusal !== null) throw new WeakPasswordError(refusal)

    // Only over the hash the current password was verified against: of two changes made at once with the same
    // current password, the second finds it is no longer current (else the last writer would set the password and,
    // with its revocation, sign the first out).
    const newHash = await passwordHasher.hash(request.body.newPassword, clientGone)
    if (!await users.updatePasswordHash(user.id, user.passwordHash, newHash)) {
      // The stored hash changed while the new one was computed. A rehash (a login elsewhere, with stronger argon2
      // parameters) leaves the current password current: the change goes over it. Another change does not.
      const now = await users.findById(user.id)
      const stillCurrent = now !== null && await passwordHasher.verify(now.passwordHash, request.body.currentPassword, clientGone)
      if (!stillCurrent || !await users.updatePasswordHash(user.id, now.passwordHash, newHash)) throw new InvalidCredentialsError()
    }
    // Whoever else knew the old password is logged out everywhere; the caller stays signed in.
    await sessions.revokeAll(user.id, sid)
    return reply.code(204).send(null)
  })
}

export default password
