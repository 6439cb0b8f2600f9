import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import type { Test } from 'tap'
import { buildApp, SHARED_REDIS_URL, testEnv, uniquePrefix } from './app.js'

// The operators' command (src/admin.ts) as its users run it: a process of its own, beside instances of the service.

const ROOT = join(import.meta.dirname, '..', '..')

export interface Ran { code: number | null, stdout: string, stderr: string }

/** Node's arguments that run the command, as `npm run admin` gives them. */
const ADMIN = ['--import', 'tsx', 'src/admin.ts']

/** `npm run admin -- <args>` as its own process, with exactly this environment, `input` on its standard input. */
export async function admin (env: Record<string, string | undefined>, args: string[], input: string | Buffer = ''): Promise<Ran> {
  return await ran(spawn(process.execPath, [...ADMIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv }), input)
}

/**
 * The same on a pseudo-terminal of its own (util-linux `script`), as an operator types it: what it writes to standard
 * output and error both arrive in `stdout`.
 */
export async function adminOnTerminal (env: Record<string, string | undefined>, args: string[]): Promise<Ran> {
  const line = [process.execPath, ...ADMIN, ...args].map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ')
  return await ran(spawn('script', ['-qec', line, '/dev/null'], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv }), '')
}

/** What the process wrote and how it exited, `input` given on its standard input; killed after 30 s. */
async function ran (child: ChildProcessWithoutNullStreams, input: string | Buffer): Promise<Ran> {
  let [stdout, stderr] = ['', '']
  child.stdout.on('data', (d) => { stdout += String(d) })
  child.stderr.on('data', (d) => { stderr += String(d) })
  child.stdin.end(input)
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(killer)
  return { code, stdout, stderr }
}

/** Two instances of the service on one Redis, and the environment they run with, which the command is given too. */
export async function deployment (t: Test) {
  const prefix = uniquePrefix()
  const [a, b] = [await buildApp(t, { prefix }), await buildApp(t, { prefix })]
  return { a, b, env: testEnv({ REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix }) }
}

type App = Awaited<ReturnType<typeof buildApp>>
export const me = async (app: App, accessToken: string) => await app.inject({ url: '/me', headers: { authorization: `Bearer ${accessToken}` } })
export const signIn = async (app: App, email: string, password: string) => await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })
