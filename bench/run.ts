// npm run bench [-- options]; npm run bench -- --help lists them.
//
// Starts the real service (production defaults) on a private Redis, seeds users and sessions,
// and measures refresh, /me and login against baselines run in the same session, alternating
// round by round. Only loopback; every run is bounded in time. See bench/README.md.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { hash, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, cpus, tmpdir } from 'node:os'
import { join, resolve as resolvePath } from 'node:path'
import { pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import argon2 from 'argon2'
import autocannon from 'autocannon'
import { Cluster, Redis } from 'ioredis'
import { RedisFamilyStore } from '../src/redis-family-store.js'
import { RefreshTokenCodec } from '../src/refresh-token.js'
import { generateKeySetJson, hs256KeySet, parseKeySet } from '../src/signing-keys.js'
import { RedisUserDirectory } from '../src/redis-user-directory.js'
import type { RedisClient } from '../src/redis-client.js'
import { imageNode } from '../test/helpers/image-node.js'
import { freePort, PrivateCluster } from '../test/helpers/redis-server.js'
import { tutorialRefreshToken } from './baselines/tutorial-express.js'
import { median, writeReport, type Measurement, type Results } from './report.js'

/** Every run of a round, in the order they alternate (reversed every other round). */
const RUNS = ['bare', 'bareRedis', 'signRedis', 'refreshMinimal', 'live', 'refreshFloor', 'refresh', 'refreshLogged', 'tutorial', 'tutorialKeyObject', 'verifyRaw', 'me', 'meLogged', 'login', 'argon2Raw']
/** The runs of the service that --variant and --variant-checkout repeat against the variant, as "<run>@variant". */
const VARIANT_RUNS = ['live', 'refresh', 'me', 'login']
/** The runs --cluster can measure: the service's own (the baselines' Redis code speaks to one server). */
const CLUSTER_RUNS = [...VARIANT_RUNS, ...VARIANT_RUNS.map((name) => `${name}@variant`), 'refreshLogged', 'meLogged', 'flood']
const ALGORITHMS = ['ES256', 'EdDSA', 'HS256'] as const

const USAGE = `Usage: npm run bench [-- options]

  --quick                  1 s runs over 20,000 sessions: about a minute and a quarter in all
  --duration SECONDS       length of each run (default 3)
  --rounds N               alternating rounds, each on new server processes (default 3)
  --sessions N             sessions seeded, at least 2,000 (default 100,000)
  --out DIR                where latest.json, latest.md and latest.svg go (default bench/results)
  --only RUN,...           only these runs, ratios to the first printed, nothing written;
                           "flood" adds the login-flood runs
  --env KEY=VALUE          a setting of the service (repeatable)
  --variant KEY=VALUE      a second service with this setting on top, measured in the same
                           rounds as RUN@variant (repeatable)
  --variant-checkout DIR   the second service runs another checkout's code
  --algorithm ALG          access-token algorithm: ${ALGORITHMS.join(', ')} (default ES256)
  --node WHICH             the Node.js every server runs on: "image" (default: the container
                           image's, fetched once from the npm registry), "machine" (this one's),
                           or the path of a node binary
  --cluster                the service on a Redis Cluster of three masters instead of one Redis;
                           with --only (or --profile) and the service's runs only: ${CLUSTER_RUNS.join(', ')}
  --profile DIR            CPU-profile the server of one run (--scenario) instead of benchmarking
  --scenario RUN           the run to profile (default refresh)
  --help                   this text

Runs: ${RUNS.join(', ')}; with a variant also ${VARIANT_RUNS.map((name) => `${name}@variant`).join(', ')}.
What each measures and how to read the results: bench/README.md.
`

/** A command line the bench cannot run: said in one line with the usage, not as a stack trace. */
function usageError (message: string): never {
  process.stderr.write(`bench: ${message}\n\n${USAGE}`)
  process.exit(2)
}

function parseCommandLine (): ReturnType<typeof parse>['values'] {
  try {
    return parse().values
  } catch (err) {
    return usageError((err as Error).message)
  }
}
function parse () {
  return parseArgs({
    options: {
      help: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      rounds: { type: 'string' },
      sessions: { type: 'string' },
      out: { type: 'string', default: 'bench/results' },
      // Profiles the server of one run (--cpu-prof) instead of benchmarking; see bench/README.md.
      profile: { type: 'string' },
      scenario: { type: 'string', default: 'refresh' },
      // Runs only these (comma-separated; "flood" adds the login-flood runs): quick comparisons, printed only.
      only: { type: 'string' },
      // Service settings to try, e.g. --env LOG_LEVEL=warn --env ARGON2_MAX_CONCURRENCY=2.
      env: { type: 'string', multiple: true, default: [] },
      // A second service with these settings on top, measured beside the first in the same rounds
      // (runs named "<run>@variant"): settings compared without the machine's drift between runs.
      variant: { type: 'string', multiple: true, default: [] },
      // The variant runs the service of another checkout (e.g. `git worktree add ../base HEAD~1`, with
      // its node_modules): code compared beside code in the same rounds, as --variant compares settings.
      'variant-checkout': { type: 'string' },
      // The access-token algorithm: ES256 is the service default; HS256 for single-service setups.
      algorithm: { type: 'string', default: 'ES256' },
      // The Node.js the servers run on: the image's, as the container runs them (test/helpers/image-node.ts).
      node: { type: 'string', default: 'image' },
      // The service on a Redis Cluster (REDIS_CLUSTER_NODES), as a fleet may run it.
      cluster: { type: 'boolean', default: false }
    }
  })
}

const args = parseCommandLine()
if (args.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}
const settings = (pairs: string[], flag: string): Record<string, string> => Object.fromEntries(pairs.map((pair) => {
  const at = pair.indexOf('=')
  if (at < 1) usageError(`--${flag} ${pair}: expected KEY=VALUE`)
  return [pair.slice(0, at), pair.slice(at + 1)]
}))
/** A number from the command line, or the default; anything else is a usage error. */
function numberOption (flag: 'duration' | 'rounds' | 'sessions', fallback: number, valid: (n: number) => boolean, expected: string): number {
  const value = args[flag]
  if (value === undefined) return fallback
  const n = Number(value)
  if (value.trim() === '' || !valid(n)) usageError(`--${flag} ${value}: expected ${expected}`)
  return n
}
const serviceEnv = settings(args.env, 'env')
const variantEnv = settings(args.variant, 'variant')
const DURATION_S = numberOption('duration', args.quick ? 1 : 3, (n) => Number.isFinite(n) && n > 0, 'a number of seconds above 0')
const ROUNDS = numberOption('rounds', 3, (n) => Number.isInteger(n) && n >= 1, 'a whole number of at least 1')
// The first 20 seeded users, one per 100 sessions, mint the access tokens the /me runs present.
const SESSIONS = numberOption('sessions', args.quick ? 20_000 : 100_000, (n) => Number.isInteger(n) && n >= 2_000, 'a whole number of at least 2000')
if (!(ALGORITHMS as readonly string[]).includes(args.algorithm)) usageError(`--algorithm ${args.algorithm}: expected one of ${ALGORITHMS.join(', ')}`)
if (args.node !== 'image' && args.node !== 'machine' && !existsSync(args.node)) usageError(`--node ${args.node}: expected image, machine, or the path of a node binary`)
const variantCheckout = args['variant-checkout']
const withVariant = Object.keys(variantEnv).length > 0 || variantCheckout !== undefined
const runNames = [...RUNS, ...(withVariant ? VARIANT_RUNS.map((name) => `${name}@variant`) : [])]
for (const name of args.only?.split(',') ?? []) {
  if (!runNames.includes(name) && name !== 'flood') usageError(`--only: no run named "${name}"`)
}
if (variantCheckout !== undefined && !existsSync(join(variantCheckout, 'tsconfig.json'))) usageError(`--variant-checkout ${variantCheckout}: not a checkout of this project (no tsconfig.json)`)
if (args.profile !== undefined && !runNames.includes(args.scenario)) usageError(`--scenario: no run named "${args.scenario}"`)
if (args.cluster) {
  // The figures written (memory per session, the baselines' ratios) are measured on one Redis.
  if (args.only === undefined && args.profile === undefined) usageError('--cluster: give --only (or --profile) with the service\'s runs')
  const named = args.profile !== undefined ? [args.scenario] : (args.only ?? '').split(',')
  const outside = named.filter((name) => !CLUSTER_RUNS.includes(name))
  if (outside.length > 0) usageError(`--cluster: ${outside.join(', ')} ${outside.length === 1 ? 'is not a run' : 'are not runs'} of the service`)
}
const CONNECTIONS = 50
const LOGIN_CONNECTIONS = 8 // more concurrent logins than cores
const PASSWORD = 'correct horse battery staple'
const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
const ARGON2 = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const
const PREFIX = 'auth:'
const COOKIE = '__Secure-refresh_token'

const children: ChildProcess[] = []
const cleanups: Array<() => void> = []
/** What stops and removes the private Redis Cluster: awaited as the bench ends, and started (SIGKILL) on exit. */
const teardowns: Array<() => unknown> = []
function cleanup (): void {
  for (const child of children) child.kill('SIGKILL')
  for (const fn of teardowns) fn()
  for (const fn of cleanups) fn()
}
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))

