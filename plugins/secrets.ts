import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { generateKeySetJson, hs256KeySet, parseKeySet, type SigningKeySet } from '../src/signing-keys.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Key material, from config or (outside production only) generated. Never logged. */
    secrets: { refreshTokenSecret: string, signingKeys: SigningKeySet }
  }
}

/**
 * Outside production missing key material is generated, so `npm start` works with no setup:
 * an ES256 (or JWT_ALGORITHM) key pair for access tokens and a refresh-token secret. With Redis
 * configured, the first instance stores what it generated and the others adopt it, so several
 * local instances agree. Production refuses to start without configured keys (src/config.ts),
 * so generated material never reaches it.
 */
export default fp(async function secretsPlugin (fastify) {
  const { config, redis } = fastify
  const shared = async (name: string, generated: string, what: string): Promise<string> => {
    if (redis === null) {
      fastify.log.warn(`${name} is not set: generated ${what} for this process (tokens will not survive a restart)`)
      return generated
    }
    try {
      // SET NX GET: first writer wins, everyone reads the winner.
      const existing = await redis.call('SET', `${config.redis?.keyPrefix ?? ''}dev-secret:${name}`, generated, 'NX', 'GET') as string | null
      fastify.log.warn(`${name} is not set: using ${what} generated for development and shared through Redis`)
      return existing ?? generated
    } catch (err) {
      throw new Error(`${name} is not set and Redis is unreachable to share a generated one; set ${name} explicitly`, { cause: err })
    }
  }

  let signingKeys: SigningKeySet
  if (config.jwt.keyMode === 'keys') {
    signingKeys = config.jwt.keySet as SigningKeySet
  } else if (config.jwt.keyMode === 'hs256') {
    signingKeys = hs256KeySet(config.jwt.secret as string)
  } else {
    const alg = config.jwt.generateAlgorithm
    signingKeys = parseKeySet(await shared('JWT_KEYS', generateKeySetJson(alg), `an ephemeral ${alg} key pair`), undefined)
  }
  const refreshTokenSecret = config.refresh.secret ?? await shared('REFRESH_TOKEN_SECRET', randomBytes(48).toString('base64url'), 'a random secret')
  fastify.decorate('secrets', { refreshTokenSecret, signingKeys })
}, { name: 'secrets', dependencies: ['config', 'redis'], fastify: '5.x' })
