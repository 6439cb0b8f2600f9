import { readFileSync } from 'node:fs'
import { Cluster, Redis, ReplyError, type RedisOptions } from 'ioredis'
import type { RedisConfig } from './config.js'
import { StoreUnavailableError } from './errors.js'

/** One Redis server (found directly or through Sentinels), or a Redis Cluster. */
export type RedisClient = Redis | Cluster

export interface RedisClientOptions {
  url: string
  /** Upper bound on one command; past it the caller gets an error instead of a hang. */
  commandTimeoutMs: number
  /** Ask these Sentinels for the master, and ask again whenever the connection breaks. */
  sentinel?: RedisConfig['sentinel']
  /** Seed nodes of a Redis Cluster: the client learns the rest and follows the slots as they move. */
  cluster?: RedisConfig['cluster']
}

/** A script of src/lua/ (copied beside the compiled code by the build), for `defineCommand`. */
export function luaScript (name: string): string {
  return readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8')
}

/** How often a cluster client asks for the slot map unprompted. */
const SLOTS_REFRESH_MS = 2000

// Reconnect quickly and keep trying forever; capped so recovery after an outage or a failover is prompt.
const retryStrategy = (attempt: number): number => Math.min(50 * 2 ** attempt, 1000)

/**
 * An ioredis client tuned to fail fast: when Redis is down or slow, requests get a
 * 503 within the timeout instead of piling up in an offline queue, and the client
 * keeps reconnecting in the background so the service recovers without a restart.
 */