const benchStarted = Date.now()
/** A progress line, with the seconds since the bench started: where a run's time goes. */
function log (message: string): void {
  process.stderr.write(`[bench ${((Date.now() - benchStarted) / 1000).toFixed(0).padStart(3)} s] ${message}\n`)
}

/**
 * Compiles a checkout as production builds it (`npm run build`: tsc with the project's options, and the
 * Lua scripts beside the code) into a directory inside the checkout, where its package.json and
 * node_modules apply. Every server then runs the code the container runs, on plain node, with no
 * TypeScript loader (tsx's hooks, its source maps) in its process. Returns the directory; it is removed
 * when the bench exits.
 */
function compile (checkout: string, tsconfig: string): Promise<string> {
  const out = mkdtempSync(join(checkout, '.bench-build-'))
  cleanups.push(() => rmSync(out, { recursive: true, force: true }))
  const tsc = spawn(process.execPath, [join(checkout, 'node_modules/typescript/bin/tsc'), '-p', join(checkout, tsconfig), '--outDir', out], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  tsc.stdout.on('data', (d) => { output += String(d) })
  tsc.stderr.on('data', (d) => { output += String(d) })
  return new Promise((resolve, reject) => tsc.on('exit', (code) => {
    if (code !== 0) return reject(new Error(`tsc -p ${join(checkout, tsconfig)} failed:\n${output}`))
    cpSync(join(checkout, 'src/lua'), join(out, 'src/lua'), { recursive: true })
    resolve(out)
  }))
}

/**
 * The Node.js every server runs on (--node), found before the first starts. By default the container image's: its
 * runtime is part of what ships (the tutorial baseline, for one, spent 190 µs of event loop per request on Node 24
 * against 1,671 on Node 20: bench/README.md). The bench itself and its load generator run on this machine's.
 */
let serverNode = { path: process.execPath, version: process.version, source: 'this machine\'s' }

async function findServerNode (): Promise<typeof serverNode> {
  if (args.node === 'machine') return serverNode
  if (args.node === 'image') {
    const found = await imageNode()
    return { path: found.node, version: found.version, source: `the image's (${found.image})` }
  }
  const path = resolvePath(args.node)
  return { path, version: execFileSync(path, ['--version'], { encoding: 'utf8' }).trim(), source: path }
}

/** Microseconds per signature and verification of each algorithm (bench/algorithms.ts), measured on the servers' Node. */
function measureAlgorithms (build: string): Record<string, { signMicros: number, verifyMicros: number }> {
  const module = pathToFileURL(join(build, 'bench/algorithms.js')).href
  return JSON.parse(execFileSync(serverNode.path, ['--input-type=module', '-e', `import { measureAlgorithms } from ${JSON.stringify(module)}; process.stdout.write(JSON.stringify(measureAlgorithms()))`], { encoding: 'utf8' }))
}

async function startProcess (name: string, script: string, env: Record<string, string>): Promise<ChildProcess> {
  // Profiling: the service and the bare baselines, each into its own subfolder.
  const nodeArgs = args.profile !== undefined && (name === 'service' || name === 'bare')
    ? ['--cpu-prof', '--cpu-prof-interval=200', `--cpu-prof-dir=${join(args.profile, name)}`]
    : []
  const child = spawn(serverNode.path, [...nodeArgs, script], {
    env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv,
    // The service logs at info to stdout as in production; the lines go to /dev/null, their cost stays.
    stdio: ['ignore', 'ignore', 'pipe']
  })
  children.push(child)
  let stderr = ''
  child.stderr?.on('data', (d) => { stderr += String(d) })
  child.on('exit', (code, signal) => {
    if (!stopping.has(child) && (code !== 0 || signal !== null)) log(`${name} exited ${signal ?? code}: ${stderr}`)
  })
  return child
}

/** The processes stopped on purpose: their exit is not news. */
const stopping = new WeakSet<ChildProcess>()

/** SIGTERM, as an orchestrator stops a container; SIGKILL if it has not exited within 10 s. */
async function stopProcess (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  stopping.add(child)
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

async function waitForHttp (url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url)
      if (res.status < 500) return
    } catch {}
    await sleep(100)
  }
  throw new Error(`${url} did not come up`)
}

