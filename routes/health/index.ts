import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { NotReadyError } from '../../src/errors.js'
import { storeRefusal } from '../../src/redis-client.js'
import { ErrorResponse, StatusResponse } from '../../src/http-schemas.js'

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  // Liveness: the process runs and its event loop answers. Never depends on Redis,
  // or an orchestrator would restart healthy instances during a Redis outage.
  fastify.get('/health/live', {
    config: { accessLog: 'failures', answersAtOnce: true },
    schema: { summary: 'Liveness: the process answers', response: { 200: StatusResponse } }
  }, async () => ({ status: 'ok' }))

  // Set once the instance begins to drain: the requests still coming on open connections are served (src/app.ts), but a
  // probe among them must see the instance leaving.
  let draining = false
  fastify.addHook('preClose', async () => { draining = true })

  // A refusal of the check is said, once each until the check passes again: the store plugin logs connection
  // failures, and nothing else would say why a server that answers leaves every instance unready.
  const refusalsSaid = new Set<string>()
  const prefix = fastify.config.redis?.keyPrefix ?? ''
  const sayRefusal = (refusal: string): void => {
    if (refusalsSaid.has(refusal)) return
    refusalsSaid.add(refusal)
    const granted = refusal.startsWith('NOPERM') ? `: grant the service's Redis user the keys and channels of REDIS_KEY_PREFIX (~${prefix}* &${prefix}*) and the commands of the README's ACL rule (Running with Redis)` : ''
    fastify.log.error({ refusal }, `redis refuses the readiness check, so the instance is not ready${granted}`)
  }

  // Readiness: the store answers, so login and refresh can work, and the instance is not draining. A load balancer
  // routes by this.
  fastify.get('/health/ready', {
    config: { accessLog: 'failures' },
    schema: { summary: 'Readiness: the store answers and the instance is not draining', response: { 200: StatusResponse, 503: ErrorResponse } }
  }, async () => {
    if (draining) throw new NotReadyError()
    try {
      await fastify.familyStore.ping()
    } catch (err) {
      // An outage is the store plugin's to log; one line per probe would drown it.
      const refusal = storeRefusal(err)
      if (refusal !== null) sayRefusal(refusal)
      throw new NotReadyError()
    }
    refusalsSaid.clear()
    return { status: 'ok' }
  })
}

export default health
