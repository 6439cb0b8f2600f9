import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { deviceOf } from '../../plugins/device-cookie.js'
import { limitOf } from '../../plugins/rate-limit.js'
import { presentedValues } from '../../plugins/refresh-cookie.js'
import { countedAddress } from '../../src/client-address.js'
import { whenClientGone } from '../../src/client-errors.js'
import { normalizeEmail } from '../../src/email.js'
import { InvalidCredentialsError, RateLimitedError } from '../../src/errors.js'
import { FailureLimits } from '../../src/failure-counter.js'
import { Credentials, ErrorResponse, TokenResponse } from '../../src/http-schemas.js'
import { logAccount } from '../../src/log-account.js'
import { sessionMeta } from '../../src/session-meta.js'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  const { loginIp } = fastify.config.rateLimits
  fastify.post('/auth/login', {
    // The refresh cookie sent along is ended (below): no cross-site page may do that, nor sign a browser in to an
    // account of its choosing (login CSRF).
    onRequest: fastify.csrfProtection,
    config: { rateLimit: limitOf(loginIp) },
    schema: {
      summary: 'Sign in: an access token in the body, a refresh token in the cookie',
      body: Credentials,
      // Credentials in the body; the refresh cookie too if the browser holds one, whose session this login ends; and
      // the device cookie of an earlier sign-in in this browser.
      security: [{}, { refreshCookie: [] }, { deviceCookie: [] }, { refreshCookie: [], deviceCookie: [] }],
      response: { 200: TokenResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const { users, passwordHasher, sessions, failureCounters } = fastify
    const email = normalizeEmail(request.body.email)
    // Failures count per account whether or not it exists, so the limit is no existence oracle.
    const subject = email ?? request.body.email.trim().toLowerCase()
    // Per account from this address first: one attacker's guesses lock out only that attacker, never the
    // account's owner elsewhere. Per account from every address, with a higher limit: distributed guessing.
    // The address as the per-IP limiter counts it: an IPv6 client by its /64, where it can take a new address
    // for every request; an IPv4-mapped address as its IPv4 one.
    const fromClient = `${subject}\n${countedAddress(request.ip)}`
    const [byClient, user] = await Promise.all([
      FailureLimits.read([{ counter: failureCounters.loginFromClient, key: fromClient }, { counter: failureCounters.login, key: subject }]),
      email === null ? null : users.findByEmail(email)
    ])
    // The account tried, whatever the answer: guesses against it show in the log as attempts at it. An unknown email
    // names none (nor is it logged: it may be a password typed into the wrong field).
    if (user !== null) logAccount(request, reply, { userId: user.id })
    // A browser the account has signed in from before is held to its own limit instead (plugins/device-cookie.ts):
    // guesses from everywhere else, which lock the account for every other client, leave it signing in; and its
    // owner's sign-ins there do not reset the account's count, which would give guessing spread over many addresses a
    // new budget at each. Nor its own: the cookie it replaces (a copy of which may be a thief's) keeps its failures,
    // and the new one has a new device id.
    const devices = fastify.deviceCookie.read(request)
    const device = user === null ? null : deviceOf(devices, user.id)
    const fromKnownBrowser = device !== null
    const limits = device === null
      ? byClient
      : await FailureLimits.read([{ counter: failureCounters.loginFromDevice, key: device.deviceId, keptOnSuccess: true }])
    const blockedFor = limits.blockedForSeconds
    if (blockedFor !== null) {
      fastify.metrics.login('limited', fromKnownBrowser)
      reply.header('retry-after', blockedFor)
      throw new RateLimitedError()
    }
    const refuse = async (): Promise<never> => {
      fastify.metrics.login('invalid_credentials', fromKnownBrowser)
      await limits.recordFailure()
      throw new InvalidCredentialsError()
    }
    // Unknown and malformed emails are verified against a dummy hash: same work, same answer, same time.
    const clientGone = whenClientGone(reply)
    const ok = await passwordHasher.verify(user?.passwordHash ?? null, request.body.password, clientGone)
    if (!ok || user === null) return refuse()
    await limits.recordSuccess()

    if (passwordHasher.pending === 0 && passwordHasher.needsRehash(user.passwordHash)) {
      // Upgrade hashes made with older parameters while the password is at hand; never delays the login. Not while
      // other hashes wait for a slot: under a flood (new parameters just deployed, every login an old hash) a rehash
      // would take the slot of a waiting login, and the account's next quiet login upgrades it. Only over the hash
      // just verified: a password change that lands first stays.
      passwordHasher.hash(request.body.password)
        .then((hash) => users.updatePasswordHash(user.id, user.passwordHash, hash))
        .catch((err: unknown) => request.log.warn({ err }, 'password rehash failed'))
    }

    // No session for a client that hung up while its password was verified (a client timing out under load).
    clientGone.throwIfAborted()
    // Always a new family: a refresh cookie sent along with the login is never adopted (it is ended below), and the
    // user's own session it holds makes no room at the cap: it is this one's to replace, not another device's.
    const presentedCookie = fastify.refreshCookie.read(request)
    const presented = presentedValues(presentedCookie)
    const session = await sessions.start(user, sessionMeta(request), sessions.ownFamilies(user.id, presented))
    logAccount(request, reply, { sessionId: session.familyId })
    // A password change may have completed since the hash was read (this login waiting its turn to hash, on a busy
    // instance): it ended the sessions it found, and this one may have been created after it looked. So the hash is
    // read again now that the session exists; one that changed but still takes this password was only rehashed.
    const stillTheirs = async (): Promise<boolean> => {
      const stored = await users.findByEmail(user.email)
      return stored?.id === user.id && (stored.passwordHash === user.passwordHash || await passwordHasher.verify(stored.passwordHash, request.body.password, clientGone))
    }
    // A session whose login is not answered (refused, or failed on the way: store down, hasher busy, client gone) must
    // not stay behind, listed among the user's sessions with no one holding its token.
    const discard = (): Promise<void> => sessions.discard(user.id, session.familyId)
    const kept = await stillTheirs().catch(async (err: unknown) => {
      await discard()
      throw err
    })
    if (!kept) {
      await discard()
      return refuse()
    }
    if (clientGone.aborted) {
      await discard()
      throw clientGone.reason
    }
    // The client may still go before its answer is written (the signal has not fired yet, and fires then).
    clientGone.addEventListener('abort', () => { discard().catch(() => {}) }, { once: true })
    // The session of the refresh cookie this answer replaces, whoever's it is: left, it would live on until its idle
    // timeout, listed among its user's sessions (and counted against their cap) with no one holding its token but
    // whoever copied it. A store failure here does not undo the login, already made; that session then expires.
    for (const value of presented) {
      await sessions.replace(value).catch((err: unknown) => request.log.warn({ err }, 'the session of the replaced refresh cookie was not ended'))
    }
    fastify.metrics.login('success', fromKnownBrowser)
    fastify.refreshCookie.set(reply, session.refreshToken, session.ttlSeconds)
    fastify.deviceCookie.set(reply, devices, user.id)
    // A planted copy left on another path would be sent beside the new cookie, and the next refresh refused for it.
    if (presentedCookie.status === 'duplicate') fastify.refreshCookie.clearElsewhere(reply)
    return fastify.accessTokens.issue(session)
  })
}

export default login
