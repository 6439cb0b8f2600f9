import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { serverOptions } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { metricsServer } from './metrics-server.js'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  // A clear one-line reason, no stack: the operator's fix is in the environment.
  console.error(`auth-service: refusing to start: ${err.message}`)
  process.exit(1)
}

const server = Fastify(serverOptions(config))
try {
  await server.register(app, { config })
} catch (err) {
  // What the plugins found at start (development key material not agreeing with the other instances', a development
  // secrets file that cannot be read): as a log line like every other, not an uncaught exception's stack on stderr.
  server.log.fatal({ err }, `refusing to start: ${(err as Error).message}`)
  process.exit(1)
}
const metrics = config.metricsPort === null ? null : metricsServer(server)

// SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close idle keep-alive
// sockets and Redis, and exit before the orchestrator's kill timeout.
closeWithGrace({ delay: config.shutdownTimeoutSeconds * 1000, logger: server.log }, async ({ err, signal }) => {
  if (err !== undefined) server.log.error({ err }, 'shutting down after an uncaught error')
  else server.log.info({ signal }, 'shutting down')
  await Promise.all([server.close(), metrics?.close()])
})

try {
  await server.listen({ port: config.port, host: config.host })
  if (metrics !== null && config.metricsPort !== null) await metrics.listen({ port: config.metricsPort, host: config.host })
} catch (err) {
  server.log.error({ err }, 'could not listen')
  process.exit(1)
}
