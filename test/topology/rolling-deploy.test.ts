import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { generateKeySetJson } from '../../src/signing-keys.js'
import { CAUGHT_REPLAY, deleteKeys, PASSWORD, replayCodes, SHARED_REDIS_URL, testEnv, uniqueEmail, uniquePrefix } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { freePort } from '../helpers/redis-server.js'
import { startServer, waitForListening } from '../helpers/server-process.js'
import { matchList } from '../helpers/match-list.js'

// A rolling deploy: until the last container is replaced, instances of the release being replaced and of this one
// serve the same users from one Redis, and the load balancer sends each request to either. Whatever one writes —
// accounts, password hashes, families and their rotations, ended families, access-token revocations — the other
// must read as its own, in both directions, or users are signed out (or a replay goes unnoticed) mid-deploy.
//
// DEPLOYED is the release running in production: the last commit of main that was deployed. Move it forward when a
// deploy lands. A change this test fails against DEPLOYED needs a deploy in two steps (first read the new form, then
// write it), not a new DEPLOYED.
const DEPLOYED = '1f409a259708e28cf0ef59ae22dd664d7bbc5d53'
/** REFRESH_REUSE_GRACE of both releases: a replay is caught once it has passed. */
const GRACE_SECONDS = 10
const ROOT = join(import.meta.dirname, '..', '..')

/**
 * DEPLOYED's tree, as its image would hold it, run with this checkout's dependencies (its lockfile's, or close to
 * them): a package DEPLOYED imports that this checkout no longer installs fails its start, with the import named.
 */
