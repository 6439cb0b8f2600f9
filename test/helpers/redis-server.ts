import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { within } from './poll.js'
import type { TestCertificates } from './tls.js'

/**
 * A free TCP port on loopback for a server to be started on. Picked below the kernel's ephemeral range: a port from
 * that range (listen(0)'s) can be handed, between this check and the server's start, to an outgoing connection as its
 * local port (a client of another test's Redis), and the server then fails to start (seen in CI-like runs). Never the
 * same port twice in a process: a cluster picks every node's ports before it starts any, so a port still free when
 * checked may be one already picked for another node (a TLS cluster's node failed to start so in CI).
 */
export async function freePort (): Promise<number> {
  const top = Math.max(2048, ephemeralRangeStart() - 1)
  const bottom = Math.max(1024, top - 12_000)
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom + 1))
    if (!handedOut.has(port) && await bindable(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error(`no free port found between ${bottom} and ${top}`)
}

const handedOut = new Set<number>()

/** The first port the kernel hands out as a local port (Linux's default where /proc does not say). */
function ephemeralRangeStart (): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768
  } catch {
    return 32768
  }
}

function bindable (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** Resolves once the server `child` started answers PING; throws if it exits first (port taken?) or takes over 5 s. */
async function answering (child: ChildProcess, port: number, password: string, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited at start (port taken?)`)
    if (await oneCommand(port, password, ['PING']).then((r) => r === 'PONG', () => false)) return
    await sleep(25)
  }
  throw new Error(`${what} did not start`)
}

/** Kills a server at once (SIGKILL) and waits until it is gone. */
async function killed (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

/**
 * One command on a short-lived connection to a server on loopback: no retries, no queue, and a handshake of HELLO
 * alone, so a test can read from the server's error statistics what the service was refused.
 */
async function oneCommand (port: number, password: string, args: Array<string | number>): Promise<unknown> {
  const client = new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, disableClientInfo: true, maintNotifications: 'disabled' })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.call(String(args[0]), ...args.slice(1).map(String))
  } finally {
    client.disconnect()
  }
}

/**
 * A redis-server of the test's own, on a free loopback port with its own directory,
 * so fault tests can stop, kill, pause and restart it without touching anyone's data.
 *
 * Each one has a random password. Tests run in parallel, and an app whose Redis was killed keeps
 * reconnecting to that port: without a password, it would join whichever private Redis (or
 * benchmark Redis) the OS later hands the same port to, and send commands there.
 */
export interface PrivateRedisOptions {
  appendOnly?: boolean
  /** Another server's password, for a replica that its master's clients must also be able to use. */
  password?: string
  /** More redis-server arguments, e.g. `--replicaof`. */
  args?: string[]
}

export class PrivateRedis {
  readonly port: number
  readonly dir: string
  readonly url: string
  readonly password: string
  readonly #options: PrivateRedisOptions
  #process: ChildProcess | null = null

  private constructor (port: number, options: PrivateRedisOptions) {
    this.port = port
    this.dir = mkdtempSync(join(tmpdir(), 'auth-redis-'))
    this.password = options.password ?? randomBytes(16).toString('hex')
    this.url = `redis://:${this.password}@127.0.0.1:${port}`
    this.#options = options
  }

  /** A private Redis with its port and URL chosen but not yet running: the "Redis down at start" fault. */
  static async create (t: { teardown (fn: () => unknown): void }, options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), options)
    t.teardown(async () => {
      await redis.kill()
      rmSync(redis.dir, { recursive: true, force: true })
    })
    return redis
  }

  static async start (t: { teardown (fn: () => unknown): void }, options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const redis = await PrivateRedis.create(t, options)
    await redis.start()
    return redis
  }

  async start (): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--requirepass', this.password, '--dir', this.dir, '--save', '',
      '--appendonly', this.#options.appendOnly === true ? 'yes' : 'no', '--appendfsync', 'always', '--daemonize', 'no', '--enable-debug-command', 'local',
      ...(this.#options.args ?? [])]
    this.#process = spawn('redis-server', args, { stdio: 'ignore' })
    await answering(this.#process, this.port, this.password, `private redis on ${this.port}`)
  }

  /** The running server's process id (the bench reads its CPU time); undefined while it is not running. */
  get pid (): number | undefined {
    return this.#process?.pid
  }

  /** Kills the server at once (SIGKILL): the "Redis crashed" fault. */
  async kill (): Promise<void> {
    const child = this.#process
    this.#process = null
    if (child !== null) await killed(child)
  }

  async restart (): Promise<void> {
    await this.kill()
    await this.start()
  }

  /**
   * Blocks the server for `seconds` (DEBUG SLEEP), from a connection of its own: every command sent meanwhile waits,
   * then runs, as on a server too busy to answer. Resolves once the block has begun; `woken` resolves when the server
   * answers again (or that connection is gone: a server killed while blocked).
   */
  async stall (t: { teardown (fn: () => unknown): void }, seconds: number): Promise<{ woken: Promise<void> }> {
    const staller = new Redis(this.url)
    staller.on('error', () => {})
    t.teardown(() => staller.disconnect())
    await staller.ping()
    const woken = staller.call('DEBUG', 'SLEEP', String(seconds)).then(() => {}, () => {})
    await sleep(100)
    return { woken }
  }

  /**
   * Stops the server (SIGSTOP) without closing anything: connections stay open and the kernel still accepts new
   * ones, but nothing answers — what a client sees of a server cut off by a network partition or frozen.
   */
  pause (): void {
    this.#process?.kill('SIGSTOP')
  }

  resume (): void {
    this.#process?.kill('SIGCONT')
  }

  /** Runs one command on a short-lived connection. */
  async command (...args: Array<string | number>): Promise<unknown> {
    return oneCommand(this.port, this.password, args)
  }

  /**
   * Full: a `maxmemory` below what it holds, under `noeviction`, so that it refuses every command that may add to it
   * (`OOM command not allowed …`) and still takes deletions, as a Redis that has run out of room does.
   */
  async fill (): Promise<void> {
    await this.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
    await this.command('CONFIG', 'SET', 'maxmemory', '1')
  }

  /** Room again after fill(): no memory limit. */
  async makeRoom (): Promise<void> {
    await this.command('CONFIG', 'SET', 'maxmemory', '0')
  }

  /** One field of `INFO replication`: `role`, `master_link_status`, an offset. */
  async replication (name: string): Promise<string | undefined> {
    return new RegExp(`^${name}:(\\S+)`, 'm').exec(String(await this.command('INFO', 'replication')))?.[1]
  }

  /** Waits until this replica has everything `master` has written so far: what it has is what survives a failover. */
  async caughtUpWith (master: PrivateRedis, timeoutMs = 5000): Promise<void> {
    const written = Number(await master.replication('master_repl_offset'))
    await within(timeoutMs, async () => Number(await this.replication('slave_repl_offset')) >= written, `the replica on ${this.port} has every write`)
  }
}

