import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `check` every 20 ms until it holds, for at most `ms`; returns how long it took. Fails with `what`
 * after `ms`. A check that throws (a server still starting, a connection just broken) has not held yet.
 */
export async function within (ms: number, check: () => Promise<boolean>, what = 'the condition'): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < ms) {
    if (await check().catch(() => false)) return performance.now() - started
    await sleep(20)
  }
  throw new Error(`not within ${ms} ms: ${what}`)
}
