import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { generateKeySetJson } from '../../src/signing-keys.js'
import { CAUGHT_REPLAY, deleteKeys, PASSWORD, replayCodes, SHARED_REDIS_URL, testEnv, uniqueEmail, uniquePrefix } from '../helpers/app.js'
import { within } from '../helpers/poll.js'
import { freePort } from '../helpers/redis-server.js'
import { launchBrowser, needsChromium } from '../helpers/browser.js'
import { APP_PAGES, call as callIn, openAppTab, restore, sessions, signIn, state, withoutWebLocks } from '../helpers/browser-client.js'
import { startServer, waitForListening, type ServerProcess } from '../helpers/server-process.js'

// The deployment the README describes, as processes: three instances of src/server.ts with the same
// secrets and keys on one Redis, behind nginx (Debian's; .ci/run installs it) as the load balancer.
const NGINX = '/usr/sbin/nginx'
/** REFRESH_REUSE_GRACE of the instances: a replay is caught once it has passed. */
const GRACE_SECONDS = 10

interface Instance extends ServerProcess { port: number }

/**
 * What the README's nginx configuration sets: the proxy directives of its server (the headers passed to the instances)
 * and its refresh location's retry. Taken from the README, so that the deployment tested is the one it describes.
 */
function readmeNginx (): { proxying: string[], locations: string[] } {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const server = /```nginx\nupstream auth \{[\s\S]*?\n(server \{[\s\S]*?)```/.exec(readme)?.[1]
  const locations = server?.match(/^ {2}location [^{\n]+\{\n[\s\S]*?^ {2}\}$/gm) ?? []
  if (server === undefined || !locations.some((location) => /proxy_next_upstream/.test(location))) throw new Error('README: the nginx configuration of the load balancer is missing')
  return { proxying: server.split('\n').map((line) => line.trim()).filter((line) => /^proxy_(http_version|set_header) /.test(line)), locations }
}

async function startInstance (t: Test, env: Record<string, string | undefined>): Promise<Instance> {
  const port = await freePort()
  const server = startServer({ ...env, PORT: String(port) })
  t.teardown(() => { server.child.kill('SIGKILL') })
  await waitForListening(server, 20_000)
  return { ...server, port }
}

/**
 * nginx in front of the instances: round robin, the client's address appended to X-Forwarded-For.
 * `backups` get only what the others fail to answer. `pages`, by path: an app's pages, which nginx serves itself.
 */
async function startNginx (t: Test, upstreams: number[], backups: number[] = [], pages: Record<string, string> = {}): Promise<number> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'auth-nginx-'))
  for (const sub of ['client_body', 'proxy', 'pages']) mkdirSync(join(dir, sub))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [path, page] of Object.entries(pages)) writeFileSync(join(dir, 'pages', path), page)
  // nginx started as root reads what it serves as its workers' user (nobody), and mkdtemp makes the directory its owner's alone.
  if (Object.keys(pages).length > 0) chmodSync(dir, 0o755)
  const { proxying, locations } = readmeNginx()
  writeFileSync(join(dir, 'nginx.conf'), `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  # A module script must come as JavaScript.
  types { text/html html; text/javascript js; }
  upstream auth {
    ${upstreams.map((p) => `server 127.0.0.1:${p} max_fails=0;`).join('\n    ')}
    ${backups.map((p) => `server 127.0.0.1:${p} max_fails=0 backup;`).join('\n    ')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    # The README's: the host the browser addressed, the client's address appended to X-Forwarded-For, the request's id.
    ${proxying.join('\n    ')}
    # The id nginx gave the request, as nginx itself would log it: the instance should answer with the same.
    add_header X-Nginx-Request-Id $request_id always;
    # Which instances were tried and what each answered (502: no answer): lets the tests show a session really
    # moved between instances, and which attempt a retried request's answer came from.
    add_header X-Upstream $upstream_addr always;
    add_header X-Upstream-Status $upstream_status always;
    ${Object.keys(pages).map((path) => `location = ${path} { root ${dir}/pages; }`).join('\n    ')}
    # The README's: the routes clients call, the refresh retried on another instance.
${locations.join('\n')}
  }
}
`)
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d) => { stderr += String(d) })
  t.teardown(async () => {
    child.kill('SIGQUIT')
    if (child.exitCode === null) await once(child, 'exit')
  })
  const deadline = Date.now() + 10_000
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`).then((r) => r.ok, () => false)
    if (up) return port
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`nginx did not start: ${stderr}`)
    await sleep(50)
  }
}

/** Production's shape: asymmetric keys shared by every instance, the refresh secret likewise, one hop of proxy trusted. */
function deploymentEnv (t: Test) {
  const prefix = uniquePrefix()
  t.teardown(() => deleteKeys(SHARED_REDIS_URL, prefix))
  return testEnv({
    REDIS_URL: SHARED_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    JWT_SECRET: undefined,
    JWT_KEYS: generateKeySetJson('ES256'),
    TRUST_PROXY: '1',
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT: '5',
    REFRESH_REUSE_GRACE: String(GRACE_SECONDS),
    // The stop test refreshes each session hundreds of times a second.
    RATE_LIMIT_REFRESH_SESSION: '100000/60'
  })
}

async function deployment (t: Test, instances = 3, pages: Record<string, string> = {}) {
  const env = deploymentEnv(t)
  const started = await Promise.all(Array.from({ length: instances }, () => startInstance(t, env)))
  const lb = await startNginx(t, started.map((i) => i.port), [], pages)
  return { instances: started, base: `http://127.0.0.1:${lb}` }
}

