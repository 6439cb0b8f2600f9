// Baselines in a bare Fastify 5 server: the ceiling of any route here, raw access-token
// verification with the service's own library and options, raw argon2id verification, and the
// floor of a refresh (the service's own domain code in a bare route).
import { hash, randomBytes, randomUUID } from 'node:crypto'
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

// An access token signed as @fastify/jwt signs it (fast-jwt, the service's key and claims), for the routes that
// sign; they exist only when the bench gives the signing key.
const sign = env.JWT_SIGN_KEY === undefined
  ? undefined
  : createSigner({
    key: env.JWT_SIGN_KEY,
    algorithm: env.JWT_ALGORITHM as 'ES256',
    kid: env.JWT_KID,
    header: { alg: env.JWT_ALGORITHM as 'ES256', typ: 'at+jwt' },
    iss: 'auth-service',
    aud: 'auth-service',
    expiresIn: 600_000
  })
const tokenResponse = { type: 'object', properties: { accessToken: { type: 'string' }, tokenType: { type: 'string' }, expiresIn: { type: 'integer' } } } as const
// The refresh cookie's attributes, as the service writes them after its Max-Age.
const cookieAttributes = 'Path=/auth; HttpOnly; Secure; SameSite=Strict'
/** The refresh token from a Cookie header holding that cookie alone, as the bench sends it. */
const refreshCookie = (header = ''): string => header.slice(header.indexOf('=') + 1)

// The floor of a refresh: exactly the domain work of the service's /auth/refresh (SessionService.refresh: tag
// check, successor, the one rotation script on the same store; one access token signed as @fastify/jwt signs it:
// fast-jwt, same key and claims) in a bare route: no hooks, no plugins, no access log. What the service adds on
// top is the cost of its HTTP concerns (bench/README.md).
if (sign !== undefined && env.REFRESH_TOKEN_SECRET !== undefined) {
  const store = new RedisFamilyStore(redis, JSON.parse(env.FAMILY_POLICY as string), env.REDIS_KEY_PREFIX as string)
  // Revocation happens only on reuse, which the bench never presents.
  const sessions = new SessionService(new RefreshTokenCodec(env.REFRESH_TOKEN_SECRET), store, noRevocations, { log: app.log })

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
    const outcome = await sessions.refresh(refreshCookie(request.headers.cookie), sessionMeta(request))
    if (outcome.status !== 'ok') return reply.code(401).send(null)
    reply.header('set-cookie', `${cookieName}=${outcome.refreshToken}; Max-Age=${outcome.ttlSeconds}; ${cookieAttributes}`)
    return { accessToken: sign({ sub: outcome.userId, email: outcome.email, sid: outcome.familyId, jti: randomUUID() }), tokenType: 'Bearer', expiresIn: 600 }
  })
}

// The least any refresh can do, under this bench's protocol (a different token on every request, its successor
// fed back from the cookie): read the token from the cookie, hash it (secrets are never stored in plaintext),
// swap the family's digest for its successor's in one round trip (a mismatch deletes the family: reuse
// detection, though without the service's tag it cannot tell a forged token from a reused one), sign the same
// access token, set the cookie. No grace window, no absolute lifetime, no session list or metadata, no limit:
// everything the service's rotation does beyond this is left out. What this route reaches bounds
// refresh for every design that rotates refresh tokens in Redis and signs an access token (bench/README.md).
// Its families are seeded by the bench apart from the service's: `<userId>.<familyId>.<secret>` in the
// cookie, `minimal:<familyId>` holding the secret's SHA-256 and the user's email.
if (sign !== undefined && env.COOKIE_NAME !== undefined) {
  const cookieName = env.COOKIE_NAME
  redis.defineCommand('minimalRotate', {
    numberOfKeys: 1,
    lua: `local cur = redis.call('GET', KEYS[1])
if not cur then return false end
if string.sub(cur, 1, 43) ~= ARGV[1] then redis.call('DEL', KEYS[1]) return false end
redis.call('SET', KEYS[1], ARGV[2] .. string.sub(cur, 44), 'EX', ARGV[3])
return string.sub(cur, 44)`
  })
  const minimalRotate = (redis as unknown as { minimalRotate: (key: string, presented: string, next: string, ttl: number) => Promise<string | null> }).minimalRotate.bind(redis)
  app.post('/refresh-minimal', { schema: { response: { 200: tokenResponse, 401: { type: 'null' } } } }, async (request, reply) => {
    const [userId, familyId, secret] = refreshCookie(request.headers.cookie).split('.')
    if (userId === undefined || familyId === undefined || secret === undefined) return reply.code(401).send(null)
    const successor = randomBytes(16).toString('base64url')
    const email = await minimalRotate(`minimal:${familyId}`, hash('sha256', secret, 'base64url'), hash('sha256', successor, 'base64url'), 604_800)
    if (email === null) return reply.code(401).send(null)
    reply.header('set-cookie', `${cookieName}=${userId}.${familyId}.${successor}; Max-Age=604800; ${cookieAttributes}`)
    return { accessToken: sign({ sub: userId, email, sid: familyId, jti: randomUUID() }), tokenType: 'Bearer', expiresIn: 600 }
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
