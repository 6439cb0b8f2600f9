import { setTimeout as sleep } from 'node:timers/promises'
import fc from 'fast-check'
import type { FastifyInstance, InjectOptions } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp, PASSWORD, refreshCookieValue, sidOf, uniqueEmail, uniquePrefix, type StoreKind } from '../../helpers/app.js'

// The session routes against a model of what they promise, over random sequences of logins (in a browser that holds
// none of the sessions, or one whose cookie it sends along, which the login replaces), refreshes with the current, the
// previous or an older token of a session (or a tampered one), logouts, revocations, password changes, logins with a
// password the account had before, and reads, with a cap of two live sessions: after every request the answer is
// the model's, on both stores, with and without a grace window, and on two instances of a deployment sharing one
// Redis. Nothing but the revocation of access tokens may lag across instances (within a second). SESSION_MODEL_RUNS
// and SESSION_MODEL_SEED widen or replay a run; the fixed seed keeps CI's the same.
const RUNS = Number(process.env.SESSION_MODEL_RUNS ?? 80)
const SEED = Number(process.env.SESSION_MODEL_SEED ?? 20261126)

interface Family {
  id: string
  /** Every refresh token the family was given, oldest first; the last is current. */
  tokens: string[]
  accessToken: string
  live: boolean
  /** Ended by a login in the browser that held it: with a grace window, its refreshes are answered superseded. */
  replaced: boolean
  /** When it was last used (made or rotated), in the model's own ticks: the cap evicts the least recently used. */
  usedAt: number
}

interface Model {
  password: string
  /** Passwords the account had before. */
  retired: string[]
  families: Family[]
  graceful: boolean
  ticks: number
}

/** Live sessions per user (MAX_SESSIONS_PER_USER). */
const CAP = 2

/**
 * Marks `family` used now. The stores order uses by the millisecond: the pause keeps two uses out of one, where the
 * stores would order them in ways of their own (Redis by id).
 */
async function used (m: Model, family: Family): Promise<void> {
  family.usedAt = ++m.ticks
  await sleep(2)
}

interface Real {
  /** The instances of the deployment, sharing one store; requests go to each in turn, as a load balancer sends them. */
  instances: FastifyInstance[]
  email: string
}

type Which = 'current' | 'parent' | 'older' | 'tampered'

const bearer = (family: Family) => ({ authorization: `Bearer ${family.accessToken}` })
const pick = <T>(items: T[], index: number): T => items[index % items.length] as T

function presented (family: Family, which: Which): string | null {
  const { tokens } = family
  const current = tokens.length - 1
  if (which === 'current') return tokens[current] as string
  if (which === 'parent') return current >= 1 ? tokens[current - 1] as string : null
  if (which === 'older') return current >= 2 ? tokens[0] as string : null
  const token = tokens[current] as string
  return token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA')
}

let sent = 0
/** Every request of the sequences goes through here, to be counted, each to the next instance in turn. */
function send ({ instances }: Real, options: InjectOptions) {
  sent++
  return (instances[sent % instances.length] as FastifyInstance).inject(options)
}

/** The refresh cookie's name, the same on every instance. */
const cookieName = ({ instances }: Real): string => (instances[0] as FastifyInstance).config.cookie.name
const cookieOf = ({ instances }: Real, setCookie: string | string[] | undefined) => refreshCookieValue(instances[0] as FastifyInstance, setCookie)

function expect (ok: boolean, what: string): void {
  if (!ok) throw new Error(what)
}

/**
 * A login, sent with the refresh cookie of `held` (one of its tokens) when the browser holds one. The new session may
 * take the place of only the least recently used others beyond the cap, never of the one it replaces, which it ends.
 */
