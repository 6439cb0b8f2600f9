import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { createServer } from 'node:http'
import t from 'tap'
import { buildApp, registerAndLogin } from '../helpers/app.js'
import { keySetJson, privateJwk } from '../helpers/keys.js'
import { HEADER_CROWD, rawRequest } from '../helpers/raw-http.js'
import { respelled } from '../helpers/respelled.js'

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const INVALID = { statusCode: 401, code: 'AUTH_TOKEN_INVALID', error: 'Unauthorized', message: 'Access token is missing, invalid or expired' }

/** A JWS signed with whatever key and algorithm an attacker (or the test) chooses; a string header is its JSON text. */
function jws (header: object | string, payload: object, signer: (data: string) => Buffer | string): string {
  const data = `${b64(header)}.${b64(payload)}`
  const signature = signer(data)
  return `${data}.${typeof signature === 'string' ? signature : signature.toString('base64url')}`
}
const hmac = (alg: string, secret: string | Buffer) => (data: string) => createHmac(`sha${alg.slice(2)}`, secret).update(data).digest()
const es256 = (key: KeyObject) => (data: string) => cryptoSign('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' })
const eddsa = (key: KeyObject) => (data: string) => cryptoSign(null, Buffer.from(data), key)
const rs256 = (key: KeyObject) => (data: string) => cryptoSign('sha256', Buffer.from(data), key)

interface Setup {
  name: string
  env: Record<string, string>
  /** Signs like the service does, with its own key (for tokens that are genuine but for one flaw). */
  realSigner: (data: string) => Buffer
  alg: string
}

function setups (): Setup[] {
  const es = privateJwk('ES256', 'es-key-1')
  const ed = privateJwk('EdDSA', 'ed-key-1')
  const secret = 'attack-suite-hs256-secret-0123456789abcdef'
  return [
    { name: 'ES256', env: { JWT_KEYS: keySetJson(es), JWT_SECRET: '' }, alg: 'ES256', realSigner: es256(createPrivateKey({ key: es, format: 'jwk' })) },
    { name: 'EdDSA', env: { JWT_KEYS: keySetJson(ed), JWT_SECRET: '' }, alg: 'EdDSA', realSigner: eddsa(createPrivateKey({ key: ed, format: 'jwk' })) },
    { name: 'HS256', env: { JWT_SECRET: secret }, alg: 'HS256', realSigner: hmac('HS256', secret) }
  ]
}

