import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { cpuQuotaCores, usableCores, type CgroupFiles } from '../../src/cpu-quota.js'

/** A /proc/self/cgroup and a cgroup mount of files, as the kernel would show them. */
function cgroups (t: Test, membership: string, files: Record<string, string>): CgroupFiles {
  const root = mkdtempSync(join(tmpdir(), 'auth-cgroup-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const mount = join(root, 'sys/fs/cgroup')
  mkdirSync(mount, { recursive: true })
  writeFileSync(join(root, 'cgroup'), membership)
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(mount, path)), { recursive: true })
    writeFileSync(join(mount, path), content)
  }
  return { membership: join(root, 'cgroup'), mount }
}

t.test('cgroup v2: the smallest quota from the process\'s cgroup up to the root, in whole cores', async (t) => {
  const files = cgroups(t, '0::/kubepods/pod1/ctr\n', {
    'kubepods/pod1/ctr/cpu.max': 'max 100000\n',
    'kubepods/pod1/cpu.max': '250000 100000\n',
    'kubepods/cpu.max': '800000 100000\n',
    'cpu.max': 'max 100000\n'
  })
  t.equal(cpuQuotaCores(files), 2, 'a pod limited to 2.5 CPUs: 2, as libuv counts it')
  t.equal(usableCores(files), Math.min(2, availableParallelism()), 'and never more than the affinity mask allows')
})

t.test('cgroup v2: less than one CPU still leaves one core', async (t) => {
  t.equal(cpuQuotaCores(cgroups(t, '0::/ctr\n', { 'ctr/cpu.max': '50000 100000\n' })), 1)
})

t.test('cgroup v2: no quota anywhere is no quota', async (t) => {
  const files = cgroups(t, '0::/ctr\n', { 'ctr/cpu.max': 'max 100000\n', 'cpu.max': 'max 100000\n' })
  t.equal(cpuQuotaCores(files), null)
  t.equal(usableCores(files), availableParallelism(), 'the affinity mask decides alone')
})

t.test('cgroup v2 in a container with its own namespace: the listed host path is absent, the mount point holds the quota', async (t) => {
  const files = cgroups(t, '0::/system.slice/docker-0123abcd.scope\n', { 'cpu.max': '100000 100000\n' })
  t.equal(cpuQuotaCores(files), 1)
})

t.test('cgroup v1 (or a hybrid host): the cpu controller\'s quota and period', async (t) => {
  const files = cgroups(t, '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n', {
    'cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '300000\n',
    'cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
    'cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
    'cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    'cpu.max': '100000 100000\n'
  })
  t.equal(cpuQuotaCores(files), 3, 'v1\'s cpu controller, not the unified hierarchy, holds the quota of a hybrid host')
})

t.test('cgroup v1: -1 is no quota; the controller found under its short name too', async (t) => {
  t.equal(cpuQuotaCores(cgroups(t, '3:cpu,cpuacct:/\n', {
    'cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
    'cpu,cpuacct/cpu.cfs_period_us': '100000\n'
  })), null)
  t.equal(cpuQuotaCores(cgroups(t, '3:cpuacct,cpu:/a\n', {
    'cpu/a/cpu.cfs_quota_us': '150000\n',
    'cpu/a/cpu.cfs_period_us': '100000\n'
  })), 1)
})

t.test('nothing readable, or nothing that parses, is no quota rather than an error', async (t) => {
  t.equal(cpuQuotaCores({ membership: '/nonexistent/cgroup', mount: '/nonexistent' }), null)
  t.equal(cpuQuotaCores(cgroups(t, 'garbage\n', {})), null)
  t.equal(cpuQuotaCores(cgroups(t, '0::/ctr\n', { 'ctr/cpu.max': '1e5 0\n' })), null)
  t.equal(cpuQuotaCores(cgroups(t, '0::/ctr\n', { 'ctr/cpu.max': '0 100000\n' })), null,
    'a quota of 0 (which the kernel refuses to set) is not read as one core')
  t.equal(cpuQuotaCores(cgroups(t, '7:cpux\n', {
    'cpu/cpu.cfs_quota_us': '100000\n',
    'cpu/cpu.cfs_period_us': '100000\n'
  })), null, 'a line without its three fields names no controller, however its text reads')
  t.equal(cpuQuotaCores(cgroups(t, '0::/../../../etc\n', { '../../../etc/cpu.max': '100000 100000\n' })), null, 'a listed path does not climb out of the mount')
})

// The real thing: a cgroup v1 CPU quota set through the kernel, and a process in it, where this machine lets us
// make one (root, cgroup v1's cpu controller mounted writable).
const controller = '/sys/fs/cgroup/cpu'
const group = join(controller, `auth-service-test-${process.pid}`)
let made = false
try {
  mkdirSync(group)
  made = true
} catch {}

t.test('a process under a real one-CPU quota derives its argon2 concurrency from one core', { skip: made ? false : `cannot create a cgroup under ${controller} here` }, async (t) => {
  t.teardown(() => rmdirSync(group))
  writeFileSync(join(group, 'cpu.cfs_period_us'), '100000')
  writeFileSync(join(group, 'cpu.cfs_quota_us'), '100000')
  const probe = [
    "const { availableParallelism } = await import('node:os')",
    "const { cpuQuotaCores } = await import('./src/cpu-quota.ts')",
    "const { loadConfig } = await import('./src/config.ts')",
    'console.log(JSON.stringify({ affinity: availableParallelism(), quota: cpuQuotaCores(), concurrency: loadConfig({}).argon2.maxConcurrency }))'
  ].join(';')
  // The shell joins the cgroup, then becomes node: the probe runs in it from its first instruction.
  const { stdout } = await promisify(execFile)('sh', ['-c', `echo $$ > ${group}/cgroup.procs && exec "$0" --import tsx --input-type=module -e "$1"`, process.execPath, probe],
    { env: { PATH: process.env.PATH, UV_THREADPOOL_SIZE: '8' } })
  const seen = JSON.parse(stdout) as { affinity: number, quota: number | null, concurrency: number }
  t.equal(seen.affinity, availableParallelism(), 'Node 20 itself still counts the affinity mask')
  t.equal(seen.quota, 1, 'the quota is read from the kernel')
  t.equal(seen.concurrency, 2, 'one hash per core allowed, plus one while the hashing threads are niced')
})
