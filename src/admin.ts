import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import app, { serverOptions } from './app.js'
import { deleteAccount } from './account-deletion.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { normalizeEmail } from './email.js'
import { StoreUnavailableError } from './errors.js'
import { sessionView } from './family-store.js'
import { firstLine } from './first-line.js'
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './http-schemas.js'
import { logRedaction } from './log-redaction.js'
import { storeRefusal } from './redis-client.js'

/**
 * What an operator does to an account from the command line, where the service runs (`docker exec`, `kubectl exec`):
 * see where it is signed in, sign a compromised account out everywhere, set a new password for a user who cannot
 * sign in to change it (the service sends no email, so there is no reset link), and delete an account whose owner
 * asks for it without being able to sign in. Whoever can run this in the container holds the service's
 * secrets anyway: the container is the boundary, and no HTTP route is opened for it.
 *
 * It runs the service's own app with its configuration (the same environment, validated the same way) without
 * listening, so it reads and writes the store exactly as the instances do, and the access tokens of the sessions it
 * ends are refused on every instance within a second (pub/sub), as after a logout.
 */

const USAGE = `usage:
  admin sessions <email>       list the account's live sessions: where and when it is signed in
  admin sign-out <email>       end every session of the account, on every instance
  admin set-password <email>   set the password read from standard input (one line), and end every session
  admin delete-account <email> end every session and delete the account (its email is free to register again)

Run with the service's environment (REDIS_URL and its secrets). Prints one JSON line; exits 1 with a message on
standard error when it cannot.`

/** A reason to stop, for the operator: exit 1 with it on standard error. */
class Refusal extends Error {
  override name = 'Refusal'
}

/** How long the other instances' revocation is retried for before the command gives up on it. */
const BROADCAST_WAIT_MS = 10_000

const COMMANDS = ['sessions', 'sign-out', 'set-password', 'delete-account'] as const
type Command = typeof COMMANDS[number]
const isCommand = (name: string | undefined): name is Command => (COMMANDS as readonly unknown[]).includes(name)

type Done = { command: Command, userId: string } & ({ sessionsEnded: number } | { sessions: Array<ReturnType<typeof sessionView>> })

/** Done, or null when it was asked for its usage (printed on standard output). */
async function run (argv: string[], stdin: NodeJS.ReadStream): Promise<Done | null> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } })
  } catch (err) {
    throw new Refusal(`${(err as Error).message}\n${USAGE}`)
  }
  const [command, email, ...extra] = parsed.positionals
  if (parsed.values.help === true) {
    process.stdout.write(`${USAGE}\n`)
    return null
  }
  if (!isCommand(command) || email === undefined || extra.length > 0) throw new Refusal(USAGE)
  const normalized = normalizeEmail(email)
  if (normalized === null) throw new Refusal(`"${email}" is not an email address`)

  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) throw new Refusal(`the configuration is refused: ${err.message}`)
    throw err
  }
  // What the command prints of an error is redacted as the log redacts a line: it is printed, not logged.
  const redacted = logRedaction(config.secrets)
  if (config.redis === null) {
    // What was set instead (REDIS_HOST, as other services read it) is said here, as a refusal of the service's says it.
    const also = config.warnings.length === 0 ? '' : `. Also: ${config.warnings.join('; ')}`
    throw new Refusal(`REDIS_URL is not set: the embedded store lives inside the running service's process, out of this command's reach${also}`)
  }
  // Read before anything is opened: a refused password changes nothing.
  const password = command === 'set-password' ? await newPassword(stdin) : null

  // The service's warnings and errors go to standard error, its routine start lines nowhere: standard output is the result.
  const level: Config['logLevel'] = config.logLevel === 'fatal' || config.logLevel === 'error' || config.logLevel === 'silent' ? config.logLevel : 'warn'
  const fastify = Fastify(serverOptions({ ...config, logLevel: level }, pino.destination({ fd: 2, sync: true })))
  try {
    // What a plugin refuses at start (src/server.ts logs it and exits 1), said as the command's own refusal.
    try {
      await fastify.register(app, { config })
      await fastify.ready()
    } catch (err) {
      throw new Refusal(`the service refuses to start: ${redacted((err as Error).message)}`)
    }
    // The start waited for Redis, and logged why it is not ready (down, credentials refused, a replica): nothing sent.
    if (fastify.redis?.status !== 'ready') throw new Refusal('Redis is not ready: nothing was done; run the command again once it is')
    return await onAccount(fastify, command, normalized, password)
  } catch (err) {
    if (err instanceof Refusal) throw err
    // Answered with an error (out of memory, an ACL without a command, a read-only replica): waiting will not mend it.
    const refused = storeRefusal(err)
    if (refused !== null) {
      throw new Refusal(`the store refused it (${redacted(refused)}): nothing was done, or part of it; run the command again once it takes it`)
    }
    if (err instanceof StoreUnavailableError) {
      throw new Refusal('the store did not answer (Redis down or too slow): nothing was done, or part of it; run the command again once it answers')
    }
    // A bug, or a record the service did not write: logged as the service logs an error (without the traffic its
    // fields carry, secrets redacted), not printed by Node with all of them.
    fastify.log.fatal({ err }, 'the command stopped on an unexpected error')
    const where = level === 'silent' ? 'not logged: LOG_LEVEL is silent' : 'logged above, at level fatal'
    throw new Refusal(`an unexpected error stopped it (${where}): nothing was done, or part of it`)
  } finally {
    await fastify.close()
  }
}

