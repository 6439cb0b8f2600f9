import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseDockerfile } from './helpers/dockerfile.js'
import { imageNode } from './helpers/image-node.js'

function bench (...args: string[]): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += String(d) })
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })))
}

// Two bench runs of fixed lengths: about 95 s here, but 120 s with a busy loop beside it, the suite's limit per file.
// Each case has its own 120 s; the file, the two together.
t.setTimeout(240_000)

// Proves `npm run bench` works end to end, in a few seconds: no figure is asserted, only that
// every run happened, without errors, each round on new server processes, and that the report was written.
t.test('the benchmark runs end to end and writes its report', { timeout: 120_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  // Hashing threads at the service's default nice 19 get almost no CPU while other processes keep the cores busy
  // (the suite's other files, in parallel): logins then complete none in a 0.5 s run. Here they run at the
  // priority of everything else; the full bench keeps the default.
  const { code, stderr } = await bench('--rounds', '2', '--duration', '0.5', '--sessions', '2000', '--env', 'ARGON2_THREAD_NICE=0', '--out', out)
  t.equal(code, 0, stderr.slice(-2000))

  const results = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'))
  const runs = ['bare', 'bareRedis', 'signRedis', 'refreshMinimal', 'live', 'refreshFloor', 'refresh', 'refreshLogged', 'tutorial', 'tutorialKeyObject', 'verifyRaw', 'me', 'meLogged',
    'login', 'argon2Raw', 'refreshUnderLoginFlood', 'meUnderLoginFlood']
  for (const run of runs) {
    t.ok(results.rounds[0][run].requests > 0, `${run} made requests`)
    t.equal(results.rounds[0][run].non2xx, 0, `${run}: no non-2xx`, { failures: results.rounds[0][run].failures, stderr: stderr.slice(-2000) })
    t.ok(results.rounds[0][run].cpu.serverMainUs > 0, `${run}: the server's CPU per request was measured`)
    const idle = results.rounds[0][run].machineIdlePercent
    t.ok(idle >= 0 && idle <= 100, `${run}: the machine's idle share was measured (${idle} %)`)
    t.ok(results.rounds[1][run].requests > 0, `${run} made requests in the second round too`)
    t.not(results.rounds[1][run].serverPid, results.rounds[0][run].serverPid, `${run}: the second round was served by a new process`)
  }
  // The image's CMD, with its build directory (dist/) standing for the bench's.
  const cmd = parseDockerfile(readFileSync('Dockerfile', 'utf8')).at(-1)?.cmd ?? []
  t.equal(results.settings.serverCommands.service, cmd.join(' ').replace(/ dist\//, ' <build>/'), 'the service ran as the container runs it: compiled, with no loader')
  t.equal(results.settings.serverCommands.bare, 'node <build>/bench/baselines/bare-fastify.js', 'and so did its baselines')
  t.equal(results.settings.serverNode, (await imageNode()).version, 'every server ran on the image\'s Node.js')
  t.equal(results.ratios.length, 9, 'every target reported')
  t.equal(results.context.length, 10, 'and the context ratios')
  t.ok(results.serviceRefreshCeiling.cpu.ratioToBare > 0 && results.serviceRefreshCeiling.eventLoop.ratioToBare > 0, 'and the ceilings of the service\'s refresh / bare, from all its CPU and from its event loop')
  t.ok(results.refreshCeiling.ratioToBare > 0, 'and the ceiling of the refresh floor / bare')
  t.ok(results.minimalRefreshCeiling.cpu.ratioToBare > 0 && results.minimalRefreshCeiling.eventLoop.ratioToBare > 0, 'and those of the least any refresh can do')
  t.ok(results.signRedisCeiling.ratioToBare > 0, 'and that of one signature and one Redis round trip')
  t.same(results.targetCeilings.map((c: { name: string }) => c.name), results.ratios.filter((r: { name: string }) => r.name.startsWith('refresh / ')).map((r: { name: string }) => r.name), 'and each refresh throughput target at the service\'s and the minimal refresh\'s CPU ceilings')
  t.ok(Math.abs(results.redis.commandsPerRefresh[0].roundTrips - 1) < 0.1, 'about one Redis command per refresh')
  const { evalsha, ...others } = results.redis.commandsPerRefresh[0].clientCommands as Record<string, number>
  t.ok(Math.abs((evalsha ?? 0) - 1) < 0.1, 'and it is the rotation script')
  // The revocation subscriber's PING and catch-up read run once a second whatever the traffic: not per refresh.
  t.ok(Object.keys(others).every((name) => ['ping', 'zrangebyscore'].includes(name)) && Object.values(others).every((perRefresh) => perRefresh < 0.01),
    'any other command is a background one, far under one per refresh', { others })
  t.match(readFileSync(join(out, 'latest.md'), 'utf8'), /\| refresh \/ bare Fastify \|/)
  t.match(readFileSync(join(out, 'latest.svg'), 'utf8'), /^<svg /)
})

t.test('on a Redis Cluster, the service\'s runs are measured and printed, and the cluster is gone afterwards', { timeout: 120_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bench-smoke-cluster-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const { code, stderr } = await bench('--cluster', '--only', 'refresh,me', '--rounds', '1', '--duration', '0.5', '--sessions', '2000', '--out', out)
  t.equal(code, 0, stderr.slice(-2000))
  const ports = /on a Redis Cluster of 3 masters, ports (\d+), (\d+), (\d+)/.exec(stderr)?.slice(1).map(Number) ?? []
  t.equal(ports.length, 3, 'three masters started', { stderr: stderr.slice(-2000) })
  for (const run of ['refresh', 'me']) {
    const [line, rps, non2xx] = new RegExp(`\\] ${run}: (\\d+) req/s, .*, (\\d+) non-2xx in all[^;]*;`).exec(stderr) ?? []
    t.ok(Number(rps) > 0, `${run} served requests (${rps} req/s)`)
    t.equal(non2xx, '0', `${run}: no non-2xx`, { line })
  }
  // The cluster's commands summed over its masters: the rotation script is one command per refresh there too.
  const roundTrips = Number(/refresh: ([\d.]+) Redis commands from clients per refresh/.exec(stderr)?.[1])
  t.ok(Math.abs(roundTrips - 1) < 0.1, `about one Redis command per refresh (${roundTrips})`)
  t.same(readdirSync(out), [], 'nothing written: the figures of a cluster run are printed')
  const refused = await Promise.all(ports.map((port) => new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => { resolve(true) })
  })))
  t.same(refused, [true, true, true], 'and no master is left running')
})
