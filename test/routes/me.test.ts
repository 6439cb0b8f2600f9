import { createHmac } from 'node:crypto'
import t from 'tap'
import { buildApp, registerAndLogin } from '../helpers/app.js'

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const sign = (header: object, payload: object, secret: string) => {
  const body = `${b64(header)}.${b64(payload)}`
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`
}

t.test('GET /me', async (t) => {
  const app = await buildApp(t)
  const session = await registerAndLogin(app)
  const me = (authorization?: string) => app.inject({ url: '/me', headers: authorization === undefined ? {} : { authorization } })
  const [, payloadPart] = session.accessToken.split('.') as [string, string]
  const claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString())
  const secret = app.config.jwt.secret as string
  const now = Math.floor(Date.now() / 1000)

  t.test('answers { id, email } from a valid bearer token', async (t) => {
    const res = await me(`Bearer ${session.accessToken}`)
    t.equal(res.statusCode, 200)
    t.same(res.json(), { id: claims.sub, email: session.email })
  })

  t.test('takes the scheme in any case and any number of spaces before the token (RFC 6750 §2.1, RFC 9110 §11.4)', async (t) => {
    for (const header of [`bearer ${session.accessToken}`, `BEARER ${session.accessToken}`, `Bearer   ${session.accessToken}`]) {
      t.equal((await me(header)).statusCode, 200, header.slice(0, 12))
    }
  })

  t.test('401 without credentials, with a Bearer challenge', async (t) => {
    const res = await me()
    t.equal(res.statusCode, 401)
    t.equal(res.headers['www-authenticate'], 'Bearer')
    t.equal(res.json().code, 'AUTH_TOKEN_INVALID')
  })

  // RFC 6750 §3.1: a client that used another scheme was not trying a bearer token, so the challenge tells it which
  // scheme to use and names no error; a bearer token that fails gets invalid_token.
  t.test('credentials of another scheme get the bare Bearer challenge, a failed bearer token invalid_token', async (t) => {
    const challenges: Record<string, string> = {
      'Basic dXNlcjpwYXNz': 'Bearer',
      [`Token ${session.accessToken}`]: 'Bearer',
      [`bearer${session.accessToken}`]: 'Bearer',
      Bearer: 'Bearer error="invalid_token"',
      'Bearer ': 'Bearer error="invalid_token"',
      'Bearer a.b.c': 'Bearer error="invalid_token"',
      [`BEARER ${session.accessToken}x`]: 'Bearer error="invalid_token"'
    }
    for (const [header, challenge] of Object.entries(challenges)) {
      const res = await me(header)
      t.equal(res.statusCode, 401, header.slice(0, 20))
      t.equal(res.headers['www-authenticate'], challenge, header.slice(0, 20))
      t.equal(res.json().code, 'AUTH_TOKEN_INVALID', header.slice(0, 20))
    }
  })

  const forged: Record<string, string> = {
    'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`,
    'alg None, signature kept': `${b64({ alg: 'None', typ: 'JWT' })}.${b64(claims)}.${session.accessToken.split('.')[2]}`,
    'tampered payload': `${session.accessToken.split('.')[0]}.${b64({ ...claims, email: 'admin@example.com' })}.${session.accessToken.split('.')[2]}`,
    'stripped signature': session.accessToken.split('.').slice(0, 2).join('.') + '.',
    'wrong secret': sign({ alg: 'HS256', typ: 'JWT' }, claims, 'another-secret-of-enough-length-0123456789'),
    expired: sign({ alg: 'HS256', typ: 'JWT' }, { ...claims, iat: now - 1000, exp: now - 100 }, secret),
    'no exp': sign({ alg: 'HS256', typ: 'JWT' }, { ...claims, exp: undefined }, secret),
    'wrong issuer': sign({ alg: 'HS256', typ: 'JWT' }, { ...claims, iss: 'evil' }, secret),
    'wrong audience': sign({ alg: 'HS256', typ: 'JWT' }, { ...claims, aud: 'other-api' }, secret),
    'HS512 with the right secret': sign({ alg: 'HS512', typ: 'JWT' }, claims, secret),
    'not a JWT': 'hello',
    'the refresh token': session.refreshToken
  }
  for (const [name, token] of Object.entries(forged)) {
    t.test(`401 invalid_token: ${name}`, async (t) => {
      const res = await me(`Bearer ${token}`)
      t.equal(res.statusCode, 401)
      t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
      t.same(res.json(), { statusCode: 401, code: 'AUTH_TOKEN_INVALID', error: 'Unauthorized', message: 'Access token is missing, invalid or expired' })
    })
  }

  t.test('401 for malformed Authorization headers, never a 500', async (t) => {
    for (const header of ['Bearer', 'Bearer ', 'Bearer    ', `Bearer\t${session.accessToken}`, `Bearer ${session.accessToken} x`, 'Basic dXNlcjpwYXNz', `bearer${session.accessToken}`, `Bearer ${'a'.repeat(7000)}`, 'Bearer a.b.c', 'Bearer ...']) {
      const res = await me(header)
      t.equal(res.statusCode, 401, header.slice(0, 30))
    }
  })

  t.test('the genuine token still verifies after all of that', async (t) => {
    t.equal((await me(`Bearer ${session.accessToken}`)).statusCode, 200)
  })
})
