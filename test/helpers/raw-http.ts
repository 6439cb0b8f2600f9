import { request } from 'node:http'
import { connect, type Socket } from 'node:net'

export interface RawResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
}

/**
 * 1,100 header lines (`x-0: 1\r\n` …), each ending in CRLF: more than Node keeps of a request by default (about
 * 1,000), so that a header sent after them is one Node would drop unseen.
 */
export const HEADER_CROWD = Array.from({ length: 1100 }, (_, i) => `x-${i}: 1\r\n`).join('')

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
  const head = answerHead(received)
  return { statusCode: head.statusCode, headers: head.headers, body: received.slice(head.bodyStart) }
}

/** The status line and headers an HTTP answer in `text` begins with, and where its body starts. */
function answerHead (text: string): { statusCode: number, headers: Record<string, string>, bodyStart: number } {
  const end = text.indexOf('\r\n\r\n')
  if (end === -1) throw new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`)
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { statusCode: Number(statusLine?.split(' ')[1]), headers, bodyStart: end + 4 }
}

/** The answers read off one connection until the server closes it, in order: each one's status, headers and JSON body. */
export function answersOn (socket: Socket): Promise<Array<{ status: number, headers: Record<string, string>, body: any }>> {
  return new Promise((resolve, reject) => {
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { data += chunk })
    socket.on('error', reject)
    socket.on('close', () => {
      const answers = []
      while (data.length > 0) {
        const { statusCode, headers, bodyStart } = answerHead(data)
        const bodyEnd = bodyStart + Number(headers['content-length'])
        answers.push({ status: statusCode, headers, body: JSON.parse(data.slice(bodyStart, bodyEnd)) })
        data = data.slice(bodyEnd)
      }
      resolve(answers)
    })
  })
}

const LOGIN_HEAD = 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'

/** Logins routed on their headers whose body Node's parser then refuses, for `rawRequest`. */
export const REFUSED_LOGIN_BODIES = {
  /** 408 once the request timeout has passed: 100 bytes announced, 9 sent. */
  tooSlow: `${LOGIN_HEAD}Content-Length: 100\r\n\r\n{"email":`,
  /** 400: a chunk size that is not hexadecimal. */
  notInChunks: `${LOGIN_HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`
}

export interface UnansweredRequest {
  /** Closes the connection: a client that has given up waiting. Throws if an answer came first (the test's premise). */
  hangUp (): void
}

/** Sends a request over a connection of its own, to be left unanswered until the test hangs up. */
export function unansweredRequest (port: number, path: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): UnansweredRequest {
  const req = request({ port, host: '127.0.0.1', path, method: init.method ?? 'GET', headers: init.headers })
  let answered: number | undefined
  req.on('error', () => {})
  req.on('response', (res) => { answered = res.statusCode })
  req.end(init.body)
  return {
    hangUp () {
      req.destroy()
      if (answered !== undefined) throw new Error(`${path} was answered ${answered} before the client hung up: the test needs it slower`)
    }
  }
}