async function onAccount (fastify: FastifyInstance, command: Command, email: string, password: string | null): Promise<Done> {
  const { users, sessions, passwordHasher, passwordPolicy } = fastify
  const user = await users.findByEmail(email)
  if (user === null) throw new Refusal(`no account has the email ${email}`)
  if (command === 'sessions') return { command, userId: user.id, sessions: (await sessions.list(user.id)).map(sessionView) }
  if (command === 'delete-account') return { command, userId: user.id, sessionsEnded: await told(fastify, await deleteAccount(fastify, user.id)) }
  // A refused password changes nothing, the sessions included.
  const refusal = password === null ? null : passwordPolicy.refusal(password, user.email)
  if (refusal !== null) throw new Refusal(`the password is refused: ${refusal}`)
  let ended = await sessions.revokeAll(user.id)
  if (password !== null) {
    const hash = await passwordHasher.hash(password)
    // Over whatever hash the account holds by now: a rehash at a sign-in, or the user's own change, does not stand in
    // the way of an operator's reset.
    let current = user.passwordHash
    for (let tries = 1; !await users.updatePasswordHash(user.id, current, hash); tries++) {
      const now = await users.findById(user.id)
      if (now === null) throw new Refusal(`the account of ${email} was deleted meanwhile`)
      if (tries === 5) throw new Refusal(`the password of ${email} kept changing while it was set; run the command again`)
      current = now.passwordHash
    }
    // A sign-in with the old password may have begun a session between the first ending and the change.
    ended = [...ended, ...await sessions.revokeAll(user.id)]
  }
  return { command, userId: user.id, sessionsEnded: await told(fastify, ended) }
}

/**
 * How many sessions were ended, once the other instances have been told: they learn of it over the store, and until
 * they have, the sessions' access tokens still work there. And once the store has taken the second ending of a
 * deletion (SessionService.revokeAllEventually): in this process, "again until it takes it" lasts only until it exits.
 * Not for the other follow-ups to settle: those wait out how late an unanswered write may run, which can be longer.
 */
async function told ({ accessRevocations, sessions, config }: FastifyInstance, ended: string[]): Promise<number> {
  const deadline = Date.now() + BROADCAST_WAIT_MS
  while ((accessRevocations.pending > 0 || sessions.pendingSecondEndings > 0) && Date.now() < deadline) await sleep(200)
  if (accessRevocations.pending > 0) {
    throw new Refusal(`the sessions were ended, but the other instances could not be told: their access tokens work until they expire (ACCESS_TOKEN_TTL, ${config.jwt.accessTokenTtlSeconds} s)`)
  }
  if (sessions.pendingSecondEndings > 0) {
    throw new Refusal(`the sessions were ended, but the store did not take their second ending: a session a sign-in began meanwhile lives on until it expires: REFRESH_IDLE_TTL (${config.refresh.idleTtlSeconds} s) unused, REFRESH_ABSOLUTE_TTL (${config.refresh.absoluteTtlSeconds} s) at most`)
  }
  return ended.length
}

/** The new password: standard input's first line, its line ending not part of it. Never an argument (`ps` shows those). */
async function newPassword (stdin: NodeJS.ReadStream): Promise<string> {
  if (stdin.isTTY) {
    throw new Refusal('set-password reads the new password from standard input, and will not have it echoed on a terminal: pipe it in, e.g. read -rs PW && printf \'%s\\n\' "$PW" | …')
  }
  const password = await firstLine(stdin)
  if (password === null) {
    throw new Refusal('standard input\'s first line is not UTF-8 (a terminal in another encoding, such as Latin-1?): its bytes would be set as another password than the one typed')
  }
  const length = [...password].length
  if (length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    throw new Refusal(`the password must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters; standard input's first line has ${length}`)
  }
  return password
}

try {
  const done = await run(process.argv.slice(2), process.stdin)
  if (done !== null) process.stdout.write(`${JSON.stringify(done)}\n`)
} catch (err) {
  if (!(err instanceof Refusal)) throw err
  process.stderr.write(`admin: ${err.message}\n`)
  process.exitCode = 1
}
