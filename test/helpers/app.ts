import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyServerOptions, type LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import type { Test as TapTest } from 'tap'
import app, { serverOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createRedisClient, type RedisClient } from '../../src/redis-client.js'
import { within } from './poll.js'
import { tcpLink, type TcpLink } from './tcp-link.js'

export const SHARED_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export type StoreKind = 'memory' | 'redis'

interface Test {
  teardown (fn: () => unknown): void
}

/** Settings every test app gets; cheap argon2 parameters keep suites fast (the bench uses the real ones). */
export function testEnv (overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: 'test-jwt-secret-0123456789abcdefghijklmnop',
    REFRESH_TOKEN_SECRET: 'test-refresh-secret-0123456789abcdefghijkl',
    ARGON2_MEMORY_COST: '8192',
    ARGON2_TIME_COST: '1',
    // Suites make many requests from one address; the rate-limit tests set their own limits.
    RATE_LIMIT_LOGIN_IP: '100000/60',
    RATE_LIMIT_LOGIN_ACCOUNT_IP: '100000/60',
    RATE_LIMIT_LOGIN_ACCOUNT: '100000/60',
    RATE_LIMIT_REGISTER_IP: '100000/60',
    RATE_LIMIT_PASSWORD_IP: '100000/60',
    RATE_LIMIT_NOT_FOUND_IP: '100000/60',
    ...overrides
  }
}

/** A key prefix of its own per app, so tests never touch each other's keys (or anyone else's). */
export function uniquePrefix (): string {
  return `test:${randomBytes(6).toString('hex')}:`
}

/**
 * Builds the real app (same plugins, same server options as src/server.ts), ready for inject().
 * With store 'redis' it uses the shared Redis under a unique prefix and deletes its keys afterwards.
 */
export interface BuildOptions {
  store?: StoreKind
  env?: Record<string, string | undefined>
  logStream?: Writable
  /** Share a key prefix with another app: two instances of one deployment. */
  prefix?: string
  /** Runs on the bare instance before the app registers: hooks of the test's own that see every route. */
  beforeApp?: (fastify: FastifyInstance) => void
  /** Server options over the service's own (src/app.ts serverOptions), e.g. a serverFactory. */
  server?: Pick<FastifyServerOptions, 'serverFactory'>
}

/**
 * `server` for an app whose requests must arrive within 300 ms: the service's request timeout is 30 s, checked every
 * 30 s by Node; these are the same server options with both short.
 */
export const SHORT_REQUEST_TIMEOUT: BuildOptions['server'] = {
  serverFactory: (handler) => createServer({ requestTimeout: 300, connectionsCheckingInterval: 50 }, handler)
}

export async function buildApp (t: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  const store = options.store ?? 'redis'
  const prefix = options.prefix ?? uniquePrefix()
  const env = testEnv({
    ...(store === 'redis' ? { REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix } : {}),
    ...options.env
  })
  const config = loadConfig(env)
  const fastify = Fastify({ ...serverOptions(config, options.logStream), ...options.server })
  options.beforeApp?.(fastify)
  try {
    await fastify.register(app, { config })
    await fastify.ready()
  } catch (err) {
    // A start the app refuses: what it had opened (its Redis connection) is closed, and the test gets the reason.
    await fastify.close()
    throw err
  }
  t.teardown(async () => {
    await fastify.close()
    if (config.redis !== null && config.redis.url === SHARED_REDIS_URL) await deleteKeys(config.redis.url, config.redis.keyPrefix)
  })
  return fastify
}

/** A link to the shared Redis (./tcp-link.ts): a process that connects to its port instead can be held or cut off. */
export function linkToSharedRedis (t: Test): Promise<TcpLink> {
  return tcpLink(t, Number(new URL(SHARED_REDIS_URL).port || 6379))
}

/**
 * An app on the shared Redis under `options.prefix` that reaches it through a link the test can hold or cut
 * (./tcp-link.ts): beside apps on the same prefix, an instance whose store commands can be stalled or lost on their way.
 */
