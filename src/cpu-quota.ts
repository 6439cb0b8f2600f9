import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

/** Where the kernel tells a process its control groups, and where they are mounted. */
export interface CgroupFiles {
  /** /proc/self/cgroup */
  membership: string
  /** /sys/fs/cgroup */
  mount: string
}

const SYSTEM: CgroupFiles = { membership: '/proc/self/cgroup', mount: '/sys/fs/cgroup' }

/**
 * The whole cores a CPU quota lets this process use, or null when no quota applies (or none can be read).
 *
 * Why by hand: a container given one CPU (`docker run --cpus 1`, a Kubernetes limit) on a 32-core host still sees
 * 32 cores in os.availableParallelism() on Node 20, whose libuv (1.46) counts only the affinity mask; libuv 1.49
 * and later (Node 22.12+) also read the quota, as this does, and no maintained package does it for Node 20. The
 * default argon2 concurrency is derived from the cores, and hashes started beyond the quota only queue inside the
 * kernel's throttling, with the event loop throttled beside them.
 *
 * As libuv counts it: the quota over its period, rounded down, at least 1; the smallest quota from the process's
 * cgroup up to the root, since every ancestor's applies. cgroup v1's `cpu` controller (a hybrid host lists both)
 * is read first; otherwise v2's `cpu.max`. A container with its own cgroup namespace sees its cgroup at the mount
 * point itself while the listed path may name the host's: the walk up reaches it either way.
 */
export function cpuQuotaCores (files: CgroupFiles = SYSTEM): number | null {
  const membership = read(files.membership)
  if (membership === null) return null
  let v2: string | null = null
  for (const line of membership.split('\n')) {
    // hierarchy-id:controller,controller:path; the path may itself contain ':'
    const first = line.indexOf(':')
    const second = line.indexOf(':', first + 1)
    if (first < 0 || second < 0) continue
    const controllers = line.slice(first + 1, second)
    const path = line.slice(second + 1)
    // Mounted under the listed name ("cpu,cpuacct"), usually also linked as "cpu".
    if (controllers.split(',').includes('cpu')) return v1Quota(`${files.mount}/${controllers}`, path) ?? v1Quota(`${files.mount}/cpu`, path)
    if (line.slice(0, first) === '0' && controllers === '') v2 = path
  }
  return v2 === null ? null : v2Quota(files.mount, v2)
}

/** The cores this process can use: its affinity mask, and its CPU quota where one is set. */
export function usableCores (files: CgroupFiles = SYSTEM): number {
  return Math.min(availableParallelism(), cpuQuotaCores(files) ?? Infinity)
}

function v1Quota (controllerMount: string, path: string): number | null {
  return smallestUpward(controllerMount, path, (dir) => cores(read(`${dir}/cpu.cfs_quota_us`), read(`${dir}/cpu.cfs_period_us`)))
}

function v2Quota (mount: string, path: string): number | null {
  return smallestUpward(mount, path, (dir) => {
    const [quota, period] = (read(`${dir}/cpu.max`) ?? '').trim().split(/\s+/)
    return cores(quota, period)
  })
}

function smallestUpward (mount: string, path: string, quotaAt: (dir: string) => number | null): number | null {
  let smallest: number | null = null
  const segments = path.split('/').filter((segment) => segment !== '' && segment !== '.' && segment !== '..')
  for (let depth = segments.length; depth >= 0; depth--) {
    const dir = [mount, ...segments.slice(0, depth)].join('/')
    const quota = quotaAt(dir)
    if (quota !== null && (smallest === null || quota < smallest)) smallest = quota
  }
  return smallest
}

/** "max", -1 (v1's "no limit"), an absent file or anything unreadable: no quota here. */
function cores (quota: string | null | undefined, period: string | null | undefined): number | null {
  const perPeriod = wholeNumber(quota)
  const length = wholeNumber(period)
  if (perPeriod === null || length === null || perPeriod <= 0 || length <= 0) return null
  return Math.max(1, Math.floor(perPeriod / length))
}

function wholeNumber (text: string | null | undefined): number | null {
  const trimmed = text?.trim() ?? ''
  return /^\d+$/.test(trimmed) ? Number(trimmed) : null
}

function read (path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}
