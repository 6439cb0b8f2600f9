import { writeHeapSnapshot } from 'node:v8'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Preloaded (`--import`) into a service process whose memory a test watches. On SIGWINCH it collects all garbage,
 * writes a heap snapshot and prints one line: `heap-probe {"heapUsed":…,"sockets":…,"snapshot":"<file>"}` (bytes of
 * live heap; open TCP sockets, listeners apart; the snapshot, for the test to read and delete).
 * SIGWINCH because nothing else in the process listens to it and its default is to do nothing: Node keeps SIGUSR1 for
 * its inspector, and close-with-grace shuts the service down on SIGUSR2. Needs `--expose-gc`.
 */
const collect = globalThis.gc
if (collect === undefined) throw new Error('heap-probe needs node --expose-gc')
let taken = 0

process.on('SIGWINCH', () => {
  // Several passes: what a weak reference or a finalizer let go of is freed by the next.
  for (let pass = 0; pass < 4; pass++) collect()
  const sockets = process.getActiveResourcesInfo().filter((resource) => resource === 'TCPSocketWrap').length
  const { heapUsed } = process.memoryUsage()
  taken += 1
  const snapshot = writeHeapSnapshot(join(tmpdir(), `heap-probe-${process.pid}-${taken}.heapsnapshot`))
  process.stdout.write(`heap-probe ${JSON.stringify({ heapUsed, sockets, snapshot })}\n`)
})
