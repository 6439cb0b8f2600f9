import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { generateKeySetJson } from '../../src/signing-keys.js'
import { PASSWORD, uniqueEmail } from '../helpers/app.js'
import { parseDockerfile, type Stage } from '../helpers/dockerfile.js'
import { dockerfileImage, imageNode } from '../helpers/image-node.js'
import { freePort, PrivateRedis } from '../helpers/redis-server.js'
import { startProcess, waitForListening, type ServerProcess } from '../helpers/server-process.js'

// The Dockerfile, run as processes: there is no container engine on this machine. Its build stage
// compiles what it copies, its deps stage installs the production dependencies alone, and its runtime
// stage's CMD and HEALTHCHECK run on what those produce, with the stage's ENV, all under the Node.js
// release of the image's tag rather than this machine's. Steps are read from the Dockerfile itself, so a
// change there changes what runs here; a step this test does not know fails it.
// What it catches: a devDependency imported at run time, a file the build leaves out of dist/ (the Lua
// scripts, the autoloaded plugins and routes), an entry point that works under tsx only, a native module
// or an API that this machine's Node serves and the image's does not, an image on a Node.js line past its
// end of life or on a Debian release past its security support.
const execFileAsync = promisify(execFile)
const ROOT = join(import.meta.dirname, '..', '..')

/**
 * When each Node.js LTS line stops getting security releases (https://github.com/nodejs/Release). An image on a
 * line past its date fails this test: it is time to move the Dockerfile to a newer line, and to add that line here.
 */
const END_OF_LIFE: Record<string, string> = { 20: '2026-04-30', 22: '2027-04-30', 24: '2028-04-30' }

/**
 * When the Debian Security Team stops supporting each release the official Node.js images are built on: a year after
 * the next release (https://www.debian.org/security/faq); the LTS team's best effort on a subset of packages follows.
 * trixie's is its third anniversary, until its successor's release sets it. An image on a release past its date fails
 * this test, as one on a Node.js line past its end of life does.
 */
const DEBIAN_SECURITY_SUPPORT: Record<string, string> = { bookworm: '2026-06-10', trixie: '2028-08-09' }

/** The directory of the image's Node.js release (ImageNode.dir). */
type NodeDir = string

/**
 * A stage's command, with the image's `node` first on PATH (npm is this machine's, run by it). Not the test
 * runner's NODE_OPTIONS (its loaders) nor NODE_ENV: a build stage has neither. A native module that must be compiled
 * takes its headers from the image's Node, as node-gyp in the image would.
 */
async function sh (cwd: string, file: string, args: string[], node: NodeDir): Promise<void> {
  const env = { ...process.env, NODE_OPTIONS: undefined, NODE_ENV: undefined, PATH: `${join(node, 'bin')}:${process.env.PATH}`, npm_config_nodedir: node }
  await execFileAsync(file, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 })
}

/**
 * Runs one RUN line of a stage. `npm ci` of the build stage is the repository's own install (same lock file,
 * all dependencies), linked in; the deps stage's runs for real, from npm's cache where it can. apt-get is the
 * image's toolchain, which .ci/run installs on this machine; `npm cache clean` only slims the image, and
 * must not empty this machine's cache.
 */
async function run (stage: Stage, dir: string, line: string, node: NodeDir): Promise<void> {
  for (const step of line.split('&&').map((s) => s.trim())) {
    const [file = '', ...args] = step.split(/\s+/)
    if (file === 'apt-get' || file === 'rm' || (file === 'npm' && args[0] === 'cache')) continue
    if (file === 'npm' && args[0] === 'ci' && !args.includes('--omit=dev')) {
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
    } else if (file === 'npm' && (args[0] === 'ci' || args[0] === 'run')) {
      await sh(dir, 'npm', args[0] === 'ci' ? [...args, '--prefer-offline'] : args, node)
    } else {
      throw new Error(`stage ${stage.name}: this test does not know how to run "${step}"; teach it`)
    }
  }
}

/**
 * Whom the runtime stage's processes run as: as in the image, a user without a file of it, which root copied there.
 * Run by root (as .ci/run is), nobody; run by another user, that user, whose files of it are made read-only instead.
 */
const IMAGE_USER = process.getuid?.() === 0 ? { uid: 65_534, gid: 65_534 } : undefined

