import { randomUUID } from 'node:crypto'
import t from 'tap'
import { copyString } from '../../src/copy-string.js'
import { RevocationList } from '../../src/revocation-list.js'
import { headerFor, heapHolds } from '../helpers/heap-snapshot.js'

t.test('an entry is refused until its expiry and forgotten after', async (t) => {
  let now = 1000
  const list = new RevocationList({ now: () => now })
  t.teardown(() => list.close())
  list.add('a', 2000)
  t.equal(list.has('a'), true)
  t.equal(list.has('b'), false)
  now = 2000
  t.equal(list.has('a'), false)
  t.equal(list.size, 0, 'dropped on look-up')
  list.add('late', 1500)
  t.equal(list.size, 0, 'an already expired revocation is not stored')
  list.add('now', 2000)
  t.equal(list.size, 0, 'nor one expiring as it comes')
  list.add('b', 3000)
  now = 3000
  list.sweep()
  t.equal(list.size, 0, 'the sweep drops an entry at its expiry')
})

t.test('a later revocation of the same id extends it; an earlier one does not shorten it', async (t) => {
  let now = 1000
  const list = new RevocationList({ now: () => now })
  t.teardown(() => list.close())
  list.add('a', 2000)
  list.add('b', 2500)
  list.add('a', 3000)
  list.add('a', 1500)
  now = 2500
  list.sweep()
  t.same([list.has('a'), list.has('b'), list.size], [true, false, 1], 'refused until the later expiry, and swept in that order')
  now = 3000
  t.equal(list.has('a'), false, 'and no longer')
})

t.test('10,000 revocations: bounded memory, emptied after the TTL (measured)', async (t) => {
  let now = 0
  const list = new RevocationList({ now: () => now })
  t.teardown(() => list.close())
  // Flat strings of their own, as ids read from a request or from Redis are. (A template's result is a pair of parts
  // until something flattens it, which the list's copy does: the heap would shrink as the list grew.)
  const ids = Array.from({ length: 10_000 }, (_, i) => copyString(`sid-${i.toString().padStart(18, '0')}`))
  const gc = global.gc ?? (() => {})
  gc()
  const before = process.memoryUsage().heapUsed
  for (const [i, id] of ids.entries()) list.add(id, 600_000 + i)
  gc()
  const after = process.memoryUsage().heapUsed
  t.equal(list.size, 10_000)
  const perEntry = (after - before) / 10_000
  t.comment(`heap growth: ${((after - before) / 1024).toFixed(0)} KiB, ~${perEntry.toFixed(0)} bytes per revocation`)
  t.ok(global.gc === undefined || (perEntry > 0 && perEntry < 1024), 'under 1 KiB per entry (measured with --expose-gc)')
  // The same 10,000 again do not grow it.
  for (const id of ids) list.add(id, 600_000)
  t.equal(list.size, 10_000)
  now = 599_999
  list.sweep()
  t.equal(list.size, 10_000, 'nothing leaves before its time')
  now = 610_000
  list.sweep()
  t.equal(list.size, 0, 'everything leaves after it')
})

t.test('an id cut from a request header is kept without the header (kept for minutes, it would keep the header)', async (t) => {
  const list = new RevocationList()
  t.teardown(() => list.close())
  const sid = randomUUID()
  const needle = headerFor(sid, (header) => { list.add(header.slice(0, sid.length), Date.now() + 60_000) })
  t.equal(list.has(sid), true, 'revoked')
  t.notOk(await heapHolds(needle), 'the header is not kept alive')
})
