import { randomUUID } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeHeapSnapshot } from 'node:v8'

/** The parts of V8's heap snapshot format these helpers read. */
export interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[]] } }
  nodes: number[]
  /** Every distinct string of the snapshot, a string's own text among them (its first 1,024 characters). */
  strings: string[]
}

/** Reads a heap snapshot file V8 wrote, and deletes it. */
export async function readHeapSnapshot (file: string): Promise<HeapSnapshot> {
  const snapshot = JSON.parse(await readFile(file, 'utf8')) as HeapSnapshot
  await rm(file)
  return snapshot
}

const PROGRAM_TYPES = new Set(['object', 'array', 'closure', 'string', 'concatenated string', 'sliced string', 'number', 'regexp', 'symbol', 'bigint'])

/**
 * The objects the program made that are alive in the snapshot: JavaScript objects, arrays, closures, strings, boxed
 * numbers. Not V8's own (compiled code, feedback, shapes), which grow and shrink by hundreds of kilobytes as
 * functions are optimized.
 */
export function programObjects ({ snapshot: { meta }, nodes }: HeapSnapshot): number {
  const width = meta.node_fields.length
  const typeField = meta.node_fields.indexOf('type')
  const counted = meta.node_types[0].map((type) => PROGRAM_TYPES.has(type))
  let count = 0
  for (let i = typeField; i < nodes.length; i += width) if (counted[nodes[i]!] === true) count += 1
  return count
}

/**
 * Whether a string alive in this process, after a full garbage collection, holds the text `needle` builds (ASCII, as
 * `headerFor`'s: the snapshot's JSON writes it as it is). The text is built after the snapshot is taken, or the needle
 * itself would be found. Needs --expose-gc (the suite's setting).
 *
 * The snapshot is searched as bytes, never parsed: parsed here, each string it names became a string of this process
 * again, and a later snapshot could find them there. A needle found once, looked for again after what should free it,
 * was found in 10 of 20 tries so on Node 20 and 4 of 20 on Node 24, and in none searched as bytes.
 */
export async function heapHolds (needle: () => string): Promise<boolean> {
  if (globalThis.gc === undefined) throw new Error('heapHolds needs node --expose-gc')
  globalThis.gc()
  const file = writeHeapSnapshot(join(tmpdir(), `heap-${process.pid}-${randomUUID()}.heapsnapshot`))
  const bytes = await readFile(file)
  await rm(file)
  return bytes.includes(needle())
}

/**
 * Makes a header-like string of a few hundred characters that begins with `head`, hands it to `use` (which keeps what
 * it likes of it, as a request handler would), and returns a needle for `heapHolds` that finds the header only: its
 * end, which no slice of its first 100 characters holds.
 */
export function headerFor (head: string, use: (header: string) => void): () => string {
  const tail = randomUUID()
  use(`${head}${'x'.repeat(200)}${tail}`)
  return () => `x${tail}`
}
