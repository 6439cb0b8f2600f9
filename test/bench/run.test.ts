import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

// The bench's command line: `--help` says what it takes, and a command line it cannot run is refused
// in one line, with the usage, before any server or Redis starts.
// Should a check regress and a bench run, its report goes here, never over the committed results.
const out = mkdtempSync(join(tmpdir(), 'bench-cli-'))
t.teardown(() => rmSync(out, { recursive: true, force: true }))

function bench (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--out', out, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => { stdout += String(d) })
  child.stderr.on('data', (d) => { stderr += String(d) })
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })))
}

t.test('--help lists every option and every run, and exits', async (t) => {
  const { code, stdout, stderr } = await bench('--help')
  t.equal(code, 0)
  t.equal(stderr, '')
  for (const option of ['--quick', '--duration', '--rounds', '--sessions', '--out', '--only', '--env', '--variant', '--variant-checkout', '--algorithm', '--node', '--cluster', '--profile', '--scenario']) {
    t.match(stdout, new RegExp(`^  ${option} `, 'm'), `documents ${option}`)
  }
  t.match(stdout, /Runs: bare, .*refreshMinimal, .*argon2Raw; with a variant also live@variant, refresh@variant, me@variant, login@variant\./)
})

t.test('a command line the bench cannot run is refused with the reason, not a stack trace', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--rounds', 'x'], /^bench: --rounds x: expected a whole number of at least 1$/m],
    [['--rounds', '0'], /^bench: --rounds 0: expected a whole number of at least 1$/m],
    [['--rounds', '2.5'], /^bench: --rounds 2\.5: expected a whole number/m],
    [['--duration=-1'], /^bench: --duration -1: expected a number of seconds above 0$/m],
    [['--duration', ''], /^bench: --duration : expected a number of seconds/m],
    [['--sessions', '100'], /^bench: --sessions 100: expected a whole number of at least 2000$/m],
    [['--algorithm', 'RS256'], /^bench: --algorithm RS256: expected one of ES256, EdDSA, HS256$/m],
    [['--node', '/nonexistent/node'], /^bench: --node \/nonexistent\/node: expected image, machine, or the path of a node binary$/m],
    [['--only', 'bare,nope'], /^bench: --only: no run named "nope"$/m],
    [['--only', 'refresh@variant'], /^bench: --only: no run named "refresh@variant"$/m],
    [['--profile', 'unused', '--scenario', 'nope'], /^bench: --scenario: no run named "nope"$/m],
    [['--env', 'LOG_LEVEL'], /^bench: --env LOG_LEVEL: expected KEY=VALUE$/m],
    [['--variant', '=warn'], /^bench: --variant =warn: expected KEY=VALUE$/m],
    [['--variant-checkout', '/nonexistent'], /^bench: --variant-checkout \/nonexistent: not a checkout of this project/m],
    [['--cluster'], /^bench: --cluster: give --only \(or --profile\) with the service's runs$/m],
    [['--cluster', '--only', 'refresh,bare,refreshMinimal'], /^bench: --cluster: bare, refreshMinimal are not runs of the service$/m],
    [['--cluster', '--profile', 'unused', '--scenario', 'verifyRaw'], /^bench: --cluster: verifyRaw is not a run of the service$/m],
    [['--bogus'], /^bench: Unknown option '--bogus'/m],
    [['--rounds'], /^bench: Option '--rounds <value>' argument missing/m]
  ]
  const results = await Promise.all(cases.map(([args]) => bench(...args)))
  cases.forEach(([args, reason], i) => {
    const { code, stdout, stderr } = results[i] as Awaited<ReturnType<typeof bench>>
    const label = args.join(' ')
    t.equal(code, 2, `${label}: exit status 2`)
    t.match(stderr, reason, `${label}: says why`)
    t.match(stderr, /Usage: npm run bench/, `${label}: with the usage`)
    t.notMatch(stderr, /^\s+at /m, `${label}: no stack trace`)
    t.notMatch(stderr, /\[bench /, `${label}: nothing started`)
    t.equal(stdout, '', `${label}: nothing on stdout`)
  })
  t.same(readdirSync(out), [], 'and no report was written')
})

t.test('a variant makes its runs known to --only', async (t) => {
  // Each command line fails a check made after --only's, so --only accepted the variant's run.
  const withSetting = await bench('--variant', 'LOG_LEVEL=warn', '--only', 'refresh@variant', '--profile', 'unused', '--scenario', 'nope')
  t.equal(withSetting.code, 2)
  t.match(withSetting.stderr, /^bench: --scenario: no run named "nope"$/m)
  const withCheckout = await bench('--variant-checkout', '/nonexistent', '--only', 'me,me@variant')
  t.equal(withCheckout.code, 2)
  t.match(withCheckout.stderr, /^bench: --variant-checkout \/nonexistent: not a checkout/m)
})