async function signIn (m: Model, real: Real, held?: { family: Family, which: Which }): Promise<void> {
  const { email } = real
  const cookie = held === undefined ? {} : { cookie: `${cookieName(real)}=${presented(held.family, held.which) as string}` }
  const res = await send(real, { method: 'POST', url: '/auth/login', payload: { email, password: m.password }, headers: cookie })
  expect(res.statusCode === 200, `login: ${res.statusCode} ${res.body}`)
  const accessToken = res.json().accessToken as string
  const token = cookieOf(real, res.headers['set-cookie']) as string
  expect(m.families.every((f) => f.id !== sidOf(accessToken)), 'login: a new session every time')
  // A tampered cookie is no session's: it replaces nothing.
  const replacing = held !== undefined && held.which !== 'tampered' && held.family.live ? held.family : undefined
  const others = m.families.filter((f) => f.live && f !== replacing).sort((a, b) => a.usedAt - b.usedAt)
  for (const evicted of others.slice(0, Math.max(0, others.length + 1 - CAP))) evicted.live = false
  if (replacing !== undefined) {
    replacing.live = false
    replacing.replaced = m.graceful
  }
  const family: Family = { id: sidOf(accessToken), tokens: [token], accessToken, live: true, replaced: false, usedAt: 0 }
  m.families.push(family)
  await used(m, family)
}

class Login implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) => m.families.length < 5
  run = (m: Model, real: Real) => signIn(m, real)
  toString = () => 'login'
}

/** A login in the browser that holds a session's cookie (its current token, or an older one a stale tab sends). */
class LoginReplacing implements fc.AsyncCommand<Model, Real> {
  constructor (readonly index: number, readonly which: Which) {}
  check = (m: Readonly<Model>) => m.families.length > 0 && m.families.length < 5 && presented(pick(m.families, this.index), this.which) !== null
  run = (m: Model, real: Real) => signIn(m, real, { family: pick(m.families, this.index), which: this.which })
  toString = () => `loginReplacing(${this.index}, ${this.which})`
}

/** A password the account had before: refused, and no session is made. */
class LoginWithRetiredPassword implements fc.AsyncCommand<Model, Real> {
  constructor (readonly index: number) {}
  check = (m: Readonly<Model>) => m.retired.length > 0
  async run (m: Model, real: Real) {
    const { email } = real
    const res = await send(real, { method: 'POST', url: '/auth/login', payload: { email, password: pick(m.retired, this.index) } })
    expect(res.statusCode === 401 && res.json().code === 'AUTH_INVALID_CREDENTIALS', `login with a retired password: ${res.statusCode} ${res.body}`)
  }

  toString = () => `loginWithRetiredPassword(${this.index})`
}

class Refresh implements fc.AsyncCommand<Model, Real> {
  constructor (readonly index: number, readonly which: Which) {}
  check = (m: Readonly<Model>) => m.families.length > 0 && presented(pick(m.families, this.index), this.which) !== null
  async run (m: Model, real: Real) {
    const family = pick(m.families, this.index)
    const token = presented(family, this.which) as string
    const res = await send(real, { method: 'POST', url: '/auth/refresh', headers: { cookie: `${cookieName(real)}=${token}` } })
    const cookie = cookieOf(real, res.headers['set-cookie'])
    const refusal = (code: string) => {
      expect(res.statusCode === 401 && res.json().code === code, `refresh (${this.which}): expected 401 ${code}, got ${res.statusCode} ${res.body}`)
      expect(cookie === '', `refresh (${this.which}): the cookie is cleared`)
    }
    if (this.which !== 'tampered' && family.replaced) {
      // Sent before the browser had the new login's cookie: retry with the cookie it holds now, left alone.
      expect(res.statusCode === 409 && res.json().code === 'AUTH_REFRESH_SUPERSEDED', `refresh (${this.which}) of a replaced session: expected 409, got ${res.statusCode} ${res.body}`)
      expect(cookie === undefined, `refresh (${this.which}) of a replaced session: the cookie is left alone`)
      return
    }
    if (this.which === 'tampered' || !family.live) return refusal('AUTH_REFRESH_INVALID')
    if (this.which === 'older' && m.graceful) {
      // Superseded within the grace window (every rotation of a sequence is): another tab's request, made at once.
      expect(res.statusCode === 409 && res.json().code === 'AUTH_REFRESH_SUPERSEDED', `refresh (older, in grace): expected 409, got ${res.statusCode} ${res.body}`)
      expect(cookie === undefined, 'refresh (older, in grace): the cookie is left alone')
      return
    }
    if (this.which === 'older' || (this.which === 'parent' && !m.graceful)) {
      refusal('AUTH_REFRESH_REUSED')
      family.live = false
      return
    }
    expect(res.statusCode === 200, `refresh (${this.which}): expected 200, got ${res.statusCode} ${res.body}`)
    expect(sidOf(res.json().accessToken) === family.id, 'refresh: the same session')
    family.accessToken = res.json().accessToken
    if (this.which === 'parent') {
      expect(cookie === family.tokens.at(-1), 'refresh (parent, in grace): the very successor already issued')
    } else {
      expect(cookie !== undefined && !family.tokens.includes(cookie), 'refresh (current): a new token')
      family.tokens.push(cookie as string)
      await used(m, family)
    }
  }