export interface SentinelOptions {
  masterName?: string
  /** A port and password chosen before, e.g. ones a service was already told of. */
  port?: number
  password?: string
  tls?: { certs: { ca: string, cert: string, key: string }, port: number, masterPort: number }
}

/**
 * A Redis Sentinel of the test's own, watching one private master (quorum 1: it alone decides a failover).
 * It has a password of its own, for the reason PrivateRedis has one.
 */
export class PrivateSentinel {
  readonly port: number
  readonly password: string
  readonly masterName: string

  private constructor (port: number, password: string, masterName: string) {
    this.port = port
    this.password = password
    this.masterName = masterName
  }

  /**
   * With `tls`, the Sentinel also listens on `tls.port`, reaches the servers it watches over TLS at the master's
   * `tls.masterPort`, and names them `localhost`, the name their certificates carry.
   */
  static async start (t: { teardown (fn: () => unknown): void }, master: PrivateRedis, options: SentinelOptions = {}): Promise<PrivateSentinel> {
    const masterName = options.masterName ?? 'authmaster'
    const tls = options.tls
    const port = options.port ?? await freePort()
    const dir = mkdtempSync(join(tmpdir(), 'auth-sentinel-'))
    const password = options.password ?? randomBytes(16).toString('hex')
    // Sentinel rewrites its configuration file as it learns the topology: it must be a file of its own.
    writeFileSync(join(dir, 'sentinel.conf'), [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `requirepass ${password}`,
      ...(tls === undefined
        ? [`sentinel monitor ${masterName} 127.0.0.1 ${master.port} 1`]
        : [`tls-port ${tls.port}`, `tls-cert-file ${tls.certs.cert}`, `tls-key-file ${tls.certs.key}`, `tls-ca-cert-file ${tls.certs.ca}`,
            'tls-auth-clients no', 'tls-replication yes', 'sentinel resolve-hostnames yes', 'sentinel announce-hostnames yes',
            `sentinel monitor ${masterName} localhost ${tls.masterPort} 1`]),
      `sentinel auth-pass ${masterName} ${master.password}`,
      `sentinel down-after-milliseconds ${masterName} 500`,
      `sentinel failover-timeout ${masterName} 5000`, ''
    ].join('\n'))
    const child = spawn('redis-server', [join(dir, 'sentinel.conf'), '--sentinel'], { stdio: 'ignore' })
    const sentinel = new PrivateSentinel(port, password, masterName)
    t.teardown(async () => {
      await killed(child)
      rmSync(dir, { recursive: true, force: true })
    })
    await answering(child, port, password, `private sentinel on ${port}`)
    return sentinel
  }

