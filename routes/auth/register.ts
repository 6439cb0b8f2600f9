import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { limitOf } from '../../plugins/rate-limit.js'
import { whenClientGone } from '../../src/client-errors.js'
import { newAccountEmail } from '../../src/email.js'
import { EmailTakenError, InvalidEmailError, WeakPasswordError } from '../../src/errors.js'
import { ErrorResponse, Registration, UserResponse } from '../../src/http-schemas.js'
import { logAccount } from '../../src/log-account.js'

const register: FastifyPluginAsyncTypebox = async (fastify) => {
  const { registerIp } = fastify.config.rateLimits
  fastify.post('/auth/register', {
    config: { rateLimit: limitOf(registerIp) },
    schema: {
      summary: 'Create an account',
      body: Registration,
      response: { 201: UserResponse, 400: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const email = newAccountEmail(request.body.email)
    if (email === null) throw new InvalidEmailError()
    const refusal = fastify.passwordPolicy.refusal(request.body.password, email)
    if (refusal !== null) throw new WeakPasswordError(refusal)
    // Cheap duplicate check before the expensive hash; create() below is the authoritative one.
    const existing = await fastify.users.findByEmail(email)
    if (existing !== null) {
      // The account an address asked about: a run of these is someone listing who has an account.
      logAccount(request, reply, { userId: existing.id })
      throw new EmailTakenError()
    }
    const clientGone = whenClientGone(reply)
    const passwordHash = await fastify.passwordHasher.hash(request.body.password, clientGone)
    // A client that hung up while its password was hashed gets no account: its retry is answered 201, not 409.
    clientGone.throwIfAborted()
    const user = await fastify.users.create(email, passwordHash)
    if (user === null) throw new EmailTakenError()
    logAccount(request, reply, { userId: user.id })
    return reply.code(201).send(user)
  })
}

export default register
