import { connect } from 'node:net'

export interface RawResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
}

/**
 * Writes `bytes` to the server as they are, however malformed, and reads what comes back until the server
 * closes the connection: what a client that does not speak HTTP properly gets.
 */
export async function rawRequest (port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  const received = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    socket.setEncoding('utf8')
    socket.setTimeout(timeoutMs, () => { socket.destroy(); reject(new Error(`no close within ${timeoutMs} ms; got: ${data.slice(0, 200)}`)) })
    socket.on('data', (chunk: string) => { data += chunk })
    socket.on('error', reject)
    socket.on('close', () => { resolve(data) })
    socket.write(bytes)
  })
  const end = received.indexOf('\r\n\r\n')
  if (end === -1) throw new Error(`not an HTTP response: ${JSON.stringify(received.slice(0, 200))}`)
  const [statusLine, ...lines] = received.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { statusCode: Number(statusLine?.split(' ')[1]), headers, body: received.slice(end + 4) }
}