export async function buildAppThroughLink (t: Test, options: BuildOptions & { prefix: string }): Promise<{ app: FastifyInstance, link: TcpLink }> {
  const link = await linkToSharedRedis(t)
  // buildApp deletes the keys of an app on the shared Redis's own URL only; this one reaches it through the link.
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, options.prefix))
  const app = await buildApp(t, { ...options, env: { ...options.env, REDIS_URL: `redis://127.0.0.1:${link.port}` } })
  return { app, link }
}

/** Starts an app built by buildApp listening on a free loopback port, for clients that need a real socket; returns the port. */
export async function listenOnLoopback (fastify: FastifyInstance): Promise<number> {
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  return (fastify.server.address() as AddressInfo).port
}

/** A store client as the service makes it (src/redis-client.ts), connected to `url`, and quit after the test. */
export async function connectedRedis (t: Test, url = SHARED_REDIS_URL): Promise<Redis> {
  return await connected(t, createRedisClient({ url, commandTimeoutMs: 2000 }))
}

/** The same, on a Redis Cluster (test/helpers/redis-server.ts's PrivateCluster). */
export async function connectedCluster (t: Test, cluster: { url: string, seeds: Array<{ host: string, port: number }> }): Promise<RedisClient> {
  return await connected(t, createRedisClient({ url: cluster.url, commandTimeoutMs: 2000, cluster: { nodes: cluster.seeds } }))
}

async function connected<Client extends RedisClient> (t: Test, redis: Client): Promise<Client> {
  await redis.connect()
  t.teardown(() => redis.quit())
  return redis
}

/** Deletes the keys under one test prefix: never a FLUSH on a Redis this suite did not start. */
export async function deleteKeys (url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== '0')
  } catch {
    // Redis gone (a fault test stopped it): nothing to clean.
  } finally {
    redis.disconnect()
  }
}

/** A log destination for buildApp that keeps what the app logged, as text and as parsed JSON lines. */
export function capturedLogs<Line = { msg: string, level: number, reqId?: string } & Record<string, unknown>> () {
  let text = ''
  const stream = new Writable({ write (chunk, _enc, done) { text += String(chunk); done() } })
  return {
    stream,
    text: () => text,
    lines: (): Line[] => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Line)
  }
}

export const PASSWORD = 'correct horse battery staple'

/**
 * An instance that hashes one password at a time, each slowly (a few hundred ms): a login there waits its turn long
 * enough for a test to act while it waits (a busy instance of the deployment).
 */
export const ONE_SLOW_HASH_AT_A_TIME = { ARGON2_MAX_CONCURRENCY: '1', ARGON2_TIME_COST: '6', ARGON2_MEMORY_COST: '65536' }

let counter = 0
export function uniqueEmail (): string {
  counter += 1
  return `user${counter}.${randomBytes(4).toString('hex')}@example.com`
}

export interface LoggedIn {
  email: string
  accessToken: string
  /** The raw refresh-token value, as the cookie carries it. */
  refreshToken: string
  /** Ready to send as a Cookie header. */
  cookie: string
}

/** The session id (`sid` claim) an access token names; read, not verified. */
export function sidOf (accessToken: string): string {
  return claimsOf(accessToken).sid
}

/** The user id (`sub` claim) an access token names; read, not verified. */
export function subOf (accessToken: string): string {
  return claimsOf(accessToken).sub
}

function claimsOf (accessToken: string): { sid: string, sub: string } {
  return JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString()) as { sid: string, sub: string }
}

/** The Redis key of a session's family, laid out as src/redis-family-store.ts lays it out. */
export function familyKey (prefix: string, userId: string, familyId: string): string {
  return `${prefix}{${userId}}:f:${familyId}`
}

/** The password hash `fastify`'s user directory holds for `email`; '' for none. */
export async function storedHash (fastify: FastifyInstance, email: string): Promise<string> {
  return (await fastify.users.findByEmail(email))?.passwordHash ?? ''
}

