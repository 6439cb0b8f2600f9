import fp from 'fastify-plugin'
import { createRedisClient, type RedisClient } from '../src/redis-client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis connection; null when the embedded in-memory store is in use. */
    redis: RedisClient | null
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
  let lastError = ''
  const onError = (err: Error) => {
    // One line per distinct failure, not one per reconnect attempt.
    if (err.message === lastError) return
    lastError = err.message
    fastify.log.warn({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'redis connection error')
  }
  redis.on('error', onError)
  redis.on('node error', onError) // a Redis Cluster's: one of its nodes failed
  redis.on('ready', () => {
    if (lastError !== '') fastify.log.info('redis connection restored')
    lastError = ''
  })

  try {
    await redis.connect()
  } catch {
    fastify.log.error('redis is unreachable at start; store-backed routes answer 503 until it is back (retrying in the background)')
  }

  fastify.decorate<RedisClient | null>('redis', redis)
  fastify.addHook('onClose', async () => {
    try {
      await redis.quit()
    } catch {}
    // Also after a clean QUIT: ioredis 6.0 leaves the Sentinel failover detector's subscriptions open
    // after quit() (redis/ioredis#1362, fixed after 6.0.0), and they would hold the process open.
    redis.disconnect()
  })
}, { name: 'redis', dependencies: ['config'], fastify: '5.x' })
