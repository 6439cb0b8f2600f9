import t from 'tap'
import { buildApp, PASSWORD, setCookies, uniqueEmail } from '../helpers/app.js'

const signIn = async (env: Record<string, string>, password = PASSWORD) => {
  const app = await buildApp(t, { store: 'memory', env })
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  return await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })
}
const TAG = '[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{22}'

t.test('a sign-in sets a device cookie for the sign-in route alone, with the refresh cookie\'s attributes, for 400 days', async (t) => {
  const cookies = setCookies(await signIn({}))
  t.equal(cookies.length, 2, 'beside the refresh cookie')
  t.match(cookies[1], new RegExp(`^__Secure-refresh_token_device=${TAG}; Max-Age=34560000; Path=/auth/login; HttpOnly; Secure; SameSite=Strict$`))
})

t.test('its name follows COOKIE_NAME, its path PUBLIC_PATH_PREFIX, its other attributes the refresh cookie\'s', async (t) => {
  const plain = setCookies(await signIn({ COOKIE_NAME: 'shop_session', COOKIE_SECURE: 'false', COOKIE_SAMESITE: 'lax', PUBLIC_PATH_PREFIX: '/api' }))
  t.match(plain[1], new RegExp(`^shop_session_device=${TAG}; Max-Age=34560000; Path=/api/auth/login; HttpOnly; SameSite=Lax$`))
  const crossSite = setCookies(await signIn({ COOKIE_SAMESITE: 'none', ALLOWED_ORIGINS: 'https://app.example.net' }))
  t.match(crossSite[1], /; Path=\/auth\/login; HttpOnly; Secure; Partitioned; SameSite=None$/, 'partitioned as the refresh cookie is, for an app on another site')
})

t.test('a failed sign-in sets none', async (t) => {
  const res = await signIn({}, 'wrong password!')
  t.equal(res.statusCode, 401)
  t.same(setCookies(res), [])
})