/** Registers a fresh account and logs in. */
export async function registerAndLogin (fastify: FastifyInstance, email = uniqueEmail(), userAgent = 'test-agent'): Promise<LoggedIn> {
  const reg = await fastify.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  if (reg.statusCode !== 201) throw new Error(`register failed: ${reg.statusCode} ${reg.body}`)
  return login(fastify, email, userAgent)
}

/**
 * Two instances of one deployment (one Redis, one prefix) and an account signed in on the first. The first hashes at
 * the test's weak parameters, at once. The second hashes one password at a time, slowly, with stronger parameters
 * than the account's hash (ONE_SLOW_HASH_AT_A_TIME): a request there waits its turn, long enough for a test to act
 * while it waits, and a sign-in there verifies the password slowly and rehashes it.
 */
export async function fastAndSlowInstances (t: Test): Promise<{ prefix: string, fast: FastifyInstance, slow: FastifyInstance, owner: LoggedIn }> {
  const prefix = uniquePrefix()
  const fast = await buildApp(t, { prefix })
  const slow = await buildApp(t, { prefix, env: ONE_SLOW_HASH_AT_A_TIME })
  return { prefix, fast, slow, owner: await registerAndLogin(fast) }
}

/**
 * A request made on one instance (`send`, for the account `owner`) waits with the store write that `held` matches
 * on its way, held by that instance's link to Redis, while another instance of the deployment signs the account in
 * and answers. Returns that other instance, the sign-in's session (`late`), and `send`'s answer once the write has
 * gone through: a sign-in that read the account before the write, and was answered before it landed.
 */
export async function signedInWhileHeld (t: Test & Pick<TapTest, 'equal'>, held: (sent: string) => boolean, send: (app: FastifyInstance, owner: LoggedIn) => Promise<LightMyRequestResponse>) {
  const prefix = uniquePrefix()
  const { app, link } = await buildAppThroughLink(t, { prefix })
  const other = await buildApp(t, { prefix })
  const owner = await registerAndLogin(other)
  const holding = link.holdAt(held)
  const answer = send(app, owner)
  await within(5000, async () => holding(), 'the write held on its way, what comes before it done')
  const late = await login(other, owner.email, 'late')
  t.equal((await other.inject({ url: '/me', headers: { authorization: `Bearer ${late.accessToken}` } })).statusCode, 200, 'a sign-in meanwhile is answered')
  link.release()
  return { other, owner, late, answer: await answer }
}

export async function login (fastify: FastifyInstance, email: string, userAgent = 'test-agent'): Promise<LoggedIn> {
  const res = await fastify.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': userAgent }, payload: { email, password: PASSWORD } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  const refreshToken = refreshCookieValue(fastify, res.headers['set-cookie'])
  if (refreshToken === undefined) throw new Error('login set no refresh cookie')
  return { email, accessToken: res.json().accessToken, refreshToken, cookie: `${fastify.config.cookie.name}=${refreshToken}` }
}

/** Every Set-Cookie header of a response, however many it has. */
export function setCookies (response: { headers: { 'set-cookie'?: string | string[] } }): string[] {
  return ([] as string[]).concat(response.headers['set-cookie'] ?? [])
}

/** The `Path` a Set-Cookie header gives its cookie, or undefined. */
export function cookiePath (setCookie: string): string | undefined {
  return /; Path=([^;]+)/.exec(setCookie)?.[1]
}

/** The value the response set for the refresh cookie ('' when it was cleared), or undefined. */
export function refreshCookieValue (fastify: FastifyInstance, setCookie: string | string[] | undefined): string | undefined {
  const { name, path } = fastify.config.cookie
  const prefix = `${name}=`
  const header = setCookies({ headers: { 'set-cookie': setCookie } }).find((h) => h.startsWith(prefix) && cookiePath(h) === path)
  return header?.slice(prefix.length).split(';')[0]
}

