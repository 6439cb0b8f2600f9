import { readFileSync } from 'node:fs'
import t from 'tap'
import { contextRatios, markdown, ratios, svg, targetCeilings, type Results } from '../../bench/report.js'

// The results in the repository are what the README quotes: they must be a whole run of `npm run bench`
// on committed code, and the tables and chart beside them must be rendered from them.
const results = JSON.parse(readFileSync('bench/results/latest.json', 'utf8')) as Results

t.test('the committed results are a full run of a commit', async (t) => {
  t.match(results.commit, /^[0-9a-f]{7,40}$/, 'of a commit, not of uncommitted changes')
  t.ok(results.rounds.length >= 3, 'at least three rounds: every ratio is a median over them')
  t.ok(results.redis.memory.sessions >= 100_000, 'over 100,000 seeded sessions')
  const runs = Object.keys(results.rounds[0] ?? {})
  t.ok(runs.includes('refreshUnderLoginFlood') && runs.includes('meUnderLoginFlood'), 'with the login floods')
  results.rounds.forEach((round, i) => {
    t.same(Object.keys(round).sort(), [...runs].sort(), `round ${i + 1} has every run`)
    for (const [name, m] of Object.entries(round)) {
      if (!(m.requests > 0 && m.non2xx === 0)) t.fail(`round ${i + 1}, ${name}: ${m.requests} requests, ${m.non2xx} non-2xx`)
    }
  })
  for (const r of [...ratios(results), ...contextRatios(results)]) {
    t.ok(Number.isFinite(r.median) && r.median > 0, `${r.name}: ${r.median}`)
  }
})

t.test('latest.md and latest.svg are rendered from latest.json', async (t) => {
  t.equal(readFileSync('bench/results/latest.md', 'utf8'), markdown(results))
  t.equal(readFileSync('bench/results/latest.svg', 'utf8'), svg(results))
})

t.test('the commands row tells background commands from per-refresh ones: by how rare they are, never as 0.000', async (t) => {
  const row = markdown(results).split('\n').find((l) => l.startsWith('| Redis commands sent per refresh')) ?? ''
  t.match(row, /evalsha 1\.\d{3}/, 'the rotation script, per refresh')
  t.notMatch(row, /\b0\.000\b/)
  const background = Object.entries((results.redis.commandsPerRefresh[0]?.clientCommands ?? {}) as Record<string, number>).filter(([, v]) => v < 0.01)
  for (const [name, perRefresh] of background) t.match(row, `${name} 1 per ${Math.round(1 / perRefresh).toLocaleString('en-US')} refreshes`)
})

t.test('the README quotes this run, with its date and commit', async (t) => {
  const readme = readFileSync('README.md', 'utf8')
  const performance = readme.slice(readme.indexOf('## Performance'), readme.indexOf('\n## ', readme.indexOf('## Performance') + 1))
  t.match(performance, `(${results.date.slice(0, 10)}, commit ${results.commit},`)
  t.match(readFileSync('bench/README.md', 'utf8'), `\`results/latest.md\` is a full run at ${results.commit}`, 'and the bench\'s findings say which run they read')
})

t.test('a refresh throughput target is out of reach for a design when it lies above that design\'s CPU ceiling in every round', async (t) => {
  // Two cores; refresh costs 100 µs of CPU over its processes (20,000/s at most), the minimal refresh 40 µs (50,000/s).
  const cpu = (us: number) => ({ serverMainUs: us, serverMainSystemUs: 0, serverUs: us, redisUs: 0, loadGeneratorUs: 0 })
  const run = (rps: number, us = 10) => ({ rps, p50: 1, p99: 2, requests: rps, non2xx: 0, failures: {}, cpu: cpu(us), machineIdlePercent: 0, serverPid: 1 })
  const round = (bare: number) => ({ ...results.rounds[0], bare: run(bare), tutorial: run(500), tutorialKeyObject: run(9_000), refresh: run(12_000, 100), refreshMinimal: run(20_000, 40) })
  const synthetic = { ...results, machine: { ...results.machine, cores: 2 }, rounds: [round(100_000), round(60_000)] } as unknown as Results
  const [vsBare, vsTutorial, vsKeyObject] = targetCeilings(synthetic)
  t.same(vsBare, { name: 'refresh / bare Fastify', target: 0.3, service: { median: (0.2 + 1 / 3) / 2, max: 1 / 3 }, minimal: { median: (0.5 + 5 / 6) / 2, max: 5 / 6 } })
  t.same([vsTutorial?.service.max, vsKeyObject?.service.max, vsKeyObject?.minimal.max], [40, 20_000 / 9_000, 50_000 / 9_000])
  const table = markdown(synthetic).split('\n').filter((l) => l.startsWith('| refresh / ') && l.includes('highest'))
  t.match(table[0], /\| ≥ 0\.3 \| \*\*0\.27\*\* \(highest 0\.33\) \| no \|/, 'one round whose ceiling clears the line: not out of reach')
  t.match(table[2], /\| ≥ 2\.5 \| \*\*2\.22\*\* \(highest 2\.22\) \| \*\*yes\*\* \| 5\.56 \(highest 5\.56\) \| no \|/, 'under the line in every round: out of reach for this design, not for every design')
})
