import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
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
}

/** A TCP relay on loopback to `targetPort`, for one process's link to a server, which a test can hold. */
export async function tcpLink (t: { teardown (fn: () => unknown): void }, targetPort: number): Promise<TcpLink> {
  const clients = new Set<Socket>()
  let held = false
  const server = createServer((client) => {
    const target = connect(targetPort, '127.0.0.1')
    clients.add(client)
    if (held) client.pause()
    client.pipe(target)
    target.pipe(client)
    const close = () => { clients.delete(client); client.destroy(); target.destroy() }
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
    }
  }
}
