import { createHash } from 'node:crypto'
import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { Transform } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { luaScript } from '../../src/redis-client.js'

/** Matches what ioredis sends for a script of src/lua/: EVALSHA with its digest, or EVAL with its text when Redis lacks it. */
export function script (name: string): (sent: string) => boolean {
  const lua = luaScript(name)
  const sha = createHash('sha1').update(lua).digest('hex')
  return (sent) => sent.includes(sha) || sent.includes(lua)
}

/** Matches the `n`th write that `matches` matches, and every one after it. */
export function fromNth (n: number, matches: (sent: string) => boolean): (sent: string) => boolean {
  let seen = 0
  return (sent) => matches(sent) && ++seen >= n
}

export interface TcpLink {
  /** Where clients connect instead of the target. */
  port: number
  /**
   * Holds whatever clients send from now on (the target's answers still flow): a hop that has stopped delivering.
   * What was sent waits, as in a network, and reaches the target on release, even from a client that has closed since.
   */
  hold (): void
  release (): void
  /**
   * Cuts the link at the next thing a client sends that `matches` (what one write holds, read as latin1): that never
   * reaches the target, and that client's connection closes with it, as when the server dies while a command is on
   * its way. Other connections, and the client's next one, are untouched; with `every`, each such write is cut, on
   * whichever connection, as long as it is armed; with `reset`, the client's side is reset (RST: ECONNRESET), not
   * closed. Returns a check of whether it has cut, which disarms it.
   */
  cutAt (matches: (sent: string) => boolean, options?: { every?: boolean, reset?: boolean }): () => boolean
  /**
   * Holds the next thing a client sends that `matches`, and whatever that client sends after it, until release(): one
   * command stalled on its way, the other connections' traffic flowing. Returns a check of whether it has held.
   */
  holdAt (matches: (sent: string) => boolean): () => boolean
}

/** A TCP relay on loopback to `targetPort`, for one process's link to a server, which a test can hold. */
export async function tcpLink (t: { teardown (fn: () => unknown): void }, targetPort: number): Promise<TcpLink> {
  const clients = new Set<Socket>()
  let held = false
  let cut: { matches: (sent: string) => boolean, every: boolean, reset: boolean, count: number } | null = null
  let holding: { matches: (sent: string) => boolean, held: boolean } | null = null
  /** Writes held by holdAt, each passed on at release. */
  const waiting: Array<() => void> = []
  const server = createServer((client) => {
    const target = connect(targetPort, '127.0.0.1')
    clients.add(client)
    const close = (reset = false) => {
      clients.delete(client)
      if (reset) client.resetAndDestroy()
      else client.destroy()
      target.destroy()
    }
    const watch = new Transform({
      transform (chunk: Buffer, _encoding, callback) {
        const sent = chunk.toString('latin1')
        if (holding?.matches(sent) === true) {
          // Not passed on yet, so this connection's next writes wait behind it.
          holding.held = true
          holding = null
          waiting.push(() => callback(null, chunk))
          return
        }
        if (cut === null || !cut.matches(sent)) return callback(null, chunk)
        cut.count += 1
        const { reset } = cut
        if (!cut.every) cut = null
        close(reset)
      }
    })
    client.pipe(watch).pipe(target)
    target.pipe(client)
    // After pipe(), which resumes its source: a connection made while the link is held is held too.
    if (held) client.pause()
    client.on('error', () => { close() })
    target.on('error', () => { close() })
    target.on('close', () => { close() })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const client of clients) client.destroy()
    server.close()
  })
  return {
    port: (server.address() as AddressInfo).port,
    hold () {
      held = true
      for (const client of clients) client.pause()
    },
    release () {
      held = false
      for (const client of clients) client.resume()
      for (const pass of waiting.splice(0)) pass()
    },
    cutAt (matches, { every = false, reset = false } = {}) {
      const armed = { matches, every, reset, count: 0 }
      cut = armed
      return () => {
        if (cut === armed) cut = null
        return armed.count > 0
      }
    },
    holdAt (matches) {
      const armed = { matches, held: false }
      holding = armed
      return () => armed.held
    }
  }
}
