import type { FastifyInstance } from 'fastify'

/**
 * Deletes an account (DELETE /auth/account, and the operators' delete-account); returns the sessions it ended. The
 * sessions end before the account goes: a store failing in between (503) leaves an account with no session, which
 * its owner signs in to and deletes again, where the reverse would leave sessions refreshing for an account that is
 * gone. And again after: a sign-in that read the account before it went may have begun a session since (login.ts
 * checks the account once its session exists and ends that session itself; this covers a store that failed it).
 * Once the account is gone the deletion is made, and answered so: a 503 then would tell a caller whose session has
 * ended to retry what it cannot, and what is left is asked of the store until it takes it.
 */
export async function deleteAccount ({ users, sessions }: Pick<FastifyInstance, 'users' | 'sessions'>, userId: string): Promise<string[]> {
  const ended = await sessions.revokeAll(userId)
  await users.delete(userId)
  return [...ended, ...await sessions.revokeAllEventually(userId)]
}
