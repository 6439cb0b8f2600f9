// Baselines in a bare Fastify 5 server: the ceiling of any route here, raw access-token
// verification with the service's own library and options, raw argon2id verification, and the
// floor of a refresh (the service's own domain code in a bare route).
import { randomUUID } from 'node:crypto'
import argon2 from 'argon2'
import { createSigner, createVerifier } from 'fast-jwt'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { noRevocations } from '../../src/access-revocations.js'
import { RedisFamilyStore } from '../../src/redis-family-store.js'
import { RefreshTokenCodec } from '../../src/refresh-token.js'
import { SessionService } from '../../src/session-service.js'
import { sessionMeta } from '../../src/session-meta.js'

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

const app = Fastify({ logger: false })
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

// The floor of a refresh: exactly the domain work of the service's /auth/refresh (SessionService.refresh: tag
// check, successor, the one rotation script on the same store; one access token signed as @fastify/jwt signs it:
// fast-jwt, same key and claims) in a bare route: no hooks, no plugins, no access log. What the service adds on
// top is the cost of its HTTP concerns (bench/README.md).
if (env.REFRESH_TOKEN_SECRET !== undefined) {
  const store = new RedisFamilyStore(redis, JSON.parse(env.FAMILY_POLICY as string), env.REDIS_KEY_PREFIX as string)
  // Revocation happens only on reuse, which the bench never presents.
  const sessions = new SessionService(new RefreshTokenCodec(env.REFRESH_TOKEN_SECRET), store, noRevocations)
  const sign = createSigner({
    key: env.JWT_SIGN_KEY as string,
    algorithm: env.JWT_ALGORITHM as 'ES256',
    kid: env.JWT_KID,
    header: { alg: env.JWT_ALGORITHM as 'ES256', typ: 'at+jwt' },
    iss: 'auth-service',
    aud: 'auth-service',
    expiresIn: 600_000
  })
  const tokenResponse = { type: 'object', properties: { accessToken: { type: 'string' }, tokenType: { type: 'string' }, expiresIn: { type: 'integer' } } } as const

  // Less than any refresh can do: one signature, as @fastify/jwt signs it, and one trivial Redis round trip; no token is
  // read, no cookie set, and the request is the same every time. What this route reaches bounds refresh / bare for
  // every design that issues a signed access token and keeps its sessions in Redis (bench/README.md).
  app.post('/sign-redis', { schema: { response: { 200: tokenResponse } } }, async () => {
    counter = (counter + 1) % 100_000
    await redis.eval(touch, 1, `bench-floor:${counter}`, 'x')
    return { accessToken: sign({ sub: 'AAAAAAAAAAAAAAAAAAAAAA', email: 'bench-user-1@example.com', sid: 'BBBBBBBBBBBBBBBBBBBBBB', jti: randomUUID() }), tokenType: 'Bearer', expiresIn: 600 }
  })

  const cookieName = env.COOKIE_NAME as string
  app.post('/refresh-floor', { schema: { response: { 200: tokenResponse, 401: { type: 'null' } } } }, async (request, reply) => {
    const cookie = request.headers.cookie ?? ''
    const outcome = await sessions.refresh(cookie.slice(cookie.indexOf('=') + 1), sessionMeta(request))
    if (outcome.status !== 'ok') return reply.code(401).send(null)
    reply.header('set-cookie', `${cookieName}=${outcome.refreshToken}; Max-Age=${outcome.ttlSeconds}; Path=/auth; HttpOnly; Secure; SameSite=Strict`)
    return { accessToken: sign({ sub: outcome.userId, email: outcome.email, sid: outcome.familyId, jti: randomUUID() }), tokenType: 'Bearer', expiresIn: 600 }
  })
}

app.post('/argon2', async (request, reply) => {
  const { password } = request.body as { password: string }
  if (!await argon2.verify(passwordHash, password)) return reply.code(401).send({ error: 'invalid' })
  return { ok: true }
})

// A clean exit on SIGTERM, so that --cpu-prof writes its profile.
process.once('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
await app.listen({ port: Number(env.PORT), host: '127.0.0.1' })
console.log('listening')
