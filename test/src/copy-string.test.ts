import { randomUUID } from 'node:crypto'
import t from 'tap'
import { copyString } from '../../src/copy-string.js'
import { headerFor, heapHolds } from '../helpers/heap-snapshot.js'

t.test('a copy equals what it copies, whatever that holds', async (t) => {
  for (const s of ['', 'a', 'plain ASCII text', 'bücher.de', '😀 emoji', 'a lone surrogate: \ud800 and \udfff', '\u0000 NUL', 'x'.repeat(10_000)]) {
    t.equal(copyString(s), s, JSON.stringify(s.slice(0, 40)))
  }
})

t.test('a slice of a header keeps the whole header alive; a copy of the slice does not', async (t) => {
  let sliced = ''
  const slicedNeedle = headerFor(randomUUID(), (header) => { sliced = header.slice(0, 40) })
  t.ok(await heapHolds(slicedNeedle), 'the slice keeps its header alive (what V8 does, and why copyString exists)')
  let copied = ''
  const copiedNeedle = headerFor(randomUUID(), (header) => { copied = copyString(header.slice(0, 40)) })
  t.notOk(await heapHolds(copiedNeedle), 'the copy keeps nothing else alive')
  t.same([sliced.length, copied.length], [40, 40], 'both were kept throughout')
})
