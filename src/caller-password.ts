import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { whenClientGone } from './client-errors.js'
import { InvalidCredentialsError, RateLimitedError } from './errors.js'
import type { UserRecord } from './user-directory.js'

/**
 * The caller's own password, asked again before the account itself is changed (its password, its deletion): an access
 * token alone, stolen from a page, must not be enough. Limited as login is, so that a stolen token is no
 * password-guessing oracle: per account, answered 429 with Retry-After once it is exceeded. Resolves with the account
 * and the signal of the client hanging up (for the work that follows); throws InvalidCredentialsError for a wrong
 * password, or an account gone.
 */
export async function confirmCallerPassword (fastify: FastifyInstance, request: FastifyRequest, reply: FastifyReply, password: string): Promise<{ user: UserRecord, clientGone: AbortSignal }> {
  const { users, passwordHasher, failureCounters } = fastify
  const { sub } = request.user
  const throttle = await failureCounters.password.check(sub)
  if (throttle.blocked) {
    reply.header('retry-after', throttle.retryAfterSeconds)
    throw new RateLimitedError()
  }
  const user = await users.findById(sub)
  const clientGone = whenClientGone(reply)
  const ok = await passwordHasher.verify(user?.passwordHash ?? null, password, clientGone)
  if (!ok || user === null) {
    await failureCounters.password.recordFailure(sub)
    throw new InvalidCredentialsError()
  }
  if (throttle.failures > 0) await failureCounters.password.reset(sub)
  return { user, clientGone }
}