  /** Runs one command on a short-lived connection, e.g. `SENTINEL get-master-addr-by-name`. */
  async command (...args: Array<string | number>): Promise<unknown> {
    return oneCommand(this.port, this.password, args)
  }

  /** The port of the server the Sentinel names as master now. */
  async masterPort (): Promise<number> {
    const [, port] = await this.command('SENTINEL', 'get-master-addr-by-name', this.masterName) as [string, string]
    return Number(port)
  }
}

/**
 * A master, its replica in sync, and a Sentinel that knows both; `env` points a service at them. With `certs`,
 * everything the service is told of is TLS and reached by name (`localhost`, the name the certificates carry);
 * the plain ports stay open for the test's own commands. `replicaPort` is the port the Sentinel names it by.
 */
export async function replicatedUnderSentinel (t: { teardown (fn: () => unknown): void }, options: { masterArgs?: string[], certs?: TestCertificates } = {}) {
  const certs = options.certs
  const tlsArgs = certs === undefined ? [] : ['--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no']
  const [masterTls, replicaTls, sentinelTls] = certs === undefined ? [0, 0, 0] : [await freePort(), await freePort(), await freePort()]
  // Full sync at once: a diskless sync otherwise waits 5 s for more replicas to join it.
  const master = await PrivateRedis.start(t, {
    args: ['--repl-diskless-sync-delay', '0', ...(certs === undefined ? [] : ['--tls-port', String(masterTls), ...tlsArgs]), ...(options.masterArgs ?? [])]
  })
  const replica = await PrivateRedis.start(t, {
    password: master.password,
    args: certs === undefined
      ? ['--replicaof', '127.0.0.1', String(master.port), '--masterauth', master.password]
      : ['--tls-port', String(replicaTls), ...tlsArgs, '--tls-replication', 'yes', '--replicaof', 'localhost', String(masterTls),
          '--masterauth', master.password, '--replica-announce-ip', 'localhost', '--replica-announce-port', String(replicaTls)]
  })
  const replicaPort = certs === undefined ? replica.port : replicaTls
  await within(5000, async () => await replica.replication('master_link_status') === 'up', 'the replica is in sync')
  const sentinel = await PrivateSentinel.start(t, master, certs === undefined ? {} : { tls: { certs, port: sentinelTls, masterPort: masterTls } })
  await within(15_000, async () => {
    const replicas = await sentinel.command('SENTINEL', 'replicas', sentinel.masterName) as string[][]
    return replicas.some((r) => r[r.indexOf('port') + 1] === String(replicaPort) && r[r.indexOf('flags') + 1] === 'slave')
  }, 'the Sentinel knows the replica')
  const env = {
    // Its host names no server: with Sentinels, the URL gives only the credentials and the database.
    REDIS_URL: `${certs === undefined ? 'redis' : 'rediss'}://:${master.password}@unused.invalid/0`,
    REDIS_SENTINELS: certs === undefined ? `127.0.0.1:${sentinel.port}` : `localhost:${sentinelTls}`,
    REDIS_SENTINEL_MASTER: sentinel.masterName,
    REDIS_SENTINEL_PASSWORD: sentinel.password
  }
  /** Waits until the replica has everything the master has written so far: what it has is what survives. */
  const replicated = async (): Promise<void> => { await replica.caughtUpWith(master) }
  return { master, replica, replicaPort, sentinel, env, replicated }
}

