import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { PASSWORD, uniqueEmail } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { PrivateRedis } from '../helpers/redis-server.js'
import { startServiceOverHttp } from '../helpers/server-process.js'
import { tcpLink } from '../helpers/tcp-link.js'

// Instances on hosts whose clocks disagree, within the JWT_CLOCK_TOLERANCE the service allows between instances (5 s
// by default): instance `ahead` reads its wall clock 3 s ahead of instance `onTime`'s. Whether a superseded refresh
// token is a replay or a late attempt of its own refresh must not turn on which instance each request reached.
const SKEW_MS = 3000
/** REFRESH_REUSE_GRACE, shorter than the skew: a token superseded within it is taken for another tab's request. */
const GRACE_SECONDS = 1
const SKEWED_CLOCK = './test/helpers/skewed-clock.ts'

t.test('instances whose clocks disagree share one store', async (t) => {
  const redis = await PrivateRedis.start(t)
  // Instance `ahead` reaches Redis through a link the test can hold: a hop that stops delivering for a while.
  const link = await tcpLink(t, redis.port)
  const grace = { REFRESH_REUSE_GRACE: String(GRACE_SECONDS) }
  const ahead = await startServiceOverHttp(t, { REDIS_URL: `redis://:${redis.password}@127.0.0.1:${link.port}`, CLOCK_SKEW_MS: String(SKEW_MS), ...grace }, [SKEWED_CLOCK])
  const onTime = await startServiceOverHttp(t, { REDIS_URL: redis.url, ...grace })
  for (const instance of [ahead, onTime]) await within(10_000, async () => (await instance.call('/health/ready')).status === 200, 'the instance is ready')
  const signIn = async () => {
    const email = uniqueEmail()
    t.equal((await onTime.call('/auth/register', { email, password: PASSWORD })).status, 201)
    const login = await onTime.call('/auth/login', { email, password: PASSWORD })
    t.equal(login.status, 200)
    return login.cookie!
  }
  const refresh = (instance: typeof ahead, cookie: string) => instance.call('/auth/refresh', undefined, cookie)

  t.test('each accepts the access tokens the other signs, and a session refreshes on either', async (t) => {
    let cookie = await signIn()
    for (const [from, to] of [[ahead, onTime], [onTime, ahead]] as const) {
      const refreshed = await refresh(from, cookie)
      t.equal(refreshed.status, 200)
      cookie = refreshed.cookie!
      const me = await fetch(`http://127.0.0.1:${to.port}/me`, { headers: { authorization: `Bearer ${String(refreshed.body.accessToken)}` } })
      t.equal(me.status, 200, 'the token is accepted by the other instance')
    }
  })

  // A thief with a copy of the cookie refreshes first, twice (past the grace window's one generation), on the
  // instance whose clock is ahead. The victim's browser then presents the token it holds, on the other instance.
  t.test('a stolen token refreshed on one instance is caught when its victim presents the original on another', async (t) => {
    const stolen = await signIn()
    const first = await refresh(ahead, stolen)
    const second = await refresh(ahead, first.cookie!)
    t.equal(second.status, 200, 'the thief holds the session')
    // Past the grace window, but well within the skew: on the instances' own clocks the victim's request would have
    // been made before the thief's refreshes.
    await sleep(GRACE_SECONDS * 1000 + 200)
    const victim = await refresh(onTime, stolen)
    t.equal(victim.status, 401, 'the victim\'s token is two generations old: a replay')
    t.equal(victim.body.code, 'AUTH_REFRESH_REUSED', 'reuse detected')
    const thief = await refresh(ahead, second.cookie!)
    t.equal(thief.status, 401, 'the session is revoked, and with it the thief\'s token')
    t.equal(thief.body.code, 'AUTH_REFRESH_INVALID')
  })

  // A refresh sent by the instance whose clock is ahead is held on its way to Redis: its client gets a 503 and the
  // successor cookie, and refreshes twice on the other instance. Then the held command arrives, late.
  t.test('a late attempt that reaches the store after its session has rotated on is not taken for a replay', async (t) => {
    const cookie = await signIn()
    link.hold()
    const unanswered = await refresh(ahead, cookie)
    t.equal(unanswered.status, 503, 'the store did not answer in time')
    t.equal(unanswered.body.code, 'AUTH_STORE_UNAVAILABLE')
    const next = await refresh(onTime, unanswered.cookie!)
    t.equal(next.status, 200, 'the successor the 503 set refreshes')
    const current = await refresh(onTime, next.cookie!)
    t.equal(current.status, 200)
    link.release()
    // The held command has run once the linked instance's store answers again.
    await within(10_000, async () => (await ahead.call('/health/ready')).status === 200, 'the held link delivers')
    await sleep(200)
    const after = await refresh(onTime, current.cookie!)
    t.equal(after.status, 200, 'the session lives on: the late command ended nothing')
  })
})
