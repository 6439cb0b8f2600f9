import type { FastifyReply, FastifyRequest } from 'fastify'

/** The account a request acted on or tried, and the session it acted in (the sessions API's `id`). */
export interface LoggedAccount {
  userId?: string
  sessionId?: string
}

/**
 * Names the account (and session) on every line the request logs from here on, its access-log line included: who
 * signed in from which address, whose password was changed, which account a guess was tried against, which session
 * was ended and from where. An investigation starts from the account, and the access line alone names only a URL and
 * an address. Ids only, opaque; never an email, a password or a token. Each field once per request: a second call
 * adds only what the first did not name. Not on the routes clients call all the time (refresh's successes, /me),
 * whose lines are at debug.
 */
export function logAccount (request: FastifyRequest, reply: FastifyReply, account: LoggedAccount): void {
  const log = request.log.child(account)
  request.log = log
  reply.log = log
}
