import { setTimeout as sleep } from 'node:timers/promises'
import computeEtag from 'etag'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, login, registerAndLogin, uniquePrefix } from '../helpers/app.js'
import { keySetJson, privateJwk } from '../helpers/keys.js'
import { matchList } from '../helpers/match-list.js'

const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid
const me = (app: FastifyInstance, token: string) => app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })

t.test('GET /.well-known/jwks.json publishes the public keys only, cacheable', async (t) => {
  const a = privateJwk('ES256', 'key-a')
  const b = privateJwk('EdDSA', 'key-b')
  const app = await buildApp(t, { env: { JWT_SECRET: '', JWT_KEYS: keySetJson(a, b) } })
  const res = await app.inject({ url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'public, max-age=300, must-revalidate')
  const { keys } = res.json()
  t.same(keys.map((k: { kid: string }) => k.kid), ['key-a', 'key-b'])
  t.match(keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', x: a.x, y: a.y })
  t.match(keys[1], { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', x: b.x })
  for (const secret of [a.d, b.d]) t.notOk(res.body.includes(secret as string), 'no private part')
  t.notOk(res.body.includes('"d"'))
})

t.test('a verifier revalidates the key set with its ETag: 304 and no body while the keys are the same', async (t) => {
  const keys = keySetJson(privateJwk('ES256', 'key-a'))
  const app = await buildApp(t, { store: 'memory', env: { JWT_SECRET: '', JWT_KEYS: keys } })
  const first = await app.inject({ url: '/.well-known/jwks.json' })
  const etag = first.headers.etag as string
  t.match(etag, /^"[^"]{20,}"$/, 'a strong ETag: the bytes are the same wherever it matches')

  const again = await app.inject({ url: '/.well-known/jwks.json', headers: { 'if-none-match': etag } })
  t.equal(again.statusCode, 304)
  t.equal(again.body, '')
  t.notOk('content-length' in again.headers, 'no length: one would have to be the full set\'s')
  t.equal(again.headers.etag, etag)
  t.equal(again.headers['cache-control'], 'public, max-age=300, must-revalidate', 'a 304 renews the cached copy for as long')
  t.equal(etag, computeEtag(first.body), 'the hash of the bytes served')
  // As caches send it: among others, weak, any. A reload that asks past every cache is answered in full.
  for (const ifNoneMatch of [`"older", ${etag}`, `W/${etag}`, '*']) {
    t.equal((await app.inject({ url: '/.well-known/jwks.json', headers: { 'if-none-match': ifNoneMatch } })).statusCode, 304, ifNoneMatch)
  }
  const reload = await app.inject({ url: '/.well-known/jwks.json', headers: { 'if-none-match': etag, 'cache-control': 'no-cache' } })
  t.equal(reload.statusCode, 200)
  t.same(reload.json(), first.json())
  const head = await app.inject({ method: 'HEAD', url: '/.well-known/jwks.json', headers: { 'if-none-match': etag } })
  t.equal(head.statusCode, 304)

  // Another instance with the same keys (behind the same load balancer) answers the same ETag; one that publishes a
  // key more does not, and its set is sent whole to a verifier holding the old one.
  const sibling = await buildApp(t, { store: 'memory', env: { JWT_SECRET: '', JWT_KEYS: keys } })
  t.equal((await sibling.inject({ url: '/.well-known/jwks.json', headers: { 'if-none-match': etag } })).statusCode, 304)
  const published = await buildApp(t, { store: 'memory', env: { JWT_SECRET: '', JWT_KEYS: keySetJson(privateJwk('ES256', 'key-a'), privateJwk('ES256', 'key-b')) } })
  const changed = await published.inject({ url: '/.well-known/jwks.json', headers: { 'if-none-match': etag } })
  t.equal(changed.statusCode, 200)
  t.equal(changed.json().keys.length, 2)
  t.not(changed.headers.etag, etag)
  t.equal((await app.inject({ url: '/.well-known/jwks.json', headers: { 'if-none-match': '"something-else"' } })).statusCode, 200)
})

t.test('no other answer carries an ETag: none is meant to be kept', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const s = await registerAndLogin(app)
  const answers = await Promise.all([
    me(app, s.accessToken),
    app.inject({ url: '/health/live' }),
    app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${s.accessToken}` } }),
    app.inject({ url: '/openapi.json' })
  ])
  t.same(answers.map((res) => [res.statusCode, res.headers.etag]), answers.map(() => [200, undefined]))
})

t.test('with HS256 the JWKS is empty: the secret is never published', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  t.same((await app.inject({ url: '/.well-known/jwks.json' })).json(), { keys: [] })
})

t.test('outside production with no keys configured, an ES256 key pair is generated', async (t) => {
  const app = await buildApp(t, { store: 'memory', env: { JWT_SECRET: '' } })
  const { keys } = (await app.inject({ url: '/.well-known/jwks.json' })).json()
  matchList(t, keys, [{ alg: 'ES256', kid: /^dev-/ }])
  const s = await registerAndLogin(app)
  t.equal((await me(app, s.accessToken)).statusCode, 200)
})

t.test('key rotation without downtime: publish next, switch, retire', async (t) => {
  const A = privateJwk('ES256', 'key-a')
  const B = privateJwk('ES256', 'key-b')
  const prefix = uniquePrefix()
  // Every phase is a separate deployment (instance) of the same service, sharing Redis.
  const deploy = (keys: object[], signingKid: string) => buildApp(t, { prefix, env: { JWT_SECRET: '', JWT_KEYS: keySetJson(...keys as Array<typeof A>), JWT_SIGNING_KID: signingKid, JWT_CLOCK_TOLERANCE: '0', ACCESS_TOKEN_TTL: '3' } })

  const before = await deploy([A], 'key-a')
  const user = await registerAndLogin(before)
  t.equal(kidOf(user.accessToken), 'key-a')

  // 1. Publish B next to A; A still signs.
  const published = await deploy([A, B], 'key-a')
  t.same((await published.inject({ url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid), ['key-a', 'key-b'])
  t.equal(kidOf((await login(published, user.email)).accessToken), 'key-a')

  // 2. Switch: B signs, A is still accepted.
  const switched = await deploy([A, B], 'key-b')
  const fresh = await login(switched, user.email)
  t.equal(kidOf(fresh.accessToken), 'key-b')
  t.equal((await me(switched, user.accessToken)).statusCode, 200, 'A-signed tokens still verify after the switch')
  t.equal((await me(before, fresh.accessToken)).statusCode, 401, 'an instance that never saw B refuses it: why B is published first')
  t.equal((await me(published, fresh.accessToken)).statusCode, 200, 'an instance with B published accepts it')

  // A-signed tokens live out their TTL and then fail, even with A still in the set.
  await sleep(3100)
  t.equal((await me(switched, user.accessToken)).statusCode, 401, 'the A-signed token fails once expired')

  // 3. Retire A once every A-signed token has expired.
  const retired = await deploy([B], 'key-b')
  const latest = await login(retired, user.email)
  t.equal((await me(retired, latest.accessToken)).statusCode, 200)
  const stale = (await login(published, user.email)).accessToken
  t.equal((await me(retired, stale)).statusCode, 401, 'an A-signed token is refused once A is retired')
})

t.test('a cached token is still refused the moment its session is revoked', async (t) => {
  const app = await buildApp(t, { env: { JWT_SECRET: '', JWT_KEYS: keySetJson(privateJwk('ES256', 'k')) } })
  const s = await registerAndLogin(app)
  t.equal((await me(app, s.accessToken)).statusCode, 200)
  t.equal((await me(app, s.accessToken)).statusCode, 200, 'now cached')
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: s.cookie } })
  t.equal((await me(app, s.accessToken)).statusCode, 401, 'revocation is checked after a cache hit')
})
