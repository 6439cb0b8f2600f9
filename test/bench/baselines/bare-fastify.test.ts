import { generateKeyPairSync, hash, randomBytes, verify } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { PrivateRedis, freePort } from '../../helpers/redis-server.js'
import { startProcess, waitForListening } from '../../helpers/server-process.js'

const COOKIE = '__Secure-refresh_token'

// The bench's minimal refresh bounds what any refresh can reach (bench/README.md), so it must do a
// refresh's work for real: rotate on every call, and take no token twice and none it did not issue.
t.test('the minimal refresh rotates the token in Redis and signs an access token; a replayed, forged or malformed token is refused', async (t) => {
  const redis = await PrivateRedis.start(t)
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const port = await freePort()
  const server = startProcess(process.execPath, ['--import', 'tsx', 'bench/baselines/bare-fastify.ts'], {
    PORT: String(port),
    REDIS_URL: redis.url,
    COOKIE_NAME: COOKIE,
    JWT_ALGORITHM: 'ES256',
    JWT_KID: 'k1',
    JWT_SIGN_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    JWT_VERIFY_KEY: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    PASSWORD_HASH: 'unused'
  })
  t.teardown(() => { server.child.kill('SIGKILL') })
  await waitForListening(server, 15_000, 'listening')

  // Seeded as the bench seeds it: the secret's SHA-256, then the email.
  const familyId = randomBytes(16).toString('base64url')
  const secret = randomBytes(16).toString('base64url')
  await client.set(`minimal:${familyId}`, hash('sha256', secret, 'base64url') + 'user@example.com', 'EX', 60)
  const refresh = (token: string) => fetch(`http://127.0.0.1:${port}/refresh-minimal`, { method: 'POST', headers: { cookie: `${COOKIE}=${token}` } })
  const first = `user1.${familyId}.${secret}`

  const res = await refresh(first)
  t.equal(res.status, 200)
  const next = /^__Secure-refresh_token=([^;]+);/.exec(res.headers.get('set-cookie') ?? '')?.[1] ?? ''
  t.match(next, new RegExp(`^user1\\.${familyId}\\.[A-Za-z0-9_-]{22}$`), 'a successor of the same family in the cookie')
  t.not(next, first)
  t.notMatch(await client.get(`minimal:${familyId}`), secret, 'Redis holds no secret in plaintext')
  const { accessToken } = await res.json() as { accessToken: string }
  const [header, payload, signature] = accessToken.split('.') as [string, string, string]
  t.ok(verify('sha256', Buffer.from(`${header}.${payload}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url')), 'the access token is signed with the key')
  t.match(JSON.parse(Buffer.from(payload, 'base64url').toString()), { sub: 'user1', email: 'user@example.com', sid: familyId })

  t.equal((await refresh(first)).status, 401, 'the rotated token, presented again, is refused')
  t.equal(await client.exists(`minimal:${familyId}`), 0, 'and ends its family')
  t.equal((await refresh(next)).status, 401, 'so the successor is refused too')

  const other = randomBytes(16).toString('base64url')
  await client.set(`minimal:${other}`, hash('sha256', secret, 'base64url') + 'user@example.com', 'EX', 60)
  t.equal((await refresh(`user1.${other}.${randomBytes(16).toString('base64url')}`)).status, 401, 'a secret the family never had is refused')
  t.equal((await refresh('user1.no-dots-here')).status, 401, 'as is a malformed token')
})