/**
 * `path` and everything under it made read-only, or writable again by its owner. Symbolic links are neither changed
 * (a mode is their target's) nor followed: the build stage's node_modules is this checkout's.
 */
function readOnly (path: string, writable = false): void {
  const stat = lstatSync(path)
  chmodSync(path, writable ? stat.mode | 0o200 : stat.mode & ~0o222)
  if (!stat.isDirectory()) return
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (!entry.isSymbolicLink()) readOnly(join(path, entry.name), writable)
  }
}

/** Builds every stage into a directory of its own, as `docker build` would; returns the runtime stage's. */
async function build (t: Test, stages: Stage[], node: NodeDir): Promise<{ dir: string, stage: Stage }> {
  const work = mkdtempSync(join(tmpdir(), 'auth-image-'))
  // Open to the image's user, as an image's root directory is.
  chmodSync(work, 0o755)
  t.teardown(() => {
    readOnly(work, true)
    rmSync(work, { recursive: true, force: true })
  })
  const dirs = new Map<string, string>()
  for (const stage of stages) {
    const dir = join(work, stage.name)
    mkdirSync(dir)
    dirs.set(stage.name, dir)
    for (const copy of stage.copies) {
      for (const source of copy.sources) {
        // A path in another stage is absolute in its image, whose WORKDIR is that stage's directory here.
        const fromStage = stages.find((s) => s.name === copy.from)
        const from = fromStage === undefined ? join(ROOT, source) : join(dirs.get(fromStage.name) as string, source.slice(fromStage.workdir.length))
        // As COPY does: a file into a directory keeps its name; a directory's contents go into the destination.
        const target = copy.dest.endsWith('/') && !statSync(from).isDirectory() ? join(dir, copy.dest, basename(from)) : join(dir, copy.dest)
        cpSync(from, target, { recursive: true, verbatimSymlinks: true })
      }
    }
    for (const line of stage.runs) await run(stage, dir, line, node)
  }
  const runtime = stages.at(-1) as Stage
  return { dir: dirs.get(runtime.name) as string, stage: runtime }
}

/**
 * An exec-form command of the image, its `node` the image's. Through env(1), which drops the NODE_OPTIONS that tap
 * gives every process a test starts (its process-info hook, in this checkout, which the image's user may not reach).
 */
function executable (cmd: string[], node: NodeDir): [string, string[]] {
  const [file, ...args] = cmd as [string, ...string[]]
  return ['env', ['-u', 'NODE_OPTIONS', file === 'node' ? join(node, 'bin', 'node') : file, ...args]]
}

/** The image's CMD, in the runtime stage's directory, as the image's user. */
function start (dir: string, cmd: string[], env: Record<string, string | undefined>, node: NodeDir): ServerProcess {
  return startProcess(...executable(cmd, node), env, dir, IMAGE_USER)
}

