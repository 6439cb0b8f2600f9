import { setTimeout as sleep } from 'node:timers/promises'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { AccessTokenVerifier } from '../../src/access-token-verifier.js'
import { parseKeySet } from '../../src/signing-keys.js'
import { keySetJson, privateJwk } from '../helpers/keys.js'

const keys = parseKeySet(keySetJson(privateJwk('ES256', 'k1')), undefined)
const options = { issuer: 'auth-service', audience: 'auth-service', clockToleranceSeconds: 0 }
const sign = createSigner({ key: keys.current.signKey, algorithm: 'ES256', kid: 'k1', header: { alg: 'ES256', typ: 'at+jwt' }, iss: 'auth-service', aud: 'auth-service', expiresIn: 60_000 })
const token = (extra: object = {}) => sign({ sub: 'user', email: 'u@example.com', sid: 'family', jti: String(Math.random()), ...extra })

t.test('verifies a genuine token and caches it', async (t) => {
  const verifier = new AccessTokenVerifier(keys, { ...options, cacheSize: 100 })
  const genuine = token()
  t.match(verifier.verify(genuine), { sub: 'user', email: 'u@example.com', sid: 'family' })
  t.equal(verifier.cached, 1)
  t.match(verifier.verify(genuine), { sub: 'user' }, 'a hit answers the same')
  t.equal(verifier.cached, 1)
})

t.test('a failed verification is never cached', async (t) => {
  const verifier = new AccessTokenVerifier(keys, { ...options, cacheSize: 100 })
  const genuine = token()
  const tampered = genuine.slice(0, -4) + (genuine.endsWith('AAAA') ? 'BBBB' : 'AAAA')
  for (let i = 0; i < 3; i++) t.equal(verifier.verify(tampered), null)
  t.equal(verifier.cached, 0)
})

t.test('a cached token is never accepted past its exp', async (t) => {
  const verifier = new AccessTokenVerifier(keys, { ...options, cacheSize: 100 })
  const shortLived = createSigner({ key: keys.current.signKey, algorithm: 'ES256', kid: 'k1', header: { alg: 'ES256', typ: 'at+jwt' }, iss: 'auth-service', aud: 'auth-service', expiresIn: 1000 })
  const soon = shortLived({ sub: 'user', email: 'u@example.com', sid: 'family', jti: 'j' })
  t.ok(verifier.verify(soon))
  t.equal(verifier.cached, 1)
  await sleep(1100)
  t.equal(verifier.verify(soon), null, 'expired: refused although it was cached')
  t.equal(verifier.cached, 0, 'and forgotten')
})

t.test('the cache is bounded: the oldest entry, the first to expire, goes first', async (t) => {
  const verifier = new AccessTokenVerifier(keys, { ...options, cacheSize: 3 })
  const tokens = [token(), token(), token()]
  for (const tk of tokens) verifier.verify(tk)
  verifier.verify(tokens[0] as string) // a hit does not move it: it still expires first
  const fourth = token()
  verifier.verify(fourth)
  t.equal(verifier.cached, 3)
  t.notOk(verifier.isCached(tokens[0] as string), 'the oldest went')
  t.ok(verifier.isCached(tokens[1] as string) && verifier.isCached(tokens[2] as string) && verifier.isCached(fourth), 'the others stayed')
  t.ok(verifier.verify(tokens[0] as string), 'an evicted token still verifies, the slow way')
})

t.test('cacheSize 0 disables the cache', async (t) => {
  const verifier = new AccessTokenVerifier(keys, { ...options, cacheSize: 0 })
  t.ok(verifier.verify(token()))
  t.equal(verifier.cached, 0)
})