  toString = () => `refresh(${this.index}, ${this.which})`
}

class Logout implements fc.AsyncCommand<Model, Real> {
  constructor (readonly index: number, readonly which: Which) {}
  check = (m: Readonly<Model>) => m.families.length > 0 && presented(pick(m.families, this.index), this.which) !== null
  async run (m: Model, real: Real) {
    const family = pick(m.families, this.index)
    const res = await send(real, { method: 'POST', url: '/auth/logout', headers: { cookie: `${cookieName(real)}=${presented(family, this.which) as string}` } })
    expect(res.statusCode === 204, `logout: ${res.statusCode} ${res.body}`)
    // Any genuine token of the session ends it; a tampered one ends nothing.
    if (this.which !== 'tampered') family.live = false
  }

  toString = () => `logout(${this.index}, ${this.which})`
}

class RevokeSession implements fc.AsyncCommand<Model, Real> {
  constructor (readonly caller: number, readonly target: number) {}
  check = (m: Readonly<Model>) => m.families.length > 0
  async run (m: Model, real: Real) {
    const caller = pick(m.families, this.caller)
    const target = pick(m.families, this.target)
    const res = await send(real, { method: 'DELETE', url: `/auth/sessions/${target.id}`, headers: bearer(caller) })
    if (!caller.live) return expect(res.statusCode === 401, `revoke by an ended session: ${res.statusCode}`)
    if (!target.live) return expect(res.statusCode === 404 && res.json().code === 'AUTH_SESSION_NOT_FOUND', `revoke of an ended session: ${res.statusCode} ${res.body}`)
    expect(res.statusCode === 204, `revoke: ${res.statusCode} ${res.body}`)
    target.live = false
  }

  toString = () => `revokeSession(${this.caller} → ${this.target})`
}

class LogoutAll implements fc.AsyncCommand<Model, Real> {
  constructor (readonly caller: number) {}
  check = (m: Readonly<Model>) => m.families.length > 0
  async run (m: Model, real: Real) {
    const caller = pick(m.families, this.caller)
    const res = await send(real, { method: 'POST', url: '/auth/logout-all', headers: bearer(caller) })
    if (!caller.live) return expect(res.statusCode === 401, `logout-all by an ended session: ${res.statusCode}`)
    expect(res.statusCode === 204, `logout-all: ${res.statusCode} ${res.body}`)
    for (const family of m.families) family.live = false
  }

  toString = () => `logoutAll(${this.caller})`
}

class ChangePassword implements fc.AsyncCommand<Model, Real> {
  constructor (readonly caller: number) {}
  check = (m: Readonly<Model>) => m.families.length > 0
  async run (m: Model, real: Real) {
    const caller = pick(m.families, this.caller)
    const newPassword = `${PASSWORD} #${m.retired.length + 1}`
    const res = await send(real, { method: 'POST', url: '/auth/password', headers: bearer(caller), payload: { currentPassword: m.password, newPassword } })
    if (!caller.live) return expect(res.statusCode === 401, `password change by an ended session: ${res.statusCode}`)
    expect(res.statusCode === 204, `password change: ${res.statusCode} ${res.body}`)
    m.retired.push(m.password)
    m.password = newPassword
    for (const family of m.families) family.live = family === caller
  }

  toString = () => `changePassword(${this.caller})`
}