/** The Cookie header that presents the refresh token a response set, as the browser would send it next. */
export function nextRefreshCookie (fastify: FastifyInstance, response: { headers: { 'set-cookie'?: string | string[] } }): string {
  return `${fastify.config.cookie.name}=${refreshCookieValue(fastify, response.headers['set-cookie']) ?? ''}`
}

/**
 * The Cookie header a browser sends after `response`: the refresh token it set, on any status (a refresh answered 503
 * sets its successor), or `cookie` as it was when it set none.
 */
export function cookieKept (fastify: FastifyInstance, response: { headers: { 'set-cookie'?: string | string[] } }, cookie: string): string {
  return refreshCookieValue(fastify, response.headers['set-cookie']) === undefined ? cookie : nextRefreshCookie(fastify, response)
}

export function refresh (fastify: FastifyInstance, cookie: string, headers: Record<string, string> = {}) {
  return fastify.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, ...headers } })
}

/**
 * The codes a replayed refresh token is answered with, presented (`present()`: its answer's code) until it is caught.
 * A token superseded less than the grace window ago is taken for another tab's request made at the same moment, and on
 * another instance just after the rotation it replays it may be taken for a late attempt of that rotation (each
 * instance reads Redis's clock only within its reading's error): either way refused (409 AUTH_REFRESH_SUPERSEDED) with
 * the family kept (src/lua/family-rotate.lua). So after a 409 it is presented again once the window (`graceSeconds`,
 * counted from now, which is after the supersession) has passed, and then caught. Hold the result to CAUGHT_REPLAY.
 */
export async function replayCodes (present: () => Promise<unknown>, graceSeconds: number): Promise<string> {
  const first = String(await present())
  if (first !== 'AUTH_REFRESH_SUPERSEDED') return first
  await sleep(graceSeconds * 1000 + 200)
  return `${first}, ${String(await present())}`
}

/** A replay caught at once, or at its next try after being taken for a late attempt (replayCodes). */
export const CAUGHT_REPLAY = /^(AUTH_REFRESH_SUPERSEDED, )?AUTH_REFRESH_REUSED$/

/**
 * Every session refreshing without pause, on the instances in turn, each with the cookie its last answer set (as a
 * browser keeps it), while `work` runs: the answers by status and code, and the slowest refusal. After a refusal a
 * session waits 50 ms, as a client would.
 */
export async function refreshingWhile (apps: readonly FastifyInstance[], cookies: string[], work: () => Promise<void>): Promise<{ outcomes: Record<string, number>, slowestRefusalMs: number }> {
  const finished = new AbortController()
  const outcomes: Record<string, number> = {}
  let slowestRefusalMs = 0
  const loops = cookies.map(async (_, i) => {
    for (let n = 0; !finished.signal.aborted; n++) {
      const app = apps[n % apps.length] as FastifyInstance
      const started = performance.now()
      const res = await refresh(app, cookies[i] as string)
      const outcome = res.statusCode === 200 ? '200' : `${res.statusCode} ${String(res.json().code)}`
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
      cookies[i] = cookieKept(app, res, cookies[i] as string)
      if (res.statusCode !== 200) {
        slowestRefusalMs = Math.max(slowestRefusalMs, performance.now() - started)
        await sleep(50)
      }
    }
  })
  try {
    await work()
  } finally {
    finished.abort()
    await Promise.all(loops)
  }
  return { outcomes, slowestRefusalMs }
}

/** Settings for a refresh load: each session refreshes many times a second, all from one address. */
export const UNLIMITED_REFRESHES = { RATE_LIMIT_REFRESH_SESSION: '100000/60', RATE_LIMIT_REFRESH_IP: '100000/60' }

/** `count` sessions of as many users, logged in on the instances in turn: their refresh cookies. */
export async function sessionsOn (apps: readonly FastifyInstance[], count: number): Promise<string[]> {
  const cookies: string[] = []
  for (let i = 0; i < count; i++) cookies.push((await registerAndLogin(apps[i % apps.length] as FastifyInstance)).cookie)
  return cookies
}

