import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { limitOf } from '../../plugins/rate-limit.js'
import { confirmCallerPassword } from '../../src/caller-password.js'
import { AccessTokenInvalidError, InvalidCredentialsError, WeakPasswordError } from '../../src/errors.js'
import { ErrorResponse, PasswordChange } from '../../src/http-schemas.js'

const password: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordIp } = fastify.config.rateLimits
  fastify.post('/auth/password', {
    onRequest: [fastify.authenticate, fastify.requireLiveSession],
    config: { rateLimit: limitOf(passwordIp) },
    schema: {
      summary: 'Change the password; every other session ends',
      body: PasswordChange,
      response: { 204: { type: 'null' }, 400: ErrorResponse, 401: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const { users, passwordHasher, sessions } = fastify
    const { sid } = request.user
    const { user, clientGone } = await confirmCallerPassword(fastify, request, reply, request.body.currentPassword)
    // After the current password is checked: a stolen access token learns nothing of the account from this answer.
    // The current password given again would end the other sessions and leave whoever else knows it able to sign in.
    const refusal = request.body.newPassword === request.body.currentPassword
      ? 'The new password is the current one; choose another'
      : fastify.passwordPolicy.refusal(request.body.newPassword, user.email)
    if (refusal !== null) throw new WeakPasswordError(refusal)

    // Only over the hash the current password was verified against: of two changes made at once with the same
    // current password (from one session: two sessions' are settled by revokeOthers below), the second finds it is no
    // longer current, and the first's new password stands.
    const newHash = await passwordHasher.hash(request.body.newPassword, clientGone)
    // A client that hung up while the new password was hashed changes nothing: its retry, with the same current
    // password, finds it still current.
    clientGone.throwIfAborted()
    // Whoever else knew the old password is logged out everywhere; the caller stays signed in. Before the hash changes,
    // so that a store failing after it (a 503) cannot leave the new password with the old sessions alive; and only
    // while the caller's own session lives, so that of two changes made at once the first to end the other's wins.
    if (!await sessions.revokeOthers(user.id, sid)) throw new AccessTokenInvalidError()
    if (!await users.updatePasswordHash(user.id, user.passwordHash, newHash)) {
      // The stored hash changed while the new one was computed. A rehash (a login elsewhere, with stronger argon2
      // parameters) leaves the current password current: the change goes over it. Another change does not.
      const now = await users.findById(user.id)
      const stillCurrent = now !== null && await passwordHasher.verify(now.passwordHash, request.body.currentPassword, clientGone)
      if (!stillCurrent || !await users.updatePasswordHash(user.id, now.passwordHash, newHash)) throw new InvalidCredentialsError()
    }
    // Again: a login that read the old hash before it changed may have begun a session since. Should the caller's
    // own session have ended meanwhile (its idle timeout, a logout), there is no one left to keep. The password has
    // changed: a store failing now is no 503, which would send the caller to retry with a password no longer theirs.
    await sessions.revokeAllEventually(user.id, sid)
    return reply.code(204).send(null)
  })
}

export default password