async function healthcheck (dir: string, cmd: string[], env: Record<string, string>, node: NodeDir): Promise<number> {
  try {
    await execFileAsync(...executable(cmd, node), { cwd: dir, env: { PATH: process.env.PATH, ...env }, timeout: 10_000, ...IMAGE_USER })
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

t.test('the Dockerfile, its stages run as processes', { timeout: 300_000 }, async (t) => {
  const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
  t.same(stages.map((s) => s.name), ['build', 'deps', 'runtime'], 'three stages: build, production dependencies, runtime')
  const { images, major } = dockerfileImage()
  t.equal(images.length, 1, 'on one image, so the runtime loads the native module the deps stage installed for it')
  t.ok(major in END_OF_LIFE, `the image (${images.join(', ')}) is an official Node.js image of a known LTS line`)
  t.ok(new Date() < new Date(`${END_OF_LIFE[major]}T23:59:59Z`), `Node.js ${major} still gets security releases (until ${END_OF_LIFE[major]})`)
  // A tag without a release (`node:24-slim`) is whichever the image's maintainers build on that day.
  const debian = /^node:\d+-([a-z]+)(?:-slim)?$/.exec(images[0] as string)?.[1] ?? ''
  t.ok(debian in DEBIAN_SECURITY_SUPPORT, `the image (${images.join(', ')}) names a Debian release this test knows`)
  t.ok(new Date() < new Date(`${DEBIAN_SECURITY_SUPPORT[debian]}T23:59:59Z`), `Debian ${debian} still has the Security Team's support (until ${DEBIAN_SECURITY_SUPPORT[debian]})`)

  const { dir: imageNodeDir, version: nodeVersion } = await imageNode()
  t.match(nodeVersion, new RegExp(`^v${major}\\.`), `the stages run under Node.js ${major}, as in the image (${nodeVersion})`)
  const { dir, stage } = await build(t, stages, imageNodeDir)
  t.ok(stage.user !== null && !['root', '0'].includes(stage.user.split(':')[0] as string), `the service runs as an unprivileged user (${stage.user ?? 'root'})`)
  t.same(stage.copies.filter((copy) => copy.chown !== null).map((copy) => copy.dest), [], 'which owns none of the files copied for it')
  // Its files as the image's user finds them: another's, or its own made read-only.
  readOnly(dir)
  // The image's node, where that user reaches it (this checkout may be in a directory closed to others).
  const node = join(dir, '..', 'node')
  cpSync(join(imageNodeDir, 'bin', 'node'), join(node, 'bin', 'node'))
  const written = await execFileAsync(...executable(['node', '-e', 'require("node:fs").writeFileSync("dist/src/server.js", "")'], node), { cwd: dir, ...IMAGE_USER })
    .then(() => 'written', (err: { stderr?: string }) => /EACCES/.test(err.stderr ?? '') ? 'EACCES' : String(err.stderr))
  t.equal(written, 'EACCES', 'and cannot change: its entry point refuses a write')
  t.equal(stage.env.NODE_ENV, 'production', 'the image runs in production mode, which refuses unsafe config')
  t.equal(stage.env.HOST, '::', 'and listens on every interface of its container, IPv6 and IPv4 alike')
  t.ok(stage.cmd !== null && stage.healthcheck !== null, 'it has a CMD and a HEALTHCHECK')
  const cmd = stage.cmd as string[]
  const check = stage.healthcheck as string[]

  const redis = await PrivateRedis.start(t)
  const port = String(await freePort())
  // The operator's part (README: containers), with the image's ENV; loopback only, as every test here. The secrets
  // as files, as `docker run -v` or a Kubernetes secret volume mounts them (written with a trailing newline).
  const secretsDir = mkdtempSync(join(tmpdir(), 'run-secrets-'))
  t.teardown(() => rmSync(secretsDir, { recursive: true, force: true }))
  const signingKeys = generateKeySetJson('ES256')
  const refreshSecret = randomBytes(48).toString('base64')
  writeFileSync(join(secretsDir, 'jwks.json'), signingKeys, { mode: 0o400 })
  writeFileSync(join(secretsDir, 'refresh_token_secret'), `${refreshSecret}\n`, { mode: 0o400 })
  // Readable by the image's user alone, as Kubernetes mounts a secret for a pod's user (fsGroup, defaultMode 0400).
  if (IMAGE_USER !== undefined) {
    for (const path of [secretsDir, join(secretsDir, 'jwks.json'), join(secretsDir, 'refresh_token_secret')]) chownSync(path, IMAGE_USER.uid, IMAGE_USER.gid)
  }
  const env = {
    ...stage.env,
    HOST: '127.0.0.1',
    PORT: port,
    REDIS_URL: redis.url,
    JWT_KEYS_FILE: join(secretsDir, 'jwks.json'),
    REFRESH_TOKEN_SECRET_FILE: join(secretsDir, 'refresh_token_secret')
  }

  t.test('refuses to start without the config production needs, and says which', async (t) => {
    const server = start(dir, cmd, { ...env, REDIS_URL: undefined }, node)
    t.equal(await server.exited, 1, 'exits 1')
    t.match(server.output(), /refusing to start: REDIS_URL is required in production/)
    t.notMatch(server.output(), refreshSecret, 'and never echoes a secret')
  })

  // Loopback addresses other than 127.0.0.1 stand for an operator's HOST set to the container's own address.
  t.test('its HEALTHCHECK asks where HOST says the service listens: a specific IPv4 or IPv6 address', async (t) => {
    for (const host of ['127.0.0.2', '::1']) {
      const at = { ...env, HOST: host }
      const server = start(dir, cmd, at, node)
      await waitForListening(server, 30_000)
      t.equal(await healthcheck(dir, check, at, node), 0, `HOST=${host}: it passes`)
      server.child.kill('SIGTERM')
      t.equal(await server.exited, 0, `HOST=${host}: stopped`)
      t.equal(await healthcheck(dir, check, at, node), 1, `HOST=${host}: and fails once it is gone`)
    }
  })

  t.test('serves from dist/ with production dependencies alone, and its HEALTHCHECK follows it', async (t) => {
    t.equal(await healthcheck(dir, check, env, node), 1, 'the health check fails before the service is up')
    const server = start(dir, cmd, env, node)
    t.teardown(() => { server.child.kill('SIGKILL') })
    await waitForListening(server, 30_000)
    t.equal(await healthcheck(dir, check, env, node), 0, 'and passes once it serves')

    const base = `http://127.0.0.1:${port}`
    t.equal((await fetch(`${base}/health/ready`)).status, 200, 'ready: Redis answers')
    const metrics = await (await fetch(`${base}/metrics`)).text()
    t.match(metrics, new RegExp(`^nodejs_version_info\\{version="${nodeVersion.replaceAll('.', '\\.')}"`, 'm'), 'the service runs on the image\'s Node.js, by its own metrics')
    const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string, d?: string }> }
    t.same(jwks.keys.map((k) => [k.kid, k.d]), [[JSON.parse(signingKeys).keys[0].kid, undefined]], 'the JWKS publishes the configured key, never its private part')

    // A whole session through the compiled routes, plugins and Lua scripts.
    const email = uniqueEmail()
    const json = { 'content-type': 'application/json' }
    t.equal((await fetch(`${base}/auth/register`, { method: 'POST', headers: json, body: JSON.stringify({ email, password: PASSWORD }) })).status, 201, 'registers')
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: json, body: JSON.stringify({ email, password: PASSWORD }) })
    t.equal(login.status, 200, 'logs in: argon2 loads and hashes at the production parameters')
    const cookie = login.headers.getSetCookie()[0]?.split(';')[0] as string
    t.match(login.headers.getSetCookie()[0], /^__Secure-refresh_token=[^;]+;.*HttpOnly.*Secure/i, 'production cookie: __Secure- prefix, HttpOnly, Secure')
    const refreshed = await fetch(`${base}/auth/refresh`, { method: 'POST', headers: { cookie } })
    t.equal(refreshed.status, 200, 'the refresh rotates (the Lua script was built into dist/)')
    const successor = refreshed.headers.getSetCookie()[0]?.split(';')[0] as string
    t.not(successor, cookie, 'to a new refresh token')
    const { accessToken } = await refreshed.json() as { accessToken: string }
    const me = await fetch(`${base}/me`, { headers: { authorization: `Bearer ${accessToken}` } })
    t.match(await me.json(), { id: /^[A-Za-z0-9_-]{22}$/, email }, 'whose access token /me accepts')
    const again = await fetch(`${base}/auth/refresh`, { method: 'POST', headers: { cookie } })
    t.equal(again.headers.getSetCookie()[0]?.split(';')[0], successor, 'the parent again within the grace window: the same successor (the family lives in Redis)')

    // The operator's command, as `docker exec` runs it: the image's node, user and environment.
    const signedOut = await execFileAsync(...executable(['node', 'dist/src/admin.js', 'sign-out', email], node), { cwd: dir, env: { PATH: process.env.PATH, ...env }, timeout: 30_000, ...IMAGE_USER })
    t.match(JSON.parse(signedOut.stdout), { command: 'sign-out', sessionsEnded: 1 }, 'the admin command runs from dist/ and ends the session')
    t.equal((await fetch(`${base}/auth/refresh`, { method: 'POST', headers: { cookie: successor } })).status, 401, 'whose refresh cookie the service then refuses')

    // node is PID 1 in the image, so SIGTERM reaches it directly (the CMD is an exec-form array).
    server.child.kill('SIGTERM')
    t.equal(await server.exited, 0, 'SIGTERM: it drains and exits 0')
    t.match(server.output(), /"signal":"SIGTERM"/, 'saying why')
    t.equal(await healthcheck(dir, check, env, node), 1, 'and the health check fails once it is gone')
    t.notMatch(server.output(), refreshSecret, 'the refresh secret is never logged')
    t.notMatch(server.output(), cookie.split('=')[1] as string, 'nor the refresh token')
  })
})
