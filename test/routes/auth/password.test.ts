import t from 'tap'
import { buildApp, PASSWORD, refresh, registerAndLogin, login } from '../../helpers/app.js'

for (const store of ['redis', 'memory'] as const) {
  t.test(`POST /auth/password refuses a new password on the blocklist, and changes nothing (${store} store)`, async (t) => {
    const app = await buildApp(t, { store })
    const owner = await registerAndLogin(app)
    const other = await login(app, owner.email)
    const change = (currentPassword: string, newPassword: string) =>
      app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${owner.accessToken}` }, payload: { currentPassword, newPassword } })

    const weak = await change(PASSWORD, 'password1234')
    t.same([weak.statusCode, weak.json().code], [400, 'AUTH_WEAK_PASSWORD'])
    t.match(weak.json().message, /most common/)
    t.equal((await change(PASSWORD, owner.email)).json().code, 'AUTH_WEAK_PASSWORD', 'nor the email address')
    t.equal((await change('not the password at all', 'password1234')).json().code, 'AUTH_INVALID_CREDENTIALS',
      'the current password is checked first: a stolen access token learns nothing more')

    t.equal((await refresh(app, other.cookie)).statusCode, 200, 'the other session lives on')
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: PASSWORD } })).statusCode, 200, 'the password is unchanged')
  })
}
