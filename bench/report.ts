import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface Measurement {
  rps: number
  p50: number
  p99: number
  requests: number
  non2xx: number
  /** What the non-2xx were: each status answered, and autocannon's `errors` and `timeouts`; empty when there were none. */
  failures: Record<string, number>
  /** CPU microseconds per completed request: the server's event loop (and its part in the kernel), the whole server process, Redis, the load generator. */
  cpu: { serverMainUs: number, serverMainSystemUs: number, serverUs: number, redisUs: number, loadGeneratorUs: number }
  /** The share of all cores idle during the run, whoever else ran. */
  machineIdlePercent: number
  /** The server process measured: each round has new ones. */
  serverPid: number
}

export interface Results {
  date: string
  commit: string
  machine: { cores: number, cpu: string, node: string }
  settings: Record<string, unknown>
  rounds: Array<Record<string, Measurement>>
  redis: {
    commandsPerRefresh: Array<{ roundTrips: number, allCommands: number, clientCommands: Record<string, number> }>
    memory: { sessions: number, usedMemoryDeltaPerSession: number, memoryUsagePerSession: number, familyKeyBytes: number, indexBytesPerSession: number, familyEncoding: string, userAgentLength: number, unlistedAgentFamilyKeyBytes: number, familyKeyBytesAfterRuns: number }
  }
  serviceRssMb: number
  /** Microseconds per signature and per (uncached) verification, fast-jwt, on the servers' Node (before --node: the bench process's). */
  algorithms: Record<string, { signMicros: number, verifyMicros: number }>
  elapsedSeconds: number
}

