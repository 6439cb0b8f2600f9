import { isUtf8 } from 'node:buffer'

const LF = 0x0a
const CR = 0x0d

/**
 * The first line of a stream of bytes as UTF-8 text, its line ending (\n or \r\n) not part of it; null when its bytes
 * are not UTF-8. The bytes are gathered first and decoded once: decoded read by read, a character whose bytes two reads
 * split (a pipe hands over what has been written so far) would become two U+FFFD, and decoded at all, bytes of another
 * encoding (a Latin-1 terminal's "ä") would become U+FFFD silently, as a password that is not the one typed.
 */
export async function firstLine (stream: AsyncIterable<Buffer | string>): Promise<string | null> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  const bytes = Buffer.concat(chunks)
  const lf = bytes.indexOf(LF)
  let line = lf < 0 ? bytes : bytes.subarray(0, lf)
  if (lf >= 0 && line.at(-1) === CR) line = line.subarray(0, -1)
  return isUtf8(line) ? line.toString('utf8') : null
}
