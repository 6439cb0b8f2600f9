import fp from 'fastify-plugin'
import { Cluster } from 'ioredis'
import { appendOnly, createRedisClient, evictionPolicies, misconfiguration, tlsMismatchHint, unfitServer, type RedisClient } from '../src/redis-client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis connection; null when the embedded in-memory store is in use. */
    redis: RedisClient | null
  }
}

/**
 * How long the start waits for Redis. A single server refuses at once when it is down; through Sentinels the
 * client keeps asking them and its connect() never settles while none answers, so the wait is bounded.
 */
const START_WAIT_MS = 2000

/** Whether the client connected within `ms`; it keeps trying in the background either way. */
async function connectedWithin (redis: RedisClient, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      redis.connect().then(() => true, () => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Connects to Redis when REDIS_URL is set. A Redis that is down at start does not stop the
 * service: it starts, answers /health/ready with 503 and serves what needs no store (access-token
 * verification) while the client keeps reconnecting in the background.
 */
export default fp(async function redisPlugin (fastify) {
  const { redis: options } = fastify.config
  if (options === null) {
    fastify.log.warn('REDIS_URL is not set: using the embedded in-memory store. It serves ONE process only and loses every account and session on restart; set REDIS_URL for anything but local development')
    fastify.decorate('redis', null)
    return
  }

  const redis = createRedisClient(options)
  // One line per kind of failure and outage, not one per reconnect attempt (up to one a second, and through
  // Sentinels two kinds alternate; their messages differ only in their delays).
  const loggedThisOutage = new Set<string>()
  // Once a connection has served, REDIS_URL's scheme agrees with the server's port about TLS.
  let everReady = false
  const onError = (err: Error) => {
    const kind = err.message.replace(/[0-9]+/g, 'N')
    if (loggedThisOutage.has(kind)) return
    loggedThisOutage.add(kind)
    const fields = { err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }
    // Looked for after the service has served too: a password changed on the server, a Sentinel reconfigured.
    const refusal = misconfiguration(err, options.sentinel?.master ?? null)
    const hint = everReady ? undefined : tlsMismatchHint(options.url, err)
    if (refusal !== null) fastify.log.error(fields, refusal)
    else fastify.log.warn(hint === undefined ? fields : { ...fields, hint }, 'redis connection error')
  }
  redis.on('error', onError)
  redis.on('node error', onError) // a Redis Cluster's: one of its nodes failed
  // A Redis that evicts keys when it is full deletes what the service cannot lose, silently: accounts
  // (allkeys-*), or sessions, access-token revocations and failed-login counters (volatile-*, which evicts keys
  // that have a TTL). With noeviction a full Redis refuses writes instead, and the service answers 503.
  // Checked on every connection, which after a failover is to another server; said once per policy.
  const policiesLogged = new Set<string>()
  const checkEviction = async () => {
    for (const policy of await evictionPolicies(redis)) {
      if (policy === null || policy === 'noeviction' || policiesLogged.has(policy)) continue
      policiesLogged.add(policy)
      fastify.log.error({ maxmemoryPolicy: policy }, `redis maxmemory-policy is ${policy}: when Redis is full it deletes keys, which may be accounts, sessions, revocations or failed-login counters; set maxmemory-policy noeviction`)
    }
  }
  // The service's accounts live in Redis, not only its sessions: a server that keeps no append-only file loses, when
  // it restarts or crashes, every account registered and password changed since its last snapshot (all of them, when
  // it takes none). Said once, until a connection finds a server that keeps one.
  let noFileLogged = false
  const checkPersistence = async () => {
    const kept = await appendOnly(redis)
    if (kept === false && !noFileLogged) fastify.log.warn('redis keeps no append-only file (appendonly no): when it restarts, it loses what was written since its last snapshot, or everything when it takes none: accounts and password changes as well as sessions; set appendonly yes (README: Running with Redis)')
    if (kept !== null) noFileLogged = !kept
  }
  // A server that cannot serve this client (a replica, a cluster's node: unfitServer): readiness says 503, and this
  // says why, once until a connection finds a server that can.
  let unfitLogged: string | null = null
  const checkServer = async () => {
    if (redis instanceof Cluster) return
    const unfit = await unfitServer(redis)
    if (unfit !== null && unfit !== unfitLogged) fastify.log.error(`${unfit}: the instance is not ready, and its store routes answer 503, until the server it connects to can serve it`)
    unfitLogged = unfit
  }
  redis.on('ready', () => {
    everReady = true
    if (loggedThisOutage.size > 0) fastify.log.info('redis connection restored')
    loggedThisOutage.clear()
    // INFO refused (an ACL without it) or the connection gone again: nothing to say.
    checkEviction().catch(() => {})
    checkPersistence().catch(() => {})
    checkServer().catch(() => {})
  })

  if (!await connectedWithin(redis, START_WAIT_MS)) {
    fastify.log.error('redis is not ready at start: store-backed routes answer 503 until it is, and the client keeps trying in the background')
  }

  fastify.decorate<RedisClient | null>('redis', redis)
  fastify.addHook('onClose', async () => {
    try {
      await redis.quit()
    } catch {
      redis.disconnect()
    }
  })
}, { name: 'redis', dependencies: ['config'], fastify: '5.x' })
