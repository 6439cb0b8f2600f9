import t from 'tap'
import { buildApp, PASSWORD, setCookies, uniqueEmail } from '../helpers/app.js'

const signIn = async (env: Record<string, string>, password = PASSWORD) => {
  const app = await buildApp(t, { store: 'memory', env })
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  return await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })
}
const TAG = '[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{22}'
const DEVICE = '__Secure-refresh_token_device'

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

t.test('one cookie keeps the browser known to each account signed in there, the latest first, five at most', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const accounts = await Promise.all(Array.from({ length: 6 }, async () => {
    const email = uniqueEmail()
    const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
    return { email, id: (registered.json() as { id: string }).id }
  }))
  let cookie = `${DEVICE}=garbage~${'A'.repeat(22)}.${'B'.repeat(22)}.${'C'.repeat(22)}`
  const kept: string[][] = []
  for (const { email } of accounts) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD }, headers: { cookie } })
    cookie = setCookies(res).find((c) => c.startsWith(`${DEVICE}=`))?.split(';')[0] ?? 'none'
    kept.push(cookie.slice(DEVICE.length + 1).split('~').map((entry) => entry.split('.')[0] as string))
  }
  const ids = accounts.map((a) => a.id)
  t.same(kept[0], [ids[0]], 'the first sign-in: its account alone, what was not sealed here dropped')
  t.same(kept[1], [ids[1], ids[0]], 'the second: both, the latest first')
  t.same(kept[5], [ids[5], ids[4], ids[3], ids[2], ids[1]], 'the sixth: the five latest; the first account is forgotten')
  const again = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: accounts[3]?.email, password: PASSWORD }, headers: { cookie } })
  const order = (setCookies(again).find((c) => c.startsWith(`${DEVICE}=`)) ?? '').split(';')[0]?.slice(DEVICE.length + 1).split('~').map((e) => e.split('.')[0])
  t.same(order, [ids[3], ids[5], ids[4], ids[2], ids[1]], 'an account signing in again moves to the front, with a new device id, once')
})

t.test('two device cookies sent that name one account (a copy left on another path) are one entry in the cookie set next', async (t) => {
  const app = await buildApp(t, { store: 'memory' })
  const [a, b] = await Promise.all([uniqueEmail(), uniqueEmail()].map(async (email) => {
    const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
    return { email, id: (registered.json() as { id: string }).id }
  }))
  /** The device cookie's entries after a sign-in to `email` with these cookies. */
  const entriesAfter = async (email: string | undefined, cookie = '') => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD }, headers: { cookie } })
    return (setCookies(res).find((c) => c.startsWith(`${DEVICE}=`)) ?? '').split(';')[0]?.slice(DEVICE.length + 1).split('~') ?? []
  }
  const [first] = await entriesAfter(a?.email)
  const [second] = await entriesAfter(a?.email)
  t.not(first, second, 'two browsers of account A')
  const next = await entriesAfter(b?.email, `${DEVICE}=${first}; ${DEVICE}=${second}`)
  t.equal(next.length, 2, 'B and A')
  t.equal(next[0]?.split('.')[0], b?.id, 'B\'s new entry first')
  t.equal(next[1], first, 'then A\'s, the first sent, once')
})