export interface ClusterOptions {
  masters?: number
  /** Replicas of each master: with one, the cluster fails a lost master over to its replica by itself. */
  replicas?: number
  appendOnly?: boolean
  /** Certificates for a cluster that speaks TLS to its clients and on its bus (test/helpers/tls.ts). */
  tls?: { ca: string, cert: string, key: string }
}

/**
 * A Redis Cluster of the test's own: `masters` private Redis servers, each with `replicas` replicas (none by
 * default), every hash slot assigned by `redis-cli --cluster create`. All nodes share one password, as a
 * cluster's clients need.
 */
export class PrivateCluster {
  readonly nodes: PrivateRedis[]
  readonly password: string
  /** With TLS: each node's TLS port, the one the cluster announces to TLS clients (as `localhost`). */
  readonly #tlsPorts: number[] | null

  readonly #replicas: number

  private constructor (nodes: PrivateRedis[], password: string, tlsPorts: number[] | null, replicas: number) {
    this.nodes = nodes
    this.password = password
    this.#tlsPorts = tlsPorts
    this.#replicas = replicas
  }

  /** The service's REDIS_URL for this cluster: the credentials only (the nodes come from REDIS_CLUSTER_NODES). */
  get url (): string {
    return `${this.#tlsPorts === null ? 'redis' : 'rediss'}://:${this.password}@cluster`
  }