function deployedTree (t: Test): string | null {
  try {
    execFileSync('git', ['cat-file', '-e', `${DEPLOYED}^{commit}`], { cwd: ROOT, stdio: 'ignore' })
  } catch {
    return null
  }
  const dir = mkdtempSync(join(tmpdir(), 'auth-deployed-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('sh', ['-c', `git archive ${DEPLOYED} | tar -x -C "${dir}"`], { cwd: ROOT })
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  return dir
}

interface Instance { name: string, base: string }

async function startInstance (t: Test, name: string, cwd: string, env: Record<string, string | undefined>): Promise<Instance> {
  const port = await freePort()
  const server = startServer({ ...env, PORT: String(port) }, [], cwd)
  t.teardown(() => { server.child.kill('SIGKILL') })
  await waitForListening(server, 30_000)
  return { name, base: `http://127.0.0.1:${port}` }
}

interface Answer { status: number, body: any, cookie: string | undefined }

async function call (instance: Instance, path: string, init: { method?: string, cookie?: string, bearer?: string, body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  if (init.cookie !== undefined) headers.cookie = init.cookie
  if (init.bearer !== undefined) headers.authorization = `Bearer ${init.bearer}`
  const res = await fetch(instance.base + path, {
    method: init.method ?? (init.body !== undefined || init.cookie !== undefined ? 'POST' : 'GET'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? null : JSON.parse(text), cookie: res.headers.getSetCookie().find((c) => /Path=\/auth(;|$)/.test(c))?.split(';')[0] }
}

const signIn = (instance: Instance, email: string, password = PASSWORD) => call(instance, '/auth/login', { body: { email, password } })
const refresh = (instance: Instance, cookie: string | undefined) => call(instance, '/auth/refresh', { cookie })
const me = (instance: Instance, accessToken: string) => call(instance, '/me', { bearer: accessToken })

const tree = deployedTree(t)

t.test('a rolling deploy: the deployed release and this one serve the same users from one Redis', { skip: tree === null ? `needs this repository's history: commit ${DEPLOYED} is not in it` : false }, async (t) => {
  const prefix = uniquePrefix()
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  // Production's shape, as the load-balancer test deploys it: the same asymmetric keys and refresh secret on both.
  const env = testEnv({ REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix, JWT_SECRET: undefined, JWT_KEYS: generateKeySetJson('ES256'), LOG_LEVEL: 'info', REFRESH_REUSE_GRACE: String(GRACE_SECONDS) })
  const [deployed, next] = await Promise.all([startInstance(t, 'the deployed release', tree as string, env), startInstance(t, 'this release', ROOT, env)])

  for (const [first, second] of [[deployed, next], [next, deployed]] as const) {
    t.test(`signed up on ${first.name}, then served by each in turn`, async (t) => {
      const email = uniqueEmail()
      t.equal((await call(first, '/auth/register', { body: { email, password: PASSWORD } })).status, 201, `registered on ${first.name}`)
      const login = await signIn(first, email)
      t.equal(login.status, 200, `signed in on ${first.name}`)
      t.equal((await me(second, login.body.accessToken)).status, 200, `its access token is accepted by ${second.name}`)

      const r1 = await refresh(second, login.cookie)
      t.equal(r1.status, 200, `its refresh token rotates on ${second.name}`)
      const r2 = await refresh(first, r1.cookie)
      t.equal(r2.status, 200, `that successor rotates on ${first.name}`)
      const r3 = await refresh(second, r2.cookie)
      t.equal(r3.status, 200, `and on ${second.name} again`)
      const tab = await refresh(first, r2.cookie)
      t.equal(tab.status, 200, `a second tab's refresh of the same token on ${first.name}, within the grace window…`)
      t.equal(tab.cookie, r3.cookie, '…gets the successor the other instance issued')
      // Each release reads the times the other kept of the tokens it superseded (src/lua/family-rotate.lua: b, bt, bh).
      for (const instance of [first, second]) {
        const late = await refresh(instance, r1.cookie)
        t.same([late.status, late.body.code], [409, 'AUTH_REFRESH_SUPERSEDED'], `a third tab's token, superseded two rotations ago, is refused on ${instance.name} as superseded, the session kept`)
      }

      const listed = await call(first, '/auth/sessions', { bearer: r3.body.accessToken })
      t.equal(listed.status, 200, 'the sessions are listed')
      matchList(t, listed.body.sessions, [{ current: true }], `the session is listed on ${first.name}, as the caller's own`)

      const phone = await signIn(second, email)
      t.equal(phone.status, 200, `a second device signs in on ${second.name}`)
      const both = await call(first, '/auth/sessions', { bearer: r3.body.accessToken })
      t.equal(both.body.sessions.length, 2, `both sessions are listed on ${first.name}`)
      const phoneSession = both.body.sessions.find((s: { current: boolean }) => !s.current)
      t.equal((await call(first, `/auth/sessions/${String(phoneSession?.id)}`, { method: 'DELETE', bearer: r3.body.accessToken })).status, 204,
        `the second device's session is ended on ${first.name}`)
      await within(2000, async () => (await me(second, phone.body.accessToken)).status === 401, 'the ended session\'s access token refused')
      t.pass(`${second.name} refuses the ended session's access token`)
      t.equal((await refresh(second, phone.cookie)).status, 401, 'and its refresh token')

      t.match(await replayCodes(async () => (await refresh(second, login.cookie)).body.code, GRACE_SECONDS), CAUGHT_REPLAY, `the first refresh token, replayed on ${second.name}, is taken for a replay`)
      await within(2000, async () => (await me(first, r3.body.accessToken)).status === 401, 'the replayed family\'s access token refused')
      t.pass(`${first.name} refuses the replayed family's access token`)
      t.equal((await refresh(first, r3.cookie)).status, 401, 'and its latest refresh token')

      const laptop = await signIn(first, email)
      const newPassword = `${PASSWORD} changed`
      t.equal((await call(second, '/auth/password', { body: { currentPassword: PASSWORD, newPassword }, bearer: laptop.body.accessToken })).status, 204,
        `the password is changed on ${second.name}`)
      const withNew = await signIn(first, email, newPassword)
      t.equal(withNew.status, 200, `the new password signs in on ${first.name}`)
      t.equal((await signIn(first, email)).status, 401, 'the old one no longer does')
      t.equal((await refresh(first, laptop.cookie)).status, 200, 'the session that changed it lives on')

      t.equal((await call(second, '/auth/logout-all', { method: 'POST', bearer: withNew.body.accessToken })).status, 204, `signed out everywhere on ${second.name}`)
      await within(2000, async () => (await me(first, laptop.body.accessToken)).status === 401, 'access tokens refused after logout-all')
      t.pass(`${first.name} refuses every session's access token`)
      t.equal((await refresh(first, withNew.cookie)).status, 401, 'and every refresh token')
    })

    t.test(`an account deleted on ${first.name} is gone on ${second.name}`, async (t) => {
      const email = uniqueEmail()
      t.equal((await call(second, '/auth/register', { body: { email, password: PASSWORD } })).status, 201, `registered on ${second.name}`)
      const laptop = await signIn(second, email)
      const phone = await signIn(first, email)
      t.equal((await call(first, '/auth/account', { method: 'DELETE', bearer: phone.body.accessToken, body: { password: `${PASSWORD} wrong` } })).status, 401,
        `a wrong password deletes nothing on ${first.name}`)
      t.equal((await me(second, laptop.body.accessToken)).status, 200, `and ${second.name} still serves the account`)
      t.equal((await call(first, '/auth/account', { method: 'DELETE', bearer: phone.body.accessToken, body: { password: PASSWORD } })).status, 204, `deleted on ${first.name}`)
      await within(2000, async () => (await me(second, laptop.body.accessToken)).status === 401, 'the deleted account\'s access tokens refused')
      t.pass(`${second.name} refuses the account's access tokens`)
      t.equal((await refresh(second, laptop.cookie)).status, 401, 'and its refresh tokens')
      t.equal((await signIn(second, email)).status, 401, 'and its password')
      t.equal((await call(second, '/auth/register', { body: { email, password: PASSWORD } })).status, 201, 'where the email registers again')
      t.equal((await signIn(first, email)).status, 200, `and that new account signs in on ${first.name}`)
    })
  }
})
