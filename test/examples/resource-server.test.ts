import t from 'tap'
import { buildResourceServer } from '../../examples/resource-server.js'
import { buildApp, registerAndLogin } from '../helpers/app.js'
import { keySetJson, privateJwk } from '../helpers/keys.js'

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
    t.equal((await api.inject({ url: '/orders' })).statusCode, 401, 'no token: refused')
    t.equal((await api.inject({ url: '/orders', headers: { authorization: `Bearer ${session.refreshToken}` } })).statusCode, 401, 'a refresh token: refused')
  })
}
