/**
 * This process's wall clock (`Date.now`) set `offsetMs` off the machine's for the rest of the test, as a host's clock
 * can be; `set` moves it (NTP stepping it). A service process started with test/helpers/skewed-clock.ts is the same,
 * from its start.
 */
export function wallClockOff (t: { teardown (fn: () => unknown): void }, offsetMs: number): { set (offsetMs: number): void } {
  const machineNow = Date.now
  let off = offsetMs
  Date.now = () => machineNow() + off
  t.teardown(() => { Date.now = machineNow })
  return { set (offsetMs) { off = offsetMs } }
}