interface Ratio {
  name: string
  /** What is divided by what, in words. */
  of: string
  median: number
  min: number
  max: number
  target: number
  /** true: the ratio must be at least the target; false: at most. */
  atLeast: boolean
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** The targets on refresh's throughput: refreshes per second at least `target` times the baseline run's rate. */
const REFRESH_THROUGHPUT_TARGETS = [
  { name: 'refresh / bare Fastify', baseline: 'bare', target: 0.3 },
  { name: 'refresh / tutorial (string secrets)', baseline: 'tutorial', target: 20 },
  { name: 'refresh / tutorial (KeyObject secrets)', baseline: 'tutorialKeyObject', target: 2.5 }
] as const

/** Ratios per round (target and baseline measured in the same round), then median, min and max over rounds. */
export function ratios (results: Results): Ratio[] {
  const per = (name: string, of: string, target: number, atLeast: boolean, f: (r: Record<string, Measurement>) => number): Ratio => {
    const xs = results.rounds.map(f)
    return { name, of, median: median(xs), min: Math.min(...xs), max: Math.max(...xs), target, atLeast }
  }
  const [vsBare, vsTutorial, vsKeyObject] = REFRESH_THROUGHPUT_TARGETS.map(({ name, baseline, target }) =>
    per(name, 'requests/s', target, true, (r) => m(r, 'refresh').rps / m(r, baseline).rps)) as [Ratio, Ratio, Ratio]
  return [
    vsBare,
    // The one absolute target: reported from the run, never asserted in a test.
    per('refresh p99 at 50 connections (ms)', 'p99 latency', 12, false, (r) => m(r, 'refresh').p99),
    vsTutorial,
    vsKeyObject,
    per('/me / bare Fastify', 'requests/s', 0.5, true, (r) => m(r, 'me').rps / m(r, 'bare').rps),
    per('/me / raw verification', 'requests/s', 0.9, true, (r) => m(r, 'me').rps / m(r, 'verifyRaw').rps),
    per('login / raw argon2id', 'requests/s', 0.8, true, (r) => m(r, 'login').rps / m(r, 'argon2Raw').rps),
    per('refresh p99 under login flood / idle', 'p99 latency', 2, false, (r) => m(r, 'refreshUnderLoginFlood').p99 / m(r, 'refresh').p99),
    per('/me p99 under login flood / idle', 'p99 latency', 2, false, (r) => m(r, 'meUnderLoginFlood').p99 / m(r, 'me').p99)
  ]
}

/** Ratios with no target that show where the targets' ceilings are (bench/README.md). */
export function contextRatios (results: Results): Array<{ name: string, median: number, min: number, max: number, bounds: string }> {
  const per = (name: string, bounds: string, a: string, b: string) => {
    const xs = results.rounds.map((r) => m(r, a).rps / m(r, b).rps)
    return { name, median: median(xs), min: Math.min(...xs), max: Math.max(...xs), bounds }
  }
  return [
    per('bare route + one Redis round trip / bare', 'any route that touches Redis', 'bareRedis', 'bare'),
    per('one signature + one Redis round trip, in a bare route / bare', 'refresh / bare, for any design that signs an access token and keeps sessions in Redis', 'signRedis', 'bare'),
    per('minimal refresh (the least any refresh can do, in a bare route) / bare', 'refresh / bare, for any design that rotates refresh tokens in Redis and signs an access token', 'refreshMinimal', 'bare'),
    per('minimal refresh / tutorial (string secrets)', 'refresh / tutorial, for any such design', 'refreshMinimal', 'tutorial'),
    per('minimal refresh / tutorial (KeyObject secrets)', 'refresh / KeyObject tutorial, for any such design', 'refreshMinimal', 'tutorialKeyObject'),
    per('refresh floor (the domain work of a refresh in a bare route) / bare', 'refresh / bare, with this design and algorithm', 'refreshFloor', 'bare'),
    per('refresh / refresh floor', 'what the service\'s HTTP concerns cost a refresh', 'refresh', 'refreshFloor'),
    per('service no-op route (/health/live) / bare', 'any route of the service: every hook and header', 'live', 'bare'),
    per('refresh with ACCESS_LOG=all / refresh', 'what a log line per successful refresh costs', 'refreshLogged', 'refresh'),
    per('/me with ACCESS_LOG=all / /me', 'what a log line per successful /me costs', 'meLogged', 'me')
  ]
}

/**
 * The most requests per second the machine could serve if every core were busy with nothing but one
 * run's work (its server, Redis and load-generator CPU per request), as a share of bare Fastify's
 * measured rate. For refresh, a ceiling that no spreading of the service's work over threads or
 * processes passes; for the refresh floor, one that no implementation of this design passes; for the
 * minimal refresh, one that no design rotating refresh tokens in Redis passes; for signRedis, one that
 * no design signing a token and calling Redis passes.
 */
export function cpuCeiling (results: Results, run: 'refresh' | 'refreshFloor' | 'refreshMinimal' | 'signRedis'): { cpuMicrosPerRequest: number, maxRps: number, ratioToBare: number } {
  const perRound = results.rounds.map((r) => {
    const { cpu, maxRps } = roundCeiling(results, r, run)
    return { cpu, maxRps, ratio: maxRps / m(r, 'bare').rps }
  })
  return {
    cpuMicrosPerRequest: median(perRound.map((x) => x.cpu)),
    maxRps: median(perRound.map((x) => x.maxRps)),
    ratioToBare: median(perRound.map((x) => x.ratio))
  }
}

/** One round's CPU per request of a run, over its server, Redis and load generator, and the rate it allows on every core. */
function roundCeiling (results: Results, r: Record<string, Measurement>, run: string): { cpu: number, maxRps: number } {
  const c = m(r, run).cpu
  const cpu = c.serverUs + c.redisUs + c.loadGeneratorUs
  return { cpu, maxRps: results.machine.cores * 1e6 / cpu }
}

/**
 * Each refresh throughput target as the service, and the minimal refresh, would reach it at their CPU ceiling
 * (`cpuCeiling`), round by round against that round's baseline: the median and the highest round. A line above
 * the service's highest round is out of reach for this design on this machine, however its work is spread over
 * threads or processes; above the minimal refresh's, for every design that rotates refresh tokens in Redis and
 * signs an access token. This is the measurement that shows a missed target impossible here, in every run.
 */
export function targetCeilings (results: Results): Array<{ name: string, target: number, service: { median: number, max: number }, minimal: { median: number, max: number } }> {
  return REFRESH_THROUGHPUT_TARGETS.map(({ name, baseline, target }) => {
    const at = (run: string) => {
      const xs = results.rounds.map((r) => roundCeiling(results, r, run).maxRps / m(r, baseline).rps)
      return { median: median(xs), max: Math.max(...xs) }
    }
    return { name, target, service: at('refresh'), minimal: at('refreshMinimal') }
  })
}

/**
 * The most requests per second one run's server could serve with its event loop's thread busy with nothing
 * else (its CPU per request on that thread, kernel part included), as a share of bare Fastify's rate: the
 * bound of a server that does a request's work on one thread, whatever the other cores do.
 */
export function eventLoopCeiling (results: Results, run: string): { eventLoopMicrosPerRequest: number, maxRps: number, ratioToBare: number } {
  const perRound = results.rounds.map((r) => {
    const us = m(r, run).cpu.serverMainUs
    return { us, maxRps: 1e6 / us, ratio: 1e6 / us / m(r, 'bare').rps }
  })
  return {
    eventLoopMicrosPerRequest: median(perRound.map((x) => x.us)),
    maxRps: median(perRound.map((x) => x.maxRps)),
    ratioToBare: median(perRound.map((x) => x.ratio))
  }
}

const fmt = (x: number, digits = 2) => x.toFixed(digits)
const met = (r: Ratio) => (r.atLeast ? r.median >= r.target : r.median <= r.target)

const m = (r: Record<string, Measurement>, k: string) => r[k] as Measurement

export function markdown (results: Results): string {
  const lines: string[] = []
  lines.push(`# Benchmark results (${results.date.slice(0, 10)}, commit ${results.commit})`, '')
  // Runs before --node recorded no server Node: their servers ran on the bench's own.
  const serverNode = typeof results.settings.serverNode === 'string' ? results.settings.serverNode : results.machine.node
  lines.push(`${results.machine.cores} cores (${results.machine.cpu}), servers on Node ${serverNode} (the load generator on ${results.machine.node}); access tokens ${String(results.settings.algorithm)}; ${results.settings.rounds} alternating rounds of ${results.settings.durationSeconds} s per run, ${results.settings.connections} connections (${results.settings.loginConnections} for login), ${results.redis.memory.sessions} seeded sessions. Median over rounds, min–max in brackets.`, '')
  const commands = results.settings.serverCommands as Record<string, string> | undefined
  if (commands !== undefined) lines.push(`Every server ran as compiled by tsc, on node with no loader, as the container runs the service: \`${commands.service}\`.`, '')
  lines.push('| ratio | of | median | min–max | target | met |', '|---|---|---|---|---|---|')
  for (const r of ratios(results)) {
    lines.push(`| ${r.name} | ${r.of} | **${fmt(r.median)}** | ${fmt(r.min)}–${fmt(r.max)} | ${r.atLeast ? '≥' : '≤'} ${r.target} | ${met(r) ? 'yes' : 'no'} |`)
  }
  lines.push('', 'Context, no target: what the parts of a route cost here.', '', '| ratio | of | median | min–max | what it bounds |', '|---|---|---|---|---|')
  for (const r of contextRatios(results)) lines.push(`| ${r.name} | requests/s | **${fmt(r.median)}** | ${fmt(r.min)}–${fmt(r.max)} | ${r.bounds} |`)
  const service = cpuCeiling(results, 'refresh')
  const serviceLoop = eventLoopCeiling(results, 'refresh')
  const floor = cpuCeiling(results, 'refreshFloor')
  const minimal = cpuCeiling(results, 'refreshMinimal')
  const minimalLoop = eventLoopCeiling(results, 'refreshMinimal')
  const signOnly = cpuCeiling(results, 'signRedis')
  lines.push('', `Ceilings of refresh / bare, from CPU per request (server, Redis and load generator) if ${results.machine.cores} cores did nothing else: the service's refresh costs ${fmt(service.cpuMicrosPerRequest, 0)} µs, ${fmt(service.maxRps, 0)} refreshes/s, **${fmt(service.ratioToBare)}** of bare Fastify ` +
    `(its event loop alone, ${fmt(serviceLoop.eventLoopMicrosPerRequest, 0)} µs per refresh, caps it at ${fmt(serviceLoop.maxRps, 0)}/s, **${fmt(serviceLoop.ratioToBare)}**); the refresh floor costs ${fmt(floor.cpuMicrosPerRequest, 0)} µs, ${fmt(floor.maxRps, 0)}/s, **${fmt(floor.ratioToBare)}**; ` +
    `the minimal refresh costs ${fmt(minimal.cpuMicrosPerRequest, 0)} µs, ${fmt(minimal.maxRps, 0)}/s, **${fmt(minimal.ratioToBare)}** ` +
    `(its event loop alone, ${fmt(minimalLoop.eventLoopMicrosPerRequest, 0)} µs, caps one event loop at ${fmt(minimalLoop.maxRps, 0)}/s, **${fmt(minimalLoop.ratioToBare)}**); ` +
    `one signature and one Redis round trip alone (signRedis, a static request) cost ${fmt(signOnly.cpuMicrosPerRequest, 0)} µs, ${fmt(signOnly.maxRps, 0)}/s, **${fmt(signOnly.ratioToBare)}** of bare.`)
  lines.push('', `Refresh's throughput targets at the CPU ceiling: each ratio as it would be if ${results.machine.cores} cores did nothing but the run's work, median and highest round. A line above the service's highest round is out of reach for this design on this machine, however its work were spread over threads or processes; above the minimal refresh's, for any design that rotates refresh tokens in Redis and signs an access token.`, '',
    '| target | line | the service at its CPU ceiling | out of reach for this design | the minimal refresh at its CPU ceiling | out of reach for every design |', '|---|---|---|---|---|---|')
  const outOfReach = (highest: number, line: number) => highest < line ? '**yes**' : 'no'
  for (const c of targetCeilings(results)) {
    lines.push(`| ${c.name} | ≥ ${c.target} | **${fmt(c.service.median)}** (highest ${fmt(c.service.max)}) | ${outOfReach(c.service.max, c.target)} | ${fmt(c.minimal.median)} (highest ${fmt(c.minimal.max)}) | ${outOfReach(c.minimal.max, c.target)} |`)
  }
  lines.push('', 'CPU columns: microseconds per completed request, medians over rounds; the event loop bounds a server\'s rate, its kernel part is mostly socket reads and writes; the login-flood runs share one service and one load generator, so theirs overlap. Idle: the share of all cores that sat idle during the run (the ceilings above assume none).', '',
    '| run | requests/s | p50 ms | p99 ms | non-2xx | event loop µs (kernel) | server µs | Redis µs | load generator µs | idle % |', '|---|---|---|---|---|---|---|---|---|---|')
  const names = Object.keys(results.rounds[0] ?? {})
  for (const name of names) {
    const xs = results.rounds.map((r) => r[name] as Measurement)
    const cpu = (k: keyof Measurement['cpu']) => fmt(median(xs.map((x) => x.cpu[k])), 1)
    lines.push(`| ${name} | ${fmt(median(xs.map((x) => x.rps)), 0)} | ${fmt(median(xs.map((x) => x.p50)), 2)} | ${fmt(median(xs.map((x) => x.p99)), 2)} | ${xs.reduce((a, x) => a + x.non2xx, 0)} | ` +
      `${cpu('serverMainUs')} (${cpu('serverMainSystemUs')}) | ${cpu('serverUs')} | ${cpu('redisUs')} | ${cpu('loadGeneratorUs')} | ${fmt(median(xs.map((x) => x.machineIdlePercent)), 0)} |`)
  }
  const mem = results.redis.memory
  const cmds = results.redis.commandsPerRefresh
  lines.push('', '| Redis and process | value | target |', '|---|---|---|')
  // A command far under one per refresh is background work (the revocation subscriber's once-a-second PING and
  // catch-up read): shown as how rare it is, which three decimals would print as 0.000.
  const perRefresh = ([k, v]: [string, number]) => v >= 0.01 ? `${k} ${fmt(v, 3)}` : `${k} 1 per ${Math.round(1 / v).toLocaleString('en-US')} refreshes`
  lines.push(`| Redis commands sent per refresh (INFO commandstats delta / requests; per round) | ${cmds.map((c) => `${fmt(c.roundTrips, 3)} (${Object.entries(c.clientCommands).map(perRefresh).join(', ')})`).join('; ')} | exactly 1 |`)
  lines.push(`| … including the commands the script runs inside Redis | ${cmds.map((c) => fmt(c.allCommands, 2)).join(', ')} | |`)
  lines.push(`| Redis memory per live session, used_memory delta over ${mem.sessions} sessions | ${fmt(mem.usedMemoryDeltaPerSession, 0)} B | ≤ 400 B |`)
  lines.push(`| Redis memory per live session, MEMORY USAGE (family key ${fmt(mem.familyKeyBytes, 0)} B, ${mem.familyEncoding}, + index share ${fmt(mem.indexBytesPerSession, 0)} B) | ${fmt(mem.memoryUsagePerSession, 0)} B | ≤ 400 B |`)
  lines.push(`| … family key after the runs (rotated, with its refresh-limit window) | ${fmt(mem.familyKeyBytesAfterRuns, 0)} B | |`)
  lines.push(`| … family key with a ${mem.userAgentLength}-character user agent outside the compaction table (a script, not a browser) | ${fmt(mem.unlistedAgentFamilyKeyBytes, 0)} B | |`)
  lines.push(`| service RSS after the run | ${fmt(results.serviceRssMb, 0)} MiB | |`)
  lines.push('', '| algorithm (fast-jwt, uncached) | sign µs | verify µs |', '|---|---|---|')
  for (const [alg, m] of Object.entries(results.algorithms)) lines.push(`| ${alg} | ${fmt(m.signMicros, 1)} | ${fmt(m.verifyMicros, 1)} |`)
  lines.push('', '![ratios](latest.svg)', '')
  return lines.join('\n')
}

/** Horizontal bars: each ratio against its target line. */
export function svg (results: Results): string {
  const rs = ratios(results)
  const width = 760
  const rowHeight = 34
  const left = 300
  const scale = (x: number, max: number) => left + (width - left - 40) * Math.min(x, max) / max
  const rows = rs.map((r, i) => {
    // Bars normalised to the target: 1.0 = exactly on target, so every row shares one axis.
    const value = r.atLeast ? r.median / r.target : r.target / r.median
    const y = 30 + i * rowHeight
    const colour = met(r) ? '#2e7d32' : '#c62828'
    return `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${r.name}</text>` +
      `<rect x="${left}" y="${y + 3}" width="${scale(value, 3) - left}" height="18" fill="${colour}"/>` +
      `<text x="${scale(value, 3) + 4}" y="${y + 16}" font-size="11">${fmt(r.median)} (target ${r.atLeast ? '≥' : '≤'} ${r.target})</text>`
  }).join('')
  const height = 50 + rs.length * rowHeight
  const targetX = scale(1, 3)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">` +
    '<rect width="100%" height="100%" fill="white"/>' +
    `<text x="10" y="18" font-size="13" font-weight="bold">Ratios to baselines, normalised to target (line = target met), ${results.date.slice(0, 10)} ${results.commit}</text>` +
    rows +
    `<line x1="${targetX}" y1="26" x2="${targetX}" y2="${height - 10}" stroke="#333" stroke-dasharray="4 3"/>` +
    '</svg>\n'
}

export function writeReport (results: Results, dir: string): void {
  writeFileSync(join(dir, 'latest.json'), JSON.stringify({ ...results, ratios: ratios(results), context: contextRatios(results), serviceRefreshCeiling: { cpu: cpuCeiling(results, 'refresh'), eventLoop: eventLoopCeiling(results, 'refresh') }, refreshCeiling: cpuCeiling(results, 'refreshFloor'), minimalRefreshCeiling: { cpu: cpuCeiling(results, 'refreshMinimal'), eventLoop: eventLoopCeiling(results, 'refreshMinimal') }, signRedisCeiling: cpuCeiling(results, 'signRedis'), targetCeilings: targetCeilings(results) }, null, 2) + '\n')
  writeFileSync(join(dir, 'latest.md'), markdown(results))
  writeFileSync(join(dir, 'latest.svg'), svg(results))
}