  /** Every node, as a client's seed list (with TLS, by the name its certificate carries). */
  get seeds (): Array<{ host: string, port: number }> {
    const tlsPorts = this.#tlsPorts
    return tlsPorts === null
      ? this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }))
      : tlsPorts.map((port) => ({ host: 'localhost', port }))
  }

  /** The service's REDIS_CLUSTER_NODES: every node as a seed. */
  get seedList (): string {
    return this.seeds.map((n) => `${n.host}:${n.port}`).join(',')
  }

  /** A private cluster with its ports chosen but no node running yet: the "Redis down at start" fault. */
  static async create (t: { teardown (fn: () => unknown): void }, options: ClusterOptions = {}): Promise<PrivateCluster> {
    const password = randomBytes(16).toString('hex')
    const nodes: PrivateRedis[] = []
    const tlsPorts: number[] = []
    for (let i = 0; i < (options.masters ?? 3) * (1 + (options.replicas ?? 0)); i++) {
      // The bus port is set, not derived (port + 10000 can be past 65535 for a port from the ephemeral range).
      const busPort = await freePort()
      const tls = options.tls
      const tlsPort = tls === undefined ? 0 : await freePort()
      tlsPorts.push(tlsPort)
      nodes.push(await PrivateRedis.create(t, {
        password,
        appendOnly: options.appendOnly,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort),
          // A replica fails over however long since it last heard from its master: with the default factor the
          // replica of a master that had taken no writes since the cluster was made did not fail over within 15 s.
          '--cluster-node-timeout', '1000', '--cluster-replica-validity-factor', '0', '--masterauth', password,
          // A replica's first sync at once, as replicatedUnderSentinel's: a diskless sync otherwise waits 5 s for more
          // replicas to join it, and a test that waits 5 s for a replica to catch up raced that wait.
          '--repl-diskless-sync-delay', '0',
          // The plain port stays open for the test's own commands; TLS clients are told the TLS ports, by name.
          ...(tls === undefined
            ? []
            : ['--tls-port', String(tlsPort), '--tls-cluster', 'yes', '--tls-cert-file', tls.cert, '--tls-key-file', tls.key,
                '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no',
                '--cluster-announce-hostname', 'localhost', '--cluster-preferred-endpoint-type', 'hostname'])]
      }))
    }
    return new PrivateCluster(nodes, password, options.tls === undefined ? null : tlsPorts, options.replicas ?? 0)
  }

  static async start (t: { teardown (fn: () => unknown): void }, options: ClusterOptions = {}): Promise<PrivateCluster> {
    const cluster = await PrivateCluster.create(t, options)
    await cluster.start()
    return cluster
  }

  /** Starts every node and assigns all hash slots among them. */
  async start (): Promise<void> {
    for (const node of this.nodes) await node.start()
    await promisify(execFile)('redis-cli', ['-a', this.password, '--no-auth-warning', '--cluster', 'create',
      ...this.nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(this.#replicas), '--cluster-yes'], { timeout: 20_000 })
    await this.waitUntilOk()
  }

  /** The node that replicates `master`, once it is in sync with it (all it has written so far is on the replica). */
  async syncedReplicaOf (master: PrivateRedis): Promise<PrivateRedis> {
    const id = String(await master.command('CLUSTER', 'MYID'))
    let replica: PrivateRedis | undefined
    // Replicas are attached as the cluster is created; the master hears of its own a moment later.
    await within(5000, async () => {
      // <id> <ip:port@bus> <flags> <master id> ...
      const lines = String(await master.command('CLUSTER', 'NODES')).split('\n').map((l) => l.split(' '))
      const port = lines.find((f) => f[3] === id)?.[1]?.split(/[:@]/)[1]
      replica = this.nodes.find((n) => String(n.port) === port)
      return replica !== undefined
    }, `a replica of the node on ${master.port}`)
    const found = replica as PrivateRedis
    await found.caughtUpWith(master)
    return found
  }

  /**
   * Moves one hash slot with its keys from one master to another, by the steps `redis-cli --cluster reshard` takes
   * for each slot, slowed down: a key at a time, `pauseMs` apart. Meanwhile a command for a key already moved meets
   * ASK, and one over keys on both sides TRYAGAIN; once the slot is given away, a client with the old map meets MOVED.
   */
  async migrateSlot (slot: number, from: PrivateRedis, to: PrivateRedis, pauseMs: number): Promise<void> {
    const [fromId, toId] = await Promise.all([from, to].map(async (n) => String(await n.command('CLUSTER', 'MYID'))))
    await to.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId as string)
    await from.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId as string)
    for (;;) {
      const keys = await from.command('CLUSTER', 'GETKEYSINSLOT', slot, 1) as string[]
      if (keys.length === 0) break
      await from.command('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'AUTH', this.password, 'KEYS', ...keys)
      await sleep(pauseMs)
    }
    // The new owner first, as redis-cli does: told first, the old owner would send clients MOVED to a node still
    // importing the slot, which would send them back.
    for (const node of [to, from, ...this.nodes.filter((n) => n !== to && n !== from && n.pid !== undefined)]) {
      await node.command('CLUSTER', 'SETSLOT', slot, 'NODE', toId as string)
    }
  }

  /** Resolves once every running node says the cluster is ok (all slots served). */
  async waitUntilOk (timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const states = await Promise.all(this.nodes.map((n) => n.command('CLUSTER', 'INFO').then((info) => /cluster_state:ok/.test(String(info)), () => false)))
      if (states.every(Boolean)) return
      if (Date.now() > deadline) throw new Error('private cluster not ok in time')
      await sleep(100)
    }
  }
}