/**
 * What a fault under refresh load (refreshingWhile) must leave true: refreshes were served, every refusal failed closed
 * (503 within 2 s: never a 500, never a session taken for a replay), and every session refreshes afterwards.
 */
export async function failedClosedUnderLoad (t: Pick<TapTest, 'ok' | 'same'>, apps: readonly FastifyInstance[], cookies: string[],
  load: { outcomes: Record<string, number>, slowestRefusalMs: number }, served: string): Promise<void> {
  const { outcomes, slowestRefusalMs } = load
  t.ok((outcomes['200'] ?? 0) > 0, `${outcomes['200']} refreshes served ${served}`)
  const refusals = Object.keys(outcomes).filter((outcome) => outcome !== '200')
  t.same(refusals.filter((outcome) => outcome !== '503 AUTH_STORE_UNAVAILABLE'), [], 'every refusal failed closed: 503, never a session taken for a replay', { outcomes })
  t.ok(slowestRefusalMs < 2000, `each within 2 s (the slowest ${slowestRefusalMs.toFixed(0)} ms)`)
  const after = []
  for (const [i, cookie] of cookies.entries()) after.push((await refreshUntilServed(apps[i % apps.length] as FastifyInstance, cookie, 5000)).cookie !== null)
  t.same(after, cookies.map(() => true), 'and every session refreshes afterwards')
}

/**
 * A master killed 300 ms into a refresh load (refreshingWhile) and the load kept up until its replica is promoted,
 * and 2 s after; then what failedClosedUnderLoad requires.
 */
export async function masterKilledUnderLoad (t: Pick<TapTest, 'ok' | 'same'>, apps: readonly FastifyInstance[], cookies: string[],
  master: { kill (): Promise<void> }, replica: { replication (name: string): Promise<string | undefined> }): Promise<void> {
  let promotedAfterMs = 0
  const load = await refreshingWhile(apps, cookies, async () => {
    await sleep(300)
    const killed = performance.now()
    await master.kill()
    await within(20_000, async () => await replica.replication('role') === 'master', 'the replica is promoted')
    promotedAfterMs = performance.now() - killed
    await sleep(2000)
  })
  await failedClosedUnderLoad(t, apps, cookies, load, `while the master was killed, its replica promoted ${(promotedAfterMs / 1000).toFixed(1)} s later, and 2 s after`)
}

export interface Refusal { status: number, code: string, ms: number }

/**
 * Through a store outage: refreshes `cookie` every 100 ms, keeping the cookie each answer sets, until one succeeds or
 * `timeoutMs` passes. Gives the rotated cookie and the new access token (null if none succeeded), every refusal
 * before it, and the time to the success.
 */
export async function refreshUntilServed (fastify: FastifyInstance, cookie: string, timeoutMs: number): Promise<{ cookie: string | null, accessToken: string | null, refusals: Refusal[], seconds: string }> {
  const since = Date.now()
  const refusals: Refusal[] = []
  const seconds = () => ((Date.now() - since) / 1000).toFixed(1)
  while (Date.now() - since < timeoutMs) {
    const started = performance.now()
    const res = await refresh(fastify, cookie)
    if (res.statusCode === 200) return { cookie: nextRefreshCookie(fastify, res), accessToken: res.json().accessToken, refusals, seconds: seconds() }
    cookie = cookieKept(fastify, res, cookie)
    refusals.push({ status: res.statusCode, code: res.json().code, ms: Math.round(performance.now() - started) })
    await sleep(100)
  }
  return { cookie: null, accessToken: null, refusals, seconds: seconds() }
}

/** Whether each refusal failed closed, as the service must while its store is out: 503, its stable code, within 2 s. */
export function failedClosed (refusals: Refusal[]): boolean {
  return refusals.every((r) => r.status === 503 && r.code === 'AUTH_STORE_UNAVAILABLE' && r.ms < 2000)
}
