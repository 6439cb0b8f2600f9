import { pbkdf2 } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'

/**
 * Lowers the scheduling priority (raises the nice value) of every thread of this process but the
 * event loop's: libuv's threadpool, where argon2 hashes, and V8's helper threads.
 *
 * Why: on a machine with few cores, a burst of logins keeps every core busy hashing, and the event
 * loop, which serves refresh and every token check, then waits for CPU like any other thread. With
 * the hashing threads niced, the kernel runs the event loop first whenever it has work, and the
 * hashing gets every cycle the event loop leaves: login throughput is kept, the other routes'
 * latency is not sacrificed (bench/README.md). Linux schedules threads individually, so this is a
 * per-thread setpriority(2); elsewhere it does nothing and returns 0.
 *
 * Threads created later by the event loop's thread inherit its priority; libuv creates its whole
 * threadpool on first use, which this forces first.
 * @returns the number of threads whose priority was lowered
 */
export async function lowerHelperThreadPriority (nice: number): Promise<number> {
  if (process.platform !== 'linux' || nice <= 0) return 0
  await new Promise((resolve, reject) => pbkdf2('', '', 1, 1, 'sha256', (err) => err === null ? resolve(null) : reject(err)))
  let lowered = 0
  for (const entry of readdirSync('/proc/self/task')) {
    const tid = Number(entry)
    if (tid === process.pid) continue // the event loop's thread: the main thread's id is the process id
    try {
      if (getPriority(tid) < nice) {
        setPriority(tid, nice)
        lowered += 1
      }
    } catch {
      // The thread exited between listing and renicing.
    }
  }
  return lowered
}
