// Summarises a .cpuprofile: self time per function and per package, largest first.
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount: number }
const profile = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as { nodes: Node[] }
const total = profile.nodes.reduce((a, n) => a + n.hitCount, 0)
const byFunction = new Map<string, number>()
const byPackage = new Map<string, number>()
for (const n of profile.nodes) {
  const url = n.callFrame.url.replace(/^file:\/\//, '')
  const where = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? (url === '' ? '(native)' : url.includes('/work/') ? url.split('/').slice(-2).join('/') : 'node:' + url.split('/').pop())
  const fn = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber}`
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + n.hitCount)
  byPackage.set(where, (byPackage.get(where) ?? 0) + n.hitCount)
}
const top = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, hits]) => `${(100 * hits / total).toFixed(1).padStart(5)}%  ${name}`).join('\n')
console.log(`samples: ${total}\n\n-- by package/file --\n${top(byPackage, 25)}\n\n-- by function --\n${top(byFunction, 40)}`)
