import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { buildAppThroughLink, login, PASSWORD, refresh, registerAndLogin, subOf, uniqueEmail, uniquePrefix, type LoggedIn } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { fromNth, script } from '../helpers/tcp-link.js'

// Changing a password and deleting an account are each several store writes. Redis dies (the link to it is cut)
// exactly as one of them is sent, so that write never runs. Before the change is made the client is answered 503;
// after, 204, and what the change left to do is done once the store takes it. Whatever the step, what is left is never
// the dangerous half: a new password, or a deleted account, with other sessions still alive.

/** The DEL of an account's id pointer (src/redis-user-directory.ts), sent once the account itself is gone. */
const pointerDeleted = (prefix: string, userId: string) => (sent: string): boolean => /\bdel\r\n/i.test(sent) && sent.includes(`${prefix}user:id:${userId}`)

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })

async function setUp (t: Test) {
  const prefix = uniquePrefix()
  const { app, link } = await buildAppThroughLink(t, { prefix })
  const owner = await registerAndLogin(app, uniqueEmail(), 'laptop')
  const phone = await login(app, owner.email, 'phone')
  const userId = subOf(owner.accessToken)
  const signIn = (password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password } })
  const storeAnswers = () => within(5000, async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 'the store answers again')
  /**
   * Sends the request with the link armed to cut at `at`, which it must reach: the answer, which follows the cut, is
   * 503, or 204 for a cut after the change was made. Returns once the store answers again (the cut closed one
   * connection, and the client reconnects).
   */
  const cutShort = async (at: (sent: string) => boolean, send: () => Promise<LightMyRequestResponse>, answered: 503 | 204 = 503): Promise<void> => {
    const cut = link.cutAt(at)
    const res = await send()
    t.ok(cut(), 'the link was cut at that write')
    if (answered === 204) t.equal(res.statusCode, 204, 'the change is made, and answered so')
    else t.same([res.statusCode, res.json().code], [503, 'AUTH_STORE_UNAVAILABLE'], '503')
    await storeAnswers()
  }
  /**
   * Sends the request with every write from the `at` it must reach on cut, for as long as a session is begun for the
   * account: as by a sign-in that read it before the change and whose own second look failed. The change is answered
   * 204, made; that session ends once the store takes what the change left to do.
   */
  const cutFromThenOn = async (at: (sent: string) => boolean, send: () => Promise<LightMyRequestResponse>): Promise<void> => {
    const cut = link.cutAt(at, { every: true })
    t.equal((await send()).statusCode, 204, 'the change is made, and answered so')
    await storeAnswers()
    let late: { familyId: string } | undefined
    await within(5000, async () => {
      late = await app.sessions.start({ id: userId, email: owner.email }, { userAgent: 'late sign-in', ip: '192.0.2.9' }).catch(() => undefined)
      return late !== undefined
    }, 'a session begun after the change')
    t.ok(cut(), 'the link was cut at that write, and is no more')
    await within(5000, async () => !await app.sessions.isLive(userId, late!.familyId), 'that session ended')
    t.pass('a session begun between the change and what it left to do has ended')
  }
  /** The phone's access token, refused within the revocation's reach; its refresh token, refused. */
  const phoneEnded = async (): Promise<boolean> => {
    await within(2000, async () => (await app.inject({ url: '/me', headers: bearer(phone.accessToken) })).statusCode === 401, 'the phone\'s access token refused')
    return (await refresh(app, phone.cookie)).statusCode === 401
  }
  return { app, prefix, owner, phone, userId, signIn, cutShort, cutFromThenOn, phoneEnded }
}

