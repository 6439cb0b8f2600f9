/**
 * Preloaded (`--import`) into a service process to stand for an instance on a host whose clock is off: its wall clock
 * (`Date`) reads CLOCK_SKEW_MS ahead of the machine's (behind, when negative). An offset moves only a host's wall
 * clock; its monotonic clock (`performance.now()`, timers) runs on untouched, as it does here.
 */
const skewMs = Number(process.env.CLOCK_SKEW_MS ?? 0)
if (!Number.isFinite(skewMs)) throw new Error('skewed-clock needs CLOCK_SKEW_MS, in ms')
const MachineDate = Date

class SkewedDate extends MachineDate {
  constructor (...args: [] | ConstructorParameters<DateConstructor>) {
    if (args.length === 0) super(MachineDate.now() + skewMs)
    else super(...(args as [string | number | Date]))
  }

  static override now (): number {
    return MachineDate.now() + skewMs
  }
}

globalThis.Date = SkewedDate as DateConstructor
