import { spawnSync } from 'node:child_process'
import t from 'tap'

// Run in a child process: renicing threads is process-wide state the test runner should not get.
function inChild (nice: number): { lowered: number, main: number, others: number[] } {
  const code = `
    import { readdirSync } from 'node:fs'
    import { getPriority } from 'node:os'
    import { lowerHelperThreadPriority } from './src/thread-priority.ts'
    const lowered = await lowerHelperThreadPriority(${nice})
    const others = readdirSync('/proc/self/task').map(Number).filter((tid) => tid !== process.pid).map((tid) => getPriority(tid))
    console.log(JSON.stringify({ lowered, main: getPriority(process.pid), others }))`
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' })
  if (child.status !== 0) throw new Error(child.stderr)
  return JSON.parse(child.stdout)
}

t.test('every thread but the event loop runs at the configured nice value', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const { lowered, main, others } = inChild(10)
  t.ok(lowered >= 4, `libuv's threadpool (4 threads) and V8's helpers were lowered: ${lowered}`)
  t.equal(main, 0, 'the event loop keeps its priority')
  t.ok(others.length >= lowered)
  t.ok(others.every((nice) => nice === 10), 'every other thread: nice 10')
})

t.test('nice 0 leaves every thread as it was', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const { lowered, others } = inChild(0)
  t.equal(lowered, 0)
  t.ok(others.every((nice) => nice === 0))
})