export function createRedisClient (options: RedisClientOptions & { cluster?: null }): Redis
export function createRedisClient (options: RedisClientOptions): RedisClient
export function createRedisClient (options: RedisClientOptions): RedisClient {
  const tls = options.url.startsWith('rediss:')
  const cluster = options.cluster ?? null
  if (cluster !== null) {
    const { username, password } = parseCredentials(options.url)
    return new Cluster(cluster.nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      // No auto-pipelining on a cluster. A batch is resent after a redirection only when every failed command in it
      // got the same error and every other command was a read; a rotation's EVALSHA is a write, so while slots move
      // between masters a batch mixing slots fails the redirected command: 92 refreshes of 6,600 answered 503 in
      // test/topology/redis-cluster.test.ts's slot move with it on (ioredis 6.1.0's Pipeline), none with it off. It
      // saved little here: `npm run bench -- --cluster` measured refresh at 0.97–1.10 of this (bench/README.md).
      enableAutoPipelining: false,
      clusterRetryStrategy: retryStrategy,
      // Replicas would answer reads a refresh has just written with the value before it.
      scaleReads: 'master',
      // rediss://: every node over TLS, its certificate checked against the name the cluster gives for it. Names
      // are kept, not resolved to addresses first (ioredis's default), or no certificate name would match.
      ...(tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => { callback(null, address) } } : {}),
      // The slot map is asked for every few seconds, not only when a command is refused: an instance with little
      // traffic would otherwise keep to a node that went silent after the cluster failed it over (socketTimeout
      // notices silence only while commands wait). Kept by duplicate(), so the revocation subscriber's too.
      slotsRefreshInterval: SLOTS_REFRESH_MS,
      redisOptions: { ...nodeOptions(options), username, password, ...(tls ? { tls: {} } : {}) }
    })
  }
  const sentinel = options.sentinel ?? null
  return closeOnRefusedSelect(new Redis(options.url, {
    ...(sentinel === null
      ? {}
      : {
          sentinels: sentinel.nodes,
          name: sentinel.master,
          sentinelUsername: sentinel.username,
          sentinelPassword: sentinel.password,
          sentinelRetryStrategy: retryStrategy,
          sentinelCommandTimeout: options.commandTimeoutMs,
          // rediss://: the Sentinels and the servers they name, all over TLS, each certificate checked against
          // the name it is reached by (Sentinels name servers as configured: announce-hostnames for names).
          ...(tls ? { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
          // Not ioredis's failoverDetector: with it (ioredis 6.0.0) the client reconnected a second time after
          // following a failover and once stayed on the dead master for 30 s, in 1 of 3 runs of
          // test/faults/redis-sentinel-failover.test.ts (0 of 6 without it); Sentinel closes the connections of
          // a master it reconfigures, and the client then asks the Sentinels again.
          failoverDetector: false
        }),
    ...nodeOptions(options),
    // A server that was master and is no longer one (READONLY), or a master that may be cut off from its replicas
    // (NOREPLICAS, with min-replicas-to-write) — both what a Sentinel failover leaves behind: connect again,
    // which through Sentinels means asking them for the master. The failed command is not sent again.
    reconnectOnError: (err) => /^(READONLY|NOREPLICAS)/.test(err.message),
    lazyConnect: true,
    // Coalesces the commands of concurrent requests into one socket write per tick: without it, one
    // write syscall per command was the largest single cost of a refresh (bench/README.md). An
    // auto-pipeline is sent only after the previous one completes, so with a stalled Redis queued
    // commands could wait out several timeouts: guardStore() bounds every request instead.
    enableAutoPipelining: true,
    retryStrategy
  }))
}

/**
 * The database a connection's SELECT asked for, when the server refused it (a database out of its range, an ACL
 * without +select); null for any other error.
 */
export function refusedDatabase (err: Error): string | null {
  const { command } = err as { command?: { name?: unknown, args?: unknown[] } }
  return command?.name === 'select' ? String(command.args?.[0]) : null
}

/**
 * ioredis goes on without a SELECT the server refused, and every command then runs in database 0: another's data,
 * or nobody's, where the service's would not be found. Such a connection is closed instead, and made again (selecting
 * again) until the server takes it: meanwhile the store fails closed (503, not ready). A copy (`duplicate()`) of
 * the client needs this too: listeners are not copied.
 */
export function closeOnRefusedSelect (client: Redis): Redis {
  client.on('error', (err: Error) => { if (refusedDatabase(err) !== null) client.disconnect(true) })
  return client
}

/**
 * What a failure to connect suggests when it is how a server answers a client that disagrees with it about TLS: a
 * port that takes only TLS resets a plaintext connection (ECONNRESET), and one without TLS waits for a command
 * while the client waits for the handshake's answer (the connect timeout, ETIMEDOUT). Both have other causes (a
 * proxy, a firewall), hence the "if".
 */
export function tlsMismatchHint (url: string, err: Error): string | undefined {
  const { code } = err as NodeJS.ErrnoException
  const tls = url.startsWith('rediss:')
  if (!tls && code === 'ECONNRESET') return 'a port that takes only TLS resets a plaintext connection: if the server requires TLS, write rediss:// in REDIS_URL'
  if (tls && code === 'ETIMEDOUT') return 'a port without TLS never answers the TLS handshake: if the server takes plaintext there, write redis:// in REDIS_URL'
  return undefined
}

/** What the Sentinels last answered, inside ioredis's "All sentinels are unreachable. … Last error: <it>"; null for any other error. */
function sentinelsLastError (err: Error): string | null {
  return /^All sentinels are unreachable\b.*? Last error: (.*)$/s.exec(err.message)?.[1] ?? null
}

/**
 * What a refusal to authenticate asks of the configuration. Redis answers WRONGPASS to a user name and password it
 * does not take (or to a user that is off), and NOAUTH to a connection that gave none where one is required; through
 * Sentinels, ioredis reports a Sentinel's refusal inside its own message ("All sentinels are unreachable. … Last
 * error: WRONGPASS …"), and the master's as a server's. Neither names the setting to change, nor reads as what it
 * is: the server answers, and nothing will change until the configuration on one side does.
 */
function refusedCredentialsHint (err: Error): string | undefined {
  const sentinels = /^(WRONGPASS|NOAUTH)\b/.exec(sentinelsLastError(err) ?? '')
  if (sentinels?.[1] === 'NOAUTH') return 'the Sentinels require a password: set REDIS_SENTINEL_PASSWORD (and REDIS_SENTINEL_USERNAME for an ACL user)'
  if (sentinels?.[1] === 'WRONGPASS') return 'the Sentinels refused REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD: a wrong password, an unknown user, or a user that is off'
  const server = /^(WRONGPASS|NOAUTH)\b/.exec(err.message)
  if (server?.[1] === 'NOAUTH') return 'the server requires a password, and REDIS_URL gives none: redis://username:password@host:port'
  if (server?.[1] === 'WRONGPASS') return 'the server refused the user name and password in REDIS_URL: a wrong password, an unknown user, or a user that is off'
  return undefined
}

/**
 * What an error says of the configuration, when it is one the servers will repeat until a setting changes on one side:
 * a database the server does not have (or an ACL without SELECT), credentials it refuses, a master name the Sentinels
 * do not know (ioredis reports that as "All sentinels are unreachable", which they are not). Null for any other
 * error, such as an outage, which passes by itself.
 */
export function misconfiguration (err: Error, sentinelMaster: string | null): string | null {
  const database = refusedDatabase(err)
  if (database !== null) return `redis refused to select database ${database}, the one REDIS_URL names: no command is sent until it does, and store-backed routes answer 503`
  const credentials = refusedCredentialsHint(err)
  if (credentials !== undefined) return `redis refused the credentials: ${credentials}. No command is sent until it takes them, and store-backed routes answer 503`
  if (sentinelMaster !== null && sentinelsLastError(err)?.startsWith('ERR No such master with that name') === true) {
    return `the Sentinels know no master named ${sentinelMaster}: set REDIS_SENTINEL_MASTER to the name their configuration gives it (sentinel monitor <name> …); store-backed routes answer 503 until they know it`
  }
  return null
}

/** What every connection to a Redis server gets, alone or as a node of a cluster. */
function nodeOptions (options: RedisClientOptions): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(options.commandTimeoutMs, 1000),
    socketTimeout: silentServerMs(options.commandTimeoutMs),
    // The handshake sends only what the service needs (HELLO, and SELECT or READONLY where they apply), so the
    // least-privilege ACL in the README holds on every Redis version: ioredis otherwise adds `CLIENT SETINFO` (a
    // library name and version for CLIENT LIST) and, since 6.1.0, `CLIENT MAINT_NOTIFICATIONS` (Redis Enterprise's
    // smart client handoff) to every connection, which a server that knows them refuses to that user, logging a
    // denial each time, and Redis 7.0 answers with an error. Failover is followed without the handoff (README).
    disableClientInfo: true,
    maintNotifications: 'disabled'
  }
}