/**
 * A TCP proxy in front of Redis for one instance. `mute()` drops Redis's replies from then on while the
 * instance's commands still reach Redis: the instance can commit a write and never learn that it did.
 */
async function mutableRedisProxy (t: Test, redisUrl: string): Promise<{ url: string, mute: () => void }> {
  const target = new URL(redisUrl)
  let muted = false
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => { sockets.delete(socket); client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => { if (!muted) client.write(chunk) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  const url = new URL(redisUrl)
  url.hostname = '127.0.0.1'
  url.port = String((server.address() as AddressInfo).port)
  return { url: url.toString(), mute: () => { muted = true } }
}

/** `refreshToken`: the refresh cookie's `name=value`, as the browser would send it back. */
interface Answer { status: number, body: any, upstream: string, upstreamStatus: string, refreshToken: string | undefined, requestId: string, nginxRequestId: string }

async function call (url: string, init: { method?: string, headers?: Record<string, string>, body?: unknown } = {}): Promise<Answer> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  const refreshCookie = res.headers.getSetCookie().find((c) => /Path=\/auth(;|$)/.test(c))
  const text = await res.text()
  return {
    status: res.status,
    body: text === '' ? null : JSON.parse(text),
    upstream: res.headers.get('x-upstream') ?? '',
    upstreamStatus: res.headers.get('x-upstream-status') ?? '',
    refreshToken: refreshCookie?.split(';')[0],
    requestId: res.headers.get('x-request-id') ?? '',
    nginxRequestId: res.headers.get('x-nginx-request-id') ?? ''
  }
}

const refresh = (base: string, cookie: string) => call(`${base}/auth/refresh`, { method: 'POST', headers: { cookie } })

async function signUp (base: string, headers: Record<string, string> = {}) {
  const email = uniqueEmail()
  const registered = await call(`${base}/auth/register`, { method: 'POST', body: { email, password: PASSWORD }, headers })
  if (registered.status !== 201) throw new Error(`register failed: ${registered.status}`)
  const login = await call(`${base}/auth/login`, { method: 'POST', body: { email, password: PASSWORD }, headers })
  if (login.status !== 200 || login.refreshToken === undefined) throw new Error(`login failed: ${login.status}`)
  return { email, accessToken: login.body.accessToken as string, refreshToken: login.refreshToken }
}

t.test('behind nginx with three instances on one Redis', { skip: existsSync(NGINX) ? false : `${NGINX} is not installed (apt-get install nginx-light)` }, async (t) => {
  // nginx also serves a browser app, on its own origin, that signs in with examples/browser-client.ts.
  const { instances, base } = await deployment(t, 3, APP_PAGES)

  t.test('a session rotates from instance to instance, each refresh answered by the next one', async (t) => {
    let { refreshToken } = await signUp(base)
    const seen = new Set<string>()
    const tokens = new Set<string>([refreshToken])
    for (let i = 0; i < 9; i++) {
      const res = await refresh(base, refreshToken)
      t.equal(res.status, 200, `refresh ${i + 1} on ${res.upstream}`)
      refreshToken = res.refreshToken as string
      tokens.add(refreshToken)
      seen.add(res.upstream)
      const me = await call(`${base}/me`, { headers: { authorization: `Bearer ${res.body.accessToken as string}` } })
      t.equal(me.status, 200, `its access token works on ${me.upstream}`)
    }
    t.equal(seen.size, 3, 'every instance rotated the session')
    t.equal(tokens.size, 10, 'every rotation issued a new token')
  })

  t.test('two tabs refreshing the same token at once, on two instances, get the same successor', async (t) => {
    const { refreshToken } = await signUp(base)
    const [a, b] = await Promise.all([refresh(base, refreshToken), refresh(base, refreshToken)])
    t.equal(a.status, 200)
    t.equal(b.status, 200)
    t.not(a.upstream, b.upstream, `answered by ${a.upstream} and ${b.upstream}`)
    t.equal(a.refreshToken, b.refreshToken, 'one successor: the family is not forked')
    t.equal((await refresh(base, a.refreshToken as string)).status, 200, 'and it rotates on')
  })

  // Safari before 16.4 sends no Sec-Fetch-Site, and its page's Origin on every POST, same-origin ones too.
  t.test('a browser without Fetch Metadata, on the load balancer\'s own origin, signs in, refreshes and logs out; another origin cannot', async (t) => {
    const { email } = await signUp(base)
    const post = (path: string, headers: Record<string, string>, body?: unknown) => call(`${base}${path}`, { method: 'POST', headers, body })
    const login = await post('/auth/login', { origin: base }, { email, password: PASSWORD })
    t.equal(login.status, 200, `signs in from ${base}`)
    const refreshed = await post('/auth/refresh', { origin: base, cookie: login.refreshToken as string })
    t.equal(refreshed.status, 200, 'refreshes')
    const foreign = await post('/auth/refresh', { origin: 'http://127.0.0.1:9', cookie: refreshed.refreshToken as string })
    t.same([foreign.status, foreign.body.code], [403, 'AUTH_CSRF'], 'a page of another origin (another port of the host) is refused')
    t.equal((await post('/auth/logout', { origin: base, cookie: refreshed.refreshToken as string })).status, 204, 'and logs out')
  })

  t.test('a replayed rotated token, on any instance, ends the family on all of them', async (t) => {
    const first = await signUp(base)
    const second = await refresh(base, first.refreshToken)
    const third = await refresh(base, second.refreshToken as string)
    t.equal(third.status, 200)
    // Two generations old: a replay, answered 409 while within the grace window of the rotations that superseded it
    // (replayCodes).
    t.match(await replayCodes(async () => (await refresh(base, first.refreshToken)).body.code, GRACE_SECONDS), CAUGHT_REPLAY, 'the replay is caught')
    t.equal((await refresh(base, third.refreshToken as string)).status, 401, 'the current token is dead too')
    // The family's access tokens fail on every instance, asked directly, within a second.
    const deadline = Date.now() + 1000
    for (const instance of instances) {
      let status = 0
      while (Date.now() < deadline) {
        status = (await call(`http://127.0.0.1:${instance.port}/me`, { headers: { authorization: `Bearer ${third.body.accessToken as string}` } })).status
        if (status === 401) break
        await sleep(20)
      }
      t.equal(status, 401, `instance on port ${instance.port} refuses the family's access token`)
    }
  })

  t.test('the client address is the one nginx saw, not one the client wrote into X-Forwarded-For', async (t) => {
    const forged = { 'x-forwarded-for': '203.0.113.66' }
    const session = await signUp(base, forged)
    const list = await call(`${base}/auth/sessions`, { headers: { authorization: `Bearer ${session.accessToken}`, ...forged } })
    t.equal(list.status, 200)
    t.equal(list.body.sessions[0].ip, '127.0.0.1', 'nginx appended the real peer; one trusted hop takes that, not the forged entry')
  })

  t.test('the README\'s nginx publishes the routes clients call, and not the instances\' metrics, probes or API description', async (t) => {
    const published = await Promise.all(['/.well-known/jwks.json', '/me', '/auth/sessions'].map(async (path) => (await call(`${base}${path}`)).status))
    t.same(published, [200, 401, 401], 'the JWKS, and /me and the session list refusing a call without a token')
    for (const path of ['/metrics', '/health/ready', '/health/live', '/openapi.json']) {
      const res = await fetch(`${base}${path}`)
      t.same([res.status, res.headers.get('x-upstream'), res.headers.get('content-type')], [404, null, 'text/html'], `${path}: nginx's own 404, no instance asked (none named in X-Upstream)`)
      t.notMatch(await res.text(), /http_requests_total|"status"|openapi/, 'and nothing of the service in it')
    }
  })

  t.test('a request is named by the id nginx gave it: in its answer, and in the log of the instance that served it', async (t) => {
    const { email } = await signUp(base)
    for (let i = 0; i < 3; i++) {
      const res = await call(`${base}/auth/login`, { method: 'POST', body: { email, password: `${PASSWORD}!` } })
      t.equal(res.status, 401)
      t.match(res.nginxRequestId, /^[0-9a-f]{32}$/, 'nginx named it')
      t.equal(res.requestId, res.nginxRequestId, 'the instance answered with that name')
      const served = instances.find((instance) => res.upstream === `127.0.0.1:${instance.port}`)
      // Logged as the answer goes out: it may reach the instance's output a moment after the answer reaches us.
      await within(1000, async () => served?.output().includes(`"reqId":"${res.requestId}"`) ?? false, `the log of ${res.upstream} naming ${res.requestId}`)
      t.pass(`and logged it on ${res.upstream}`)
    }
  })

  t.test('a browser app on nginx\'s origin, its calls answered by any instance: eight tabs restored at once are signed in on one session, and a session ended elsewhere is found by each', needsChromium(), async (t) => {
    const email = uniqueEmail()
    t.equal((await call(`${base}/auth/register`, { method: 'POST', body: { email, password: PASSWORD } })).status, 201, 'a user registers')
    const context = await (await launchBrowser(t)).newContext()
    // Tabs that do not wait for one another's refresh, as in a browser without Web Locks: their refreshes race, each
    // to whichever instance nginx picks, as those of several apps of one site would.
    await withoutWebLocks(context)
    const refreshedBy = new Set<string>()
    context.on('response', (response) => {
      if (response.url().endsWith('/auth/refresh') && response.status() === 200) refreshedBy.add(response.headers()['x-upstream'] ?? '')
    })
    const openTab = async () => await openAppTab(context, `${base}/app.html`)
    t.equal(await signIn(await openTab(), email), 'signed in', 'the app signs in')
    const tabs = await Promise.all(Array.from({ length: 8 }, openTab))
    const restored = await Promise.all(tabs.map(restore))
    t.same(restored, Array(8).fill(true), 'eight tabs, refreshing with the same cookie at once, are signed in')
    t.ok(refreshedBy.size > 1, `their refreshes answered by ${refreshedBy.size} instances (${[...refreshedBy].join(', ')})`)
    t.same(await Promise.all(tabs.map(async (tab) => (await callIn(tab)).status)), Array(8).fill(200), 'each calls /me')
    t.equal(await sessions(tabs[0] as Page), 1, 'on one session')

    const device = await call(`${base}/auth/login`, { method: 'POST', body: { email, password: PASSWORD } })
    t.equal((await call(`${base}/auth/logout-all`, { method: 'POST', headers: { authorization: `Bearer ${device.body.accessToken as string}` } })).status, 204, 'another device signs out everywhere')
    // Each tab finds out at a call of its own, on whichever instance nginx sends it to, once the revocation reaches it.
    await within(3000, async () => {
      const states = await Promise.all(tabs.map(async (tab) => (await state(tab)).signedIn ? (await callIn(tab), true) : false))
      return !states.includes(true)
    }, 'every tab signed out')
    t.same((await Promise.all(tabs.map(state))).map((s) => s.signedOut), Array(8).fill(1), 'every tab is told, once')
  })

  t.test('an instance stopped mid-traffic: its in-flight requests finish, nginx moves on, no client sees an error', async (t) => {
    const sessions = await Promise.all(Array.from({ length: 4 }, () => signUp(base)))
    const failures: string[] = []
    let answered = 0
    const until = { stopped: false }
    const clients = sessions.map(async (s) => {
      let token = s.refreshToken
      while (!until.stopped) {
        const res = await refresh(base, token).catch((err: Error) => ({ status: 0, upstream: err.message, upstreamStatus: '', refreshToken: undefined, body: null }))
        if (res.status !== 200 || res.refreshToken === undefined) failures.push(`${res.status} from ${res.upstream}`)
        else { token = res.refreshToken; answered += 1 }
      }
    })
    await sleep(300)
    const victim = instances[1] as Instance
    victim.child.kill('SIGTERM')
    const code = await victim.exited
    await sleep(500)
    until.stopped = true
    await Promise.all(clients)
    t.equal(code, 0, 'the stopped instance drained and exited cleanly')
    t.ok(answered > 20, `${answered} refreshes answered`)
    t.same(failures, [], 'every refresh succeeded across the stop')
  })
})

t.test('an instance killed after rotating a family, before answering: nginx sends the refresh on, and the next instance answers it from the grace window', { skip: existsSync(NGINX) ? false : `${NGINX} is not installed (apt-get install nginx-light)` }, async (t) => {
  const env = deploymentEnv(t)
  const proxy = await mutableRedisProxy(t, SHARED_REDIS_URL)
  const victim = await startInstance(t, { ...env, REDIS_URL: proxy.url })
  const standby = await startInstance(t, env)
  const base = `http://127.0.0.1:${await startNginx(t, [victim.port], [standby.port])}`
  const session = await signUp(base)

  const redis = new Redis(SHARED_REDIS_URL)
  t.teardown(() => redis.quit())
  const families = await redis.keys(`${env.REDIS_KEY_PREFIX as string}*:f:*`)
  t.equal(families.length, 1, 'one session in this deployment')
  const family = families[0] as string
  const generation = await redis.hget(family, 'g')

  proxy.mute()
  const answer = refresh(base, session.refreshToken)
  const deadline = Date.now() + 5000
  while (await redis.hget(family, 'g') === generation) {
    if (Date.now() > deadline) throw new Error('the victim never rotated the family')
    await sleep(5)
  }
  victim.child.kill('SIGKILL') // the rotation is committed in Redis; the victim never saw Redis's reply
  const res = await answer

  t.equal(res.upstream, `127.0.0.1:${victim.port}, 127.0.0.1:${standby.port}`, 'sent to the victim, then to the standby')
  t.equal(res.upstreamStatus, '502, 200', 'the victim never answered; the standby did')
  t.equal(res.status, 200, 'the client sees a refresh, not an error')
  const metrics = await fetch(`http://127.0.0.1:${standby.port}/metrics`).then((r) => r.text())
  t.match(metrics, /auth_refresh_total\{outcome="grace"\} 1\n/, 'answered as a concurrent tab is: from the grace window')

  const next = await refresh(base, res.refreshToken as string)
  t.equal(next.status, 200, 'the successor it got rotates on: the family was neither forked nor revoked')
  const list = await call(`${base}/auth/sessions`, { headers: { authorization: `Bearer ${next.body.accessToken as string}` } })
  t.equal(list.body.sessions.length, 1, 'still one session')
})
