import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, login, nextRefreshCookie, refresh, refreshCookieValue, registerAndLogin, uniquePrefix, type LoggedIn } from '../../helpers/app.js'

const A = 'refresh-secret-a-0123456789abcdefghijklmnopq'
const B = 'refresh-secret-b-0123456789abcdefghijklmnopq'

/** The fleet's instances at each step of a rotation from A to B (README), sharing one Redis. */
async function fleet (t: Test) {
  const prefix = uniquePrefix()
  const instance = (current: string, accepted: string[] = []) =>
    buildApp(t, { prefix, env: { REFRESH_TOKEN_SECRET: current, REFRESH_TOKEN_ACCEPTED_SECRETS: accepted.join(',') } })
  return {
    before: await instance(A),
    acceptNext: await instance(A, [B]),
    switched: await instance(B, [A]),
    retired: await instance(B)
  }
}

/** Two tabs refreshing one cookie at once, each through another instance. */
async function twoTabs (t: Test, name: string, session: LoggedIn, first: FastifyInstance, second: FastifyInstance): Promise<string> {
  const [one, two] = await Promise.all([refresh(first, session.cookie), refresh(second, session.cookie)])
  t.same([one.statusCode, two.statusCode], [200, 200], `${name}: both tabs are answered`)
  t.equal(refreshCookieValue(first, one.headers['set-cookie']), refreshCookieValue(second, two.headers['set-cookie']), `${name}: with the same successor`)
  const next = await refresh(first, nextRefreshCookie(first, one))
  t.equal(next.statusCode, 200, `${name}: which goes on rotating: no reuse was seen`)
  return nextRefreshCookie(first, next)
}

t.test('the refresh-token secret rotates across a fleet without signing anyone out', async (t) => {
  const { before, acceptNext, switched, retired } = await fleet(t)
  const underA = await registerAndLogin(before)

  // Step 1: B accepted everywhere, A still begins sessions. Sessions under A rotate on either kind of instance.
  t.equal((await refresh(acceptNext, underA.cookie)).statusCode, 200, 'step 1 rotates a session begun before it')
  const a1 = await login(acceptNext, underA.email)
  t.equal((await refresh(before, a1.cookie)).statusCode, 200, 'and begins sessions that the instances not yet redeployed take')

  // Step 2, midway: some instances begin sessions under B, the others still under A.
  const underB = await login(switched, underA.email)
  t.equal((await refresh(acceptNext, underB.cookie)).statusCode, 200, 'a session begun under B rotates on an instance of step 1')
  const a2 = await login(acceptNext, underA.email)
  t.equal((await refresh(switched, a2.cookie)).statusCode, 200, 'a session begun under A rotates on an instance of step 2')
  const b2 = await login(switched, underA.email)
  const stillUnderA = await twoTabs(t, 'a session under A, tabs on instances that mint with A and with B', a2, acceptNext, switched)
  const stillUnderB = await twoTabs(t, 'a session under B, tabs on instances that mint with A and with B', b2, switched, acceptNext)

  // Step 3: A retired. Its sessions end; B's go on.
  t.equal((await refresh(retired, stillUnderB)).statusCode, 200, 'step 3 rotates the sessions begun under B')
  const refused = await refresh(retired, stillUnderA)
  t.same([refused.statusCode, refused.json().code, refreshCookieValue(retired, refused.headers['set-cookie'])], [401, 'AUTH_REFRESH_INVALID', ''],
    'and refuses those still under A, clearing the cookie')
  t.equal((await refresh(switched, stillUnderA)).statusCode, 200, 'as a token it cannot open, without touching the store: the session lives where A is accepted')
})

t.test('an instance that does not yet accept the new secret refuses the sessions it begins: why step 1 comes first', async (t) => {
  const { before, switched } = await fleet(t)
  const underB = await registerAndLogin(switched)
  const res = await refresh(before, underB.cookie)
  t.same([res.statusCode, res.json().code], [401, 'AUTH_REFRESH_INVALID'])
})

t.test('/metrics counts the refreshes of sessions still under an accepted secret: those a retirement would end', async (t) => {
  const { before, switched } = await fleet(t)
  const counted = async () => Number(/^auth_refresh_accepted_secret_total ([0-9]+)$/m.exec((await switched.inject({ url: '/metrics' })).body)?.[1])
  t.equal(await counted(), 0, 'none yet')
  const underA = await registerAndLogin(before)
  const underB = await login(switched, underA.email)
  const first = await refresh(switched, underA.cookie)
  t.equal(first.statusCode, 200)
  t.equal(await counted(), 1, 'a session under A, refreshed where A is accepted')
  t.equal((await refresh(switched, underA.cookie)).statusCode, 200, 'the same token again, within the grace window')
  t.equal(await counted(), 2, 'counted as every answered refresh is')
  t.equal((await refresh(switched, underB.cookie)).statusCode, 200)
  t.equal(await counted(), 2, 'a session under the current secret is not counted')
})
