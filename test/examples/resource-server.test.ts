import * as oauth from 'oauth4webapi'
import t from 'tap'
import { buildResourceServer } from '../../examples/resource-server.js'
import { buildApp, refresh, registerAndLogin } from '../helpers/app.js'
import { keySetJson, privateJwk } from '../helpers/keys.js'
import { HEADER_CROWD, rawRequest } from '../helpers/raw-http.js'
import { respelled } from '../helpers/respelled.js'

for (const alg of ['ES256', 'EdDSA'] as const) {
  t.test(`a separate resource server verifies ${alg} tokens with only the JWKS URL, over loopback`, async (t) => {
    const auth = await buildApp(t, { env: { JWT_SECRET: '', JWT_KEYS: keySetJson(privateJwk(alg, `${alg}-1`)) } })
    const address = await auth.listen({ port: 0, host: '127.0.0.1' })
    const api = buildResourceServer({ jwksUrl: `${address}/.well-known/jwks.json` })
    t.teardown(() => api.close())

    const session = await registerAndLogin(auth)
    const sub = JSON.parse(Buffer.from(session.accessToken.split('.')[1] as string, 'base64url').toString()).sub
    const ok = await api.inject({ url: '/orders', headers: { authorization: `Bearer ${session.accessToken}` } })
    t.equal(ok.statusCode, 200)
    t.same(ok.json(), { owner: sub, orders: [] })
    t.equal((await api.inject({ url: '/orders', headers: { authorization: `bearer  ${session.accessToken}` } })).statusCode, 200, 'the scheme in any case, two spaces before the token')

    const tampered = session.accessToken.replace(/\.([^.]+)\./, (_m, p: string) => `.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'someone-else' })).toString('base64url')}.`)
    t.equal((await api.inject({ url: '/orders', headers: { authorization: `Bearer ${tampered}` } })).statusCode, 401, 'tampered: refused')
    const [header, payload, signature] = session.accessToken.split('.') as [string, string, string]
    const respelledSignature = respelled(signature) as string
    t.same(Buffer.from(respelledSignature, 'base64url'), Buffer.from(signature, 'base64url'), 'the signature respelled decodes to the same bytes')
    t.equal((await api.inject({ url: '/orders', headers: { authorization: `Bearer ${header}.${payload}.${respelledSignature}` } })).statusCode, 401,
      'and the token with it is refused: accepted only as issued')
    t.equal((await api.inject({ url: '/orders' })).statusCode, 401, 'no token: refused')
    t.equal((await api.inject({ url: '/orders', headers: { authorization: `Bearer ${session.refreshToken}` } })).statusCode, 401, 'a refresh token: refused')

    // Over a socket, as Node's parser reads a request: it keeps the first Authorization, where a proxy may read another.
    const port = Number(new URL(await api.listen({ port: 0, host: '127.0.0.1' })).port)
    const orders = async (...authorizations: string[]) => (await rawRequest(port,
      `GET /orders HTTP/1.1\r\nHost: 127.0.0.1\r\n${authorizations.map((a) => `Authorization: ${a}\r\n`).join('')}Connection: close\r\n\r\n`)).statusCode
    t.equal(await orders(`Bearer ${session.accessToken}`), 200, 'one Authorization header: served')
    t.equal(await orders(`Bearer ${session.accessToken}`, `Bearer ${tampered}`), 401, 'the genuine token, then a tampered one: refused')
    t.equal(await orders(`Bearer ${session.accessToken}`, `Bearer ${session.accessToken}`), 401, 'the same token twice: refused')
    t.equal((await rawRequest(port, `GET /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${session.accessToken}\r\n${HEADER_CROWD}Authorization: Bearer ${tampered}\r\nConnection: close\r\n\r\n`)).statusCode,
      401, 'and a tampered one after 1,100 other headers, which Node would drop: refused')
  })
}

// RFC 9068 §2.2 requires iss, exp, aud, sub, client_id, iat and jti; a resource server that holds access tokens to
// the profile their header names (typ: at+jwt) refuses one without all of them.
t.test('a resource server holding tokens to the RFC 9068 profile (oauth4webapi) accepts those of login and refresh', async (t) => {
  const auth = await buildApp(t, { env: { JWT_SECRET: '', JWT_KEYS: keySetJson(privateJwk('ES256', 'rfc9068')) } })
  const address = await auth.listen({ port: 0, host: '127.0.0.1' })
  const authorizationServer = { issuer: auth.config.jwt.issuer, jwks_uri: `${address}/.well-known/jwks.json` }
  const validate = async (accessToken: string) => await oauth.validateJwtAccessToken(authorizationServer,
    new Request('http://127.0.0.1/orders', { headers: { authorization: `Bearer ${accessToken}` } }), auth.config.jwt.audience,
    { [oauth.allowInsecureRequests]: true })

  const session = await registerAndLogin(auth)
  const refreshed = (await refresh(auth, session.cookie)).json().accessToken as string
  for (const [name, accessToken] of [['login', session.accessToken], ['refresh', refreshed]] as const) {
    const claims = await validate(accessToken).catch((err: unknown) => err as Error)
    t.match(claims, { iss: auth.config.jwt.issuer, aud: auth.config.jwt.audience, sub: String, client_id: auth.config.jwt.issuer, jti: String, iat: Number, exp: Number }, `${name}: accepted, with every claim the profile requires`)
  }
})
