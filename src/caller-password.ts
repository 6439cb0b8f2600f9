import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { whenClientGone } from './client-errors.js'
import { InvalidCredentialsError, RateLimitedError } from './errors.js'
import { FailureLimits } from './failure-counter.js'
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
  const [limits, user] = await Promise.all([
    FailureLimits.read([{ counter: failureCounters.passwordFromSession, key: sid }, { counter: failureCounters.password, key: sub }]),
    users.findById(sub)
  ])
  const blockedFor = limits.blockedForSeconds
  if (blockedFor !== null) {
    reply.header('retry-after', blockedFor)
    throw new RateLimitedError()
  }
  const clientGone = whenClientGone(reply)
  const ok = await passwordHasher.verify(user?.passwordHash ?? null, password, clientGone)
  if (!ok || user === null) {
    await limits.recordFailure()
    throw new InvalidCredentialsError()
  }
  await limits.recordSuccess()
  return { user, clientGone }
}