/**
 * Refreshes of one session allowed per minute, for the service and the refresh floor. The rotation script counts
 * and compares as it would at the default (60), so the work measured is the same; but a fast machine refreshes a
 * small pool's sessions nearly that often (the smoke test's 2,000 at 15,000 refreshes/s), and each refusal
 * would take a token out of the pool for good.
 */
const SESSION_REFRESH_LIMIT = 100_000_000

/** A FIFO of refresh tokens: each request takes the oldest, each 200 puts its successor at the back. */
class TokenPool {
  readonly #ring: string[]
  #exhaustedLogged = false
  #head = 0
  #size: number
  constructor (tokens: string[]) {
    this.#ring = tokens.slice()
    this.#size = tokens.length
  }

  /**
   * The oldest token. An empty pool (every token in flight or refused, or a server gone: autocannon reconnects and
   * takes a token per attempt) gives a token the server refuses, counted as non-2xx like every refusal: throwing
   * here, inside autocannon's socket callbacks, ended the bench before it could say why.
   */
  take (): string {
    if (this.#size === 0) {
      if (!this.#exhaustedLogged) log('token pool exhausted: every token is in flight or was refused (the run counts non-2xx), or a server is gone; seed more --sessions if none exited')
      this.#exhaustedLogged = true
      return 'exhausted'
    }
    const token = this.#ring[this.#head] as string
    this.#head = (this.#head + 1) % this.#ring.length
    this.#size -= 1
    return token
  }

  put (token: string): void {
    this.#ring[(this.#head + this.#size) % this.#ring.length] = token
    this.#size += 1
  }
}

interface Load {
  url: string
  /** The process answering: its CPU per request is recorded beside the throughput. */
  server: ChildProcess
  connections: number
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  requests?: autocannon.Request[]
}

async function load (spec: Load, durationS = DURATION_S): Promise<Measurement> {
  const cpuBefore = cpuSnapshot(spec.server)
  // Latency from each 2xx response's own time: autocannon's histogram keeps whole milliseconds, too coarse
  // for a p99 of 2–3 ms and for the ratio of two of them.
  const latencies: number[] = []
  const failures: Record<string, number> = {}
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url: spec.url,
      connections: spec.connections,
      duration: durationS,
      method: spec.method ?? 'GET',
      headers: spec.headers,
      body: spec.body,
      requests: spec.requests
    }, (err: Error | null, res) => { if (err !== null) reject(err); else resolve(res) })
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime)
      else failures[statusCode] = (failures[statusCode] ?? 0) + 1
    })
  })
  const cpuAfter = cpuSnapshot(spec.server)
  const sorted = Float64Array.from(latencies).sort()
  return {
    rps: result.requests.average,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    requests: result.requests.total,
    non2xx: result.non2xx + result.errors + result.timeouts,
    failures: { ...failures, ...(result.errors > 0 ? { errors: result.errors } : {}), ...(result.timeouts > 0 ? { timeouts: result.timeouts } : {}) },
    cpu: cpuPerRequest(cpuBefore, cpuAfter, result.requests.total),
    machineIdlePercent: idlePercent(cpuBefore.machine, cpuAfter.machine),
    serverPid: spec.server.pid as number
  }
}

/** The q-quantile of sorted values (nearest rank); NaN when there are none. */
function quantile (sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number
}

/** CPU seconds in user and in kernel mode, from a /proc stat file: a whole process, or one of its threads. */
function statCpuSeconds (path: string): { user: number, system: number } {
  try {
    const fields = readFileSync(path, 'utf8').split(') ')[1]?.split(' ') ?? []
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }
  } catch {
    return { user: Number.NaN, system: Number.NaN } // the process has exited
  }
}

interface CpuSnapshot { serverMainUser: number, serverMainSystem: number, server: number, redis: number, loadGenerator: number, machine: MachineTimes }

/** The whole machine's CPU time since boot, idle and in all, in clock ticks (/proc/stat's first line). */
interface MachineTimes { idle: number, total: number }
function machineTimes (): MachineTimes {
  // cpu  user nice system idle iowait irq softirq steal ...
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]?.trim().split(/\s+/).slice(1, 9).map(Number) ?? []
  return { idle: (ticks[3] ?? 0) + (ticks[4] ?? 0), total: ticks.reduce((a, b) => a + b, 0) }
}

/**
 * The share of all cores that sat idle during a run. CPU ceilings assume cores that never idle; a run with
 * an event loop short of saturation and idle cores is bound by the hand-offs between processes and threads.
 */