/** What every session reads: /me for its access token, the list for the user's live sessions. */
class Read implements fc.AsyncCommand<Model, Real> {
  constructor (readonly caller: number) {}
  check = (m: Readonly<Model>) => m.families.length > 0
  async run (m: Model, real: Real) {
    const caller = pick(m.families, this.caller)
    let me = await send(real, { url: '/me', headers: bearer(caller) })
    // An ended session's access tokens fail at once on the instance that ended it, and on the others once its
    // revocation reaches them over pub/sub: within a second, the README promises.
    for (const started = Date.now(); !caller.live && me.statusCode === 200 && real.instances.length > 1 && Date.now() - started < 1000;) {
      await sleep(10)
      me = await send(real, { url: '/me', headers: bearer(caller) })
    }
    expect(me.statusCode === (caller.live ? 200 : 401), `/me of a ${caller.live ? 'live' : 'ended'} session: ${me.statusCode}`)
    if (!caller.live) return
    const listed = (await send(real, { url: '/auth/sessions', headers: bearer(caller) })).json().sessions as Array<{ id: string, current: boolean }>
    const live = m.families.filter((f) => f.live).map((f) => f.id).sort()
    expect(JSON.stringify(listed.map((s) => s.id).sort()) === JSON.stringify(live), `sessions listed ${listed.map((s) => s.id).join(',')}; live ${live.join(',')}`)
    expect(listed.filter((s) => s.current).map((s) => s.id).join() === caller.id, 'the caller\'s own session is the one marked current')
  }

  toString = () => `read(${this.caller})`
}

// Few sessions, so that each lives long enough to have parents and older tokens to present.
const index = fc.nat({ max: 4 })
const which = fc.constantFrom<Which>('current', 'current', 'current', 'parent', 'older', 'tampered')
const commands = fc.commands([
  fc.constant(new Login()),
  fc.tuple(index, which).map(([i, w]) => new LoginReplacing(i, w)),
  fc.tuple(index, which).map(([i, w]) => new Refresh(i, w)),
  fc.tuple(index, which).map(([i, w]) => new Refresh(i, w)),
  fc.tuple(index, which).map(([i, w]) => new Refresh(i, w)),
  fc.tuple(index, which).map(([i, w]) => new Logout(i, w)),
  fc.tuple(index, index).map(([c, target]) => new RevokeSession(c, target)),
  index.map((c) => new LogoutAll(c)),
  index.map((c) => new ChangePassword(c)),
  index.map((i) => new LoginWithRetiredPassword(i)),
  index.map((c) => new Read(c)),
  index.map((c) => new Read(c))
], { maxCommands: 30, size: 'max' })

/** Runs RUNS random sequences against `instances`, every answer checked against the model. */
async function checkAgainstModel (t: Test, instances: FastifyInstance[], grace: number): Promise<void> {
  const before = sent
  await fc.assert(fc.asyncProperty(commands, async (cmds) => {
    const real: Real = { instances, email: uniqueEmail() }
    const registered = await send(real, { method: 'POST', url: '/auth/register', payload: { email: real.email, password: PASSWORD } })
    expect(registered.statusCode === 201, `register: ${registered.statusCode}`)
    // Every sequence starts with one session rotated twice, so it has a parent and an older token to present;
    // what follows is random.
    const first: Model = { password: PASSWORD, retired: [], families: [], graceful: grace > 0, ticks: 0 }
    await new Login().run(first, real)
    for (let i = 0; i < 2; i++) await new Refresh(0, 'current').run(first, real)
    await fc.asyncModelRun(() => ({ model: first, real }), cmds)
  }), { numRuns: RUNS, seed: SEED })
  t.ok(sent - before > RUNS * 10, `${RUNS} random sequences, ${sent - before} requests, each answered as the model says`)
}

for (const store of ['memory', 'redis'] as const satisfies StoreKind[]) {
  for (const grace of [300, 0]) {
    t.test(`${store}, ${grace === 0 ? 'no grace window' : 'a grace window'}: every answer is the model's`, async (t) => {
      await checkAgainstModel(t, [await buildApp(t, { store, env: { REFRESH_REUSE_GRACE: String(grace), MAX_SESSIONS_PER_USER: String(CAP) } })], grace)
    })
  }
}

for (const grace of [300, 0]) {
  t.test(`two instances on one Redis, each request to the next, ${grace === 0 ? 'no grace window' : 'a grace window'}: every answer is the model's`, async (t) => {
    const prefix = uniquePrefix()
    const env = { REFRESH_REUSE_GRACE: String(grace), MAX_SESSIONS_PER_USER: String(CAP) }
    await checkAgainstModel(t, [await buildApp(t, { prefix, env }), await buildApp(t, { prefix, env })], grace)
  })
}
