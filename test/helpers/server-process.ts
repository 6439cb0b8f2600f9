import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { testEnv } from './app.js'
import { freePort } from './redis-server.js'

export interface ServerProcess {
  child: ChildProcess
  /** Everything it has written to stdout and stderr so far. */
  output: () => string
  exited: Promise<number | null>
}

/**
 * src/server.ts as its own process, with exactly this environment (and PATH), and these modules preloaded; from the
 * checkout in `cwd` if given (another release's tree), this one otherwise.
 */
export function startServer (env: Record<string, string | undefined>, preloads: string[] = [], cwd?: string): ServerProcess {
  return startProcess(process.execPath, ['--import', 'tsx', ...preloads.flatMap((module) => ['--import', module]), 'src/server.ts'], env, cwd)
}

/** Any command as a server process, with exactly this environment (and PATH), in `cwd` if given, as `user` if given. */
export function startProcess (file: string, args: string[], env: Record<string, string | undefined>, cwd?: string, user?: { uid: number, gid: number }): ServerProcess {
  const child = spawn(file, args, {
    cwd,
    ...user,
    env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout?.on('data', (d) => { output += String(d) })
  child.stderr?.on('data', (d) => { output += String(d) })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return { child, output: () => output, exited }
}

/**
 * Resolves once the server logs that it listens (Fastify's line, or `marker` for a server that says it
 * otherwise); throws with its output if it exits or takes longer.
 */
export async function waitForListening (server: ServerProcess, timeoutMs = 15_000, marker = 'Server listening'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!server.output().includes(marker)) {
    if (Date.now() > deadline || server.child.exitCode !== null) throw new Error(`server did not start:\n${server.output()}`)
    await sleep(50)
  }
}

/**
 * src/server.ts as a process of its own on a free port, with the test settings plus `env`, and a `call` that
 * speaks to it over HTTP (GET, or POST with a JSON body and/or a cookie). For what must be set before Node
 * starts, such as NODE_EXTRA_CA_CERTS, or a module preloaded (test/helpers/skewed-clock.ts).
 */
export async function startServiceOverHttp (t: { teardown (fn: () => unknown): void }, env: Record<string, string>, preloads: string[] = []) {
  const port = await freePort()
  const server = startServer(testEnv({ PORT: String(port), LOG_LEVEL: 'info', JWT_SECRET: 'j'.repeat(40), REFRESH_TOKEN_SECRET: 'r'.repeat(40), ...env }), preloads)
  t.teardown(() => { server.child.kill('SIGKILL') })
  await waitForListening(server, 20_000)
  const call = async (path: string, body?: object, cookie?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: body === undefined && cookie === undefined ? 'GET' : 'POST',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(cookie === undefined ? {} : { cookie }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    return { status: res.status, cookie: res.headers.getSetCookie().find((c) => c.includes('Path=/auth'))?.split(';')[0], body: (res.headers.get('content-type')?.includes('json') === true ? await res.json() : {}) as Record<string, unknown> }
  }
  return { call, output: server.output, port }
}