for (const setup of setups()) {
  t.test(`${setup.name}: every forged or flawed token is a 401 with one body, no Redis command, no outbound request`, async (t) => {
    const app = await buildApp(t, { env: { ...setup.env, JWT_CLOCK_TOLERANCE: '5' } })
    const session = await registerAndLogin(app)
    const [headerPart, payloadPart, signaturePart] = session.accessToken.split('.') as [string, string, string]
    const header = JSON.parse(Buffer.from(headerPart, 'base64url').toString())
    const claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString())
    t.match(header, { alg: setup.alg, typ: 'at+jwt', kid: String }, 'genuine tokens: typ at+jwt and a kid')
    t.match(claims, { sub: String, email: String, sid: String, jti: String, iat: Number, exp: Number, iss: 'auth-service', aud: 'auth-service' })
    const now = Math.floor(Date.now() / 1000)
    const real = (h: object | string, p: object) => jws(h, p, setup.realSigner)

    // A jku/x5u target on loopback: it must never be contacted.
    let outbound = 0
    const lure = createServer((_req, res) => { outbound += 1; res.end('{"keys":[]}') })
    await new Promise<void>((resolve) => lure.listen(0, '127.0.0.1', resolve))
    t.teardown(() => lure.close())
    const lureUrl = `http://127.0.0.1:${(lure.address() as { port: number }).port}/jwks.json`

    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const attackerEd = generateKeyPairSync('ed25519')
    const attackerRsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const attackerJwk = attacker.publicKey.export({ format: 'jwk' })

    const attacks: Record<string, string> = {}
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      attacks[`alg ${alg}, no signature`] = `${b64({ ...header, alg })}.${payloadPart}.`
      attacks[`alg ${alg}, signature kept`] = `${b64({ ...header, alg })}.${payloadPart}.${signaturePart}`
    }

    // Key confusion: HS256 with the published public key as the HMAC secret, in every encoding.
    if (setup.alg !== 'HS256') {
      const jwks = (await app.inject({ url: '/.well-known/jwks.json' })).json()
      t.equal(jwks.keys.length, 1)
      t.notOk('d' in jwks.keys[0], 'the JWKS has no private part')
      const publicKey = createPublicKey({ key: jwks.keys[0], format: 'jwk' })
      const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string
      const der = publicKey.export({ type: 'spki', format: 'der' })
      const encodings: Record<string, string | Buffer> = {
        'SPKI PEM': pem,
        'PEM without trailing newline': pem.trimEnd(),
        'PEM with CRLF': pem.replace(/\n/g, '\r\n'),
        'PEM with stray whitespace': `  ${pem}  \n\n`,
        'DER bytes': der,
        'DER base64': der.toString('base64'),
        'JWK JSON': JSON.stringify(jwks.keys[0]),
        'JWK JSON, pretty': JSON.stringify(jwks.keys[0], null, 2),
        'JWKS JSON': JSON.stringify(jwks)
      }
      for (const [name, secret] of Object.entries(encodings)) {
        for (const alg of ['HS256', 'HS384', 'HS512']) {
          attacks[`key confusion ${alg}, public key as ${name}`] = jws({ ...header, alg }, claims, hmac(alg, secret))
        }
      }
    }

    Object.assign(attacks, {
      'HS256 signed with a guessed secret': jws({ ...header, alg: 'HS256' }, claims, hmac('HS256', 'secret')),
      'RS256 with an attacker key': jws({ ...header, alg: 'RS256' }, claims, rs256(attackerRsa.privateKey)),
      'ES256 with an attacker key, the real kid': jws({ ...header, alg: 'ES256' }, claims, es256(attacker.privateKey)),
      'EdDSA with an attacker key, the real kid': jws({ ...header, alg: 'EdDSA' }, claims, eddsa(attackerEd.privateKey)),
      'ES384 header': jws({ ...header, alg: 'ES384' }, claims, es256(attacker.privateKey)),
      'empty signature': `${headerPart}.${payloadPart}.`,
      'stripped signature': `${headerPart}.${payloadPart}`,
      'tampered payload (email)': `${headerPart}.${b64({ ...claims, email: 'admin@example.com' })}.${signaturePart}`,
      'tampered payload (sub)': `${headerPart}.${b64({ ...claims, sub: 'AAAAAAAAAAAAAAAAAAAAAA' })}.${signaturePart}`,
      'tampered header (typ)': `${b64({ ...header, typ: 'JWT' })}.${payloadPart}.${signaturePart}`,
      'embedded jwk, attacker-signed': jws({ alg: 'ES256', typ: 'at+jwt', jwk: attackerJwk }, claims, es256(attacker.privateKey)),
      'embedded jwk and real kid, attacker-signed': jws({ ...header, alg: 'ES256', jwk: attackerJwk }, claims, es256(attacker.privateKey)),
      'jku to an attacker JWKS': jws({ alg: 'ES256', typ: 'at+jwt', kid: 'x', jku: lureUrl }, claims, es256(attacker.privateKey)),
      'x5u to an attacker certificate': jws({ alg: 'ES256', typ: 'at+jwt', x5u: lureUrl }, claims, es256(attacker.privateKey)),
      'x5c with an attacker chain': jws({ alg: 'ES256', typ: 'at+jwt', x5c: [randomBytes(300).toString('base64')] }, claims, es256(attacker.privateKey)),
      'jku on an otherwise genuine token': real({ ...header, jku: lureUrl }, claims),
      'jwk on an otherwise genuine token': real({ ...header, jwk: attackerJwk }, claims),
      'unknown kid': real({ ...header, kid: 'no-such-key' }, claims),
      'kid path traversal': real({ ...header, kid: '../../../../dev/null' }, claims),
      'kid SQL injection': real({ ...header, kid: "' UNION SELECT 'secret' --" }, claims),
      'kid shell injection': real({ ...header, kid: '$(touch /tmp/pwned)|id;' }, claims),
      'kid with NUL': real({ ...header, kid: `${header.kid as string}\u0000` }, claims),
      'kid as a number': real({ ...header, kid: 1 }, claims),
      'kid as an object': real({ ...header, kid: { $ne: null } }, claims),
      'no kid': real({ alg: header.alg, typ: 'at+jwt' }, claims),
      'unknown crit': real({ ...header, crit: ['exp'] }, claims),
      'crit b64': real({ ...header, crit: ['b64'], b64: false }, claims),
      'missing exp': real(header, { ...claims, exp: undefined }),
      'expired beyond tolerance': real(header, { ...claims, iat: now - 700, exp: now - 60 }),
      'nbf in the future': real(header, { ...claims, nbf: now + 60 }),
      'wrong iss': real(header, { ...claims, iss: 'https://evil.example' }),
      'wrong aud': real(header, { ...claims, aud: 'other-api' }),
      'aud as an array': real(header, { ...claims, aud: ['auth-service'] }),
      'iss as an array': real(header, { ...claims, iss: ['auth-service'] }),
      'sub as a number': real(header, { ...claims, sub: 42 }),
      'typ JWT': real({ ...header, typ: 'JWT' }, claims),
      'typ id+jwt (another token type)': real({ ...header, typ: 'id+jwt' }, claims),
      'no typ': real({ alg: header.alg, kid: header.kid }, claims),
      'header is an array': real([header], claims),
      // JSON that parses to no object: read as one, it would throw where the verifier must answer.
      'header is JSON null': real('null', claims),
      'header is a number': real('42', claims),
      'header is a string': real(JSON.stringify(JSON.stringify(header)), claims),
      'header is true': real('true', claims),
      'over 8 kB': real(header, { ...claims, pad: 'x'.repeat(8 * 1024) }),
      'the refresh token': session.refreshToken,
      garbage: 'not.a.jwt',
      'four parts': `${session.accessToken}.extra`,
      'non-JSON header': `${b64('not json')}.${payloadPart}.${signaturePart}`
    })

    // The genuine token spelled otherwise: the same bytes, so the same signature, yet not the token that was issued.
    const parts = [headerPart, payloadPart, signaturePart]
    for (const [i, name] of ['header', 'payload', 'signature'].entries()) {
      const respelledPart = respelled(parts[i] as string)
      if (respelledPart === null) continue
      t.same(Buffer.from(respelledPart, 'base64url'), Buffer.from(parts[i] as string, 'base64url'), `the ${name} respelled decodes to the same bytes`)
      attacks[`the genuine token, its ${name} respelled (the same bytes)`] = parts.map((part, j) => j === i ? respelledPart : part).join('.')
    }
    t.ok(Object.keys(attacks).some((name) => name.includes('signature respelled')), 'the signature has another spelling with every algorithm here')

    t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${real(header, { ...claims, iat: now - 600, exp: now - 2 })}` } })).statusCode, 200,
      'control: expired within JWT_CLOCK_TOLERANCE is accepted, so the expiry cases test the tolerance, not a blanket rule')

    const redisCommands: string[] = []
    const redis = app.redis
    const originalSend = redis?.sendCommand.bind(redis)
    if (redis !== null && originalSend !== undefined) {
      redis.sendCommand = (command: Parameters<typeof originalSend>[0]) => { redisCommands.push(command.name); return originalSend(command) }
    }
    for (const [name, token] of Object.entries(attacks)) {
      const res = await app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })
      t.equal(res.statusCode, 401, `${name}: 401`)
      t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', `${name}: invalid_token`)
      t.same(res.json(), INVALID, `${name}: identical body`)
    }

    // Malformed signatures of every length and encoding, for the configured algorithm.
    let malformed = 0
    for (let length = 0; length <= 130; length++) {
      for (const alphabet of ['base64url', 'base64', 'hex'] as const) {
        const signature = randomBytes(length).toString(alphabet).slice(0, length)
        const res = await app.inject({ url: '/me', headers: { authorization: `Bearer ${headerPart}.${payloadPart}.${signature}` } })
        if (res.statusCode === 401) malformed += 1
        else t.fail(`signature of ${length} ${alphabet} characters answered ${res.statusCode}`)
      }
    }
    t.equal(malformed, 131 * 3, 'every malformed signature: 401, never a 500')

    // 1,000 forged tokens, then the genuine one.
    for (let i = 0; i < 1000; i++) {
      const forged = jws({ ...header }, { ...claims, jti: String(i) }, (data) => createHmac('sha256', String(i)).update(data).digest())
      await app.inject({ url: '/me', headers: { authorization: `Bearer ${forged}` } })
    }
    if (redis !== null && originalSend !== undefined) redis.sendCommand = originalSend
    t.same(redisCommands, [], 'verification never touched Redis')
    t.equal(outbound, 0, 'no jku / x5u was fetched')
    t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })).statusCode, 200, 'after all of it, the genuine token still verifies')
  })
}

t.test('a request with two Authorization headers is refused, whichever holds the genuine token: Node reads the first, a proxy may read another', async (t) => {
  const app = await buildApp(t)
  const session = await registerAndLogin(app)
  const other = await registerAndLogin(app)
  const port = Number(new URL(await app.listen({ port: 0, host: '127.0.0.1' })).port)
  const get = async (path: string, ...authorizations: string[]) => await rawRequest(port,
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${authorizations.map((a) => `${a}\r\n`).join('')}Connection: close\r\n\r\n`)
  const genuine = `Authorization: Bearer ${session.accessToken}`
  const cases: Record<string, string[]> = {
    'the genuine token, then a forged one': [genuine, 'Authorization: Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'],
    'a forged one, then the genuine token': ['Authorization: Bearer forged', genuine],
    'another account\'s token after it': [genuine, `authorization: Bearer ${other.accessToken}`],
    'the same token twice, the name in two cases': [genuine, `AUTHORIZATION: Bearer ${session.accessToken}`]
  }
  for (const [name, authorizations] of Object.entries(cases)) {
    for (const path of ['/me', '/auth/sessions']) {
      const res = await get(path, ...authorizations)
      t.equal(res.statusCode, 401, `${name}, on ${path}: 401`)
      t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', `${name}, on ${path}: invalid_token`)
      t.same(JSON.parse(res.body), INVALID, `${name}, on ${path}: the body of every refused token`)
    }
  }
  const one = await get('/me', genuine)
  t.same([one.statusCode, JSON.parse(one.body).email], [200, session.email], 'one Authorization header with the genuine token is served')
  // Node drops the headers of a request past its first thousand or so, unless told otherwise: these came to 200.
  // As one entry of `get`'s, which ends each with its own line break.
  const crowd = HEADER_CROWD.trimEnd()
  const hidden = await get('/me', genuine, crowd, 'Authorization: Bearer forged')
  t.equal(hidden.statusCode, 401, 'the second after 1,100 other headers: 401, not served with the first')
  const many = await get('/me', genuine, crowd)
  t.same([many.statusCode, JSON.parse(many.body).email], [200, session.email], 'one among 1,100 others is served')
})