/**
 * How long a connection with commands in flight may receive nothing before it is closed and made again. A
 * server that is frozen or cut off by a partition closes nothing (the kernel even accepts new connections to
 * a stopped process): without this the client waited on it for as long as TCP retransmits (minutes), and
 * through Sentinels never asked them for the master they had promoted meanwhile. Several command timeouts,
 * so that a server that is only slow keeps its connection.
 */
export function silentServerMs (commandTimeoutMs: number): number {
  return Math.max(4 * commandTimeoutMs, 2000)
}

/**
 * How long after the caller was answered 503 a command sent to `redis` may still run. A stalled server runs what it
 * was sent once it wakes, but only commands sent on a connection the client has not yet closed as silent
 * (silentServerMs): a connection made since is ready only once the server answers again, after it has read the old
 * one. A cluster client resends a redirected command for up to 16 × 100 ms. Twice the first bounds both.
 */
export function lateWritesMs (redis: RedisClient): number {
  return 2 * silentServerMs(commandTimeoutOf(redis) ?? FALLBACK_DEADLINE_MS)
}

function parseCredentials (url: string): { username: string | undefined, password: string | undefined } {
  const parsed = new URL(url)
  const decode = (part: string) => part === '' ? undefined : decodeURIComponent(part)
  return { username: decode(parsed.username), password: decode(parsed.password) }
}

/** The upper bound on one command that createRedisClient gave this client. */
function commandTimeoutOf (redis: RedisClient): number | undefined {
  return redis instanceof Cluster ? redis.options.redisOptions?.commandTimeout : redis.options.commandTimeout
}

/**
 * Whether the store can serve requests. A replica, or a node of a Redis Cluster, answers PING but cannot serve a
 * client that takes it for a single server, so a single server (or the Sentinels' master) is asked what it is
 * (unfitServer). Through a cluster client, a node answers PING even while the cluster refuses every key (a master
 * down and its slots unserved), so there the cluster's own state is asked. The client must be ready itself too
 * (guardStore): a cluster client takes `CLUSTER` commands while it connects, but nothing else yet — readiness said
 * 200 and the next registration got 503 (seen in the cluster-down-at-start test under load).
 */
export async function pingStore (redis: RedisClient): Promise<void> {
  if (!(redis instanceof Cluster)) {
    const unfit = await guardStore(redis, () => unfitServer(redis))
    if (unfit !== null) throw new StoreUnavailableError({ cause: new Error(unfit) })
    return
  }
  const info = await guardStore(redis, () => redis.cluster('INFO'))
  if (!/^cluster_state:ok\r?$/m.test(info)) throw new StoreUnavailableError({ cause: new Error('the Redis Cluster is not serving all slots') })
}

