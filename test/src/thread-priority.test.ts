import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import ts from 'typescript'

// Run in a child process: renicing threads is process-wide state the test runner should not get. The module is
// loaded from a data: URL as TypeScript compiles it, not through tsx, whose loader would start libuv's threadpool
// before the call does: the child starts it only when the call (or the hashing after it) needs it.
const MODULE = 'data:text/javascript;base64,' + Buffer.from(ts.transpileModule(
  readFileSync(join(import.meta.dirname, '../../src/thread-priority.ts'), 'utf8'),
  { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }
).outputText).toString('base64')

/** Calls lowerHelperThreadPriority once per nice value, then hashes on every threadpool thread, then reads. */
function inChild (...nices: number[]): { lowered: number[], main: number, others: number[] } {
  const code = `
    import { pbkdf2 } from 'node:crypto'
    import { readdirSync } from 'node:fs'
    import { getPriority } from 'node:os'
    const { lowerHelperThreadPriority } = await import('${MODULE}')
    const lowered = []
    for (const nice of ${JSON.stringify(nices)}) lowered.push(await lowerHelperThreadPriority(nice))
    await Promise.all([1, 2, 3, 4].map(() => new Promise((resolve) => pbkdf2('', '', 1000, 32, 'sha256', resolve))))
    const others = readdirSync('/proc/self/task').map(Number).filter((tid) => tid !== process.pid).map((tid) => getPriority(tid))
    console.log(JSON.stringify({ lowered, main: getPriority(process.pid), others }))`
  // Without the NODE_OPTIONS the test runner gives every child it sees spawned (through env): its loader would start
  // the threadpool as well.
  const child = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8' })
  if (child.status !== 0) throw new Error(child.stderr)
  return JSON.parse(child.stdout)
}

t.test('every thread but the event loop runs at the configured nice value', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const { lowered: [lowered = 0], main, others } = inChild(10)
  t.ok(lowered >= 8, `libuv's threadpool (4 threads) and V8's helpers (4) were lowered: ${lowered}`)
  t.equal(main, 0, 'the event loop keeps its priority')
  t.ok(others.length >= lowered)
  t.ok(others.every((nice) => nice === 10), `every other thread, the threadpool hashing after the call too: nice 10 (${others})`)
})

t.test('nice 0 leaves every thread as it was', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const { lowered: [lowered], others } = inChild(0)
  t.equal(lowered, 0)
  t.ok(others.every((nice) => nice === 0))
})

t.test('called again, it lowers nothing more and never raises a thread back', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const { lowered: [first = 0, again, higher], others } = inChild(10, 10, 5)
  t.ok(first > 0)
  t.equal(again, 0, 'the threads at nice 10 already are not counted again')
  t.equal(higher, 0, 'a smaller nice value is not applied')
  t.ok(others.every((nice) => nice === 10), `every other thread stays at nice 10 (${others})`)
})
