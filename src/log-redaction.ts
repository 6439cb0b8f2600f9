/** What stands in the log for a secret. */
export const REDACTED = '[redacted]'

/**
 * A URL's password: after `scheme://` and a user name (perhaps empty), what comes between its colon and the last `@`
 * before the host (as URL parsers read `redis://:p@ss@host`). Neither part crosses a quote or a backslash, so a
 * match never reaches past the JSON string it is in.
 */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@"\\:]*:)[^\s/?#"\\]*@/gi

/**
 * Shorter values are not looked for: redacting a short password wherever its letters stand would redact words of
 * the log's own, and say by their absence what the password is. A short one is still redacted in a URL.
 */
export const MIN_REDACTED_LENGTH = 8

/**
 * pino's `streamWrite` hook: each log line, as written, without a URL's password or any of `secrets`.
 *
 * The serializers keep the traffic out of the log (src/app.ts). This is for what a message says: an error from a
 * library or a bug, thrown with a connection URL or a key in its text, is logged with it, in its `message`, its
 * `stack` and the line's `msg` alike. A line holds a secret JSON-escaped, so each is looked for in that form too.
 */
export function logRedaction (secrets: readonly string[]): (line: string) => string {
  const forms = new Set<string>()
  for (const secret of secrets) {
    if (secret.length < MIN_REDACTED_LENGTH) continue
    forms.add(secret)
    forms.add(JSON.stringify(secret).slice(1, -1))
  }
  // The longest first: a secret that holds another is redacted whole, not around the other's redaction.
  const sought = [...forms].sort((a, b) => b.length - a.length)
  return (line) => {
    let redacted = line.includes('://') ? line.replace(URL_PASSWORD, `$1${REDACTED}@`) : line
    // Searched first: a replaceAll that finds nothing took twice as long here (0.3 µs a line, against 0.16).
    for (const form of sought) {
      if (redacted.includes(form)) redacted = redacted.replaceAll(form, REDACTED)
    }
    return redacted
  }
}