/**
 * Why the server a single-server client (REDIS_URL, or the master Sentinels name) reached cannot serve it, from `INFO`,
 * which the README's ACL grants; null when it can, or when it refuses INFO (an ACL without it: PING answers for it, as
 * before this was asked; ioredis's own ready check skips INFO then, where a server without INFO at all never gets
 * ready). A replica takes no write (or, with replica-read-only no, takes it and loses it at its next
 * sync): REDIS_URL at a reader endpoint, or a master demoted since. A node of a Redis Cluster refuses every key of
 * another node's slots (MOVED): REDIS_URL at a cluster without REDIS_CLUSTER_NODES.
 */
export async function unfitServer (redis: Redis): Promise<string | null> {
  const [replication, cluster] = await Promise.all([redis.info('replication'), redis.info('cluster')]).catch(async (err: unknown) => {
    if (!(err instanceof ReplyError)) throw err
    await redis.ping()
    return ['', '']
  })
  if (/^role:slave\r?$/m.test(replication)) return 'the Redis server is a replica: it refuses writes (or, with replica-read-only no, takes them and loses them at its next sync)'
  if (/^cluster_enabled:1\r?$/m.test(cluster)) return 'the Redis server is a node of a Redis Cluster, which refuses the keys of other nodes\' slots: set REDIS_CLUSTER_NODES'
  return null
}

/**
 * One field of an INFO section of every server that takes this client's writes (each master of a cluster): INFO, not
 * `CONFIG GET`, which managed Redis services refuse. Null for a server whose answer does not have it. (A server
 * without INFO at all never gets ready: ioredis's ready check asks it.)
 */
async function writersInfoField (redis: RedisClient, section: string, field: string): Promise<Array<string | null>> {
  const servers = redis instanceof Cluster ? redis.nodes('master') : [redis]
  const pattern = new RegExp(`^${field}:(\\S+)`, 'm')
  return await Promise.all(servers.map(async (server) => pattern.exec(await guardStore(redis, () => server.info(section)))?.[1] ?? null))
}

/** The `maxmemory-policy` of every server that takes this client's writes. */
export async function evictionPolicies (redis: RedisClient): Promise<Array<string | null>> {
  return await writersInfoField(redis, 'memory', 'maxmemory_policy')
}

/**
 * Whether every server that takes this client's writes keeps an append-only file; null when one of them does not say.
 * Snapshots alone (RDB) do not show in INFO as a setting: without the file, a restart brings back the last snapshot
 * at best.
 */
export async function appendOnly (redis: RedisClient): Promise<boolean | null> {
  const enabled = await writersInfoField(redis, 'persistence', 'aof_enabled')
  if (enabled.includes('0')) return false
  return enabled.every((value) => value === '1') ? true : null
}

/**
 * The cause of an AUTH_STORE_UNAVAILABLE raised before anything was sent (the client was not connected): the operation
 * did not run and never will. With any other cause, whether it ran, or will run late, is unknown.
 */
export class StoreNotReachedError extends Error {}

/**
 * What the server answered a store operation with, when it answered with an error (NOPERM: an ACL without the key
 * prefix or a command; a script's error): the store is reached and refuses, which no reconnection mends, and which
 * the client's connection events never show. Null for an outage, a timeout, or anything but a refusal.
 */
export function storeRefusal (err: unknown): string | null {
  const cause: unknown = err instanceof StoreUnavailableError ? err.cause : err
  return cause instanceof ReplyError ? (cause as Error).message : null
}

/** Used only for a client built without a commandTimeout; createRedisClient always sets one. */
const FALLBACK_DEADLINE_MS = 500

/**
 * Runs one store operation on `redis`; any failure of the store (down, refused, or slower than the
 * client's commandTimeout) becomes AUTH_STORE_UNAVAILABLE (503), the original error kept as `cause`
 * for the logs. The deadline is enforced here, not only by ioredis: however commands queue inside
 * the client (auto-pipelining), the request is answered in time.
 */
export async function guardStore<T> (redis: RedisClient, operation: () => Promise<T>): Promise<T> {
  // Not ready: nothing is sent, so nothing can run after the caller has been answered 503.
  if (redis.status !== 'ready') throw new StoreUnavailableError({ cause: new StoreNotReachedError(`the Redis client is ${redis.status}, not ready`) })
  const deadlineMs = commandTimeoutOf(redis) ?? FALLBACK_DEADLINE_MS
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      operation(),
      new Promise<never>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`store operation exceeded ${deadlineMs} ms`)), deadlineMs)
      })
    ])
  } catch (err) {
    throw new StoreUnavailableError({ cause: err })
  } finally {
    clearTimeout(timer)
  }
}
