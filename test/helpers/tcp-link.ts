import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { Transform } from 'node:stream'
import type { AddressInfo } from 'node:net'

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
   * its way. Other connections, and the client's next one, are untouched. Returns a check of whether it has cut,
   * which disarms it when it has not.
   */
  cutAt (matches: (sent: string) => boolean): () => boolean
}

/** A TCP relay on loopback to `targetPort`, for one process's link to a server, which a test can hold. */
export async function tcpLink (t: { teardown (fn: () => unknown): void }, targetPort: number): Promise<TcpLink> {
  const clients = new Set<Socket>()
  let held = false
  let cut: ((sent: string) => boolean) | null = null
  const server = createServer((client) => {
    const target = connect(targetPort, '127.0.0.1')
    clients.add(client)
    if (held) client.pause()
    const close = () => { clients.delete(client); client.destroy(); target.destroy() }
    const watch = new Transform({
      transform (chunk: Buffer, _encoding, callback) {
        if (cut === null || !cut(chunk.toString('latin1'))) return callback(null, chunk)
        cut = null
        close()
      }
    })
    client.pipe(watch).pipe(target)
    target.pipe(client)
    client.on('error', close)
    target.on('error', close)
    target.on('close', close)
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
    },
    cutAt (matches) {
      cut = matches
      return () => {
        const done = cut !== matches
        if (!done) cut = null
        return done
      }
    }
  }
}
