import t from 'tap'
import { buildApp, PASSWORD, refresh, setCookies, uniqueEmail, uniquePrefix } from '../helpers/app.js'

t.test('COOKIE_NAME names the refresh cookie end to end', async (t) => {
  const app = await buildApp(t, { env: { COOKIE_NAME: 'my_rt' } })
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  const cookie = setCookies(login)[0] ?? ''
  t.match(cookie, /^my_rt=[^;]+; Max-Age=\d+; Path=\/auth; HttpOnly; Secure; SameSite=Strict$/)
  t.equal((await refresh(app, cookie.split(';')[0] as string)).statusCode, 200)
  t.equal((await refresh(app, `__Secure-refresh_token=${cookie.slice(6).split(';')[0]}`)).statusCode, 401, 'the default name is not read')
})

t.test('a hash made with older argon2 parameters is upgraded at the next login', async (t) => {
  const prefix = uniquePrefix()
  const before = await buildApp(t, { prefix, env: { ARGON2_TIME_COST: '1' } })
  const email = uniqueEmail()
  await before.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  t.match((await before.users.findByEmail(email))?.passwordHash, /,t=1\$/)

  const after = await buildApp(t, { prefix, env: { ARGON2_TIME_COST: '2' } })
  t.equal((await after.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })).statusCode, 200)
  let hash = ''
  for (let i = 0; i < 50 && !/,t=2\$/.test(hash); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    hash = (await after.users.findByEmail(email))?.passwordHash ?? ''
  }
  t.match(hash, /^\$argon2id\$v=19\$m=8192,p=1,t=2\$/, 'rehashed with the current parameters, after the response')
  t.equal((await after.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })).statusCode, 200, 'and the password still works')
})