function idlePercent (before: MachineTimes, after: MachineTimes): number {
  const total = after.total - before.total
  return total > 0 ? 100 * (after.idle - before.idle) / total : 0
}

/** The Redis servers' process ids: one, or the cluster's masters. */
let redisPids: number[] = []
function cpuSnapshot (server: ChildProcess): CpuSnapshot {
  const own = process.cpuUsage()
  // The server's event-loop thread (its thread id is its pid), which bounds its throughput, split into
  // user and kernel time (the kernel's is mostly the socket writes and reads); and the whole process
  // (V8's GC helpers, libuv's threadpool where argon2 hashes).
  const main = statCpuSeconds(`/proc/${server.pid}/task/${server.pid}/stat`)
  const whole = statCpuSeconds(`/proc/${server.pid}/stat`)
  const redis = redisPids.map((pid) => statCpuSeconds(`/proc/${pid}/stat`)).reduce((a, b) => ({ user: a.user + b.user, system: a.system + b.system }))
  return {
    serverMainUser: main.user,
    serverMainSystem: main.system,
    server: whole.user + whole.system,
    redis: redis.user + redis.system,
    loadGenerator: (own.user + own.system) / 1e6,
    machine: machineTimes()
  }
}

/**
 * Microseconds of CPU per completed request, per process. Less noisy than requests/s, and it shows who
 * the bottleneck is: an event loop near 1 s of CPU per second is saturated; a load generator near it
 * means the route outruns the generator.
 */
function cpuPerRequest (before: CpuSnapshot, after: CpuSnapshot, requests: number): Measurement['cpu'] {
  const us = (k: Exclude<keyof CpuSnapshot, 'machine'>) => requests > 0 ? (after[k] - before[k]) * 1e6 / requests : 0
  return {
    serverMainUs: us('serverMainUser') + us('serverMainSystem'),
    serverMainSystemUs: us('serverMainSystem'),
    serverUs: us('server'),
    redisUs: us('redis'),
    loadGeneratorUs: us('loadGenerator')
  }
}

/** Calls of each command so far, summed over the servers (a cluster's masters). */
async function commandStats (redis: RedisClient): Promise<Map<string, number>> {
  const calls = new Map<string, number>()
  for (const server of redis instanceof Cluster ? redis.nodes('master') : [redis]) {
    const info = await server.info('commandstats')
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1] as string, (calls.get(m[1] as string) ?? 0) + Number(m[2]))
  }
  return calls
}

// Commands the rotation script runs inside Redis: commandstats counts those too, although they
// cost no round trip. Anything else that moves during a refresh run was sent by a client.
const ROTATE_SCRIPT_COMMANDS = new Set(['hmget', 'time', 'hset', 'pexpire', 'zadd', 'pttl', 'del', 'zrem'])

/** Client commands per refresh (round trips), and every command including those run inside the script. */
function perRefresh (before: Map<string, number>, after: Map<string, number>, requests: number): { roundTrips: number, allCommands: number, clientCommands: Record<string, number> } {
  const clientCommands: Record<string, number> = {}
  let roundTrips = 0
  let allCommands = 0
  for (const [name, calls] of after) {
    const delta = calls - (before.get(name) ?? 0)
    if (delta === 0 || name === 'info') continue // INFO is the measuring, not the measured
    allCommands += delta
    if (!ROTATE_SCRIPT_COMMANDS.has(name)) {
      clientCommands[name] = delta / requests
      roundTrips += delta
    }
  }
  return { roundTrips: roundTrips / requests, allCommands: allCommands / requests, clientCommands }
}

/** " (503: 1, timeouts: 2)": what a run's non-2xx were, over its rounds; nothing when there were none. */
function describeFailures (measurements: Measurement[]): string {
  const total: Record<string, number> = {}
  for (const m of measurements) for (const [kind, n] of Object.entries(m.failures)) total[kind] = (total[kind] ?? 0) + n
  const kinds = Object.entries(total)
  return kinds.length === 0 ? '' : ` (${kinds.map(([kind, n]) => `${kind}: ${n}`).join(', ')})`
}

function describeCpu (c: Measurement['cpu']): string {
  return `CPU µs/request: server event loop ${c.serverMainUs.toFixed(1)} (kernel ${c.serverMainSystemUs.toFixed(1)}), server ${c.serverUs.toFixed(1)}, redis ${c.redisUs.toFixed(1)}, load generator ${c.loadGeneratorUs.toFixed(1)}`
}

function setCookieToken (headers: Record<string, string | string[]>): string | undefined {
  const raw = headers['set-cookie']
  const header = Array.isArray(raw) ? raw[0] : raw
  if (header === undefined || !header.startsWith(`${COOKIE}=`)) return undefined
  return header.slice(COOKIE.length + 1, header.indexOf(';'))
}

/** The private Redis the bench measures on: its client, the service's settings for it, and a server URL for the baselines. */
interface BenchRedis { client: RedisClient, serviceEnv: Record<string, string>, serverUrl: string }

async function startRedis (): Promise<BenchRedis> {
  if (args.cluster) {
    // Three masters without replicas or persistence (test/helpers/redis-server.ts), behind a password for the reason
    // the single server below has one.
    const cluster = await PrivateCluster.start({ teardown: (fn) => { teardowns.push(fn) } })
    log(`on a Redis Cluster of ${cluster.nodes.length} masters, ports ${cluster.nodes.map((node) => node.port).join(', ')}`)
    redisPids = cluster.nodes.map((node) => node.pid as number)
    const client = new Cluster(cluster.seeds, { redisOptions: { password: cluster.password } })
    await client.ping()
    return { client, serviceEnv: { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.seedList }, serverUrl: (cluster.nodes[0] as PrivateCluster['nodes'][number]).url }
  }
  const redisPort = await freePort()
  const redisDir = mkdtempSync(join(tmpdir(), 'auth-bench-redis-'))
  cleanups.push(() => rmSync(redisDir, { recursive: true, force: true }))
  // A password keeps every other client out: a process elsewhere on the machine still retrying a
  // port the OS has handed to this Redis would otherwise add its commands to the figures.
  const redisPassword = randomBytes(16).toString('hex')
  const redisProc = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--requirepass', redisPassword, '--save', '', '--appendonly', 'no', '--dir', redisDir], { stdio: 'ignore' })
  children.push(redisProc)
  redisPids = [redisProc.pid as number]
  const redisUrl = `redis://:${redisPassword}@127.0.0.1:${redisPort}`
  const client = new Redis(redisUrl)
  client.on('error', () => {}) // until redis-server has started
  for (let i = 0; i < 100; i++) { try { await client.ping(); break } catch { await sleep(50) } }
  return { client, serviceEnv: { REDIS_URL: redisUrl }, serverUrl: redisUrl }
}

