// Baselines in a bare Fastify 5 server: the ceiling of any route here, raw access-token
// verification with the service's own library and options, and raw argon2id verification.
// Started a second time with LOG_LEVEL=info: the same routes with the service's access log.
import argon2 from 'argon2'
import { createVerifier } from 'fast-jwt'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { loggerOptions, OneLineLogController } from '../../src/app.js'

const env = process.env
// The service's algorithm and public key, with fast-jwt's own cache of the same size as the service's.
const verify = createVerifier({
  key: env.JWT_VERIFY_KEY as string,
  algorithms: [env.JWT_ALGORITHM as 'ES256'],
  cache: Number(env.CACHE_SIZE ?? 10_000),
  allowedIss: env.JWT_ISSUER ?? 'auth-service',
  allowedAud: env.JWT_AUDIENCE ?? 'auth-service',
  requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub', 'sid', 'jti']
})
const passwordHash = env.PASSWORD_HASH as string

// LOG_LEVEL set: the service's own access logging (one line per request, same options), nothing else.
const app = Fastify(env.LOG_LEVEL === undefined
  ? { logger: false }
  : { logger: loggerOptions(env.LOG_LEVEL), logController: new OneLineLogController() })
const hello = { type: 'object', properties: { hello: { type: 'string' } } } as const

app.get('/hello', { schema: { response: { 200: hello } } }, async () => ({ hello: 'world' }))

// The floor of any route that makes one Redis round trip: one small script, auto-pipelined like the service's.
const redis = new Redis(env.REDIS_URL as string, { enableAutoPipelining: true })
const touch = "redis.call('HSET', KEYS[1], 'c', ARGV[1]); redis.call('PEXPIRE', KEYS[1], 60000); return 1"
let counter = 0
app.get('/redis', { schema: { response: { 200: hello } } }, async () => {
  counter = (counter + 1) % 100_000
  await redis.eval(touch, 1, `bench-floor:${counter}`, 'x')
  return { hello: 'world' }
})

app.get('/verify', async (request, reply) => {
  try {
    const claims = verify((request.headers.authorization ?? '').slice(7)) as { sub: string, email: string }
    return { id: claims.sub, email: claims.email }
  } catch {
    return reply.code(401).send({ error: 'invalid' })
  }
})

app.post('/argon2', async (request, reply) => {
  const { password } = request.body as { password: string }
  if (!await argon2.verify(passwordHash, password)) return reply.code(401).send({ error: 'invalid' })
  return { ok: true }
})

await app.listen({ port: Number(env.PORT), host: '127.0.0.1' })
console.log('listening')
