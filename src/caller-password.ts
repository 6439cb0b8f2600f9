import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { whenClientGone } from './client-errors.js'
import { InvalidCredentialsError, RateLimitedError } from './errors.js'
import type { UserRecord } from './user-directory.js'

/**
 * The caller's own password, asked again before the account itself is changed (its password, its deletion): an access
 * token alone, stolen from a page, must not be enough. Limited as login is, so that a stolen token is no
 * password-guessing oracle, answered 429 with Retry-After: per session first, as login is per client address, so that
 * the guesses made with a stolen token stop that session only, never the owner's own change or deletion from another
 * device; and per user from every session, with the looser limit, for guessing spread over several stolen sessions.
 * Resolves with the account and the signal of the client hanging up (for the work that follows); throws
 * InvalidCredentialsError for a wrong password, or an account gone.
 */
export async function confirmCallerPassword (fastify: FastifyInstance, request: FastifyRequest, reply: FastifyReply, password: string): Promise<{ user: UserRecord, clientGone: AbortSignal }> {
  const { users, passwordHasher, failureCounters } = fastify
  const { sub, sid } = request.user
  // In parallel: with a stalled Redis each sequential call would add a full command timeout.
  const [sessionThrottle, userThrottle, user] = await Promise.all([
    failureCounters.passwordFromSession.check(sid),
    failureCounters.password.check(sub),
    users.findById(sub)
  ])
  const throttle = sessionThrottle.blocked ? sessionThrottle : userThrottle
  if (throttle.blocked) {
    reply.header('retry-after', throttle.retryAfterSeconds)
    throw new RateLimitedError()
  }
  const clientGone = whenClientGone(reply)
  const ok = await passwordHasher.verify(user?.passwordHash ?? null, password, clientGone)
  if (!ok || user === null) {
    await Promise.all([failureCounters.passwordFromSession.recordFailure(sid), failureCounters.password.recordFailure(sub)])
    throw new InvalidCredentialsError()
  }
  // Only a counter that holds failures: most confirmations have none, and are spared two writes.
  await Promise.all([
    sessionThrottle.failures > 0 && failureCounters.passwordFromSession.reset(sid),
    userThrottle.failures > 0 && failureCounters.password.reset(sub)
  ])
  return { user, clientGone }
}
