import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp, capturedLogs } from '../helpers/app.js'

interface Line { level: number, msg: string, err?: { message: string, type: string } }

const ERROR = 50
const DETAIL = 'the store at 10.0.0.7:6380 said LOADING'

/**
 * What a route's code may throw besides the service's own errors: a library's error with a status of its own, or
 * none, or a bug's. Keyed by the `x-test-throw` header of a request.
 */
const THROWN: Record<string, () => Error> = {
  'a 4xx without a code': () => Object.assign(new Error('the teapot is short and stout'), { statusCode: 418 }),
  'a status no HTTP status text names': () => Object.assign(new Error('closed early'), { statusCode: 499, code: 'LIB_CLOSED' }),
  'a 3xx': () => Object.assign(new Error(`moved to ${DETAIL}`), { statusCode: 302 }),
  'a status past 599': () => Object.assign(new Error(`odd status from ${DETAIL}`), { statusCode: 600 }),
  'no status': () => new Error(`connect failed: ${DETAIL}`),
  // A bug's SyntaxError (a JSON.parse of the service's own data) is the service's fault, not a malformed request.
  'a SyntaxError': () => new SyntaxError(`Unexpected token in ${DETAIL}`)
}

/** The real app, with a hook of the test's own that throws, before any route runs, what `x-test-throw` names. */
async function throwingApp (t: Test) {
  const logs = capturedLogs<Line>()
  const app = await buildApp(t, {
    store: 'memory',
    env: { LOG_LEVEL: 'info' },
    logStream: logs.stream,
    beforeApp: (root: FastifyInstance) => {
      root.addHook('onRequest', async (request) => {
        const name = request.headers['x-test-throw']
        if (typeof name === 'string') throw (THROWN[name] as () => Error)()
      })
    }
  })
  const thrown = (name: string) => app.inject({ url: '/health/live', headers: { 'x-test-throw': name } })
  return { thrown, logs }
}

t.test('an error with a client status leaves as that status, in the service\'s shape, with a code', async (t) => {
  const { thrown } = await throwingApp(t)
  const teapot = await thrown('a 4xx without a code')
  t.equal(teapot.statusCode, 418)
  t.same(teapot.json(), { statusCode: 418, code: 'REQUEST_ERROR', error: 'I\'m a Teapot', message: 'the teapot is short and stout' },
    'a 4xx without a code of its own gets the fallback code; its message is for the client')
  const closed = await thrown('a status no HTTP status text names')
  t.equal(closed.statusCode, 499)
  t.same(closed.json(), { statusCode: 499, code: 'LIB_CLOSED', error: 'Error', message: 'closed early' }, 'a status Node names no text for reads "Error"')
})

t.test('any other error is a 500 that tells the client nothing and the log everything', async (t) => {
  const { thrown, logs } = await throwingApp(t)
  for (const name of ['a 3xx', 'a status past 599', 'no status', 'a SyntaxError']) {
    const res = await thrown(name)
    t.equal(res.statusCode, 500, `${name}: 500`)
    t.same(res.json(), { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal server error' }, `${name}: no detail`)
    t.notMatch(res.body, '10.0.0.7', `${name}: nothing of the error's message`)
    t.equal(res.headers['x-request-id'] !== undefined, true, `${name}: the answer names its log line`)
  }
  const failures = logs.lines().filter((line) => line.msg === 'request failed')
  t.same(failures.map((line) => [line.level, line.err?.type, line.err?.message]), [
    [ERROR, 'Error', `moved to ${DETAIL}`],
    [ERROR, 'Error', `odd status from ${DETAIL}`],
    [ERROR, 'Error', `connect failed: ${DETAIL}`],
    [ERROR, 'SyntaxError', `Unexpected token in ${DETAIL}`]
  ], 'each logged once, at error, as thrown')
})