t.test('deleting an account, cut short', async (t) => {
  const remove = (app: FastifyInstance, s: LoggedIn) =>
    () => app.inject({ method: 'DELETE', url: '/auth/account', headers: bearer(s.accessToken), payload: { password: PASSWORD } })

  t.test('as the sessions are ended: nothing has changed, and a retry deletes', async (t) => {
    const { app, owner, phone, signIn, cutShort } = await setUp(t)
    await cutShort(script('family-revoke-all'), remove(app, owner))
    t.equal((await refresh(app, phone.cookie)).statusCode, 200, 'the other device\'s session lives')
    t.equal((await signIn(PASSWORD)).statusCode, 200, 'the account signs in')
    t.equal((await remove(app, owner)()).statusCode, 204, 'the same request again deletes it')
    t.equal((await signIn(PASSWORD)).statusCode, 401, 'and it is gone')
  })

  t.test('as the account is deleted: every session has ended, and the account is there to sign in to and delete', async (t) => {
    const { app, owner, signIn, cutShort, phoneEnded } = await setUp(t)
    await cutShort(script('user-delete'), remove(app, owner))
    t.ok(await phoneEnded(), 'the other device\'s session has ended, access and refresh token')
    t.equal((await app.inject({ url: '/me', headers: bearer(owner.accessToken) })).statusCode, 401, 'and the caller\'s')
    const again = await signIn(PASSWORD)
    t.equal(again.statusCode, 200, 'the password still signs in')
    t.equal((await remove(app, { ...owner, accessToken: again.json().accessToken })()).statusCode, 204, 'and that session deletes the account')
    t.equal((await signIn(PASSWORD)).statusCode, 401, 'which is gone')
  })

  t.test('as its id pointer is removed: the account is gone, with its sessions, and its email registers again', async (t) => {
    const { app, prefix, owner, userId, signIn, cutShort, phoneEnded } = await setUp(t)
    await cutShort(pointerDeleted(prefix, userId), remove(app, owner), 204)
    t.ok(await phoneEnded(), 'the other device\'s session has ended')
    t.equal((await signIn(PASSWORD)).statusCode, 401, 'the password signs in to nothing')
    const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: owner.email, password: PASSWORD } })
    t.equal(registered.statusCode, 201, 'the email registers again')
    t.not(registered.json().id, userId, 'as a new account, which the pointer left behind does not lead to')
    t.equal((await signIn(PASSWORD)).statusCode, 200, 'and signs in')
  })

  t.test('as the sessions are ended again: the account and its sessions are gone, and a session begun meanwhile ends', async (t) => {
    const { app, owner, signIn, cutFromThenOn, phoneEnded } = await setUp(t)
    await cutFromThenOn(fromNth(2, script('family-revoke-all')), remove(app, owner))
    t.ok(await phoneEnded(), 'the other device\'s session has ended')
    t.equal((await signIn(PASSWORD)).statusCode, 401, 'the password signs in to nothing')
  })
})

t.test('changing a password, cut short', async (t) => {
  const NEW_PASSWORD = `${PASSWORD}, renewed`
  const change = (app: FastifyInstance, s: LoggedIn) =>
    () => app.inject({ method: 'POST', url: '/auth/password', headers: bearer(s.accessToken), payload: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } })
  /** The answers to a sign-in with the old password, then with the new one. */
  const signingIn = async (signIn: (password: string) => Promise<LightMyRequestResponse>) => [(await signIn(PASSWORD)).statusCode, (await signIn(NEW_PASSWORD)).statusCode]
  /** The old password is still the one, and the same request again changes it to the new one. */
  const oldPasswordUntilRetried = async (t: Test, app: FastifyInstance, owner: LoggedIn, signIn: (password: string) => Promise<LightMyRequestResponse>) => {
    t.same(await signingIn(signIn), [200, 401], 'the old password is the one')
    t.equal((await change(app, owner)()).statusCode, 204, 'the same request again changes it')
    t.same(await signingIn(signIn), [401, 200], 'to the new one')
  }

  t.test('as the other sessions are ended: nothing has changed, and a retry changes it', async (t) => {
    const { app, owner, phone, signIn, cutShort } = await setUp(t)
    await cutShort(script('family-revoke-all'), change(app, owner))
    t.equal((await refresh(app, phone.cookie)).statusCode, 200, 'the other device\'s session lives')
    await oldPasswordUntilRetried(t, app, owner, signIn)
  })

  t.test('as the password is written: the other sessions have ended, the old password is the one, and a retry changes it', async (t) => {
    const { app, owner, signIn, cutShort, phoneEnded } = await setUp(t)
    await cutShort(script('user-set-hash'), change(app, owner))
    t.ok(await phoneEnded(), 'the other device\'s session has ended')
    t.equal((await refresh(app, owner.cookie)).statusCode, 200, 'the caller\'s lives')
    await oldPasswordUntilRetried(t, app, owner, signIn)
  })

  t.test('as the other sessions are ended again: the new password is the one, with the other sessions ended, and one begun meanwhile', async (t) => {
    const { app, owner, signIn, cutFromThenOn, phoneEnded } = await setUp(t)
    await cutFromThenOn(fromNth(2, script('family-revoke-all')), change(app, owner))
    t.ok(await phoneEnded(), 'the other device\'s session has ended')
    t.equal((await refresh(app, owner.cookie)).statusCode, 200, 'the caller\'s lives')
    t.same(await signingIn(signIn), [401, 200], 'the new password is the one')
  })
})
