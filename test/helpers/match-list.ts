import type { Test } from 'tap'

/**
 * t.match over a list, held to as many items as `patterns` has: tap's match takes a list that is longer than its
 * pattern when the pattern matches the list's head, so a log line said twice would pass for one said once.
 */
export function matchList (t: Test, actual: readonly unknown[], patterns: readonly unknown[], message = 'matches'): void {
  t.equal(actual.length, patterns.length, `${message}: ${patterns.length} of them`)
  t.match(actual, patterns, message)
}