async function main (): Promise<void> {
  serverNode = await findServerNode()
  log(`servers on Node ${serverNode.version}, ${serverNode.source}`)
  const { client: redis, serviceEnv: redisEnv, serverUrl: redisUrl } = await startRedis()

  const algorithm = args.algorithm as typeof ALGORITHMS[number]
  const jwtSecret = randomBytes(48).toString('base64url')
  const jwtKeys = algorithm === 'HS256' ? null : generateKeySetJson(algorithm)
  const signingKey = jwtKeys === null ? hs256KeySet(jwtSecret).current : parseKeySet(jwtKeys, undefined).current
  const refreshSecret = randomBytes(48).toString('base64url')
  const passwordHash = await argon2.hash(PASSWORD, ARGON2)

  // --- seed: users, then one family per session, through the service's own store code ---
  log(`seeding ${SESSIONS} sessions`)
  const users = new RedisUserDirectory(redis, PREFIX)
  const policy = { idleTtlSeconds: 604_800, absoluteTtlSeconds: 2_592_000, reuseGraceSeconds: 10, maxFamiliesPerUser: 100, refreshLimit: { max: SESSION_REFRESH_LIMIT, windowSeconds: 60 }, rememberEndedMs: 605_000 }
  const store = new RedisFamilyStore(redis, policy, PREFIX)
  const codec = new RefreshTokenCodec(refreshSecret)
  const userCount = Math.ceil(SESSIONS / 100)
  const accounts: Array<{ id: string, email: string }> = []
  for (let i = 0; i < userCount; i += 500) {
    const batch = await Promise.all(Array.from({ length: Math.min(500, userCount - i) }, (_, j) => users.create(`bench-user-${i + j}@example.com`, passwordHash)))
    for (const user of batch) if (user !== null) accounts.push(user)
  }
  // Accounts for the login runs and for the access tokens of the /me runs, apart from the ones holding the seeded
  // sessions and from each other: every login starts a family, and past MAX_SESSIONS_PER_USER that evicts (and
  // revokes) the least recently used. A seeded family evicted so answers 401 when the pool reaches its token (a CI
  // run whose warm-up had not reached it yet counted one); an access token's family evicted fails /me.
  const accountsApart = async (name: string, count: number): Promise<string[]> => {
    const emails = Array.from({ length: count }, (_, i) => `bench-${name}-${i}@example.com`)
    await Promise.all(emails.map((email) => users.create(email, passwordHash)))
    return emails
  }
  const loginAccounts = await accountsApart('login', 200)
  const accessTokenAccounts = await accountsApart('me', 20)
  // Memory per session is measured on one server: a cluster spreads the keys and the figures over its masters.
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1])
  const memoryBefore = args.cluster ? 0 : await usedMemory()
  const tokens: string[] = []
  for (let i = 0; i < SESSIONS; i += 1000) {
    await Promise.all(Array.from({ length: Math.min(1000, SESSIONS - i) }, async (_, j) => {
      const account = accounts[(i + j) % accounts.length] as { id: string, email: string }
      const sealed = codec.seal(codec.mint(account.id))
      await store.create({ userId: account.id, email: account.email, familyId: sealed.token.familyId, tokenHash: sealed.digest, userAgent: USER_AGENT, ip: `203.0.113.${(i + j) % 250}` })
      tokens.push(sealed.value)
    }))
  }
  const measureMemory = async () => {
    const memoryAfter = await usedMemory()
    const familyKeys = (await redis.scan('0', 'MATCH', `${PREFIX}{*}:f:*`, 'COUNT', 5000))[1].slice(0, 500)
    const indexKeys = (await redis.scan('0', 'MATCH', `${PREFIX}{*}:fams`, 'COUNT', 20000))[1].slice(0, 100)
    const usage = async (keys: string[]) => (await Promise.all(keys.map((k) => redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '0') as Promise<number>))).reduce((a, b) => a + b, 0) / keys.length
    const familyBytes = await usage(familyKeys)
    const indexBytesPerSession = (await usage(indexKeys)) / 100
    // The seeded agent is a browser's, which the store compacts (src/compact-user-agent.ts); a client
    // outside its table (a script, a load tester) is stored as sent. 200 such families, then removed.
    const unlisted = Array.from({ length: 200 }, (_, i) => codec.mint(accounts[i % accounts.length]?.id as string))
    const unlistedAgent = `bench-client/1.0 (unlisted; ${'x'.repeat(USER_AGENT.length - 29)})`
    await Promise.all(unlisted.map((token) => store.create({ userId: token.userId, email: 'x@example.com', familyId: token.familyId, tokenHash: codec.seal(token).digest, userAgent: unlistedAgent, ip: '203.0.113.1' })))
    const unlistedKeys = unlisted.map((token) => `${PREFIX}{${token.userId}}:f:${token.familyId}`)
    const unlistedAgentFamilyKeyBytes = await usage(unlistedKeys)
    await Promise.all(unlisted.map((token) => store.revoke(token.userId, token.familyId)))
    const memory = {
      sessions: SESSIONS,
      usedMemoryDeltaPerSession: (memoryAfter - memoryBefore) / SESSIONS,
      memoryUsagePerSession: familyBytes + indexBytesPerSession,
      familyKeyBytes: familyBytes,
      indexBytesPerSession,
      familyEncoding: await redis.call('OBJECT', 'ENCODING', familyKeys[0] as string) as string,
      userAgentLength: USER_AGENT.length,
      unlistedAgentFamilyKeyBytes,
      /** Filled in after the runs: the same families, rotated, with their refresh-limit window. */
      familyKeyBytesAfterRuns: 0
    }
    log(`memory: ${memory.usedMemoryDeltaPerSession.toFixed(0)} B/session (used_memory delta), ${memory.memoryUsagePerSession.toFixed(0)} B (MEMORY USAGE)`)
    return { memory, bytesAfterRuns: () => usage(familyKeys) }
  }
  const measured = args.cluster ? null : await measureMemory()
  // The minimal refresh's own families (bare-fastify.ts), as many as the service's, seeded after the memory
  // figures: `minimal:<familyId>` holds the secret's SHA-256 and the user's email.
  const minimalTokens: string[] = []
  for (let i = 0; i < (args.cluster ? 0 : SESSIONS); i += 1000) {
    const batch = redis.pipeline()
    for (let j = i; j < Math.min(i + 1000, SESSIONS); j++) {
      const account = accounts[j % accounts.length] as { id: string, email: string }
      const familyId = randomBytes(16).toString('base64url')
      const secret = randomBytes(16).toString('base64url')
      batch.set(`minimal:${familyId}`, hash('sha256', secret, 'base64url') + account.email, 'EX', 604_800)
      minimalTokens.push(`${account.id}.${familyId}.${secret}`)
    }
    await batch.exec()
  }

  // --- processes: the service and the baselines ---
  const ports = { service: await freePort(), serviceLogged: await freePort(), bare: await freePort(), tutorial: await freePort(), tutorialKey: await freePort() }
  const productionEnv = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    ...redisEnv,
    ...(jwtKeys === null ? { JWT_SECRET: jwtSecret } : { JWT_KEYS: jwtKeys }),
    REFRESH_TOKEN_SECRET: refreshSecret,
    // All load comes from one loopback address: per-IP limits would measure the limiter, not the service.
    RATE_LIMIT_REFRESH_IP: '100000000/60',
    RATE_LIMIT_LOGIN_IP: '100000000/60',
    RATE_LIMIT_REFRESH_SESSION: `${SESSION_REFRESH_LIMIT}/60`,
    // --env KEY=VALUE: a setting of the service to try (it is recorded in the results).
    ...serviceEnv
  }
  const variantPort = await freePort()
  const bareEnv = {
    REDIS_URL: redisUrl,
    JWT_VERIFY_KEY: signingKey.verifyKey,
    JWT_ALGORITHM: signingKey.alg,
    PASSWORD_HASH: passwordHash,
    // The refresh floor (bare-fastify.ts): the service's store, codec and key, nothing else.
    JWT_SIGN_KEY: signingKey.signKey,
    JWT_KID: signingKey.kid,
    REFRESH_TOKEN_SECRET: refreshSecret,
    FAMILY_POLICY: JSON.stringify(policy),
    REDIS_KEY_PREFIX: PREFIX,
    COOKIE_NAME: COOKIE
  }
  const tutorialSecrets = { ACCESS_TOKEN_SECRET: randomBytes(32).toString('hex'), REFRESH_TOKEN_SECRET: 'tutorial-refresh-secret-' + randomBytes(16).toString('hex') }
  const base = (port: number) => `http://127.0.0.1:${port}`
  log('compiling the service and the baselines')
  const [build, variantBuild] = await Promise.all([
    compile(resolvePath('.'), 'tsconfig.bench.json'),
    // Another checkout's commit may predate tsconfig.bench.json: its service is all the variant runs.
    variantCheckout !== undefined ? compile(resolvePath(variantCheckout), 'tsconfig.json') : undefined
  ])
  // Each server: its script, its environment, and a URL that answers once it is ready.
  const serverSpecs: Record<string, { script: string, env: Record<string, string>, ready: string }> = {
    service: { script: join(build, 'src/server.js'), env: { ...productionEnv, PORT: String(ports.service) }, ready: `${base(ports.service)}/health/ready` },
    // The same service logging a line for every request, successes of the hot routes included: what that costs.
    serviceLogged: { script: join(build, 'src/server.js'), env: { ...productionEnv, ACCESS_LOG: 'all', PORT: String(ports.serviceLogged) }, ready: `${base(ports.serviceLogged)}/health/ready` },
    ...(withVariant
      ? { variant: { script: join(variantBuild ?? build, 'src/server.js'), env: { ...productionEnv, ...variantEnv, PORT: String(variantPort) }, ready: `${base(variantPort)}/health/ready` } }
      : {}),
    bare: { script: join(build, 'bench/baselines/bare-fastify.js'), env: { PORT: String(ports.bare), ...bareEnv }, ready: `${base(ports.bare)}/hello` },
    tutorial: { script: join(build, 'bench/baselines/tutorial-express.js'), env: { PORT: String(ports.tutorial), ...tutorialSecrets }, ready: `${base(ports.tutorial)}/token` },
    tutorialKey: { script: join(build, 'bench/baselines/tutorial-express.js'), env: { PORT: String(ports.tutorialKey), KEY_MODE: 'keyobject', ...tutorialSecrets }, ready: `${base(ports.tutorialKey)}/token` }
  }
  const startServers = async (): Promise<Record<string, ChildProcess>> => {
    const started: Record<string, ChildProcess> = {}
    for (const [name, spec] of Object.entries(serverSpecs)) started[name] = await startProcess(name, spec.script, spec.env)
    await Promise.all(Object.values(serverSpecs).map((spec) => waitForHttp(spec.ready)))
    return started
  }
  let servers = await startServers()
  /** The process of that name serving now: every round after the first gets new ones (bench/README.md). */
  const server = (name: string): ChildProcess => servers[name] as ChildProcess
  // What each server process was started as, read back from the kernel: the report shows it ran compiled.
  const serverCommands = Object.fromEntries(Object.keys(serverSpecs).map((name) => [name,
    readFileSync(`/proc/${server(name).pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '')
      .map((arg) => arg === serverNode.path ? 'node' : arg.replace(build, '<build>').replace(variantBuild ?? build, '<variant build>')).join(' ')]))

  // Access tokens minted by the service, presented repeatedly like real clients do.
  const accessTokens: string[] = []
  for (const email of accessTokenAccounts) {
    const res = await fetch(`${base(ports.service)}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
    accessTokens.push((await res.json() as { accessToken: string }).accessToken)
  }
  const tutorialBody = JSON.stringify({ refreshToken: tutorialRefreshToken(tutorialSecrets.REFRESH_TOKEN_SECRET) })

  const pool = new TokenPool(tokens)
  const minimalPool = new TokenPool(minimalTokens)
  // One request per token, built once: each connection presents the 20 tokens in turn, as clients
  // present theirs on every call. Nothing changes per request, so autocannon sends prebuilt buffers
  // as it does for the bare route, and the load generator costs both runs the same.
  const withAccessTokens = (path: string): autocannon.Request[] =>
    accessTokens.map((token) => ({ method: 'GET', path, headers: { authorization: `Bearer ${token}` } }))
  const refreshRequest = (path: string, tokenPool: TokenPool): autocannon.Request => ({
    method: 'POST',
    path,
    setupRequest: (req) => ({ ...req, headers: { cookie: `${COOKIE}=${tokenPool.take()}` } }),
    onResponse: (status, _body, _context, headers) => {
      const next = status === 200 ? setCookieToken(headers as Record<string, string>) : undefined
      if (next !== undefined) tokenPool.put(next)
    }
  })
  let loginIndex = 0
  const scenarios: Record<string, () => Load> = {
    bare: () => ({ url: `${base(ports.bare)}/hello`, server: server('bare'), connections: CONNECTIONS }),
    bareRedis: () => ({ url: `${base(ports.bare)}/redis`, server: server('bare'), connections: CONNECTIONS }),
    signRedis: () => ({ url: `${base(ports.bare)}/sign-redis`, server: server('bare'), connections: CONNECTIONS, method: 'POST' }),
    // A route that does nothing, through every hook of the service (logging, headers, CORS, limits).
    live: () => ({ url: `${base(ports.service)}/health/live`, server: server('service'), connections: CONNECTIONS }),
    refresh: () => ({
      url: base(ports.service),
      server: server('service'),
      connections: CONNECTIONS,
      requests: [refreshRequest('/auth/refresh', pool)]
    }),
    // The same pool and feedback as refresh: both rotate the same seeded families.
    refreshFloor: () => ({ ...scenarios.refresh!(), url: base(ports.bare), server: server('bare'), requests: [refreshRequest('/refresh-floor', pool)] }),
    // The same feedback, over families of its own.
    refreshMinimal: () => ({ ...scenarios.refresh!(), url: base(ports.bare), server: server('bare'), requests: [refreshRequest('/refresh-minimal', minimalPool)] }),
    tutorial: () => ({ url: `${base(ports.tutorial)}/token`, server: server('tutorial'), connections: CONNECTIONS, method: 'POST', headers: { 'content-type': 'application/json' }, body: tutorialBody }),
    tutorialKeyObject: () => ({ url: `${base(ports.tutorialKey)}/token`, server: server('tutorialKey'), connections: CONNECTIONS, method: 'POST', headers: { 'content-type': 'application/json' }, body: tutorialBody }),
    me: () => ({ url: base(ports.service), server: server('service'), connections: CONNECTIONS, requests: withAccessTokens('/me') }),
    verifyRaw: () => ({ url: base(ports.bare), server: server('bare'), connections: CONNECTIONS, requests: withAccessTokens('/verify') }),
    login: () => ({
      url: base(ports.service),
      server: server('service'),
      connections: LOGIN_CONNECTIONS,
      requests: [{
        method: 'POST',
        path: '/auth/login',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ email: loginAccounts[loginIndex++ % loginAccounts.length], password: PASSWORD }) })
      }]
    }),
    argon2Raw: () => ({ url: `${base(ports.bare)}/argon2`, server: server('bare'), connections: LOGIN_CONNECTIONS, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: PASSWORD }) })
  }

  /** A run of the service, against another service process. */
  const against = (name: string, port: number, serverName: string) => (): Load => {
    const run = (scenarios[name] as () => Load)()
    return { ...run, url: run.url.replace(base(ports.service), base(port)), server: server(serverName) }
  }
  scenarios.refreshLogged = against('refresh', ports.serviceLogged, 'serviceLogged')
  scenarios.meLogged = against('me', ports.serviceLogged, 'serviceLogged')
  // --variant: every run of the service again, against the variant.
  if (withVariant) {
    for (const name of VARIANT_RUNS) scenarios[`${name}@variant`] = against(name, variantPort, 'variant')
  }

  if (args.profile !== undefined) {
    const scenario = scenarios[args.scenario] as () => Load
    await load(scenario(), 2)
    const m = await load(scenario(), DURATION_S)
    log(`profiled ${args.scenario}: ${m.rps.toFixed(0)} req/s; ${describeCpu(m.cpu)}; machine idle ${m.machineIdlePercent.toFixed(0)} %`)
    log(`stopping the server to write its profile under ${args.profile}`)
    await stopProcess(scenario().server)
    redis.disconnect()
    return
  }

  // --only a,b[,flood]: just these runs (and the two login-flood runs if "flood" is listed).
  const only = args.only?.split(',')
  // Every run at once, for a couple of seconds: enough for each server to compile the code its runs take,
  // and a round of new processes costs seconds, not a run's length per run.
  const warmUp = async (): Promise<void> => {
    await Promise.all(Object.entries(scenarios).filter(([name]) => only === undefined || only.includes(name)).map(([, make]) => load(make(), Math.min(2, DURATION_S * 2))))
  }
  log('warming up')
  await warmUp()

  const rounds: Results['rounds'] = []
  const commandsPerRefresh: Array<ReturnType<typeof perRefresh>> = []
  for (let round = 0; round < ROUNDS; round++) {
    if (round > 0) {
      // New processes every round, as JMH forks a new JVM per fork: on this machine one process of the same
      // code can serve a third slower or faster than another for its whole life (bench/README.md), which
      // alternating rounds against the same processes would never average out.
      log(`round ${round + 1}/${ROUNDS}: new server processes`)
      await Promise.all(Object.values(servers).map(stopProcess))
      servers = await startServers()
      await warmUp()
    }
    log(`round ${round + 1}/${ROUNDS}`)
    const r: Record<string, Measurement> = {}
    // Alternate: each target right after (or before) its baseline, order flipped every round.
    const order = only?.filter((name) => name !== 'flood') ?? RUNS
    for (const name of round % 2 === 0 ? order : [...order].reverse()) {
      const before = name === 'refresh' ? await commandStats(redis) : new Map<string, number>()
      r[name] = await load((scenarios[name] as () => Load)())
      if (name === 'refresh') commandsPerRefresh.push(perRefresh(before, await commandStats(redis), (r.refresh as Measurement).requests))
    }
    if (only !== undefined && !only.includes('flood')) {
      rounds.push(r)
      continue
    }
    // A login flood (more concurrent logins than cores) under refresh and /me load.
    const [refreshUnderFlood] = await Promise.all([load(scenarios.refresh!()), load(scenarios.login!())])
    const [meUnderFlood] = await Promise.all([load(scenarios.me!()), load(scenarios.login!())])
    r.refreshUnderLoginFlood = refreshUnderFlood
    r.meUnderLoginFlood = meUnderFlood
    rounds.push(r)
  }

  if (only !== undefined) {
    // A quick comparison, not a result: printed, nothing written.
    const first = only[0] as string // ratios are to the first run named
    for (const name of Object.keys(rounds[0] ?? {})) {
      const rps = median(rounds.map((r) => (r[name] as Measurement).rps))
      const ratio = median(rounds.map((r) => (r[name] as Measurement).rps / (r[first] as Measurement).rps))
      const p99 = median(rounds.map((r) => (r[name] as Measurement).p99))
      const cpu = Object.fromEntries(Object.keys((rounds[0]?.[name] as Measurement).cpu).map((k) =>
        [k, median(rounds.map((r) => (r[name] as Measurement).cpu[k as keyof Measurement['cpu']]))])) as Measurement['cpu']
      const idle = median(rounds.map((r) => (r[name] as Measurement).machineIdlePercent))
      const non2xx = rounds.reduce((sum, r) => sum + (r[name] as Measurement).non2xx, 0)
      log(`${name}: ${rps.toFixed(0)} req/s, p99 ${p99.toFixed(2)} ms, ${ratio.toFixed(3)} of ${first} (median of ${rounds.length}), ${non2xx} non-2xx in all${describeFailures(rounds.map((r) => r[name] as Measurement))}; ${describeCpu(cpu)}; machine idle ${idle.toFixed(0)} %`)
    }
    if (commandsPerRefresh.length > 0) {
      const roundTrips = median(commandsPerRefresh.map((c) => c.roundTrips))
      log(`refresh: ${roundTrips.toFixed(4)} Redis commands from clients per refresh (median of ${commandsPerRefresh.length}), in the last round ${JSON.stringify(commandsPerRefresh.at(-1)?.clientCommands)}`)
    }
    redis.disconnect()
    return
  }

  const algorithms = measureAlgorithms(build)
  if (measured === null) throw new Error('no memory figures: --cluster runs are printed, not written')
  const { memory } = measured
  memory.familyKeyBytesAfterRuns = await measured.bytesAfterRuns()
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server('service').pid}/status`, 'utf8'))?.[1])
  const results: Results = {
    date: new Date().toISOString(),
    commit: await gitCommit(),
    machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    settings: { algorithm, serverNode: serverNode.version, serverNodeSource: serverNode.source, serviceEnv, serverCommands, durationSeconds: DURATION_S, rounds: ROUNDS, sessions: SESSIONS, connections: CONNECTIONS, loginConnections: LOGIN_CONNECTIONS, argon2: { memoryCost: ARGON2.memoryCost, timeCost: ARGON2.timeCost, parallelism: ARGON2.parallelism } },
    rounds,
    redis: { commandsPerRefresh, memory },
    serviceRssMb: rssKb / 1024,
    algorithms,
    elapsedSeconds: (Date.now() - benchStarted) / 1000
  }
  mkdirSync(args.out, { recursive: true })
  writeReport(results, args.out)
  log(`wrote ${args.out}/latest.{json,md,svg} in ${results.elapsedSeconds.toFixed(0)} s`)
  redis.disconnect()
}

function git (...gitArgs: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('git', gitArgs, { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.on('data', (d) => { out += String(d) })
    child.on('exit', () => resolve(out.trim()))
    child.on('error', () => resolve(''))
  })
}

/** The commit measured, marked "-dirty" when the code differs from it (results files aside). */
async function gitCommit (): Promise<string> {
  const commit = await git('rev-parse', '--short', 'HEAD')
  const changes = (await git('status', '--porcelain')).split('\n').filter((l) => l !== '' && !l.includes('bench/results/'))
  return `${commit || 'unknown'}${changes.length > 0 ? '-dirty' : ''}`
}

/** Stops the servers, then the private cluster (its nodes and directories), before the bench exits. */
async function finish (code: number): Promise<never> {
  for (const child of children) {
    stopping.add(child)
    child.kill('SIGKILL')
  }
  await Promise.all(teardowns.splice(0).map((fn) => fn()))
  process.exit(code)
}

main().then(() => finish(0), async (err: unknown) => {
  log(`failed: ${(err as Error).stack ?? String(err)}`)
  await finish(1)
})
