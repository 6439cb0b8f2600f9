#!/usr/bin/env node
// Runs a command (the test suite) with a Redis to talk to: the one at TEST_REDIS_URL or
// 127.0.0.1:6379 when it answers, otherwise a private redis-server on a free port that is
// started for the run and stopped after it. Needs `redis-server` on PATH only in that case.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  console.error('usage: with-redis.mjs <command> [args...]')
  process.exit(2)
}

function ping (port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host }, () => socket.write('PING\r\n'))
    socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
    socket.on('data', (data) => { socket.destroy(); resolve(String(data).startsWith('+PONG')) })
    socket.on('error', () => resolve(false))
  })
}

function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    }).on('error', reject)
  })
}

const env = { ...process.env }
let redis = null
let dir = null
const configured = env.TEST_REDIS_URL !== undefined ? new URL(env.TEST_REDIS_URL) : null
if (!(await ping(Number(configured?.port || 6379), configured?.hostname ?? '127.0.0.1'))) {
  if (configured !== null) {
    console.error(`with-redis: TEST_REDIS_URL=${configured.host} does not answer`)
    process.exit(1)
  }
  const port = await freePort()
  dir = mkdtempSync(join(tmpdir(), 'auth-test-redis-'))
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  redis.on('error', (err) => {
    console.error(`with-redis: no Redis on 127.0.0.1:6379 and redis-server could not start (${err.message}); install redis-server or set TEST_REDIS_URL`)
    process.exit(1)
  })
  while (!(await ping(port))) await sleep(50)
  env.TEST_REDIS_URL = `redis://127.0.0.1:${port}`
  console.error(`with-redis: started a private redis-server on ${env.TEST_REDIS_URL} for this run`)
}

const child = spawn(command, args, { stdio: 'inherit', env })
const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))))
if (redis !== null) {
  redis.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
}
process.exit(code)
