import fp from 'fastify-plugin'
import { devSecretDigest, generateDevSecret, readOrCreateDevSecrets, type DevSecretName, type DevSecrets } from '../src/dev-secrets.js'
import { hs256KeySet, parseKeySet, type SigningKeySet } from '../src/signing-keys.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Key material, from config or (outside production only) generated. Never logged. */
    secrets: { refreshTokenSecret: string, signingKeys: SigningKeySet }
  }
}

/**
 * Outside production missing key material is generated, so `npm start` works with no setup: an ES256 (or
 * JWT_ALGORITHM) key pair for access tokens and a refresh-token secret. Without Redis it is this process's own (its
 * sessions are too). With Redis, sessions outlive the process and are served by every instance, so the material is
 * kept in DEV_SECRETS_FILE, which the instances started from one directory share; Redis holds only a digest of it,
 * so that an instance holding other material (another machine's, another file's) refuses to start rather than
 * refusing every token the others issue. Key material never reaches Redis. Production refuses to start without
 * configured keys (src/config.ts), so generated material never reaches it.
 */
export default fp(async function secretsPlugin (fastify) {
  const { config, redis } = fastify
  const file = config.devSecretsFile
  let kept: Promise<DevSecrets> | null = null

  const generated = async (variable: 'JWT_KEYS' | 'REFRESH_TOKEN_SECRET', name: DevSecretName, what: string): Promise<string> => {
    if (redis === null) {
      fastify.log.warn(`${variable} is not set: generated ${what} for this process (tokens will not survive a restart)`)
      return generateDevSecret(name)
    }
    kept ??= readOrCreateDevSecrets(file)
    let value: string
    try {
      value = (await kept)[name]
    } catch (err) {
      throw new Error(`${variable} is not set and ${file} cannot keep a generated one for the instances sharing Redis; set ${variable} explicitly`, { cause: err })
    }
    const prefix = config.redis?.keyPrefix ?? ''
    const digest = devSecretDigest(value)
    let agreed: string | null
    try {
      // Earlier releases shared the material itself through Redis: it goes.
      await redis.call('DEL', `${prefix}dev-secret:${variable}`)
      // SET NX GET: the first instance's digest stands, and every later one compares its own with it.
      agreed = await redis.call('SET', `${prefix}dev-secret-digest:${name}`, digest, 'NX', 'GET') as string | null
    } catch (err) {
      // The file decides what this instance uses; the check only guards against disagreeing with the others. Like a
      // configured instance, one whose Redis is down at start starts, and serves what needs no store.
      // Not ready: the redis plugin has said why (down, credentials refused), and ioredis's refusal to send says nothing more.
      const unchecked = `${variable} is not set: using ${what} generated for development, kept in ${file}, unchecked against the other instances'`
      if (redis.status !== 'ready') fastify.log.warn(`${unchecked} (Redis not ready)`)
      else fastify.log.warn({ err }, `${unchecked} (Redis refused the check)`)
      return value
    }
    if (agreed !== null && agreed !== digest) {
      throw new Error(`${variable} is not set, and the one generated in ${file} is not the one the other instances on this Redis (key prefix ${prefix}) use: ` +
        `they were started from another directory or machine, or from a file since removed. Set ${variable} on every instance, or delete the Redis key ${prefix}dev-secret-digest:${name} to start over`)
    }
    fastify.log.warn(`${variable} is not set: using ${what} generated for development, kept in ${file}`)
    return value
  }

  let signingKeys: SigningKeySet
  if (config.jwt.keyMode === 'keys') {
    signingKeys = config.jwt.keySet as SigningKeySet
  } else if (config.jwt.keyMode === 'hs256') {
    signingKeys = hs256KeySet(config.jwt.secret as string)
  } else {
    const alg = config.jwt.generateAlgorithm
    signingKeys = parseKeySet(await generated('JWT_KEYS', `JWT_KEYS:${alg}`, `an ${alg} key pair`), undefined)
  }
  const refreshTokenSecret = config.refresh.secret ??
    await generated('REFRESH_TOKEN_SECRET', 'REFRESH_TOKEN_SECRET', 'a random secret')
  fastify.decorate('secrets', { refreshTokenSecret, signingKeys })
}, { name: 'secrets', dependencies: ['config', 'redis'], fastify: '5.x' })
